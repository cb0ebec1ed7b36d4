package message

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pcheck/pcheck/checker/syslogtest"
)

const wait = 10 * time.Second

// childEnv makes the test binary act as a child process that logs without
// a syslog socket (TestNoSocketWritesStderr).
const childEnv = "MESSAGE_TEST_CHILD_NOSOCKET"

func TestMain(m *testing.M) {
	if path := os.Getenv(childEnv); path != "" {
		os.Exit(childNoSocket(path))
	}
	if spec := os.Getenv(devLogEnv); spec != "" {
		os.Exit(childDevLog(spec))
	}
	os.Exit(m.Run())
}

// childNoSocket logs three lines through a Logger whose socket does not
// exist and whose Stderr is nil, so they must reach os.Stderr.
func childNoSocket(path string) int {
	l, err := New(Options{Ident: IdentPcheck, Network: "unixgram", Addr: path})
	if err != nil {
		fmt.Fprintln(os.Stderr, "New:", err)
		return 1
	}
	l.Log(Up("httpd", 1))
	l.Log(PadminCommand("stop", "web.pfile"))
	l.Log(Down("httpd", 1))
	if err := l.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "Close:", err)
		return 1
	}
	return 0
}

// syncBuffer is a bytes.Buffer that the Logger's goroutines may write
// while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Len()
}

// waitFor polls cond until it holds, failing the test after a deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, wait)
		}
		time.Sleep(5 * time.Millisecond) // polling with a deadline
	}
}

// marker sends a datagram of the test's own to r and waits for it: every
// datagram sent to r before it has then been received.
func marker(t *testing.T, r *syslogtest.Receiver) {
	t.Helper()
	c, err := net.Dial("unixgram", r.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("<30>Jan  1 00:00:00 test: marker")); err != nil {
		t.Fatal(err)
	}
	r.WaitText(t, "marker", wait)
}

// newLogger returns a Logger writing to r, closed when the test ends.
func newLogger(t *testing.T, r *syslogtest.Receiver, o Options) *Logger {
	t.Helper()
	o.Network, o.Addr = "unixgram", r.Addr()
	if o.Ident == "" {
		o.Ident = IdentPcheck
	}
	l, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return l
}

// checkLine compares a received line with the expected message byte for
// byte: text, ident, severity, facility and our pid.
func checkLine(t *testing.T, got syslogtest.Line, w want, facility Facility) {
	t.Helper()
	if got.Text != w.text || got.Ident != w.ident || got.Severity != int(w.priority) || got.Facility != int(facility) || got.Pid != os.Getpid() {
		t.Errorf("%s: received %q\n parsed %+v\n want ident %s, %s.%s, pid %d, text %q", w.id, got.Raw, got, w.ident, facility, w.priority, os.Getpid(), w.text)
	}
	if suffix := fmt.Sprintf(" %s[%d]: %s", w.ident, os.Getpid(), w.text); !strings.HasSuffix(got.Raw, suffix) {
		t.Errorf("%s: raw line %q does not end in %q", w.id, got.Raw, suffix)
	}
}

func TestLogEveryCatalogueLine(t *testing.T) {
	for _, facility := range []string{"", "daemon", "user", "LOCAL3", "local7"} {
		t.Run("facility="+facility, func(t *testing.T) {
			want, err := ParseFacility(facility)
			if err != nil {
				t.Fatal(err)
			}
			r := syslogtest.Listen(t)
			stderr := &syncBuffer{}
			l := newLogger(t, r, Options{Facility: facility, fallbackTo: stderr})
			for _, w := range wants {
				l.Log(w.msg)
				checkLine(t, r.WaitText(t, w.text, wait), w, want)
			}
			if stderr.Len() != 0 {
				t.Errorf("lines fell back to stderr:\n%s", stderr.String())
			}
		})
	}
}

