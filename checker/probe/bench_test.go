package probe

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// benchServer answers every request with a status line at once.
func benchServer(b *testing.B) int {
	return rawServer(b, "127.0.0.1:0", func(c net.Conn) {
		var buf [512]byte
		if _, err := c.Read(buf[:]); err == nil {
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\n\r\n")
		}
		_, _ = io.Copy(io.Discard, c)
	})
}

func benchmark(b *testing.B, p Prober) {
	b.ReportAllocs()
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		r := p.Run(ctx)
		cancel()
		if !r.OK {
			b.Fatalf("%s (%v)", r.Detail, r.Err)
		}
	}
}

func BenchmarkHTTP(b *testing.B) { benchmark(b, HTTP("127.0.0.1", benchServer(b))) }

func BenchmarkTCP(b *testing.B) { benchmark(b, TCP("127.0.0.1", benchServer(b))) }

func BenchmarkHTTPS(b *testing.B) {
	cert, _ := selfSigned(b, b.TempDir())
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				var buf [512]byte
				if _, err := c.Read(buf[:]); err == nil {
					_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\n\r\n")
				}
				_, _ = io.Copy(io.Discard, c)
			}()
		}
	}()
	benchmark(b, HTTPS("127.0.0.1", l.Addr().(*net.TCPAddr).Port, "/", TLSOptions{}))
}

func BenchmarkCommand(b *testing.B) { benchmark(b, Command("/bin/true", nil, nil)) }

func BenchmarkListen(b *testing.B) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	self := []int{os.Getpid()}
	benchmark(b, Listen(l.Addr().(*net.TCPAddr).Port, "", func() ([]int, error) { return self, nil }))
}

// BenchmarkListen10000 times a _bi_listen attempt for a listener held by
// another process while this one holds 10,000 loopback sockets (a listener
// and 4,999 connections, both ends): with a sock_diag dump per attempt,
// with the dump shared by the attempts of a tick, and from /proc/net/tcp.
func BenchmarkListen10000(b *testing.B) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	const conns = 4999
	accepted := make(chan net.Conn, conns)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	for range conns {
		c, err := net.Dial("tcp4", l.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		s := <-accepted
		b.Cleanup(func() { s.Close() })
	}
	h := startHelper(b, "listen", "127.0.0.1:0")
	pids := func() ([]int, error) { return []int{h.pid()}, nil }
	fresh := &listenDump{}
	b.Run("sock_diag", func(b *testing.B) {
		p := listenWith(fresh, h.port, "", pids)
		b.ReportAllocs()
		for b.Loop() {
			fresh.mu.Lock()
			fresh.at = time.Time{} // a dump of its own
			fresh.mu.Unlock()
			if r := p.Run(context.Background()); !r.OK {
				b.Fatal(r.Err)
			}
		}
	})
	b.Run("sock_diag_shared", func(b *testing.B) { benchmark(b, listenWith(&listenDump{}, h.port, "", pids)) })
	b.Run("proc", func(b *testing.B) { benchmark(b, listenWith(noSockDiag(syscall.EPERM), h.port, "", pids)) })
}

// benchmarkStart times attempts started on the event loop, as the stall
// monitors start them, against a server in another process (whose
// allocations are not counted).
func benchmarkStart(b *testing.B, p Starter) {
	w := make(waiter, 1)
	b.ReportAllocs()
	for b.Loop() {
		p.Start(time.Now().Add(10*time.Second), w)
		if r := <-w; !r.OK {
			b.Fatalf("%s (%v)", r.Detail, r.Err)
		}
	}
}

func BenchmarkStartTCP(b *testing.B) {
	benchmarkStart(b, TCP("127.0.0.1", startHelper(b, "http", "127.0.0.1:0").port).(Starter))
}

func BenchmarkStartHTTP(b *testing.B) {
	benchmarkStart(b, HTTP("127.0.0.1", startHelper(b, "http", "127.0.0.1:0").port).(Starter))
}
