package probe

import (
	"context"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"weak"

	"golang.org/x/sys/unix"
)

// The TCP and HTTP probes talk through raw non-blocking sockets that one
// event loop drives (netloop.go); HTTPS goes through net.Dialer and
// crypto/tls. Every attempt opens a new connection and closes it with
// SO_LINGER {on, 0}, which resets the connection instead of leaving it in
// TIME_WAIT, so that frequent probes do not pile up sockets. Addresses are
// tried one after another (no Happy Eyeballs race), and TCP keep-alive stays
// off (the kernel's default): a connection lives for one exchange.
//
// What fails on pcheck's side is told apart from what the peer did (see
// failure): a socket(2), a setsockopt or an epoll_ctl that fails makes the
// attempt Unknown; whatever connect(2), read and write return is the
// service's answer.

// resolveTTL is how long a host name's addresses are used before they are
// looked up again, in the background: a changed address is seen within
// this time. failedRetry is how soon a lookup that failed is tried again.
const (
	resolveTTL  = 30 * time.Second
	failedRetry = 5 * time.Second
)

// lookupTimeout bounds one lookup of a host name.
const lookupTimeout = 5 * time.Second

// target is the host and port a probe connects to, with the addresses the
// host resolved to. A host name is looked up when the target is made and
// then by the names refresher (refreshNames), never by an attempt.
type target struct {
	host    string
	port    int
	addr    string                                                       // host:port, IPv6 literals bracketed, for messages
	literal bool                                                         // the host is an IP address: never looked up
	lookup  func(ctx context.Context, host string) ([]netip.Addr, error) // nil: names.resolve

	res atomic.Pointer[resolution]

	mu   sync.Mutex // serialises lookups
	next time.Time  // when the refresher looks the name up again
}

// resolution is what a target's host resolved to: the addresses, in the
// resolver's order, or the error of the last lookup when none is known.
type resolution struct {
	dests []dest
	err   error
}

// dest is one address of a target, with what an attempt needs of it built
// once: its socket address and its success detail.
type dest struct {
	ap     netip.AddrPort
	family int
	sa     unix.Sockaddr // used by the loop goroutine only
	saErr  error         // the address cannot be connected to (unknown zone)
	detail string        // "connected to ADDR"
}

func newTarget(host string, port int) *target {
	return newTargetWith(host, port, nil)
}

// newTargetWith makes a target whose host name lookup is lookup (tests);
// nil is the system's resolver, through the names registry, which looks a
// name up once for all the targets that share it.
func newTargetWith(host string, port int, lookup func(context.Context, string) ([]netip.Addr, error)) *target {
	t := &target{host: host, port: port, addr: net.JoinHostPort(host, strconv.Itoa(port)), lookup: lookup}
	if port < 1 || port > 65535 {
		t.literal = true
		t.res.Store(&resolution{err: t.opError(nil, &net.AddrError{Err: "invalid port", Addr: t.addr})})
		return t
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		t.literal = true
		t.set([]netip.Addr{ip})
		return t
	}
	t.refresh(time.Now())
	names.add(t)
	return t
}

// set makes ips the target's addresses.
func (t *target) set(ips []netip.Addr) {
	r := &resolution{dests: make([]dest, len(ips))}
	for i, ip := range ips {
		// LookupNetIP gives IPv4 addresses in their IPv6-mapped form.
		ap := netip.AddrPortFrom(ip.Unmap(), uint16(t.port))
		d := dest{ap: ap, detail: "connected to " + ap.String()}
		d.family, d.sa, d.saErr = sockaddr(ap)
		r.dests[i] = d
	}
	if len(ips) == 0 {
		r.err = t.opError(nil, &net.AddrError{Err: "no suitable address found", Addr: t.host})
	}
	t.res.Store(r)
}

// refresh looks the host name up. A failed lookup keeps the addresses
// known before, if any: the attempts go on with them. While no address is
// known they are Unknown, with the lookup's error: a name that cannot be
// looked up (a resolver down, a typing error) says nothing of the service,
// which was not tried, and must not get a healthy server killed; the
// monitor reports it ("Monitor unknown").
func (t *target) refresh(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
	var ips []netip.Addr
	var err error
	if t.lookup == nil {
		ips, err = names.resolve(ctx, t.host, now)
	} else {
		ips, err = t.lookup(ctx, t.host)
	}
	cancel()
	if err != nil {
		if old := t.res.Load(); old == nil || len(old.dests) == 0 {
			t.res.Store(&resolution{err: broken(t.opError(nil, err))})
		}
		t.next = now.Add(failedRetry)
		return
	}
	t.set(ips)
	t.next = now.Add(resolveTTL)
}

