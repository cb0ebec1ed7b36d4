package message

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultRetryInterval is how often a Logger that has never reached syslog
// tries to dial again.
const DefaultRetryInterval = time.Minute

// DefaultQueueSize is how many lines wait for each destination (syslog,
// the stderr copy, the fallback) before new ones are dropped.
const DefaultQueueSize = 1000

// DefaultWriteTimeout bounds one write to syslog: a line the receiver has
// not taken by then is lost (and counted).
const DefaultWriteTimeout = 500 * time.Millisecond

// FlushTimeout bounds Close: what is still queued after it is dropped.
const FlushTimeout = 2 * time.Second

// DefaultFallbackFile is where pcheck -D writes the lines syslog cannot
// take (pcheck --fallback-log).
const DefaultFallbackFile = "/var/log/pcheck.log"

// stderrTime is the timestamp of lines written to stderr.
const stderrTime = "2006-01-02T15:04:05.000Z07:00"

// ErrIdent is returned (wrapped) by New for an empty ident or one that
// cannot be a syslog tag.
var ErrIdent = errors.New("invalid syslog ident")

// ErrAddress is returned (wrapped) by New when only one of Network and Addr
// is set.
var ErrAddress = errors.New("syslog network and address must be set together")

// Options configure a Logger.
type Options struct {
	// Ident is the syslog tag of the program: IdentPcheck or IdentPadmin.
	Ident string
	// Facility is daemon, user or local0..local7 (any case); "" is daemon.
	Facility string
	// Network and Addr name the syslog socket. Both empty: the local
	// syslog (/dev/log). A unix network (unixgram, unix) gets the local
	// format of glibc's syslog(3); udp and tcp get the network format,
	// with the host name.
	Network, Addr string
	// Stderr, when non-nil (pcheck in the foreground), receives a copy of
	// every line as "<time> <ident>[<pid>]: <text>\n"; lines syslog cannot
	// take are then only there. When nil, those lines go to FallbackFile,
	// or else to os.Stderr.
	Stderr io.Writer
	// FallbackFile, when set and Stderr is nil (pcheck -D), receives the
	// lines syslog cannot take (no socket, or it went away) in the
	// traditional syslog file format "Mmm dd hh:mm:ss host ident[pid]:
	// text". It is opened when first needed, append-only, never through a
	// symlink, created with mode 0640.
	FallbackFile string
	// RetryInterval is how often a Logger that has never reached syslog
	// dials again; 0 is DefaultRetryInterval. Once connected, a Logger
	// connects again at the next line after a failure, as glibc does.
	RetryInterval time.Duration
	// QueueSize bounds the lines waiting for each destination; 0 is
	// DefaultQueueSize.
	QueueSize int

	// For the package's tests: where the lines syslog cannot take go
	// instead of os.Stderr, and the write timeout.
	fallbackTo   io.Writer
	writeTimeout time.Duration
}

// Logger sends messages to syslog and, in the foreground, a copy to
// stderr. Log never waits: each destination has a bounded queue and a
// goroutine of its own, so a receiver that is slow, gone or deaf costs the
// caller nothing. A line a full queue or a deaf receiver cannot take is
// dropped and counted, and the count is logged ("<n> syslog messages
// dropped") before the next line that gets through. Lines syslog cannot
// take because it is not there go to stderr or the fallback file. A
// Logger is safe for concurrent use; the Loggers of WithFacility share its
// queues.
type Logger struct {
	ident    string
	facility Facility
	s        *sink
}

// sink is the queues and writers that a Logger and its WithFacility
// Loggers share.
type sink struct {
	ident string // of the Logger's own lines
	pid   int
	where string // names the syslog socket in messages
	retry time.Duration

	syslog   *queue
	mirror   *queue // the copy on stderr; nil without Options.Stderr
	fallback *queue // lines syslog could not take; nil with a mirror
	// fallbackName names where the fallback lines go, for the warning.
	fallbackName string

	mu      sync.RWMutex // Log holds it shared, Close exclusive
	closed  bool
	abandon atomic.Bool // Close gave up waiting: write nothing more

	// Owned by the syslog goroutine.
	tr       transport
	ever     bool      // a connection was made once
	down     bool      // syslog is failing; the warning was given
	lastDial time.Time // of the last failed first dial
	closeErr error     // of the transport's close, read after done
}

// record is one line on its way to a destination.
type record struct {
	t        time.Time
	ident    string
	facility Facility
	severity Priority
	text     string
	// lost is how many lines this destination dropped just before this
	// one, summarised before it.
	lost int64
}

