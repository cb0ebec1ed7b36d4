package probe

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pcheck/pcheck/parser"
	"github.com/pcheck/pcheck/pfile"
)

// startServer starts a real net/http server on loopback with handler,
// over TLS when cert is set, and returns its port.
func startServer(t *testing.T, handler http.HandlerFunc, cert *tls.Certificate) int {
	t.Helper()
	ts := httptest.NewUnstartedServer(handler)
	if cert != nil {
		ts.TLS = &tls.Config{Certificates: []tls.Certificate{*cert}}
		ts.StartTLS()
	} else {
		ts.Start()
	}
	t.Cleanup(ts.Close)
	return ts.Listener.Addr().(*net.TCPAddr).Port
}

// monitorOf loads a pfile holding one process with block and returns the
// block's monitor, as pcheck would build it.
func monitorOf(t *testing.T, block string) pfile.Monitor {
	t.Helper()
	src := "/usr/sbin/httpd /etc/pcheck/restart.sh\n" + block
	f, diags := parser.LoadBytes("test.pfile", []byte(src))
	if f == nil {
		t.Fatalf("pfile rejected:\n%s\n%s", diags.Err(), src)
	}
	return f.Processes[0].Blocks[0].Monitor
}

// webservBlock is a _bi_webserv block on port with the options opts.
func webservBlock(port int, opts ...string) string {
	return fmt.Sprintf("_bi_webserv{\n PS_EXEC DLL:/opt/HA/PSWE/lib/lib_bi_webserv.so:DIRECT:-:10:0:3:60:%d:127.0.0.1\n %s\n}\n",
		port, strings.Join(opts, "\n "))
}

// webservsBlock is a _bi_webservs block on port with the options opts.
func webservsBlock(port int, opts ...string) string {
	return fmt.Sprintf("_bi_webservs{\n PS_EXEC DLL:/opt/HA/PSWE/lib/lib_bi_webservs.so:DIRECT:-:10:0:5:60:%d:127.0.0.1:5:/\n %s\n}\n",
		port, strings.Join(opts, "\n "))
}

// runMonitor builds the probe of m and runs one attempt.
func runMonitor(t *testing.T, m pfile.Monitor) Result {
	t.Helper()
	p, err := New(m, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p.Run(withTimeout(t, 30*time.Second))
}

// A server that answers 500 is a failed attempt only with ExpectStatus,
// over HTTP and HTTPS; the failure shows the status line received.
func TestExpectStatus(t *testing.T) {
	handler := func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) }
	cert, _ := selfSigned(t, t.TempDir())
	plain := startServer(t, handler, nil)
	secure := startServer(t, handler, &cert)
	for _, tc := range []struct {
		name  string
		block string
		ok    bool
	}{
		{"webserv without ExpectStatus", webservBlock(plain), true},
		{"webserv 200-399", webservBlock(plain, "ExpectStatus 200-399"), false},
		{"webserv 200,500", webservBlock(plain, "ExpectStatus 200,500"), true},
		{"webserv 404,501-599", webservBlock(plain, `ExpectStatus "404,501-599"`), false},
		{"webservs without ExpectStatus", webservsBlock(secure), true},
		{"webservs 200-399", webservsBlock(secure, "ExpectStatus 200-399"), false},
		{"webservs 500-599", webservsBlock(secure, "ExpectStatus 500-599"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runMonitor(t, monitorOf(t, tc.block))
			if r.OK != tc.ok || r.Unknown {
				t.Fatalf("OK = %v, Unknown = %v, want OK %v (Detail %q, Err %v)", r.OK, r.Unknown, tc.ok, r.Detail, r.Err)
			}
			if !strings.Contains(r.Detail, " 500 Internal Server Error") {
				t.Errorf("Detail = %q, want the status line received", r.Detail)
			}
			if tc.ok {
				return
			}
			if !errors.Is(r.Err, ErrUnexpectedReply) {
				t.Errorf("Err = %v, want errors.Is ErrUnexpectedReply", r.Err)
			}
			if !regexp.MustCompile(`^HTTP/1\.[01] 500 Internal Server Error: status not in [0-9,-]+$`).MatchString(r.Detail) {
				t.Errorf("Detail = %q, want the status line and the ranges", r.Detail)
			}
		})
	}
}