// due reports whether the host name should be looked up again at now.
func (t *target) due(now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return !now.Before(t.next)
}

// lookupNetIP is the system's resolver; tests replace it (setLookup).
var lookupNetIP atomic.Pointer[func(ctx context.Context, network, host string) ([]netip.Addr, error)]

func init() {
	f := net.DefaultResolver.LookupNetIP
	lookupNetIP.Store(&f)
}

// names is the registry of the targets with a host name, which one
// goroutine refreshes in the background. It holds them weakly: the target
// of a probe that is no longer used (a reload) is forgotten.
var names nameRegistry

// refreshTick is how often the refresher looks for names due.
const refreshTick = time.Second

type nameRegistry struct {
	mu      sync.Mutex
	targets []weak.Pointer[target]
	started bool
	live    []*target // refreshDue's, reused
	// looked is the last lookup of each name, reused until its time
	// is over: a thousand monitors of "localhost" cost one lookup each
	// resolveTTL, and one when the pfile is compiled.
	looked map[string]lookup
}

// lookup is the result of looking a name up, and until when it holds.
type lookup struct {
	ips   []netip.Addr
	err   error
	until time.Time
}

// Prefetch looks up the host names of hosts (IP literals are skipped),
// all at once, each within lookupTimeout, for the probes about to be built
// on them: a probe built afterwards takes the lookup made here instead of
// making its own. A caller that builds probes under a lock (a reload)
// calls it first, outside the lock, so that a slow resolver delays the
// reload by one lookup's time at most and never what the lock guards.
func Prefetch(hosts []string) {
	var wg sync.WaitGroup
	seen := make(map[string]bool, len(hosts))
	now := time.Now()
	for _, h := range hosts {
		if seen[h] {
			continue
		}
		seen[h] = true
		if _, err := netip.ParseAddr(h); err == nil {
			continue
		}
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
			defer cancel()
			_, _ = names.resolve(ctx, h, now)
		})
	}
	wg.Wait()
}

// resolve looks host up, or returns the lookup of another target of the
// same name that still holds at now.
func (n *nameRegistry) resolve(ctx context.Context, host string, now time.Time) ([]netip.Addr, error) {
	n.mu.Lock()
	l, ok := n.looked[host]
	n.mu.Unlock()
	if ok && now.Before(l.until) {
		return l.ips, l.err
	}
	ips, err := (*lookupNetIP.Load())(ctx, "ip", host)
	l = lookup{ips: ips, err: err, until: now.Add(resolveTTL)}
	if err != nil {
		l.until = now.Add(failedRetry)
	}
	n.mu.Lock()
	if n.looked == nil {
		n.looked = make(map[string]lookup)
	}
	n.looked[host] = l
	n.mu.Unlock()
	return ips, err
}

// add registers t, and starts the refresher with the first name.
func (n *nameRegistry) add(t *target) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.targets = append(n.targets, weak.Make(t))
	if !n.started {
		n.started = true
		go n.run()
	}
}

// run refreshes the names due, every refreshTick, for ever.
func (n *nameRegistry) run() {
	tick := time.NewTicker(refreshTick)
	for now := range tick.C {
		n.refreshDue(now)
	}
}

// refreshDue looks up again the names due at now, one after another, and
// forgets the targets no longer used.
func (n *nameRegistry) refreshDue(now time.Time) {
	n.mu.Lock()
	live, kept := n.live[:0], n.targets[:0]
	for _, w := range n.targets {
		if t := w.Value(); t != nil {
			live, kept = append(live, t), append(kept, w)
		}
	}
	clear(n.targets[len(kept):])
	n.targets = kept
	n.mu.Unlock()
	for _, t := range live {
		if t.due(now) {
			t.refresh(now)
		}
	}
	clear(live)
	n.mu.Lock()
	n.live = live[:0]
	n.mu.Unlock()
}

// opError wraps err as the net package does, so that messages read
// "connect: connection refused" and errors.Is finds the errno.
func (t *target) opError(to *netip.AddrPort, err error) error {
	e := &net.OpError{Op: "dial", Net: "tcp", Err: err}
	if to != nil {
		e.Addr = net.TCPAddrFromAddrPort(*to)
	}
	return e
}

