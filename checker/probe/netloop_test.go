package probe

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
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

// fullListener is a listener on ip:port (port 0 for any) whose accept
// queue is full: the kernel drops later connection requests, which stay
// in SYN_SENT until their deadline.
func fullListener(t *testing.T, ip [4]byte, port int) (int, error) {
	t.Helper()
	lfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(lfd, &unix.SockaddrInet4{Addr: ip, Port: port}); err != nil {
		unix.Close(lfd)
		return 0, err
	}
	t.Cleanup(func() { unix.Close(lfd) })
	if err := unix.Listen(lfd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(lfd)
	if err != nil {
		t.Fatal(err)
	}
	port = sa.(*unix.SockaddrInet4).Port
	for range 3 {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(fd) })
		_ = unix.Connect(fd, &unix.SockaddrInet4{Port: port, Addr: ip})
	}
	time.Sleep(10 * time.Millisecond)
	return port, nil
}

// socketFDs returns this process's socket descriptors and their inodes.
func socketFDs(t *testing.T) map[int]string {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]string{}
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		link, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err == nil && strings.HasPrefix(link, "socket:") {
			out[n] = link
		}
	}
	return out
}

// A socket the loop has closed may live on in epoll while another
// reference to it is open (a child between fork and exec holds every
// descriptor): its events, tagged with the slot and the attempt's
// generation, must not be taken for those of the attempt's next address.
// Here the test's dup stands for the child's copy: the first address's
// connection request is dropped until its share of the time ends, the
// second's too; the first socket is then shut down, which epoll reports
// on its stale registration. The attempt must still time out.
func TestLoopStaleRegistration(t *testing.T) {
	var port int
	for range 20 {
		p, err := fullListener(t, [4]byte{127, 0, 0, 1}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fullListener(t, [4]byte{127, 0, 0, 2}, p); err == nil {
			port = p
			break
		}
	}
	if port == 0 {
		t.Skip("no port free on both 127.0.0.1 and 127.0.0.2")
	}
	two := &fixedLookup{ips: []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")}}
	p := &tcpProber{target: newTargetWith("stale.invalid", port, two.lookup)}
	if _, err := theLoop(); err != nil {
		t.Fatal(err)
	}
	before := socketFDs(t)
	start := time.Now()
	w := make(waiter, 1)
	// 4 s for two addresses: 2 s each (partialDeadline).
	p.Start(start.Add(4*time.Second), w)
	var dups []int
	deadline := time.Now().Add(time.Second)
	for len(dups) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the attempt's socket did not appear")
		}
		time.Sleep(10 * time.Millisecond)
		for fd, ino := range socketFDs(t) {
			if before[fd] != ino {
				d, err := unix.Dup(fd)
				if err != nil {
					t.Fatal(err)
				}
				dups = append(dups, d)
			}
		}
	}
	t.Cleanup(func() {
		for _, d := range dups {
			unix.Close(d)
		}
	})
	// The first address's share ends at 2 s: the loop closes its socket
	// and connects to the second address.
	time.Sleep(time.Until(start.Add(2500 * time.Millisecond)))
	for _, d := range dups {
		_ = unix.Shutdown(d, unix.SHUT_RDWR)
	}
	r := collect(t, w, 1)[0]
	if r.OK || !errors.Is(r.Err, context.DeadlineExceeded) {
		t.Errorf("got OK=%v Detail=%q Err=%v, want a timeout: no address answered", r.OK, r.Detail, r.Err)
	}
}

// The events of a stale registration (see TestLoopStaleRegistration) may
// name a slot that has been released and is being filled again by Start
// on another goroutine: the loop must read nothing Start writes (go test
// -race).
func TestLoopStaleEventOfReusedSlot(t *testing.T) {
	port, err := fullListener(t, [4]byte{127, 0, 0, 1}, 0)
	if err != nil {
		t.Fatal(err)
	}
	p := TCP("127.0.0.1", port).(Starter)
	before := socketFDs(t)
	w := make(waiter, 1)
	p.Start(time.Now().Add(10*time.Second), w)
	var dups []int
	deadline := time.Now().Add(5 * time.Second)
	for len(dups) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the attempt's socket did not appear")
		}
		time.Sleep(10 * time.Millisecond)
		for fd, ino := range socketFDs(t) {
			if before[fd] != ino {
				d, err := unix.Dup(fd)
				if err != nil {
					t.Fatal(err)
				}
				dups = append(dups, d)
			}
		}
	}
	defer func() {
		for _, d := range dups {
			unix.Close(d)
		}
	}()
	for _, d := range dups {
		_ = unix.Shutdown(d, unix.SHUT_RDWR) // reported (HUP) for as long as the dup is open
	}
	_ = collect(t, w, 1)
	served := silentListener(t)
	q := TCP("127.0.0.1", served)
	for range 200 {
		if r := q.Run(withTimeout(t, 10*time.Second)); !r.OK {
			t.Fatalf("got OK=%v Err=%v", r.OK, r.Err)
		}
	}
}
