package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pcheck/pcheck/checker/proc"
)

// request is what a server saw of a probe's request.
type request struct {
	method, uri, host, userAgent, proto string
	close                               bool
}

// startHTTPServer starts a net/http server on network/addr answering status
// to everything; the requests it sees are sent on the returned channel.
func startHTTPServer(t *testing.T, network, addr string, status int, tlsCert *tls.Certificate) (int, <-chan request) {
	t.Helper()
	seen := make(chan request, 100)
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- request{r.Method, r.RequestURI, r.Host, r.UserAgent(), r.Proto, r.Close}
		w.WriteHeader(status)
	}))
	l, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	ts.Listener.Close()
	ts.Listener = l
	if tlsCert != nil {
		ts.TLS = &tls.Config{Certificates: []tls.Certificate{*tlsCert}}
		ts.StartTLS()
	} else {
		ts.Start()
	}
	t.Cleanup(ts.Close)
	return l.Addr().(*net.TCPAddr).Port, seen
}

func TestHTTPRealServer(t *testing.T) {
	for _, tc := range []struct {
		name, network, addr, host, hostHeader string
		status                                int
	}{
		{"200 over IPv4", "tcp4", "127.0.0.1:0", "127.0.0.1", "127.0.0.1", 200},
		{"500 is an answer", "tcp4", "127.0.0.1:0", "127.0.0.1", "127.0.0.1", 500},
		{"404 via localhost", "tcp4", "127.0.0.1:0", "localhost", "localhost", 404},
		{"200 over IPv6", "tcp6", "[::1]:0", "::1", "[::1]", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port, seen := startHTTPServer(t, tc.network, tc.addr, tc.status, nil)
			r := HTTP(tc.host, port).Run(withTimeout(t, 30*time.Second))
			if !r.OK {
				t.Fatalf("HTTP probe failed: %s (%v)", r.Detail, r.Err)
			}
			want := " " + strconv.Itoa(tc.status) + " " + http.StatusText(tc.status)
			if !strings.HasPrefix(r.Detail, "HTTP/1.") || !strings.HasSuffix(r.Detail, want) {
				t.Errorf("Detail = %q, want an HTTP/1.x status line ending in %q", r.Detail, want)
			}
			if r.Err != nil || r.Latency <= 0 {
				t.Errorf("Err = %v, Latency = %v; want nil and positive", r.Err, r.Latency)
			}
			got := <-seen
			want2 := request{
				method:    "HEAD",
				uri:       "/",
				host:      tc.hostHeader + ":" + strconv.Itoa(port),
				userAgent: "pcheck/" + Version + " (stall monitor)",
				proto:     "HTTP/1.0",
				close:     true,
			}
			if got != want2 {
				t.Errorf("server saw %+v, want %+v", got, want2)
			}
		})
	}
}

// TestHTTPReplies drives the status line reader with raw replies.
func TestHTTPReplies(t *testing.T) {
	for _, tc := range []struct {
		name, reply string
		ok          bool
		detail      string
		err         error
	}{
		{"HTTP/1.1 200", "HTTP/1.1 200 OK\r\nServer: x\r\n\r\n", true, "HTTP/1.1 200 OK", nil},
		{"HTTP/1.0 503", "HTTP/1.0 503 Service Unavailable\r\n\r\n", true, "HTTP/1.0 503 Service Unavailable", nil},
		{"no reason phrase", "HTTP/1.1 204\r\n\r\n", true, "HTTP/1.1 204", nil},
		{"bare line feed", "HTTP/1.1 302 Found\n\n", true, "HTTP/1.1 302 Found", nil},
		{"garbage", "hello there\r\n", false, "", ErrBadStatusLine},
		{"ssh banner", "SSH-2.0-OpenSSH_9.6\r\n", false, "", ErrBadStatusLine},
		{"four-digit status", "HTTP/1.1 2000 OK\r\n", false, "", ErrBadStatusLine},
		{"no status code", "HTTP/1.1 OK\r\n", false, "", ErrBadStatusLine},
		{"endless line", "HTTP/1.1 200 " + strings.Repeat("x", 2*maxStatusLine), false, "", ErrBadStatusLine},
		{"closed without reply", "", false, "", io.ErrUnexpectedEOF},
		{"closed mid-line", "HTTP/1.1 20", false, "", io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port := rawServer(t, "127.0.0.1:0", func(c net.Conn) {
				if _, err := readRequest(c); err != nil {
					return
				}
				_, _ = io.WriteString(c, tc.reply)
			})
			r := HTTP("127.0.0.1", port).Run(withTimeout(t, 30*time.Second))
			if r.OK != tc.ok {
				t.Fatalf("OK = %v, want %v (Detail %q, Err %v)", r.OK, tc.ok, r.Detail, r.Err)
			}
			if tc.ok && r.Detail != tc.detail {
				t.Errorf("Detail = %q, want %q", r.Detail, tc.detail)
			}
			if !tc.ok && !errors.Is(r.Err, tc.err) {
				t.Errorf("Err = %v, want errors.Is %v", r.Err, tc.err)
			}
		})
	}
}

