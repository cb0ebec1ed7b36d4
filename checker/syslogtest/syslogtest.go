// Package syslogtest is a real syslog receiver for tests: a unixgram socket
// that go-syslog writes to, or a tail of the file a real rsyslogd writes,
// with the lines parsed and a Wait that blocks, with a deadline, until an
// expected line arrives.
package syslogtest

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// maxSocketPath keeps socket paths inside sun_path (108 bytes on Linux).
const maxSocketPath = 100

// tailPoll is how often FileTail looks for new bytes in its file.
const tailPoll = 10 * time.Millisecond

// Receiver collects syslog lines. Its methods are safe for concurrent use.
type Receiver struct {
	addr string

	mu       sync.Mutex
	lines    []Line
	consumed []bool
	changed  chan struct{} // closed and replaced when a line arrives

	closeOnce sync.Once
	stop      func() // ends the reading goroutine
	done      chan struct{}

	// A socket receiver only: Pause and Resume, SetReadDelay.
	conn      *net.UnixConn
	paused    chan struct{} // non-nil while paused; closed by Resume
	parked    chan struct{} // receives when the reader has stopped reading
	readDelay time.Duration
}

func newReceiver(addr string) *Receiver {
	return &Receiver{addr: addr, changed: make(chan struct{}), done: make(chan struct{})}
}

// Listen binds a unixgram socket in a fresh temporary directory and
// collects every datagram sent to it. Pass "unixgram" and r.Addr() to the
// syslog writer. The receiver is closed when the test ends.
func Listen(t testing.TB) *Receiver {
	t.Helper()
	dir := t.TempDir()
	if len(dir)+len("/log.sock") > maxSocketPath {
		var err error
		if dir, err = os.MkdirTemp("", "syslog"); err != nil {
			t.Fatalf("syslogtest: socket directory: %v", err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
	}
	return ListenAt(t, filepath.Join(dir, "log.sock"))
}

// ListenAt is Listen on a given socket path, which must not exist. Tests
// that take a receiver away and bring it back call Close and then ListenAt
// on the same path.
func ListenAt(t testing.TB, path string) *Receiver {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatalf("syslogtest: listening on %s: %v", path, err)
	}
	r := newReceiver(path)
	r.conn = conn
	r.parked = make(chan struct{}, 1)
	r.stop = func() {
		r.Resume()
		conn.Close()
		os.Remove(path)
	}
	go func() {
		defer close(r.done)
		buf := make([]byte, 64<<10)
		for {
			r.gate()
			n, _, err := conn.ReadFrom(buf)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				continue // Pause interrupted the read
			}
			if err != nil {
				return
			}
			r.addDatagram(string(buf[:n]))
			r.mu.Lock()
			delay := r.readDelay
			r.mu.Unlock()
			if delay > 0 {
				time.Sleep(delay) // a slow syslog daemon: simulated, not a synchronisation
			}
		}
	}()
	t.Cleanup(r.Close)
	return r
}

// gate blocks the reading goroutine while the receiver is paused.
func (r *Receiver) gate() {
	r.mu.Lock()
	paused := r.paused
	r.mu.Unlock()
	if paused == nil {
		return
	}
	select {
	case r.parked <- struct{}{}:
	default:
	}
	<-paused
	r.conn.SetReadDeadline(time.Time{})
}

// Pause stops reading the socket, as a syslog daemon that hangs: datagrams
// queue in the kernel until its queue is full (net.unix.max_dgram_qlen,
// 10 by default), and then writers block. It returns once the reading
// goroutine has stopped; no datagram is read until Resume.
func (r *Receiver) Pause(t testing.TB) {
	t.Helper()
	r.mu.Lock()
	if r.conn == nil {
		r.mu.Unlock()
		t.Fatal("syslogtest: Pause on a file receiver")
	}
	if r.paused != nil {
		r.mu.Unlock()
		return
	}
	r.paused = make(chan struct{})
	r.mu.Unlock()
	r.conn.SetReadDeadline(time.Now()) // interrupts a read under way
	select {
	case <-r.parked:
	case <-time.After(10 * time.Second):
		t.Fatal("syslogtest: the reader did not stop within 10s")
	}
}

// Resume reads the socket again after Pause.
func (r *Receiver) Resume() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.paused != nil {
		close(r.paused)
		r.paused = nil
	}
}

// SetReadDelay makes the receiver slow: after each datagram it waits d
// before reading the next one (0: read at once).
func (r *Receiver) SetReadDelay(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.readDelay = d
}

// FillText is the text of the datagrams Fill sends, under ident syslogtest.
const FillText = "filling the queue"