// queue is one destination's bounded queue of lines.
type queue struct {
	ch   chan record
	lost atomic.Int64 // dropped since the last line queued
	done chan struct{}
}

func newQueue(n int) *queue {
	return &queue{ch: make(chan record, n), done: make(chan struct{})}
}

// put queues r without waiting; when the queue is full, r is dropped and
// counted, and the count rides on the next line queued.
func (q *queue) put(r record) {
	n := q.lost.Swap(0)
	r.lost += n
	select {
	case q.ch <- r:
	default:
		q.lost.Add(r.lost + 1)
	}
}

// drain writes the lines of q until it is closed. write reports whether a
// line got through; a line that did not, and those q dropped, are
// summarised before the next line. Nothing is written once Close has given
// up.
func (s *sink) drain(q *queue, write func(record) bool) {
	var lost int64
	for r := range q.ch {
		if s.abandon.Load() {
			continue
		}
		lost += r.lost
		if lost > 0 {
			d := Dropped(lost)
			if !write(record{t: r.t, ident: d.Ident, facility: r.facility, severity: d.Priority, text: d.Text}) {
				lost++ // r too: the receiver is still not taking lines
				continue
			}
			lost = 0
		}
		if !write(r) {
			lost++
		}
	}
}

// New returns a Logger for o and starts its writers. It fails only on
// invalid options: when no syslog socket can be reached it still returns
// a working Logger that writes to stderr or the fallback file, says so
// once there, and dials again at most once per RetryInterval.
func New(o Options) (*Logger, error) {
	if o.Ident == "" || strings.ContainsAny(o.Ident, " \t\r\n[]:") {
		return nil, fmt.Errorf("syslog ident %q: %w", o.Ident, ErrIdent)
	}
	f, err := ParseFacility(o.Facility)
	if err != nil {
		return nil, err
	}
	if (o.Network == "") != (o.Addr == "") {
		return nil, fmt.Errorf("syslog network %q, address %q: %w", o.Network, o.Addr, ErrAddress)
	}
	if o.RetryInterval <= 0 {
		o.RetryInterval = DefaultRetryInterval
	}
	if o.QueueSize <= 0 {
		o.QueueSize = DefaultQueueSize
	}
	if o.writeTimeout <= 0 {
		o.writeTimeout = DefaultWriteTimeout
	}
	s := &sink{
		ident:  o.Ident,
		pid:    os.Getpid(),
		where:  where(o.Network, o.Addr),
		retry:  o.RetryInterval,
		syslog: newQueue(o.QueueSize),
	}
	s.tr = newTransport(o.Network, o.Addr, s.pid, s.where, o.writeTimeout)
	var writers []func()
	if o.Stderr != nil {
		s.mirror = newQueue(o.QueueSize)
		s.fallbackName = "stderr"
		w := stderrWriter{w: o.Stderr, pid: s.pid}
		writers = append(writers, func() { s.drain(s.mirror, w.write); close(s.mirror.done) })
	} else {
		s.fallback = newQueue(o.QueueSize)
		var w func(record) bool
		closeW := func() {}
		switch {
		case o.fallbackTo != nil:
			s.fallbackName, w = "stderr", stderrWriter{w: o.fallbackTo, pid: s.pid}.write
		case o.FallbackFile != "":
			fw := &fileWriter{path: o.FallbackFile, pid: s.pid, host: shortHostname(), retry: o.RetryInterval}
			s.fallbackName, w, closeW = o.FallbackFile, fw.write, fw.close
		default:
			s.fallbackName, w = "stderr", stderrWriter{w: os.Stderr, pid: s.pid}.write
		}
		writers = append(writers, func() { s.drain(s.fallback, w); closeW(); close(s.fallback.done) })
	}
	l := &Logger{ident: o.Ident, facility: f, s: s}
	// The first dial is made here: a line logged after New finds syslog
	// if it was there.
	s.dialFirst(record{t: time.Now(), ident: o.Ident, facility: f})
	go s.runSyslog()
	for _, run := range writers {
		go run()
	}
	return l, nil
}

// WithFacility returns a Logger that sends through l's queues at another
// facility. Closing either closes both.
func (l *Logger) WithFacility(facility string) (*Logger, error) {
	f, err := ParseFacility(facility)
	if err != nil {
		return nil, err
	}
	return &Logger{ident: l.ident, facility: f, s: l.s}, nil
}

