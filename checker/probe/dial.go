package probe

import (
	"context"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The TCP and HTTP probes talk through a raw non-blocking socket driven
// with plain system calls rather than a net.Conn: Go's net package
// registers every socket with its poller (epoll_ctl add, then delete), asks
// the kernel for both addresses, sets TCP_NODELAY and arms timers for the
// deadlines, and for a connection that lives a few microseconds on loopback
// this doubles the system calls of a probe. A probe costs here socket,
// setsockopt(SO_LINGER), connect, write, read and close, plus a poll(2)
// where it must wait for the peer.
//
// SO_LINGER {on, 0} makes close reset the connection instead of leaving it
// in TIME_WAIT, so that frequent probes do not pile up sockets. Addresses
// are tried one after another (no Happy Eyeballs race, whose losing
// attempt could outlive Run), and TCP keep-alive stays off (the kernel's
// default): a connection lives for one exchange.
//
// What fails on pcheck's side is told apart from what the peer did (see
// failure): a socket(2), a setsockopt or a poll(2) that fails makes the
// attempt Unknown; whatever connect(2), read and write return is the
// service's answer.

// fastWait bounds the wait for the peer in poll(2), which blocks the
// probe's goroutine and its thread; a healthy local service mostly answers
// within it. A peer slower than that may be hung, and one blocked thread for
// every hung service would add up: the rest of the wait goes to Go's
// poller, which holds no thread. (Measured with bench/stall_cost, waiting
// in the poller from the start costs about 5% more CPU; a longer fastWait
// saves no more.)
const fastWait = time.Millisecond

// resolveTTL is how long a host name's addresses are reused: a name
// ("localhost" by default) is looked up at most once per period per probe,
// not at every attempt. A changed address is seen within this time.
const resolveTTL = 30 * time.Second

// target is the host and port a probe connects to, with the addresses the
// host resolved to.
type target struct {
	host    string
	port    int
	addr    string // host:port, IPv6 literals bracketed, for messages
	literal bool   // the host is an IP address: resolved never expires

	mu       sync.Mutex
	resolved []netip.AddrPort
	expires  time.Time
}

func newTarget(host string, port int) *target {
	t := &target{host: host, port: port, addr: net.JoinHostPort(host, strconv.Itoa(port))}
	if ip, err := netip.ParseAddr(host); err == nil {
		t.literal = true
		t.resolved = []netip.AddrPort{netip.AddrPortFrom(ip, uint16(port))}
	}
	return t
}

// addrs returns the addresses to try, in the resolver's order.
func (t *target) addrs(ctx context.Context) ([]netip.AddrPort, error) {
	if t.port < 1 || t.port > 65535 {
		return nil, t.opError(nil, &net.AddrError{Err: "invalid port", Addr: t.addr})
	}
	if t.literal {
		return t.resolved, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if time.Now().Before(t.expires) {
		return t.resolved, nil
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", t.host)
	if err != nil {
		return nil, t.opError(nil, err)
	}
	t.resolved = make([]netip.AddrPort, len(ips))
	for i, ip := range ips {
		// LookupNetIP gives IPv4 addresses in their IPv6-mapped form.
		t.resolved[i] = netip.AddrPortFrom(ip.Unmap(), uint16(t.port))
	}
	t.expires = time.Now().Add(resolveTTL)
	return t.resolved, nil
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

// dial connects to the target within ctx, trying each address in turn.
// Each address but the last gets a share of the time left, as net.Dialer
// gives it, so that one that drops the connection request does not use it
// all. The error is the first address's that the service gave, or the
// first of pcheck's side when no address got that far: "localhost" on a
// host without IPv6 (socket(2) fails for ::1) whose server refuses on
// 127.0.0.1 is a failure, not an Unknown attempt.
func (t *target) dial(ctx context.Context) (*conn, error) {
	addrs, err := t.addrs(ctx)
	if err != nil {
		return nil, err
	}
	deadline, _ := ctx.Deadline()
	var first, ours error // the first of the service's side, of pcheck's
	note := func(err error) {
		switch {
		case !pcheckSide(err) && first == nil:
			first = err
		case pcheckSide(err) && ours == nil:
			ours = err
		}
	}
	for i, a := range addrs {
		partial, err := partialDeadline(time.Now(), deadline, len(addrs)-i)
		if err != nil {
			note(t.opError(&a, err))
			break
		}
		c, err := connect(ctx, a, partial)
		if err == nil {
			c.setDeadline(deadline) // the whole attempt's from now on
			return c, nil
		}
		note(t.opError(&a, err))
		if ctx.Err() != nil {
			break
		}
	}
	if first == nil {
		first = ours
	}
	if first == nil {
		first = t.opError(nil, &net.AddrError{Err: "no suitable address found", Addr: t.host})
	}
	return nil, first
}

// partialDeadline returns the deadline of one of addrsLeft attempts that
// share the time up to deadline, at least 2 s each when there is that much
// (net.Dialer's rule).
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

// conn is one probe connection: a connected non-blocking socket with the
// attempt's context and deadline.
type conn struct {
	fd       int
	remote   netip.AddrPort
	ctx      context.Context
	deadline time.Time // zero for none

	// file is set when a wait goes to Go's poller; it then owns fd.
	file *os.File
	// release unbinds ctx's cancellation from file.
	release func() bool
}

// connect opens a socket to a and connects it by deadline.
func connect(ctx context.Context, a netip.AddrPort, deadline time.Time) (*conn, error) {
	a = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
	family, sa, err := sockaddr(a)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	c := &conn{fd: fd, remote: a, ctx: ctx, deadline: deadline}
	if err := unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0}); err != nil {
		c.Close()
		return nil, broken(os.NewSyscallError("setsockopt SO_LINGER", err))
	}
	switch err := unix.Connect(fd, sa); err {
	case nil:
		return c, nil
	case unix.EINPROGRESS, unix.EALREADY, unix.EINTR:
		// The connection proceeds in the background: wait for the
		// socket to become writable, then ask how it went.
	default:
		c.Close()
		return nil, os.NewSyscallError("connect", err)
	}
	revents, err := c.wait(unix.POLLOUT)
	if err != nil {
		c.Close()
		return nil, err
	}
	// poll(2) reports a failed connection with POLLERR or POLLHUP: a bare
	// POLLOUT is an established one, and needs no SO_ERROR query.
	if revents == unix.POLLOUT {
		return c, nil
	}
	errno, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err == nil && errno != 0 {
		err = syscall.Errno(errno)
	}
	if err != nil {
		c.Close()
		return nil, os.NewSyscallError("connect", err)
	}
	return c, nil
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

// setDeadline makes d the deadline of the connection's waits.
func (c *conn) setDeadline(d time.Time) {
	c.deadline = d
	if c.file != nil {
		_ = c.file.SetDeadline(d)
	}
}

// RemoteAddr returns the address connected to, as "127.0.0.1:80" or
// "[::1]:80".
func (c *conn) RemoteAddr() string { return c.remote.String() }

// Write writes all of b.
func (c *conn) Write(b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := unix.Write(c.fd, b[n:])
		switch {
		case err == nil:
			n += m
		case err == unix.EINTR:
		case err == unix.EAGAIN:
			if _, err := c.wait(unix.POLLOUT); err != nil {
				return n, err
			}
		default:
			return n, c.ioError("write", os.NewSyscallError("write", err))
		}
	}
	return n, nil
}

// Read reads what the peer has sent, waiting for it if need be; io.EOF once
// the peer has closed.
func (c *conn) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	for {
		n, err := unix.Read(c.fd, b)
		switch {
		case err == nil && n == 0:
			return 0, io.EOF
		case err == nil:
			return n, nil
		case err == unix.EINTR:
		case err == unix.EAGAIN:
			if _, err := c.wait(unix.POLLIN); err != nil {
				return 0, err
			}
		default:
			return 0, c.ioError("read", os.NewSyscallError("read", err))
		}
	}
}

// ioError wraps an error of reading or writing as the net package does.
func (c *conn) ioError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Addr: net.TCPAddrFromAddrPort(c.remote), Err: err}
}