// Fill pauses the receiver and sends it datagrams until the kernel refuses
// more: a receiver that is there but takes nothing, so that every write to
// it blocks. It returns how many datagrams it queued; they are received,
// with text FillText, after Resume.
func (r *Receiver) Fill(t testing.TB) int {
	t.Helper()
	r.Pause(t)
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("syslogtest: Fill: %v", err)
	}
	defer unix.Close(fd)
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: r.addr}); err != nil {
		t.Fatalf("syslogtest: Fill: connecting to %s: %v", r.addr, err)
	}
	msg := []byte("<30>Jan  1 00:00:00 syslogtest: " + FillText)
	for n := 0; ; n++ {
		if _, err := unix.Write(fd, msg); err != nil {
			if errors.Is(err, unix.EAGAIN) && n > 0 {
				return n
			}
			t.Fatalf("syslogtest: Fill: writing to %s after %d datagrams: %v", r.addr, n, err)
		}
	}
}

// FileTail follows the file at path, as written by a real rsyslogd,
// parsing every complete line appended to it. The file need not exist yet.
// Lines already in the file when FileTail is called are collected too.
func FileTail(t testing.TB, path string) *Receiver {
	t.Helper()
	r := newReceiver(path)
	quit := make(chan struct{})
	r.stop = func() { close(quit) }
	go func() {
		defer close(r.done)
		var f *os.File
		defer func() {
			if f != nil {
				f.Close()
			}
		}()
		var partial []byte
		buf := make([]byte, 64<<10)
		tick := time.NewTicker(tailPoll)
		defer tick.Stop()
		for {
			if f == nil {
				f, _ = os.Open(path)
			}
			for f != nil {
				n, err := f.Read(buf)
				partial = append(partial, buf[:n]...)
				for {
					i := bytes.IndexByte(partial, '\n')
					if i < 0 {
						break
					}
					r.add(string(partial[:i]))
					partial = partial[i+1:]
				}
				if n == 0 || errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Errorf("syslogtest: reading %s: %v", path, err)
					return
				}
			}
			select {
			case <-quit:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(r.Close)
	return r
}

// Addr is the socket path (Listen) or the file path (FileTail).
func (r *Receiver) Addr() string { return r.addr }

// Close stops receiving and, for a socket, removes it. It is called by
// t.Cleanup and may be called earlier; lines received stay readable.
func (r *Receiver) Close() {
	r.closeOnce.Do(func() {
		r.stop()
		<-r.done
	})
}

// add records one raw line. A line in no known format is kept with
// Facility and Severity -1 and its whole raw text as Text, so that a
// failing Wait shows it.
func (r *Receiver) add(raw string) { r.addLine(raw, "") }

// addDatagram records one datagram, keeping its exact bytes.
func (r *Receiver) addDatagram(d string) { r.addLine(d, d) }

func (r *Receiver) addLine(raw, datagram string) {
	l, err := Parse(raw)
	if err != nil {
		l = Line{Facility: -1, Severity: -1, Text: l.Raw, Raw: l.Raw}
	}
	l.Datagram = datagram
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, l)
	r.consumed = append(r.consumed, false)
	close(r.changed)
	r.changed = make(chan struct{})
}

// Lines returns a snapshot of every line received so far, in order.
func (r *Receiver) Lines() []Line {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Line(nil), r.lines...)
}

// Wait returns the first line, received before or during the call, that
// match accepts and that no earlier Wait returned; it marks the line as
// returned, so waiting twice for the same text needs it to arrive twice.
// When no such line arrives within timeout, Wait fails the test, listing
// the lines seen so far. Call it from the test's goroutine.
func (r *Receiver) Wait(t testing.TB, match func(Line) bool, timeout time.Duration) Line {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		r.mu.Lock()
		for i, l := range r.lines {
			if !r.consumed[i] && match(l) {
				r.consumed[i] = true
				r.mu.Unlock()
				return l
			}
		}
		changed := r.changed
		r.mu.Unlock()
		select {
		case <-changed:
		case <-timer.C:
			t.Fatalf("syslogtest: no matching line at %s within %v; lines seen:\n%s", r.addr, timeout, r.dump())
			return Line{}
		}
	}
}

// WaitText is Wait for a line whose Text is exactly text.
func (r *Receiver) WaitText(t testing.TB, text string, timeout time.Duration) Line {
	t.Helper()
	return r.Wait(t, func(l Line) bool { return l.Text == text }, timeout)
}

// dump lists the lines seen, one per line, for failure messages.
func (r *Receiver) dump() string {
	ls := r.Lines()
	if len(ls) == 0 {
		return "\t(none)"
	}
	var b strings.Builder
	for _, l := range ls {
		b.WriteString("\t")
		b.WriteString(l.Raw)
		b.WriteString("\n")
	}
	return b.String()
}