// ExpectHeader matches a header's value (any of its lines) or asks only
// that it be present; a mismatch shows the value received.
func TestExpectHeader(t *testing.T) {
	port := startServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Add("X-Role", "replica")
		w.Header().Add("X-Role", "primary")
		if r.Method != http.MethodHead {
			t.Errorf("method %s, want HEAD without ExpectBody", r.Method)
		}
	}, nil)
	for _, tc := range []struct {
		name   string
		opts   []string
		ok     bool
		detail string // a regexp the Detail must match
	}{
		{"value matches", []string{`ExpectHeader "Content-Type: ^application/json"`}, true, `^HTTP/1\.[01] 200 OK$`},
		{"name in any case", []string{`ExpectHeader "content-type: json"`}, true, `^HTTP/1\.[01] 200 OK$`},
		{"second line matches", []string{`ExpectHeader "X-Role: ^primary$"`}, true, `^HTTP/1\.[01] 200 OK$`},
		{"present", []string{`ExpectHeader "X-Role:"`}, true, `^HTTP/1\.[01] 200 OK$`},
		{"all must match", []string{`ExpectHeader "X-Role: primary"`, `ExpectHeader "Content-Type: ^text/html"`}, false,
			`^HTTP/1\.[01] 200 OK: header Content-Type "application/json; charset=utf-8" does not match "\^text/html"$`},
		{"missing", []string{`ExpectHeader "X-Ready: yes"`}, false, `^HTTP/1\.[01] 200 OK: no header X-Ready$`},
		{"with status", []string{"ExpectStatus 200", `ExpectHeader "Content-Type: json"`}, true, `^HTTP/1\.[01] 200 OK$`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runMonitor(t, monitorOf(t, webservBlock(port, tc.opts...)))
			if r.OK != tc.ok || r.Unknown {
				t.Fatalf("OK = %v, Unknown = %v, want OK %v (Detail %q, Err %v)", r.OK, r.Unknown, tc.ok, r.Detail, r.Err)
			}
			if !regexp.MustCompile(tc.detail).MatchString(r.Detail) {
				t.Errorf("Detail = %q, want a match for %s", r.Detail, tc.detail)
			}
			if !tc.ok && (!errors.Is(r.Err, ErrUnexpectedReply) || r.Err.Error() != r.Detail) {
				t.Errorf("Err = %v, want ErrUnexpectedReply reading as the Detail", r.Err)
			}
		})
	}
}