// Close closes the socket; the connection is reset (SO_LINGER 0).
func (c *conn) Close() error {
	if c.file != nil {
		if c.release != nil {
			c.release()
		}
		return c.file.Close()
	}
	return os.NewSyscallError("close", unix.Close(c.fd))
}

// wait blocks until the socket is ready for events (unix.POLLIN or
// POLLOUT, errors included), its deadline passes or its context ends: the
// first fastWait in poll(2), the rest in Go's poller. It returns the events
// poll(2) reported, 0 when the poller waited. Its error satisfies
// errors.Is(err, os.ErrDeadlineExceeded) at the deadline, and is the
// context's error when the context ended.
func (c *conn) wait(events int16) (revents int16, err error) {
	if c.file == nil {
		revents, err := c.poll(events)
		if revents != 0 || err != nil {
			return revents, err
		}
		if err := c.toPoller(); err != nil {
			return 0, err
		}
	}
	// The end of the context sets a past deadline (toPoller), which a
	// later setDeadline may have replaced: check it before waiting.
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	rc, err := c.file.SyscallConn()
	if err != nil {
		return 0, broken(err)
	}
	// The callback asks the socket itself (poll(2) without waiting)
	// each time it is called. It must not report "not ready" blindly on
	// its first call: RawConn.Read/Write clear the readiness the poller
	// may already have recorded (the reply can arrive between poll's
	// fastWait and the hand-over to the edge-triggered poller), and the
	// poller would then wait for an edge that never comes, until the
	// deadline: a false failure of a healthy server (1 probe in about
	// 60,000 in TestNoLeaks, before).
	ready := func(fd uintptr) bool {
		fds := []unix.PollFd{{Fd: int32(fd), Events: events}}
		for {
			n, err := unix.Poll(fds, 0)
			if err == unix.EINTR {
				continue
			}
			// An error of poll itself: let the caller's syscall
			// report what is wrong with the socket.
			return err != nil || n > 0
		}
	}
	if events == unix.POLLOUT {
		err = rc.Write(ready)
	} else {
		err = rc.Read(ready)
	}
	if err != nil && c.ctx.Err() != nil {
		return 0, c.ctx.Err()
	}
	return 0, err
}

