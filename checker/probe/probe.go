// Package probe holds pcheck's stall-monitor probes: stateless one-shot
// checks, each a pure function of a context carrying the attempt's deadline
// and a target fixed when the Prober is built.
//
// The TCP and plain HTTP probes are also Starters: their attempts run on
// one event loop (netloop.go), started with Start and completed through a
// Completion, with no goroutine per attempt; their Run is a Start and a
// wait.
//
// A probe answers one question once: did the service answer? Scheduling,
// failover time, the In doubt state and what to do after a stall belong to
// the caller. A failed attempt is a Result with OK false; Run never panics
// and leaves no descriptor, goroutine or child process behind.
//
// As Kubernetes' probers tell a failed result from an error of the prober
// itself, a Result tells a failure (the service did not answer: refused,
// timed out, a bad status line, a missing heartbeat file, child or
// listener) from an attempt that could not be made because pcheck's own
// side broke (Result.Unknown: a CA file it cannot read, a check command it
// cannot start, a socket it cannot create, /proc it cannot read). An
// Unknown attempt says nothing about the service and must never count
// toward a stall.
package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Result is the outcome of one attempt.
type Result struct {
	OK bool
	// Unknown is set when the attempt could not be made because of
	// pcheck's own side; Err says why (with its errno where there is
	// one). OK is false: the service was not seen answering, nor seen
	// failing.
	Unknown bool
	Latency time.Duration
	// Detail is short human text: "HTTP/1.1 200 OK",
	// "connect: connection refused", "exit 2: CRITICAL ...", "timeout".
	Detail string
	// Err is the failure cause when !OK. Network errors keep their errno
	// (errors.Is(err, syscall.ECONNREFUSED)); an attempt cut short by its
	// deadline satisfies errors.Is(err, context.DeadlineExceeded).
	Err error
	// ModTime is the heartbeat file's modification time (heartbeat only).
	// The caller decides staleness by noticing that it changes.
	ModTime time.Time
	// Missing lists the named children not found (children only).
	Missing []string
	// AcceptQueue and Backlog describe the listener found (listen only,
	// when OK): the connections waiting to be accepted and the most its
	// accept queue holds (listen(2)'s backlog as the kernel capped it). A
	// full queue means a server that no longer accepts. Backlog is 0 when
	// unknown: /proc/net/tcp, read where sock_diag cannot be, shows only
	// the queue.
	AcceptQueue, Backlog int
	// NotAfter is the end of validity of the server's leaf certificate
	// (webservs only, once the TLS handshake succeeded, whatever the rest
	// of the attempt did); zero otherwise.
	NotAfter time.Time
	// Usage is the measure of a resource attempt (resource only): bytes
	// for rss, percent of one core for cpu (rounded up), a count for
	// fds, threads and children. It is 0 for cpu's first attempt on a
	// tree, which only takes a sample.
	Usage int64
}

// Prober runs one attempt; the deadline is carried by ctx.
type Prober interface {
	Run(ctx context.Context) Result
}

// Errors a Result may wrap, for errors.Is.
var (
	// ErrBadStatusLine: the server's reply does not start with an HTTP
	// status line.
	ErrBadStatusLine = errors.New("reply is not an HTTP status line")
	// ErrNotListening: no process of the tree holds a LISTEN socket on
	// the port.
	ErrNotListening = errors.New("no LISTEN socket held by the process tree")
	// ErrChildMissing: a named child process is not running.
	ErrChildMissing = errors.New("child process missing")
	// ErrUnexpectedReply: the server answered, but not as ExpectStatus,
	// ExpectHeader or ExpectBody require.
	ErrUnexpectedReply = errors.New("unexpected reply")
	// ErrCertExpiring: the server's certificate ends sooner than
	// TLSExpiryFail allows.
	ErrCertExpiring = errors.New("TLS certificate expires too soon")
	// ErrOverLimit: the process tree uses more than a resource
	// monitor's limit.
	ErrOverLimit = errors.New("over the resource limit")
)

// maxDetail bounds Result.Detail so that a chatty peer cannot flood logs.
const maxDetail = 200

// success builds an OK Result.
func success(start time.Time, detail string) Result {
	return Result{OK: true, Latency: time.Since(start), Detail: clip(detail)}
}

// failure builds a failed Result from err, or an Unknown one when err is of
// pcheck's own side (cannotRun, or a socket(2) that failed).
// An attempt cut short by ctx or by a descriptor deadline is reported as
// "timeout" (or "canceled"), its error made to satisfy errors.Is(err,
// context.DeadlineExceeded).
func failure(ctx context.Context, start time.Time, err error) Result {
	r := Result{Latency: time.Since(start), Detail: clip(detailOf(err)), Err: err}
	if pcheckSide(err) {
		r.Unknown = true
		return r
	}
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		r.Detail = "canceled"
		if !errors.Is(err, context.Canceled) {
			r.Err = fmt.Errorf("%w: %w", context.Canceled, err)
		}
	case ctx.Err() != nil, errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		r.Detail = "timeout"
		if !errors.Is(err, context.DeadlineExceeded) {
			r.Err = fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
		}
	}
	return r
}

// cannotRun marks an error of pcheck's own side: the attempt could not be
// made, so its Result is Unknown. It adds nothing to the message.
type cannotRun struct{ err error }

func (e *cannotRun) Error() string { return e.err.Error() }
func (e *cannotRun) Unwrap() error { return e.err }

// broken marks err as of pcheck's own side.
func broken(err error) error { return &cannotRun{err: err} }

// pcheckSide reports whether err means that the attempt could not be made:
// marked by broken, or socket(2) failing, whatever the errno (EMFILE,
// ENFILE, ENOBUFS, ENOMEM for lack of descriptors or memory; EACCES,
// EAFNOSUPPORT where the host forbids or lacks the family): nothing has
// reached the service yet. A failed connect(2) is the service's side,
// whatever its errno.
func pcheckSide(err error) bool {
	var cr *cannotRun
	if errors.As(err, &cr) {
		return true
	}
	var se *os.SyscallError
	return errors.As(err, &se) && se.Syscall == "socket"
}

// detailOf returns the short part of an error: "connect: connection
// refused" rather than "dial tcp 127.0.0.1:1: connect: connection refused".
func detailOf(err error) string {
	var se *os.SyscallError
	if errors.As(err, &se) {
		return se.Error()
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err.Error()
	}
	return err.Error()
}

// clip makes s fit for a log line: control characters and invalid UTF-8
// become '?', and it is cut to at most maxDetail bytes on a rune boundary.
func clip(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c >= 0x7f {
			s = strings.Map(func(r rune) rune {
				if r == utf8.RuneError || unicode.IsControl(r) {
					return '?'
				}
				return r
			}, s)
			break
		}
	}
	if len(s) <= maxDetail {
		return s
	}
	n := maxDetail
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}