func TestPadminLoggerIdent(t *testing.T) {
	r := syslogtest.Listen(t)
	l := newLogger(t, r, Options{Ident: IdentPadmin, Facility: "local3"})
	l.Log(PadminCommand("reload", "a.pfile"))
	l.Log(Message{Priority: PriorityInfo, Text: "no ident given"})
	got := r.WaitText(t, "Command execute. [reload] pfile='a.pfile'", wait)
	if got.Ident != IdentPadmin || got.Facility != int(FacilityLocal3) || got.Severity != int(PriorityNotice) {
		t.Errorf("got %+v", got)
	}
	if got := r.WaitText(t, "no ident given", wait); got.Ident != IdentPadmin {
		t.Errorf("a message without ident was sent as %q; want the Logger's %q", got.Ident, IdentPadmin)
	}
}

var stderrLine = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d) (\w+)\[(\d+)\]: (.*)$`)

// stderrLines parses the Logger's stderr output into "ident: text" lines,
// checking the format of each and that it carries pid.
func stderrLines(t *testing.T, out string, pid int) []string {
	t.Helper()
	var got []string
	for _, s := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		m := stderrLine.FindStringSubmatch(s)
		if m == nil {
			t.Errorf("stderr line %q is not \"<time> <ident>[<pid>]: <text>\"", s)
			continue
		}
		if m[3] != fmt.Sprint(pid) {
			t.Errorf("stderr line %q has pid %s; want %d", s, m[3], pid)
		}
		got = append(got, m[2]+": "+m[4])
	}
	return got
}

func TestStderrMirror(t *testing.T) {
	r := syslogtest.Listen(t)
	stderr := &syncBuffer{}
	l := newLogger(t, r, Options{Stderr: stderr})
	l.Log(Up("httpd", 42))
	l.Log(PadminCommand("stop", "w.pfile"))
	r.WaitText(t, "('httpd' ,pid=42) Up", wait)
	r.WaitText(t, "Command execute. [stop] pfile='w.pfile'", wait)
	if err := l.Close(); err != nil { // flushes the copy on stderr
		t.Fatal(err)
	}
	got := stderrLines(t, stderr.String(), os.Getpid())
	want := []string{"pcheck: ('httpd' ,pid=42) Up", "padmin: Command execute. [stop] pfile='w.pfile'"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("stderr mirror:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestMultiLineText(t *testing.T) {
	r := syslogtest.Listen(t)
	l := newLogger(t, r, Options{})
	l.Log(Info("line one\r\n\nline two\n"))
	one := r.WaitText(t, "line one", wait)
	two := r.WaitText(t, "line two", wait)
	if one.Severity != int(PriorityInfo) || two.Severity != int(PriorityInfo) {
		t.Errorf("lines sent as %+v and %+v", one, two)
	}
	for _, l := range r.Lines() {
		if l.Text == "" {
			t.Errorf("empty line sent: %q", l.Raw)
		}
	}
}

// TestNoSocketWritesStderr runs a child process with no syslog socket and
// no Stderr option: its lines and exactly one warning reach os.Stderr.
func TestNoSocketWritesStderr(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "missing.sock")
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+missing)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("child: %v\nstderr:\n%s", err, stderr.String())
	}
	got := stderrLines(t, stderr.String(), cmd.Process.Pid)
	if len(got) != 4 || !strings.HasPrefix(got[0], "pcheck: syslog unavailable, logging to stderr: dialing syslog unixgram "+missing+": ") {
		t.Fatalf("child stderr:\n%s\nwant one warning naming %s, then the three lines", stderr.String(), missing)
	}
	want := []string{"pcheck: ('httpd' ,pid=1) Up", "padmin: Command execute. [stop] pfile='web.pfile'", "pcheck: Process ['httpd',pid=1] Down"}
	if strings.Join(got[1:], "\n") != strings.Join(want, "\n") {
		t.Errorf("child stderr lines:\n%s\nwant:\n%s", strings.Join(got[1:], "\n"), strings.Join(want, "\n"))
	}
}

// TestSyslogAppearsLater: a Logger started with no socket dials again after
// RetryInterval and then sends to syslog.
func TestSyslogAppearsLater(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log.sock")
	stderr := &syncBuffer{}
	l, err := New(Options{Ident: IdentPcheck, Network: "unixgram", Addr: path, RetryInterval: 10 * time.Millisecond, Stderr: stderr})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Log(Info("before"))

	r := syslogtest.ListenAt(t, path)
	deadline := time.Now().Add(wait)
	for i := 0; ; i++ {
		l.Log(Info(fmt.Sprintf("after %d", i)))
		if len(r.Lines()) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no line reached syslog within %v of it appearing; stderr:\n%s", wait, stderr.String())
		}
		time.Sleep(5 * time.Millisecond) // pace the polling; the deadline bounds it
	}
	if got := r.Lines()[0]; !strings.HasPrefix(got.Text, "after ") {
		t.Errorf("first syslog line %q; want an \"after\" line", got.Raw)
	}
	if err := l.Close(); err != nil { // flushes the copy on stderr
		t.Fatal(err)
	}
	out := stderr.String()
	if !strings.Contains(out, "pcheck["+fmt.Sprint(os.Getpid())+"]: before\n") || !strings.Contains(out, "]: syslog available again\n") {
		t.Errorf("stderr does not hold the line logged before syslog came up and the recovery:\n%s", out)
	}
	if n := strings.Count(out, "syslog unavailable"); n != 1 {
		t.Errorf("%d warnings on stderr; want 1:\n%s", n, out)
	}
}

// TestRetryIntervalLimitsDials: while syslog is absent, a Logger does not
// dial again before RetryInterval, so a socket that appears is picked up
// only then.
func TestRetryIntervalLimitsDials(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log.sock")
	stderr := &syncBuffer{}
	l, err := New(Options{Ident: IdentPcheck, Network: "unixgram", Addr: path, RetryInterval: time.Hour, fallbackTo: stderr})
	if err != nil {
		t.Fatal(err)
	}
	// The first dial has failed once the warning is out.
	waitFor(t, "the warning", func() bool { return strings.Contains(stderr.String(), "syslog unavailable") })
	r := syslogtest.ListenAt(t, path)
	l.Log(Info("held back"))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if len(r.Lines()) != 0 || !strings.HasSuffix(stderr.String(), "]: held back\n") {
		t.Errorf("Logger dialed again within RetryInterval: syslog got %v; stderr:\n%s", r.Lines(), stderr)
	}
}

// TestReceiverGoesAwayAndComesBack: with a live connection, a write that
// fails goes to stderr; once syslog is back the next line reaches it.
func TestReceiverGoesAwayAndComesBack(t *testing.T) {
	r := syslogtest.Listen(t)
	path := r.Addr()
	stderr := &syncBuffer{}
	l := newLogger(t, r, Options{fallbackTo: stderr})
	l.Log(Info("one"))
	r.WaitText(t, "one", wait)

	r.Close()
	l.Log(Info("two"))
	waitFor(t, "line two on stderr", func() bool { return strings.HasSuffix(stderr.String(), "]: two\n") })
	if out := stderr.String(); !strings.Contains(out, "syslog unavailable") {
		t.Fatalf("with syslog gone, stderr has:\n%s\nwant the warning and the line", out)
	}

	r2 := syslogtest.ListenAt(t, path)
	l.Log(Info("three"))
	r2.WaitText(t, "three", wait)
	if strings.Contains(stderr.String(), "three") {
		t.Errorf("line three went to stderr although syslog was back:\n%s", stderr.String())
	}
	for _, line := range append(r.Lines(), r2.Lines()...) {
		if line.Text == "two" {
			t.Errorf("line two reached a syslog that was gone: %q", line.Raw)
		}
	}
}

// TestConcurrentLog: many goroutines logging at once lose no line; each
// reaches syslog or, if syslog could not keep up, stderr.
func TestConcurrentLog(t *testing.T) {
	r := syslogtest.Listen(t)
	stderr := &syncBuffer{}
	l := newLogger(t, r, Options{fallbackTo: stderr})
	const workers, each = 4, 5
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if w%2 == 0 {
					l.Log(Up(fmt.Sprintf("p%d", w), i))
				} else {
					l.Log(PadminCommand(fmt.Sprint(i), fmt.Sprintf("p%d", w)))
				}
			}
		}()
	}
	wg.Wait()
	for w := range workers {
		for i := range each {
			text := Up(fmt.Sprintf("p%d", w), i).Text
			if w%2 != 0 {
				text = PadminCommand(fmt.Sprint(i), fmt.Sprintf("p%d", w)).Text
			}
			if strings.Contains(stderr.String(), "]: "+text+"\n") {
				continue
			}
			r.WaitText(t, text, wait)
		}
	}
}

// TestLogAfterClose: nothing is logged after Close, to syslog or stderr
// (pcheck's last line is its stop).
func TestLogAfterClose(t *testing.T) {
	r := syslogtest.Listen(t)
	stderr := &syncBuffer{}
	l := newLogger(t, r, Options{Stderr: stderr})
	l.Log(Info("before"))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l.Log(Info("late"))
	r.WaitText(t, "before", wait)
	marker(t, r)
	for _, line := range r.Lines() {
		if line.Text == "late" {
			t.Errorf("a line logged after Close reached syslog: %q", line.Raw)
		}
	}
	if strings.Contains(stderr.String(), "late") {
		t.Errorf("a line logged after Close reached stderr: %q", stderr.String())
	}
}

func TestNewInvalidOptions(t *testing.T) {
	tests := []struct {
		o    Options
		err  error
		text string
	}{
		{Options{Ident: "pcheck", Facility: "kern"}, ErrFacility, `"kern"`},
		{Options{Ident: "pcheck", Facility: "local8"}, ErrFacility, `"local8"`},
		{Options{Ident: ""}, ErrIdent, `""`},
		{Options{Ident: "p check"}, ErrIdent, `"p check"`},
		{Options{Ident: "pcheck", Network: "unixgram"}, ErrAddress, `"unixgram"`},
		{Options{Ident: "pcheck", Addr: "/dev/log"}, ErrAddress, `"/dev/log"`},
	}
	for _, tt := range tests {
		l, err := New(tt.o)
		if !errors.Is(err, tt.err) || !strings.Contains(err.Error(), tt.text) {
			t.Errorf("New(%+v) = %v, %v; want %v naming %s", tt.o, l, err, tt.err, tt.text)
		}
	}
}

func TestParseFacility(t *testing.T) {
	ok := map[string]Facility{
		"": FacilityDaemon, "daemon": FacilityDaemon, "DAEMON": FacilityDaemon, "user": FacilityUser,
		"local0": FacilityLocal0, "Local3": FacilityLocal3, "LOCAL7": FacilityLocal7,
	}
	for name, want := range ok {
		got, err := ParseFacility(name)
		if err != nil || got != want {
			t.Errorf("ParseFacility(%q) = %v, %v; want %v", name, got, err, want)
		}
		if name != "" && got.String() != strings.ToLower(name) {
			t.Errorf("Facility(%d).String() = %q; want %q", got, got.String(), strings.ToLower(name))
		}
	}
	for _, name := range []string{"kern", "local", "local8", "local10", "auth", " daemon"} {
		if _, err := ParseFacility(name); !errors.Is(err, ErrFacility) {
			t.Errorf("ParseFacility(%q) error %v; want ErrFacility", name, err)
		}
	}
}

func BenchmarkLog(b *testing.B) {
	r := syslogtest.Listen(b)
	l, err := New(Options{Ident: IdentPcheck, Network: "unixgram", Addr: r.Addr()})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	m := Up("httpd", 1234)
	b.ReportAllocs()
	for b.Loop() {
		l.Log(m)
	}
}

func BenchmarkLogNoSyslog(b *testing.B) {
	l, err := New(Options{Ident: IdentPcheck, Network: "unixgram", Addr: filepath.Join(b.TempDir(), "missing.sock"), Stderr: io.Discard})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	m := Up("httpd", 1234)
	for b.Loop() {
		l.Log(m)
	}
}