// ioError wraps an error of reading or writing to a as the net package
// does.
func ioError(op string, a netip.AddrPort, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Addr: net.TCPAddrFromAddrPort(a), Err: err}
}

// partialDeadline returns the deadline of one of addrsLeft attempts that
// share the time up to deadline, at least 2 s each when there is that much
// (net.Dialer's rule), so that an address that drops the connection
// request does not use all the time.
func partialDeadline(now, deadline time.Time, addrsLeft int) (time.Time, error) {
	if deadline.IsZero() {
		return deadline, nil
	}
	left := deadline.Sub(now)
	if left <= 0 {
		return time.Time{}, os.ErrDeadlineExceeded
	}
	const saneMinimum = 2 * time.Second
	share := left / time.Duration(addrsLeft)
	if share < saneMinimum {
		share = min(left, saneMinimum)
	}
	return now.Add(share), nil
}

// sockaddr returns the socket family and address of a, which is not an
// IPv4-mapped IPv6 address.
func sockaddr(a netip.AddrPort) (int, unix.Sockaddr, error) {
	ip := a.Addr()
	if ip.Is4() {
		return unix.AF_INET, &unix.SockaddrInet4{Port: int(a.Port()), Addr: ip.As4()}, nil
	}
	sa := &unix.SockaddrInet6{Port: int(a.Port()), Addr: ip.As16()}
	if zone := ip.Zone(); zone != "" {
		if id, err := strconv.Atoi(zone); err == nil {
			sa.ZoneId = uint32(id)
		} else {
			ifi, err := net.InterfaceByName(zone)
			if err != nil {
				return 0, nil, err
			}
			sa.ZoneId = uint32(ifi.Index)
		}
	}
	return unix.AF_INET6, sa, nil
}

// longAgo is a deadline in the past: it makes pending I/O return at once.
var longAgo = time.Unix(1, 0)

// dialConn connects to the target's addresses one after another, each
// but the last with a share of the time left (partialDeadline), for the
// HTTPS probes, whose crypto/tls needs a net.Conn. The addresses are the
// target's, looked up in the background: the attempt makes no lookup.
// The error is chosen as on the event loop: the first the service gave,
// else the first of pcheck's side, else the lookup's.
func (t *target) dialConn(ctx context.Context) (net.Conn, error) {
	r := t.res.Load()
	deadline, _ := ctx.Deadline()
	var first, ours error
	note := func(err error) {
		switch {
		case !pcheckSide(err) && first == nil:
			first = err
		case pcheckSide(err) && ours == nil:
			ours = err
		}
	}
	for i, d := range r.dests {
		partial, err := partialDeadline(time.Now(), deadline, len(r.dests)-i)
		if err != nil {
			note(t.opError(&d.ap, err))
			break
		}
		dctx, cancel := ctx, context.CancelFunc(func() {})
		if !partial.IsZero() {
			dctx, cancel = context.WithDeadline(ctx, partial)
		}
		c, err := dialer.DialContext(dctx, "tcp", d.ap.String())
		cancel()
		if err == nil {
			return c, nil
		}
		note(err)
		if ctx.Err() != nil {
			break
		}
	}
	for _, err := range []error{first, ours, r.err} {
		if err != nil {
			return nil, err
		}
	}
	return nil, t.opError(nil, &net.AddrError{Err: "no suitable address found", Addr: t.host})
}

// dialer opens the connections of HTTPS probes (dialConn), with SO_LINGER
// 0, no keep-alive and no address race, as on the event loop.
var dialer = net.Dialer{
	FallbackDelay: -1,
	KeepAlive:     -1,
	Control:       lingerZero,
}

// linger is SO_LINGER {on, 0}.
var linger = unix.Linger{Onoff: 1, Linger: 0}

// lingerZero sets SO_LINGER {on, 0} on a socket before it connects.
func lingerZero(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptLinger(int(fd), unix.SOL_SOCKET, unix.SO_LINGER, &linger)
	})
	if err != nil {
		return err
	}
	if serr != nil {
		return broken(os.NewSyscallError("setsockopt SO_LINGER", serr))
	}
	return nil
}

// bindDeadline makes ctx bound every read and write on conn: its deadline
// becomes the connection's, and cancelling ctx unblocks pending I/O. The
// returned function releases the binding; call it before returning.
func bindDeadline(ctx context.Context, conn net.Conn) (release func() bool) {
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	}
	return context.AfterFunc(ctx, func() { _ = conn.SetDeadline(longAgo) })
}
