package message

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	gsyslog "github.com/hashicorp/go-syslog"
)

// localPath is the local syslog socket, glibc's _PATH_LOG.
const localPath = "/dev/log"

// transport is the connection to a syslog receiver, used by the syslog
// goroutine only.
type transport interface {
	// dial connects, for the ident and facility of r where that
	// matters.
	dial(r record) error
	// send writes one line, connecting again once when the receiver went
	// away. A line the receiver did not take in time gives an error that
	// is os.ErrDeadlineExceeded.
	send(r record) error
	close() error
}

func newTransport(network, addr string, pid int, where string, timeout time.Duration) transport {
	if network == "" || strings.HasPrefix(network, "unix") {
		if network == "" {
			addr = localPath
		}
		return &localTransport{network: network, path: addr, pid: pid, where: where, timeout: timeout}
	}
	return &netTransport{network: network, addr: addr, where: where, writers: map[netKey]gsyslog.Syslogger{}}
}

// localTransport writes to a unix socket in the local format of glibc's
// syslog(3): "<PRI>Mmm dd hh:mm:ss ident[pid]: text", the local time in
// the C locale with a space-padded day, no host name, no trailing newline
// on a datagram socket and a NUL after each line on a stream socket. That
// is what rsyslog's imuxsock, syslog-ng's unix sources and journald parse
// for /dev/log. go-syslog cannot send it to a socket other than its own
// list of local paths.
type localTransport struct {
	network string // unixgram, unix; "": /dev/log, datagram or else stream
	path    string
	pid     int
	where   string
	timeout time.Duration

	conn   net.Conn
	stream bool
	buf    []byte
}

func (t *localTransport) dial(record) error {
	t.close()
	networks := []string{t.network}
	if t.network == "" {
		networks = []string{"unixgram", "unix"}
	}
	d := net.Dialer{Timeout: t.timeout}
	var err error
	for _, n := range networks {
		var c net.Conn
		if c, err = d.Dial(n, t.path); err == nil {
			t.conn, t.stream = c, n == "unix"
			return nil
		}
		if !errors.Is(err, syscall.EPROTOTYPE) {
			break // glibc tries a stream socket only for that error
		}
	}
	return fmt.Errorf("dialing %s: %w", t.where, err)
}

func (t *localTransport) send(r record) error {
	if t.conn == nil {
		if err := t.dial(r); err != nil {
			return err
		}
	}
	err := t.write(r)
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		if err != nil && t.stream {
			t.close() // a partial line would break the framing
		}
		return err
	}
	// As glibc: the receiver may have restarted (ECONNREFUSED, ENOENT):
	// connect again and send once more.
	if err := t.dial(r); err != nil {
		return err
	}
	return t.write(r)
}

func (t *localTransport) write(r record) error {
	t.buf = appendLocal(t.buf[:0], r, t.pid)
	if t.stream {
		t.buf = append(t.buf, 0)
	}
	if err := t.conn.SetWriteDeadline(time.Now().Add(t.timeout)); err != nil {
		return fmt.Errorf("writing to %s: %w", t.where, err)
	}
	if _, err := t.conn.Write(t.buf); err != nil {
		return fmt.Errorf("writing to %s: %w", t.where, err)
	}
	return nil
}

func (t *localTransport) close() error {
	if t.conn == nil {
		return nil
	}
	err := t.conn.Close()
	t.conn = nil
	return err
}

// appendLocal appends r in the local format: "<PRI>Mmm dd hh:mm:ss
// ident[pid]: text".
func appendLocal(b []byte, r record, pid int) []byte {
	b = append(b, '<')
	b = strconv.AppendInt(b, int64(r.facility)<<3|int64(r.severity), 10)
	b = append(b, '>')
	b = r.t.AppendFormat(b, time.Stamp)
	b = append(b, ' ')
	b = append(b, r.ident...)
	b = append(b, '[')
	b = strconv.AppendInt(b, int64(pid), 10)
	b = append(b, "]: "...)
	return append(b, r.text...)
}

// netKey names one go-syslog writer: its tag and facility are fixed.
type netKey struct {
	ident    string
	facility Facility
}

// netTransport sends to a network receiver (udp, tcp) through go-syslog,
// one writer per ident and facility, in its network format: "<PRI>RFC3339
// host ident[pid]: text\n", the RFC 3164 layout with an RFC 3339
// timestamp (rsyslog's RSYSLOG_ForwardFormat), which rsyslog and
// syslog-ng parse on their udp and tcp inputs; the newline frames it on
// tcp. go-syslog bounds each write by a deadline and connects again once
// when a write fails.
type netTransport struct {
	network, addr string
	where         string
	writers       map[netKey]gsyslog.Syslogger
}

func (t *netTransport) dial(r record) error {
	_, err := t.writer(r)
	return err
}

func (t *netTransport) writer(r record) (gsyslog.Syslogger, error) {
	k := netKey{r.ident, r.facility}
	if w := t.writers[k]; w != nil {
		return w, nil
	}
	w, err := gsyslog.DialLogger(t.network, t.addr, gsyslog.LOG_INFO, r.facility.String(), r.ident)
	if err != nil {
		return nil, fmt.Errorf("dialing %s: %w", t.where, err)
	}
	t.writers[k] = w
	return w, nil
}

func (t *netTransport) send(r record) error {
	w, err := t.writer(r)
	if err != nil {
		return err
	}
	if err := w.WriteLevel(gsyslog.Priority(r.severity), []byte(r.text)); err != nil {
		return fmt.Errorf("writing to %s: %w", t.where, err)
	}
	return nil
}

func (t *netTransport) close() error {
	var errs []error
	for k, w := range t.writers {
		if err := w.Close(); err != nil {
			errs = append(errs, fmt.Errorf("syslog writer %s: %w", k.ident, err))
		}
	}
	clear(t.writers)
	return errors.Join(errs...)
}
