package probe

import (
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// silentListener is a loopback listener that never accepts: the kernel
// completes the connections (up to its backlog) and nobody answers. No
// goroutine of this process serves it.
func silentListener(t *testing.T) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 4096); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return sa.(*unix.SockaddrInet4).Port
}

// collect waits for n results on w.
func collect(t *testing.T, w waiter, n int) []Result {
	t.Helper()
	out := make([]Result, 0, n)
	timeout := time.After(60 * time.Second)
	for len(out) < n {
		select {
		case r := <-w:
			out = append(out, r)
		case <-timeout:
			t.Fatalf("%d of %d attempts delivered", len(out), n)
		}
	}
	return out
}

// Attempts in flight on the loop hold no goroutine; cancelled, they
// complete as cancelled and leave no descriptor behind.
func TestLoopCancelInFlight(t *testing.T) {
	port := silentListener(t)
	p := HTTP("127.0.0.1", port).(Starter)
	tcp := TCP("127.0.0.1", silentListener(t)).(Starter)
	_ = tcp.Run(withTimeout(t, 30*time.Second)) // the loop runs
	fds, goroutines := openFDs(t), runtime.NumGoroutine()
	const n = 200
	w := make(waiter, n)
	handles := make([]Handle, n)
	for i := range handles {
		handles[i] = p.Start(time.Now().Add(time.Minute), w)
	}
	// Wait until every attempt holds its socket: they are in flight.
	deadline := time.Now().Add(30 * time.Second)
	for openFDs(t) < fds+n {
		if time.Now().After(deadline) {
			t.Fatalf("%d descriptors, want %d in flight", openFDs(t)-fds, n)
		}
		time.Sleep(time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > goroutines+2 {
		t.Errorf("%d goroutines with %d attempts in flight, %d before: want no goroutine per attempt", g, n, goroutines)
	}
	select {
	case r := <-w:
		t.Fatalf("an attempt of a silent server ended: %+v", r)
	default:
	}
	for _, h := range handles {
		h.Cancel()
	}
	for _, r := range collect(t, w, n) {
		if r.OK || r.Unknown || !errors.Is(r.Err, context.Canceled) {
			t.Fatalf("cancelled attempt: OK=%v Unknown=%v Err=%v, want context.Canceled", r.OK, r.Unknown, r.Err)
		}
	}
	if got := openFDs(t); got > fds {
		t.Errorf("%d descriptors after the cancels, %d before", got, fds)
	}
	// A cancel after the end does nothing.
	handles[0].Cancel()
	select {
	case r := <-w:
		t.Fatalf("a second completion: %+v", r)
	case <-time.After(10 * time.Millisecond): // a late completion would come on the loop within this
	}
}

// Many attempts at once against one listener are all delivered, each once.
func TestLoopManyConcurrent(t *testing.T) {
	port := rawServer(t, "127.0.0.1:0", func(c net.Conn) {
		if _, err := readRequest(c); err == nil {
			_, _ = io.WriteString(c, "HTTP/1.0 204 No Content\r\n\r\n")
		}
	})
	const n = 500
	w := make(waiter, n)
	probes := make([]Starter, n)
	for i := range probes {
		if i%2 == 0 {
			probes[i] = HTTP("127.0.0.1", port).(Starter)
		} else {
			probes[i] = TCP("127.0.0.1", port).(Starter)
		}
	}
	for _, p := range probes {
		p.Start(time.Now().Add(time.Minute), w)
	}
	ok := 0
	for _, r := range collect(t, w, n) {
		if r.OK {
			ok++
		} else {
			t.Errorf("OK=%v Detail=%q Err=%v", r.OK, r.Detail, r.Err)
		}
	}
	if ok != n {
		t.Fatalf("%d of %d attempts succeeded", ok, n)
	}
}

// A peer that closes before its status line is complete, or that resets
// the connection, fails the attempt (the service's side), at once.
func TestHTTPPeerClosesEarly(t *testing.T) {
	short := rawServer(t, "127.0.0.1:0", func(c net.Conn) {
		if _, err := readRequest(c); err == nil {
			_, _ = io.WriteString(c, "HTTP/1.1 2")
		}
	})
	reset := rawServer(t, "127.0.0.1:0", func(c net.Conn) {
		if _, err := readRequest(c); err == nil {
			_ = c.(*net.TCPConn).SetLinger(0)
		}
	})
	r := HTTP("127.0.0.1", short).Run(withTimeout(t, 30*time.Second))
	if r.OK || r.Unknown || !errors.Is(r.Err, io.ErrUnexpectedEOF) {
		t.Errorf("closed after 10 bytes: OK=%v Unknown=%v Err=%v, want io.ErrUnexpectedEOF", r.OK, r.Unknown, r.Err)
	}
	r = HTTP("127.0.0.1", reset).Run(withTimeout(t, 30*time.Second))
	if r.OK || r.Unknown || !errors.Is(r.Err, syscall.ECONNRESET) {
		t.Errorf("reset: OK=%v Unknown=%v Err=%v, want ECONNRESET", r.OK, r.Unknown, r.Err)
	}
}

// TCP and plain HTTP HEAD attempts on the loop allocate nothing in the
// steady state. The server is another process, whose allocations are not
// counted.
func TestLoopNoAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	h := startHelper(t, "http", "127.0.0.1:0")
	for name, p := range map[string]Starter{"tcp": TCP("127.0.0.1", h.port).(Starter), "http": HTTP("127.0.0.1", h.port).(Starter)} {
		w := make(waiter, 1)
		var bad Result
		allocs := testing.AllocsPerRun(200, func() {
			p.Start(time.Now().Add(30*time.Second), w)
			if r := <-w; !r.OK {
				bad = r
			}
		})
		if bad.Err != nil {
			t.Fatalf("%s: %v", name, bad.Err)
		}
		if allocs != 0 {
			t.Errorf("%s: %v allocations per attempt, want 0", name, allocs)
		}
	}
}

// A loop whose own wait fails (a bug: here its epoll descriptor closed
// under it) ends, and every attempt in flight or to come is Unknown
// rather than pcheck crashing.
func TestLoopDies(t *testing.T) {
	port := silentListener(t)
	p := HTTP("127.0.0.1", port).(*httpProber)
	l, err := startLoop()
	if err != nil {
		t.Fatal(err)
	}
	fds := openFDs(t)
	w := make(waiter, 2)
	l.start(p.target, p, time.Now().Add(time.Minute), w)
	deadline := time.Now().Add(30 * time.Second)
	for openFDs(t) < fds+1 {
		if time.Now().After(deadline) {
			t.Fatal("the attempt holds no socket")
		}
		time.Sleep(time.Millisecond)
	}
	l.epoll.Close()
	for _, what := range []string{"in flight", "started after"} {
		r := collect(t, w, 1)[0]
		if !r.Unknown || r.Err == nil || !strings.Contains(r.Err.Error(), "probe event loop") {
			t.Fatalf("attempt %s the loop's end: OK=%v Unknown=%v Err=%v, want Unknown", what, r.OK, r.Unknown, r.Err)
		}
		if what == "in flight" {
			l.start(p.target, p, time.Now().Add(time.Minute), w)
		}
	}
	if got := openFDs(t); got > fds-1 { // the attempt's socket and epoll closed
		t.Errorf("%d descriptors after the loop ended, %d with its attempt in flight", got, fds+1)
	}
}