// ExpectBody sends GET and matches the body; a mismatch shows its start.
func TestExpectBody(t *testing.T) {
	methods := make(chan string, 10)
	port := startServer(t, func(w http.ResponseWriter, r *http.Request) {
		methods <- r.Method
		_, _ = io.WriteString(w, "status: ok\nversion: 2.4\n")
	}, nil)
	cert, _ := selfSigned(t, t.TempDir())
	secure := startServer(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"healthy":true}`)
	}, &cert)
	for _, tc := range []struct {
		name   string
		block  string
		ok     bool
		detail string
	}{
		{"match", webservBlock(port, `ExpectBody "(?m)^status: ok$"`), true, `^HTTP/1\.[01] 200 OK$`},
		{"mismatch", webservBlock(port, `ExpectBody "status: (degraded|down)"`), false,
			`^HTTP/1\.[01] 200 OK: body does not match "status: \(degraded\|down\)": "status: ok\?version: 2\.4\?"$`},
		{"https match", webservsBlock(secure, `ExpectBody "\"healthy\":true"`), true, `^HTTP/1\.[01] 200 OK$`},
		{"https mismatch", webservsBlock(secure, `ExpectBody "\"healthy\":false"`), false, `body does not match`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for len(methods) > 0 {
				<-methods
			}
			r := runMonitor(t, monitorOf(t, tc.block))
			if r.OK != tc.ok || r.Unknown {
				t.Fatalf("OK = %v, Unknown = %v, want OK %v (Detail %q, Err %v)", r.OK, r.Unknown, tc.ok, r.Detail, r.Err)
			}
			if !regexp.MustCompile(tc.detail).MatchString(r.Detail) {
				t.Errorf("Detail = %q, want a match for %s", r.Detail, tc.detail)
			}
			if !tc.ok && !errors.Is(r.Err, ErrUnexpectedReply) {
				t.Errorf("Err = %v, want errors.Is ErrUnexpectedReply", r.Err)
			}
			if strings.HasPrefix(tc.name, "https") {
				return
			}
			if m := <-methods; m != http.MethodGet {
				t.Errorf("server saw %s, want GET with ExpectBody", m)
			}
		})
	}
}

// The body is read up to 64 KiB: text beyond does not match, and a server
// that never stops sending fails on the mismatch, not at the deadline.
func TestExpectBodyBounded(t *testing.T) {
	late := startServer(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, strings.Repeat("x", maxBody)+"READY")
	}, nil)
	endless := rawServer(t, "127.0.0.1:0", func(c net.Conn) {
		if _, err := readRequest(c); err != nil {
			return
		}
		if _, err := io.WriteString(c, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n"); err != nil {
			return
		}
		chunk := []byte(strings.Repeat("y", 4096))
		_ = c.SetWriteDeadline(time.Now().Add(time.Minute))
		for {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	})
	for _, tc := range []struct {
		name string
		port int
	}{{"match beyond 64 KiB", late}, {"endless body", endless}} {
		t.Run(tc.name, func(t *testing.T) {
			m := monitorOf(t, webservBlock(tc.port, "ExpectBody READY"))
			p, err := New(m, nil)
			if err != nil {
				t.Fatal(err)
			}
			r := p.Run(withTimeout(t, 20*time.Second))
			if r.OK || !errors.Is(r.Err, ErrUnexpectedReply) {
				t.Fatalf("OK = %v, Err = %v; want a mismatch within the first 64 KiB (Detail %q)", r.OK, r.Err, r.Detail)
			}
		})
	}
}

// An answer that is not HTTP fails with expectations as without them.
func TestExpectBadReply(t *testing.T) {
	for _, tc := range []struct {
		name, reply string
		err         error
	}{
		{"garbage", "SSH-2.0-OpenSSH_9.6\r\n", ErrBadStatusLine},
		{"closed after the status line", "HTTP/1.1 200 OK\r\n", io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port := rawServer(t, "127.0.0.1:0", func(c net.Conn) {
				if _, err := readRequest(c); err != nil {
					return
				}
				_, _ = io.WriteString(c, tc.reply)
			})
			r := runMonitor(t, monitorOf(t, webservBlock(port, "ExpectStatus 200")))
			if r.OK || r.Unknown || !errors.Is(r.Err, tc.err) {
				t.Fatalf("OK = %v, Unknown = %v, Err = %v; want a failure errors.Is %v", r.OK, r.Unknown, r.Err, tc.err)
			}
		})
	}
}

// A TLS server whose certificate expires in 3 days: the result carries its
// NotAfter, and TLSExpiryFail 5 fails the attempt, 3 does not.
func TestTLSExpiry(t *testing.T) {
	notAfter := time.Now().Add(3*day + time.Hour).UTC().Truncate(time.Second)
	cert, _ := certUntil(t, t.TempDir(), notAfter)
	port := startServer(t, func(http.ResponseWriter, *http.Request) {}, &cert)
	for _, tc := range []struct {
		name   string
		opts   []string
		ok     bool
		detail string
	}{
		{"no option", nil, true, `^HTTP/1\.[01] 200 OK$`},
		{"warn only", []string{"TLSExpiryWarn 30"}, true, `^HTTP/1\.[01] 200 OK$`},
		{"fail below 3", []string{"TLSExpiryFail 3"}, true, `^HTTP/1\.[01] 200 OK$`},
		{"fail below 5", []string{"TLSExpiryWarn 30", "TLSExpiryFail 5"}, false,
			`^TLS certificate expires too soon: 3 days left \(not after ` + regexp.QuoteMeta(notAfter.Format(time.RFC3339)) + `\), fewer than 5$`},
		{"fail with a status expected", []string{"TLSExpiryFail 5", "ExpectStatus 200"}, false, `^TLS certificate expires too soon`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runMonitor(t, monitorOf(t, webservsBlock(port, tc.opts...)))
			if r.OK != tc.ok || r.Unknown {
				t.Fatalf("OK = %v, Unknown = %v, want OK %v (Detail %q, Err %v)", r.OK, r.Unknown, tc.ok, r.Detail, r.Err)
			}
			if !r.NotAfter.Equal(notAfter) {
				t.Errorf("NotAfter = %v, want the certificate's %v", r.NotAfter, notAfter)
			}
			if !regexp.MustCompile(tc.detail).MatchString(r.Detail) {
				t.Errorf("Detail = %q, want a match for %s", r.Detail, tc.detail)
			}
			if !tc.ok && !errors.Is(r.Err, ErrCertExpiring) {
				t.Errorf("Err = %v, want errors.Is ErrCertExpiring", r.Err)
			}
		})
	}
	// The plain HTTP probe and a failed handshake carry no NotAfter.
	if r := HTTPS("127.0.0.1", closedPort(t), "/", TLSOptions{}).Run(withTimeout(t, 30*time.Second)); r.OK || !r.NotAfter.IsZero() {
		t.Errorf("refused HTTPS: OK %v, NotAfter %v; want a failure without NotAfter", r.OK, r.NotAfter)
	}
}

// The certificate's days as the warning and status count them.
func TestDaysLeft(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		left time.Duration
		want int
	}{
		{3*day + time.Hour, 3},
		{3 * day, 3},
		{3*day - time.Second, 2},
		{time.Hour, 0},
		{0, 0},
		{-time.Second, -1},
		{-day, -1},
		{-day - time.Second, -2},
	} {
		if got := DaysLeft(now.Add(tc.left), now); got != tc.want {
			t.Errorf("DaysLeft(now%+v) = %d, want %d", tc.left, got, tc.want)
		}
	}
}

// ExpiryWarning: below the threshold, at most once in 24 hours.
func TestExpiryWarning(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	notAfter := now.Add(3*day + time.Hour)
	for _, tc := range []struct {
		name     string
		notAfter time.Time
		warnDays int
		last     time.Time
		now      time.Time
		days     int
		warn     bool
	}{
		{"first, below", notAfter, 5, time.Time{}, now, 3, true},
		{"first, not below", notAfter, 3, time.Time{}, now, 3, false},
		{"warned an hour ago", notAfter, 5, now.Add(-time.Hour), now, 3, false},
		{"warned 23h59m ago", notAfter, 5, now.Add(-day + time.Minute), now, 3, false},
		{"warned a day ago", notAfter, 5, now.Add(-day), now, 3, true},
		{"expired", now.Add(-time.Hour), 5, now.Add(-2 * day), now, -1, true},
		{"clock set back", notAfter, 5, now.Add(time.Hour), now, 3, true},
		{"no certificate seen", time.Time{}, 5, time.Time{}, now, 0, false},
		{"no TLSExpiryWarn", notAfter, 0, time.Time{}, now, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			days, warn := ExpiryWarning(tc.notAfter, tc.warnDays, tc.last, tc.now)
			if days != tc.days || warn != tc.warn {
				t.Errorf("ExpiryWarning = (%d, %v), want (%d, %v)", days, warn, tc.days, tc.warn)
			}
		})
	}
}