// Log queues m for syslog under m.Ident (the Logger's ident when empty)
// and, when Options.Stderr is set, for stderr. A text of several lines is
// sent as one syslog line per non-empty line. Log never waits: a line a
// full queue cannot take is dropped and counted. After Close, Log does
// nothing.
func (l *Logger) Log(m Message) {
	ident := m.Ident
	if ident == "" {
		ident = l.ident
	}
	now := time.Now()
	s := l.s
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return
	}
	for _, line := range lines(m.Text) {
		r := record{t: now, ident: ident, facility: l.facility, severity: m.Priority, text: line}
		s.syslog.put(r)
		if s.mirror != nil {
			s.mirror.put(r)
		}
	}
}

// Close stops taking lines, writes what is queued within FlushTimeout and
// drops the rest, then closes the syslog connection; its error is that of
// closing the connection. Nothing is logged
// after Close returns (a write under way when the time is up may still
// complete within the write timeout, for a line logged before Close).
func (l *Logger) Close() error {
	s := l.s
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.syslog.ch) // the syslog goroutine closes the others when done
	s.mu.Unlock()

	timer := time.NewTimer(FlushTimeout)
	defer timer.Stop()
	for _, q := range []*queue{s.syslog, s.mirror, s.fallback} {
		if q == nil {
			continue
		}
		select {
		case <-q.done:
		case <-timer.C:
			s.abandon.Store(true) // the rest is dropped
			return nil
		}
	}
	return s.closeErr
}

// runSyslog is the syslog goroutine: it dials, sends the queued lines and,
// once the queue is closed and drained, closes the connection and the
// queues it feeds.
func (s *sink) runSyslog() {
	s.drain(s.syslog, s.send)
	if err := s.tr.close(); err != nil {
		s.closeErr = fmt.Errorf("closing %s: %w", s.where, err)
	}
	close(s.syslog.done)
	if s.mirror != nil {
		close(s.mirror.ch)
	}
	if s.fallback != nil {
		close(s.fallback.ch)
	}
}

// dialFirst dials when no connection was ever made, at most once per
// retry interval; it reports whether there is one now.
func (s *sink) dialFirst(r record) bool {
	if s.ever {
		return true
	}
	now := time.Now()
	if !s.lastDial.IsZero() && now.Sub(s.lastDial) < s.retry {
		return false
	}
	if err := s.tr.dial(r); err != nil {
		s.lastDial = now
		s.failed(err)
		return false
	}
	s.ever = true
	return true
}

// send writes r to syslog; a line syslog cannot take because it is gone
// goes to the fallback. It reports false for a line lost to a receiver
// that did not take it in time.
func (s *sink) send(r record) bool {
	if !s.dialFirst(r) {
		return s.fallBack(r)
	}
	err := s.tr.send(r)
	switch {
	case err == nil:
		if s.down {
			s.down = false
			s.note(PriorityInfo, "syslog available again")
		}
		return true
	case errors.Is(err, os.ErrDeadlineExceeded):
		return false // slow or deaf: counted, summarised later
	}
	s.failed(err)
	return s.fallBack(r)
}

// fallBack hands a line syslog could not take to the fallback; with a
// stderr copy it is there already.
func (s *sink) fallBack(r record) bool {
	if s.fallback != nil {
		s.fallback.put(r)
	}
	return true
}

// failed gives the one warning of an outage.
func (s *sink) failed(err error) {
	if s.down {
		return
	}
	s.down = true
	s.note(PriorityWarning, "syslog unavailable, logging to "+s.fallbackName+": "+err.Error())
}

// note writes one of the Logger's own lines where the fallback lines go.
func (s *sink) note(p Priority, text string) {
	r := record{t: time.Now(), ident: s.ident, facility: DefaultFacility, severity: p, text: text}
	if s.mirror != nil {
		s.mirror.put(r)
	} else {
		s.fallback.put(r)
	}
}

// where names the syslog socket for errors.
func where(network, addr string) string {
	if network == "" {
		return "local syslog (" + localPath + ")"
	}
	return "syslog " + network + " " + addr
}

// stderrWriter writes lines in the stderr format.
type stderrWriter struct {
	w   io.Writer
	pid int
}

func (w stderrWriter) write(r record) bool {
	_, err := fmt.Fprintf(w.w, "%s %s[%d]: %s\n", r.t.Format(stderrTime), r.ident, w.pid, r.text)
	return err == nil
}

// lines splits text at newlines, dropping carriage returns before them and
// empty lines; an empty text is one empty line.
func lines(text string) []string {
	if !strings.ContainsAny(text, "\r\n") {
		return []string{text}
	}
	var out []string
	for _, s := range strings.Split(text, "\n") {
		s = strings.TrimSuffix(s, "\r")
		if s != "" {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		out = []string{""}
	}
	return out
}
