package probe

import (
	"context"
	"net"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// dialer opens every probe connection. SO_LINGER {on, 0} makes Close reset
// the connection instead of leaving it in TIME_WAIT, so that frequent probes
// do not pile up sockets. Addresses are tried one after another (no Happy
// Eyeballs race, whose losing goroutine could outlive Run) and TCP
// keep-alive is off: the connection lives for one exchange.
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
		return os.NewSyscallError("setsockopt SO_LINGER", serr)
	}
	return nil
}

// longAgo is a deadline in the past: it makes pending I/O return at once.
var longAgo = time.Unix(1, 0)

// bindDeadline makes ctx bound every read and write on conn: its deadline
// becomes the connection's, and cancelling ctx unblocks pending I/O. The
// returned function releases the binding; call it before returning.
func bindDeadline(ctx context.Context, conn net.Conn) (release func() bool) {
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	}
	return context.AfterFunc(ctx, func() { _ = conn.SetDeadline(longAgo) })
}
