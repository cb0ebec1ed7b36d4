package message

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	gsyslog "github.com/hashicorp/go-syslog"
)

// DefaultRetryInterval is how often a Logger without a syslog connection
// tries to dial again.
const DefaultRetryInterval = time.Minute

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
	// syslog (/dev/log). Tests pass "unixgram" and a socket path.
	Network, Addr string
	// Stderr, when non-nil (pcheck in the foreground), receives a copy of
	// every line as "<time> <ident>[<pid>]: <text>\n". It is also where
	// lines go when syslog cannot take them; when nil that is os.Stderr.
	Stderr io.Writer
	// RetryInterval is how often a Logger with no syslog connection dials
	// again, on a later Log; 0 is DefaultRetryInterval.
	RetryInterval time.Duration
}

// Logger sends messages to syslog, one go-syslog writer per ident. It never
// loses a line: what syslog cannot take goes to stderr. It is safe for
// concurrent use.
type Logger struct {
	ident    string
	facility Facility
	network  string
	addr     string
	mirror   io.Writer // copy of every line, or nil
	fallback io.Writer // where lines go when syslog fails
	retry    time.Duration
	pid      int

	mu      sync.Mutex
	writers map[string]*writer // by ident
	down    bool               // syslog is failing; the warning was printed
	closed  bool
}

// writer is the go-syslog writer of one ident, dialed lazily and again at
// most once per retry interval while dialing fails.
type writer struct {
	w        gsyslog.Syslogger
	lastDial time.Time
	err      error // of the last dial
}

// New returns a Logger for o. It fails only on invalid options: when no
// syslog socket can be reached it still returns a working Logger that
// writes to stderr, says so once on stderr, and dials again at most once
// per RetryInterval.
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
	l := &Logger{
		ident:    o.Ident,
		facility: f,
		network:  o.Network,
		addr:     o.Addr,
		mirror:   o.Stderr,
		fallback: o.Stderr,
		retry:    o.RetryInterval,
		pid:      os.Getpid(),
		writers:  make(map[string]*writer),
	}
	if l.fallback == nil {
		l.fallback = os.Stderr
	}
	if l.retry <= 0 {
		l.retry = DefaultRetryInterval
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.writer(l.ident, time.Now()); err != nil {
		l.failed(err, time.Now())
	}
	return l, nil
}

// Log sends m to syslog under m.Ident (the Logger's ident when empty) and,
// when Options.Stderr is set, to stderr. A text of several lines is sent as
// one syslog line per non-empty line. Log waits for no one for long:
// go-syslog bounds every dial and write by a deadline of tens of
// milliseconds, and a line syslog does not take goes to stderr.
func (l *Logger) Log(m Message) {
	ident := m.Ident
	if ident == "" {
		ident = l.ident
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range lines(m.Text) {
		now := time.Now()
		sent := false
		if !l.closed {
			err := l.send(ident, m.Priority, line, now)
			if err != nil {
				l.failed(err, now)
			} else {
				sent = true
				if l.down {
					l.down = false
					l.stderr(l.fallback, now, l.ident, "syslog available again")
				}
			}
		}
		if l.mirror != nil || !sent {
			l.stderr(l.fallback, now, ident, line)
		}
	}
}

// Close closes the syslog connections. Lines logged after Close go to
// stderr.
func (l *Logger) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	var errs []error
	for ident, w := range l.writers {
		if w.w != nil {
			if err := w.w.Close(); err != nil {
				errs = append(errs, fmt.Errorf("closing syslog writer %s: %w", ident, err))
			}
		}
	}
	clear(l.writers)
	return errors.Join(errs...)
}

// send writes one line through the writer of ident. l.mu is held.
func (l *Logger) send(ident string, p Priority, line string, now time.Time) error {
	w, err := l.writer(ident, now)
	if err != nil {
		return err
	}
	// go-syslog reconnects once when the write on the live connection
	// fails; an error here means that failed too.
	if err := w.WriteLevel(gsyslog.Priority(p), []byte(line)); err != nil {
		return fmt.Errorf("writing to %s: %w", l.where(), err)
	}
	return nil
}

// writer returns the go-syslog writer of ident, dialing it when there is
// none and the last attempt is older than the retry interval. l.mu is held.
func (l *Logger) writer(ident string, now time.Time) (gsyslog.Syslogger, error) {
	s := l.writers[ident]
	if s == nil {
		s = &writer{}
		l.writers[ident] = s
	}
	if s.w != nil {
		return s.w, nil
	}
	if !s.lastDial.IsZero() && now.Sub(s.lastDial) < l.retry {
		return nil, s.err
	}
	s.lastDial = now
	var err error
	if l.network == "" {
		s.w, err = gsyslog.NewLogger(gsyslog.LOG_INFO, l.facility.String(), ident)
	} else {
		s.w, err = gsyslog.DialLogger(l.network, l.addr, gsyslog.LOG_INFO, l.facility.String(), ident)
	}
	if err != nil {
		s.w = nil
		s.err = fmt.Errorf("dialing %s: %w", l.where(), err)
		return nil, s.err
	}
	return s.w, nil
}

// failed prints the one warning of an outage. l.mu is held.
func (l *Logger) failed(err error, now time.Time) {
	if l.down {
		return
	}
	l.down = true
	l.stderr(l.fallback, now, l.ident, "syslog unavailable, logging to stderr: "+err.Error())
}

// where names the syslog socket for errors.
func (l *Logger) where() string {
	if l.network == "" {
		return "local syslog (/dev/log)"
	}
	return "syslog " + l.network + " " + l.addr
}

// stderr writes one line in the stderr format. Write errors are ignored:
// there is nowhere left to report them.
func (l *Logger) stderr(w io.Writer, now time.Time, ident, text string) {
	fmt.Fprintf(w, "%s %s[%d]: %s\n", now.Format(stderrTime), ident, l.pid, text)
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
