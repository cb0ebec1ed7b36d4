package probe

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A host's addresses are tried in turn: the first refuses, the second
// answers. When all fail, the error is the first address's.
func TestDialTriesEachAddress(t *testing.T) {
	port := rawServer(t, "127.0.0.1:0", func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
	// Nothing listens on [::1]:port: the listener is IPv4 only.
	tg := newTarget("twoaddrs.invalid", port)
	tg.resolved = []netip.AddrPort{
		netip.AddrPortFrom(netip.IPv6Loopback(), uint16(port)),
		netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)),
	}
	tg.expires = time.Now().Add(time.Hour)
	p := &tcpProber{target: tg}
	r := p.Run(withTimeout(t, 30*time.Second))
	if want := "connected to 127.0.0.1:" + strconv.Itoa(port); !r.OK || r.Detail != want {
		t.Errorf("got OK=%v Detail=%q Err=%v, want %q", r.OK, r.Detail, r.Err, want)
	}

	refused := closedPort(t)
	tg = newTarget("tworefused.invalid", refused)
	tg.resolved = []netip.AddrPort{
		netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(refused)),
		netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), uint16(refused)),
	}
	tg.expires = time.Now().Add(time.Hour)
	r = (&tcpProber{target: tg}).Run(withTimeout(t, 30*time.Second))
	var oe *net.OpError
	if r.OK || !errors.Is(r.Err, syscall.ECONNREFUSED) || !errors.As(r.Err, &oe) || oe.Addr.String() != "127.0.0.1:"+strconv.Itoa(refused) {
		t.Errorf("got OK=%v Err=%v, want ECONNREFUSED from the first address", r.OK, r.Err)
	}
}

// A host name is looked up once per resolveTTL, not at every attempt.
func TestResolveCache(t *testing.T) {
	tg := newTarget("localhost", 80)
	ctx := withTimeout(t, 30*time.Second)
	first, err := tg.addrs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) == 0 || !first[0].Addr().IsLoopback() || first[0].Port() != 80 {
		t.Fatalf("localhost resolved to %v, want loopback addresses, port 80", first)
	}
	for _, a := range first {
		if a.Addr().Is4In6() {
			t.Errorf("address %v is IPv4-mapped, want plain IPv4", a)
		}
	}
	again, err := tg.addrs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if &again[0] != &first[0] {
		t.Error("a second attempt resolved the name again, want the cached addresses")
	}
	tg.expires = time.Now().Add(-time.Second)
	later, err := tg.addrs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if &later[0] == &first[0] {
		t.Error("expired addresses were used, want a new lookup")
	}

	if _, err := newTarget("127.0.0.1", 70000).addrs(ctx); err == nil {
		t.Error("port 70000 accepted")
	}
}

// A connection request the server drops (its accept queue is full) fails at
// the deadline, and leaves no descriptor behind.
func TestConnectTimeout(t *testing.T) {
	lfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(lfd) })
	if err := unix.Bind(lfd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(lfd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(lfd)
	if err != nil {
		t.Fatal(err)
	}
	port := sa.(*unix.SockaddrInet4).Port
	// Fill the accept queue (backlog 0 holds one connection); later
	// requests are dropped.
	for range 3 {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(fd) })
		_ = unix.Connect(fd, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}})
	}
	fds := openFDs(t)
	for name, p := range map[string]Prober{"tcp": TCP("127.0.0.1", port), "http": HTTP("127.0.0.1", port)} {
		r := p.Run(withTimeout(t, 300*time.Millisecond))
		if r.OK || r.Detail != "timeout" || !errors.Is(r.Err, context.DeadlineExceeded) {
			t.Errorf("%s: got OK=%v Detail=%q Err=%v, want a timeout", name, r.OK, r.Detail, r.Err)
		}
	}
	if n := openFDs(t); n > fds {
		t.Errorf("%d descriptors after the timeouts, %d before", n, fds)
	}
}