// A server that answers garbage and then keeps the connection open fails at
// once, not at the deadline.
func TestHTTPGarbageFailsBeforeDeadline(t *testing.T) {
	port := rawServer(t, "127.0.0.1:0", func(c net.Conn) {
		_, _ = io.WriteString(c, "220 smtp.example ESMTP")
		_, _ = io.Copy(io.Discard, c) // until the probe goes away
	})
	r := HTTP("127.0.0.1", port).Run(withTimeout(t, time.Hour))
	if r.OK || !errors.Is(r.Err, ErrBadStatusLine) {
		t.Fatalf("got OK=%v Err=%v, want ErrBadStatusLine", r.OK, r.Err)
	}
	if errors.Is(r.Err, context.DeadlineExceeded) || r.Detail == "timeout" {
		t.Errorf("garbage reported as a timeout: %q %v", r.Detail, r.Err)
	}
}

func TestHTTPRefused(t *testing.T) {
	port := closedPort(t)
	for name, p := range map[string]Prober{
		"http":  HTTP("127.0.0.1", port),
		"https": HTTPS("127.0.0.1", port, "/", TLSOptions{}),
		"tcp":   TCP("127.0.0.1", port),
	} {
		t.Run(name, func(t *testing.T) {
			r := p.Run(withTimeout(t, 30*time.Second))
			if r.OK {
				t.Fatal("probe of a closed port succeeded")
			}
			if !errors.Is(r.Err, syscall.ECONNREFUSED) {
				t.Errorf("Err = %v, want errors.Is ECONNREFUSED", r.Err)
			}
			if r.Detail != "connect: connection refused" {
				t.Errorf("Detail = %q, want %q", r.Detail, "connect: connection refused")
			}
		})
	}
}

// waitStopped waits until pid is in state T: kill(SIGSTOP) returns before
// the target has stopped, and a server still running answers the probe.
func waitStopped(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := proc.Read(pid)
		if err != nil {
			t.Fatal(err)
		}
		if info.State == 'T' {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d did not stop (state %c)", pid, info.State)
		}
		time.Sleep(time.Millisecond)
	}
}