// poll waits in poll(2) for up to fastWait, or to the deadline when that
// is sooner, and returns the events it reported, 0 if none. Its error is
// the context's when it ended, os.ErrDeadlineExceeded at the deadline.
func (c *conn) poll(events int16) (int16, error) {
	limit := time.Now().Add(fastWait)
	if !c.deadline.IsZero() && c.deadline.Before(limit) {
		limit = c.deadline
	}
	fds := []unix.PollFd{{Fd: int32(c.fd), Events: events}}
	for {
		if err := c.ctx.Err(); err != nil {
			return 0, err
		}
		left := time.Until(limit)
		if left <= 0 {
			break
		}
		ts := unix.NsecToTimespec(left.Nanoseconds())
		n, err := unix.Ppoll(fds, &ts, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, broken(os.NewSyscallError("ppoll", err))
		}
		if n > 0 {
			return fds[0].Revents, nil
		}
	}
	if !c.deadline.IsZero() && !time.Now().Before(c.deadline) {
		return 0, os.ErrDeadlineExceeded
	}
	return 0, nil
}

// toPoller hands the socket to Go's poller, with the deadline, and makes
// the end of the context interrupt its waits.
func (c *conn) toPoller() error {
	f := os.NewFile(uintptr(c.fd), "socket")
	c.file = f
	if !c.deadline.IsZero() {
		if err := f.SetDeadline(c.deadline); err != nil {
			return broken(err) // not pollable: a wait could not be bounded
		}
	}
	c.release = context.AfterFunc(c.ctx, func() { _ = f.SetDeadline(longAgo) })
	return nil
}

// longAgo is a deadline in the past: it makes pending I/O return at once.
var longAgo = time.Unix(1, 0)

// dialer opens the connections of HTTPS probes, which need a net.Conn for
// crypto/tls (the handshake costs far more than the poller does), with
// SO_LINGER 0, no keep-alive and no address race as above. The host name
// is looked up by the net package at each attempt.
var dialer = net.Dialer{
	FallbackDelay: -1,
	KeepAlive:     -1,
	Control:       lingerZero,
}

// lingerZero sets SO_LINGER {on, 0} on a socket before it connects.
func lingerZero(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptLinger(int(fd), unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
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