// A server slower than fastWait is waited for in Go's poller, and its
// answer read there.
func TestHTTPSlowServer(t *testing.T) {
	const delay = 10 * fastWait // the scenario, not a synchronisation
	port := rawServer(t, "127.0.0.1:0", func(c net.Conn) {
		if _, err := readRequest(c); err != nil {
			return
		}
		time.Sleep(delay)
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\n\r\n")
		_, _ = io.Copy(io.Discard, c)
	})
	r := HTTP("127.0.0.1", port).Run(withTimeout(t, 30*time.Second))
	if !r.OK || r.Detail != "HTTP/1.1 200 OK" {
		t.Fatalf("got OK=%v Detail=%q Err=%v, want HTTP/1.1 200 OK", r.OK, r.Detail, r.Err)
	}
	if r.Latency < delay {
		t.Errorf("Latency = %v, shorter than the server's %v delay", r.Latency, delay)
	}
}

func TestPartialDeadline(t *testing.T) {
	now := time.Unix(1000, 0)
	for _, tc := range []struct {
		left time.Duration
		n    int
		want time.Duration
	}{
		{10 * time.Second, 1, 10 * time.Second},
		{10 * time.Second, 2, 5 * time.Second},
		{10 * time.Second, 10, 2 * time.Second}, // at least 2 s each
		{time.Second, 3, time.Second},           // all that is left
	} {
		got, err := partialDeadline(now, now.Add(tc.left), tc.n)
		if err != nil || got.Sub(now) != tc.want {
			t.Errorf("partialDeadline(%v left, %d addresses) = %v, %v; want %v", tc.left, tc.n, got.Sub(now), err, tc.want)
		}
	}
	if d, err := partialDeadline(now, time.Time{}, 2); err != nil || !d.IsZero() {
		t.Errorf("no deadline: got %v, %v; want none", d, err)
	}
	if _, err := partialDeadline(now, now, 1); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("no time left: err = %v, want os.ErrDeadlineExceeded", err)
	}
}

// An IPv6 zone becomes the scope id, by interface name or number.
func TestSockaddrZone(t *testing.T) {
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Skip("no lo interface:", err)
	}
	for _, addr := range []string{"[fe80::1%lo]:80", "[fe80::1%" + strconv.Itoa(lo.Index) + "]:80"} {
		family, sa, err := sockaddr(netip.MustParseAddrPort(addr))
		if err != nil {
			t.Fatalf("sockaddr(%s): %v", addr, err)
		}
		s6, ok := sa.(*unix.SockaddrInet6)
		if family != unix.AF_INET6 || !ok || s6.ZoneId != uint32(lo.Index) || s6.Port != 80 {
			t.Errorf("sockaddr(%s) = %d %+v, want AF_INET6, zone %d, port 80", addr, family, sa, lo.Index)
		}
	}
	if _, _, err := sockaddr(netip.MustParseAddrPort("[fe80::1%nosuchif0]:80")); err == nil {
		t.Error("unknown zone accepted")
	}
}

// TestReplyBeforePoller: a reply that arrives before the socket is handed
// to Go's poller (between poll's fastWait and the hand-over) is seen at
// once. Before, the wait cleared the readiness the poller had recorded
// and slept until the deadline: a false "timeout" of a healthy server,
// about once in 60,000 probes (TestNoLeaks).
func TestReplyBeforePoller(t *testing.T) {
	hold := make(chan struct{})
	port := rawServer(t, "127.0.0.1:0", func(c net.Conn) {
		c.Write([]byte("HTTP/1.0 200 OK\r\n\r\n"))
		<-hold // keep-alive: no FIN, no second edge
	})
	t.Cleanup(func() { close(hold) }) // before rawServer's, which waits for the handler
	ctx := withTimeout(t, 30*time.Second)
	c, err := newTarget("127.0.0.1", port).dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The reply is there before the poller has the socket.
	fds := []unix.PollFd{{Fd: int32(c.fd), Events: unix.POLLIN}}
	if n, err := unix.Poll(fds, 10_000); n != 1 || err != nil {
		t.Fatalf("no reply within 10 s: %d, %v", n, err)
	}
	c.setDeadline(time.Now().Add(5 * time.Second))
	if err := c.toPoller(); err != nil {
		t.Fatal(err)
	}
	// Let the runtime's netpoller run and record the socket ready, as
	// it does on a busy machine before the wait begins. (Not a wait for
	// an event of the test: nothing else can tell when it has run.)
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	if _, err := c.wait(unix.POLLIN); err != nil {
		t.Fatalf("wait for a reply already there: %v after %v", err, time.Since(start))
	}
	buf := make([]byte, 64)
	if n, err := c.Read(buf); err != nil || !strings.HasPrefix(string(buf[:n]), "HTTP/1.0 200") {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
}