// A real server stopped with SIGSTOP: the kernel completes the connection
// but nobody answers, so the probe fails at its deadline.
func TestHTTPHungServer(t *testing.T) {
	h := startHelper(t, "http", "127.0.0.1:0")
	p := HTTP("127.0.0.1", h.port)
	if r := p.Run(withTimeout(t, 30*time.Second)); !r.OK {
		t.Fatalf("probe of the running server failed: %s (%v)", r.Detail, r.Err)
	}
	if err := syscall.Kill(h.pid(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	waitStopped(t, h.pid())
	r := p.Run(withTimeout(t, 300*time.Millisecond))
	if r.OK {
		t.Fatal("probe of a stopped server succeeded")
	}
	if r.Detail != "timeout" || !errors.Is(r.Err, context.DeadlineExceeded) {
		t.Errorf("Detail = %q, Err = %v; want a timeout", r.Detail, r.Err)
	}
	if r.Latency > 20*time.Second {
		t.Errorf("Latency = %v, far beyond the 300ms deadline", r.Latency)
	}
}

// A listener that accepts and never answers: plain HTTP waits for a status
// line, HTTPS for the handshake; both give up at the deadline.
func TestSilentServer(t *testing.T) {
	port := rawServer(t, "127.0.0.1:0", func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
	for name, p := range map[string]Prober{
		"http":  HTTP("127.0.0.1", port),
		"https": HTTPS("127.0.0.1", port, "/", TLSOptions{}),
	} {
		t.Run(name, func(t *testing.T) {
			r := p.Run(withTimeout(t, 300*time.Millisecond))
			if r.OK || r.Detail != "timeout" || !errors.Is(r.Err, context.DeadlineExceeded) {
				t.Errorf("got OK=%v Detail=%q Err=%v, want a timeout", r.OK, r.Detail, r.Err)
			}
		})
	}
}

// Cancelling the context unblocks an attempt that has no deadline.
func TestHTTPCancel(t *testing.T) {
	accepted := make(chan struct{}, 1)
	port := rawServer(t, "127.0.0.1:0", func(c net.Conn) {
		accepted <- struct{}{}
		_, _ = io.Copy(io.Discard, c)
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan Result)
	go func() { done <- HTTP("127.0.0.1", port).Run(ctx) }()
	select {
	case <-accepted:
	case <-time.After(30 * time.Second):
		t.Fatal("the probe never connected")
	}
	cancel()
	select {
	case r := <-done:
		if r.OK || r.Detail != "canceled" || !errors.Is(r.Err, context.Canceled) {
			t.Errorf("got OK=%v Detail=%q Err=%v, want canceled", r.OK, r.Detail, r.Err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestHTTPS(t *testing.T) {
	cert, caFile := selfSigned(t, t.TempDir())
	port4, seen4 := startHTTPServer(t, "tcp4", "127.0.0.1:0", 200, &cert)
	port6, _ := startHTTPServer(t, "tcp6", "[::1]:0", 200, &cert)
	for _, tc := range []struct {
		name string
		host string
		port int
		opts TLSOptions
		ok   bool
		err  any // a pointer for errors.As, or an error for errors.Is
	}{
		{"self-signed without verify", "127.0.0.1", port4, TLSOptions{}, true, nil},
		{"self-signed with verify", "127.0.0.1", port4, TLSOptions{Verify: true}, false, &x509.UnknownAuthorityError{}},
		{"verify against CA file", "127.0.0.1", port4, TLSOptions{Verify: true, CAFile: caFile}, true, nil},
		{"verify localhost", "localhost", port4, TLSOptions{Verify: true, CAFile: caFile}, true, nil},
		{"verify IPv6", "::1", port6, TLSOptions{Verify: true, CAFile: caFile}, true, nil},
		{"wrong server name", "127.0.0.1", port4, TLSOptions{Verify: true, CAFile: caFile, ServerName: "www.example.com"}, false, &x509.HostnameError{}},
		{"missing CA file", "127.0.0.1", port4, TLSOptions{Verify: true, CAFile: caFile + ".missing"}, false, fs.ErrNotExist},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := HTTPS(tc.host, tc.port, "/", tc.opts).Run(withTimeout(t, 30*time.Second))
			if r.OK != tc.ok {
				t.Fatalf("OK = %v, want %v (Detail %q, Err %v)", r.OK, tc.ok, r.Detail, r.Err)
			}
			switch want := tc.err.(type) {
			case *x509.UnknownAuthorityError:
				if !errors.As(r.Err, want) {
					t.Errorf("Err = %v, want an x509.UnknownAuthorityError", r.Err)
				}
			case *x509.HostnameError:
				if !errors.As(r.Err, want) {
					t.Errorf("Err = %v, want an x509.HostnameError", r.Err)
				}
			case error:
				if !errors.Is(r.Err, want) {
					t.Errorf("Err = %v, want errors.Is %v", r.Err, want)
				}
			}
			if tc.ok && !strings.HasSuffix(r.Detail, " 200 OK") {
				t.Errorf("Detail = %q, want a 200 status line", r.Detail)
			}
		})
	}
	// The path is sent, made a valid request target.
	for len(seen4) > 0 {
		<-seen4
	}
	r := HTTPS("127.0.0.1", port4, "/health check/é", TLSOptions{}).Run(withTimeout(t, 30*time.Second))
	if !r.OK {
		t.Fatalf("HTTPS probe failed: %s (%v)", r.Detail, r.Err)
	}
	if got := <-seen4; got.method != "HEAD" || got.uri != "/health%20check/%C3%A9" {
		t.Errorf("server saw %s %s, want HEAD /health%%20check/%%C3%%A9", got.method, got.uri)
	}
}

// SNI carries the host name, or the ServerName option; never an IP literal.
func TestHTTPSServerName(t *testing.T) {
	cert, _ := selfSigned(t, t.TempDir())
	sni := make(chan string, 1)
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	ts.TLS = &tls.Config{
		Certificates: []tls.Certificate{cert},
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			sni <- hello.ServerName
			return nil, nil
		},
	}
	ts.StartTLS()
	t.Cleanup(ts.Close)
	port := ts.Listener.Addr().(*net.TCPAddr).Port
	for _, tc := range []struct {
		host, serverName, want string
	}{
		{"localhost", "", "localhost"},
		{"127.0.0.1", "", ""},
		{"127.0.0.1", "www.example.com", "www.example.com"},
	} {
		r := HTTPS(tc.host, port, "/", TLSOptions{ServerName: tc.serverName}).Run(withTimeout(t, 30*time.Second))
		if !r.OK {
			t.Fatalf("HTTPS %s: %s (%v)", tc.host, r.Detail, r.Err)
		}
		select {
		case got := <-sni:
			if got != tc.want {
				t.Errorf("host %q ServerName %q: server saw SNI %q, want %q", tc.host, tc.serverName, got, tc.want)
			}
		default:
			t.Fatalf("host %q: the server saw no ClientHello", tc.host)
		}
	}
}

// HTTPS against a plain HTTP server fails in the handshake.
func TestHTTPSAgainstPlainHTTP(t *testing.T) {
	port, _ := startHTTPServer(t, "tcp4", "127.0.0.1:0", 200, nil)
	r := HTTPS("127.0.0.1", port, "/", TLSOptions{}).Run(withTimeout(t, 30*time.Second))
	var rh tls.RecordHeaderError
	if r.OK || !errors.As(r.Err, &rh) {
		t.Errorf("got OK=%v Err=%v, want a tls.RecordHeaderError from the handshake", r.OK, r.Err)
	}
}

func TestEscapePath(t *testing.T) {
	for in, want := range map[string]string{
		"":              "/",
		"/":             "/",
		"index.html":    "/index.html",
		"/a b":          "/a%20b",
		"/x\r\nHost: y": "/x%0D%0AHost:%20y",
		"/%41?q=1":      "/%41?q=1",
	} {
		if got := escapePath(in); got != want {
			t.Errorf("escapePath(%q) = %q, want %q", in, got, want)
		}
	}
}
