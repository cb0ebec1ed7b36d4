package probe

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fixedLookup is a host name lookup that answers ips, and counts its calls.
type fixedLookup struct {
	mu    sync.Mutex
	ips   []netip.Addr
	err   error
	calls int
}

func (f *fixedLookup) lookup(context.Context, string) ([]netip.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	return f.ips, f.err
}

func (f *fixedLookup) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// A host's addresses are tried in turn: the first refuses, the second
// answers. When all fail, the error is the first address's.
func TestDialTriesEachAddress(t *testing.T) {
	port := rawServer(t, "127.0.0.1:0", func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
	// Nothing listens on [::1]:port: the listener is IPv4 only.
	two := &fixedLookup{ips: []netip.Addr{netip.IPv6Loopback(), netip.MustParseAddr("127.0.0.1")}}
	p := &tcpProber{target: newTargetWith("twoaddrs.invalid", port, two.lookup)}
	r := p.Run(withTimeout(t, 30*time.Second))
	if want := "connected to 127.0.0.1:" + strconv.Itoa(port); !r.OK || r.Detail != want {
		t.Errorf("got OK=%v Detail=%q Err=%v, want %q", r.OK, r.Detail, r.Err, want)
	}

	refused := closedPort(t)
	both := &fixedLookup{ips: []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")}}
	r = (&tcpProber{target: newTargetWith("tworefused.invalid", refused, both.lookup)}).Run(withTimeout(t, 30*time.Second))
	var oe *net.OpError
	if r.OK || !errors.Is(r.Err, syscall.ECONNREFUSED) || !errors.As(r.Err, &oe) || oe.Addr.String() != "127.0.0.1:"+strconv.Itoa(refused) {
		t.Errorf("got OK=%v Err=%v, want ECONNREFUSED from the first address", r.OK, r.Err)
	}
}

// A host name is looked up when the probe is built, then in the background
// once per resolveTTL, never by an attempt; while no address is known the
// attempts are Unknown with the lookup's error (the service was not
// tried). IP literals are never looked up.
func TestNamesResolvedInBackground(t *testing.T) {
	port := rawServer(t, "127.0.0.1:0", func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
	f := &fixedLookup{err: &net.DNSError{Err: "no such host", Name: "moving.invalid", IsNotFound: true}}
	tg := newTargetWith("moving.invalid", port, f.lookup)
	if n := f.count(); n != 1 {
		t.Fatalf("%d lookups when the probe was built, want 1", n)
	}
	p := &tcpProber{target: tg}
	r := p.Run(withTimeout(t, 30*time.Second))
	var dns *net.DNSError
	if r.OK || !r.Unknown || !errors.As(r.Err, &dns) {
		t.Fatalf("no address known: got OK=%v Unknown=%v Err=%v, want Unknown with the lookup's error", r.OK, r.Unknown, r.Err)
	}
	f.mu.Lock()
	f.ips, f.err = []netip.Addr{netip.MustParseAddr("::ffff:127.0.0.1")}, nil
	f.mu.Unlock()
	// The refresher goroutine retries a failed name after failedRetry.
	deadline := time.Now().Add(30 * time.Second)
	for !p.Run(withTimeout(t, 30*time.Second)).OK {
		if time.Now().After(deadline) {
			t.Fatalf("the name was not looked up again in the background (%d lookups)", f.count())
		}
		time.Sleep(50 * time.Millisecond)
	}
	before := f.count()
	for range 20 {
		if r := p.Run(withTimeout(t, 30*time.Second)); !r.OK || r.Detail != "connected to 127.0.0.1:"+strconv.Itoa(port) {
			t.Fatalf("got OK=%v Detail=%q Err=%v", r.OK, r.Detail, r.Err)
		}
	}
	if after := f.count(); after > before+1 { // the refresher may have run once meanwhile
		t.Errorf("%d lookups during 20 attempts, want none by the attempts", after-before)
	}
	// A failed lookup keeps the addresses known.
	f.mu.Lock()
	f.err = errors.New("resolver down")
	f.mu.Unlock()
	tg.refresh(time.Now())
	if r := p.Run(withTimeout(t, 30*time.Second)); !r.OK {
		t.Errorf("after a failed refresh: got OK=%v Err=%v, want the known address used", r.OK, r.Err)
	}
	lit := &fixedLookup{}
	if newTargetWith("127.0.0.1", port, lit.lookup); lit.count() != 0 {
		t.Error("an IP literal was looked up")
	}
	if r := TCP("127.0.0.1", 70000).Run(withTimeout(t, 30*time.Second)); r.OK || r.Err == nil {
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
	// Built first: the first probe built starts the event loop, whose
	// descriptors are no leak.
	probes := map[string]Prober{"tcp": TCP("127.0.0.1", port), "http": HTTP("127.0.0.1", port)}
	fds := openFDs(t)
	for name, p := range probes {
		r := p.Run(withTimeout(t, 300*time.Millisecond))
		if r.OK || r.Detail != "timeout" || !errors.Is(r.Err, context.DeadlineExceeded) {
			t.Errorf("%s: got OK=%v Detail=%q Err=%v, want a timeout", name, r.OK, r.Detail, r.Err)
		}
	}
	if n := openFDs(t); n > fds {
		t.Errorf("%d descriptors after the timeouts, %d before", n, fds)
	}
}

// A server slower than the first wake-up is waited for, and its answer
// read.
func TestHTTPSlowServer(t *testing.T) {
	const delay = 10 * time.Millisecond // the scenario, not a synchronisation
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

// The targets of one host name share its lookup: a thousand monitors of
// "localhost" cost one lookup per resolveTTL, and one at compile time.
func TestNamesShareLookup(t *testing.T) {
	port := rawServer(t, "127.0.0.1:0", func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
	a, b := newTarget("localhost", port), newTarget("localhost", port+1)
	names.mu.Lock()
	l, ok := names.looked["localhost"]
	names.mu.Unlock()
	if !ok || l.err != nil || len(l.ips) == 0 {
		t.Fatalf("no lookup of localhost recorded: %+v", l)
	}
	ra, rb := a.res.Load(), b.res.Load()
	if len(ra.dests) != len(l.ips) || len(rb.dests) != len(l.ips) {
		t.Fatalf("addresses %v and %v, want those of the lookup %v", ra.dests, rb.dests, l.ips)
	}
	for i, ip := range l.ips {
		if ra.dests[i].ap.Addr() != ip.Unmap() || rb.dests[i].ap.Port() != uint16(port+1) {
			t.Errorf("address %d: %v, %v; want %v", i, ra.dests[i].ap, rb.dests[i].ap, ip)
		}
	}
	// Within resolveTTL, a refresh reuses the lookup.
	b.refresh(time.Now())
	names.mu.Lock()
	again := names.looked["localhost"]
	names.mu.Unlock()
	if !again.until.Equal(l.until) {
		t.Error("a refresh within resolveTTL looked the name up again")
	}
	if r := (&tcpProber{target: a}).Run(withTimeout(t, 30*time.Second)); !r.OK && !strings.Contains(r.Detail, "refused") {
		t.Errorf("probe of localhost: %+v", r)
	}
}

// Prefetch looks names up at once, for the probes built afterwards: they
// make no lookup of their own.
func TestPrefetch(t *testing.T) {
	Prefetch([]string{"localhost", "localhost", "127.0.0.1"})
	names.mu.Lock()
	l, ok := names.looked["localhost"]
	_, literal := names.looked["127.0.0.1"]
	names.mu.Unlock()
	if !ok || l.err != nil || len(l.ips) == 0 {
		t.Fatalf("localhost not prefetched: %+v (found %v)", l, ok)
	}
	if literal {
		t.Fatal("an IP literal was looked up")
	}
}

// Prefetch makes its lookups at the same time: a slow resolver delays it
// by one lookup's time, not one per name.
func TestPrefetchAtOnce(t *testing.T) {
	const n = 3
	inFlight := make(chan string, n)
	release := make(chan struct{})
	old := lookupNetIP.Load()
	slow := func(ctx context.Context, _, host string) ([]netip.Addr, error) {
		inFlight <- host
		select {
		case <-release:
		case <-ctx.Done():
		}
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	}
	lookupNetIP.Store(&slow)
	defer lookupNetIP.Store(old)
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Names of this run only: an earlier run's lookups are cached.
		run := strconv.FormatInt(time.Now().UnixNano(), 36)
		Prefetch([]string{"a" + run + ".invalid", "b" + run + ".invalid", "c" + run + ".invalid"})
	}()
	for range n { // every lookup under way before any has ended
		select {
		case <-inFlight:
		case <-time.After(30 * time.Second):
			t.Fatal("the lookups are not made at the same time")
		}
	}
	close(release)
	<-done
}

// An HTTPS attempt connects to the addresses its target looked up: it
// makes no lookup of its own (the net package would, given the name).
func TestHTTPSNoLookupPerAttempt(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	t.Cleanup(srv.Close)
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	f := &fixedLookup{ips: []netip.Addr{netip.MustParseAddr("127.0.0.1")}}
	old := lookupNetIP.Load()
	none := func(context.Context, string, string) ([]netip.Addr, error) {
		return nil, &net.DNSError{Err: "no such host", Name: "tls.invalid", IsNotFound: true}
	}
	lookupNetIP.Store(&none) // the probe's own target, replaced below
	p := HTTPS("tls.invalid", port, "/", TLSOptions{}).(*httpsProber)
	lookupNetIP.Store(old)
	p.p.target = newTargetWith("tls.invalid", port, f.lookup)
	for range 2 {
		if r := p.Run(withTimeout(t, 30*time.Second)); !r.OK {
			t.Fatalf("HTTPS attempt: %+v", r)
		}
	}
	if n := f.count(); n != 1 {
		t.Fatalf("%d lookups, want the one made when the target was built", n)
	}
}
