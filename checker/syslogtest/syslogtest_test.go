package syslogtest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	gsyslog "github.com/hashicorp/go-syslog"
)

const wait = 10 * time.Second

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want Line
	}{
		{
			name: "local format",
			raw:  "<27>Nov  5 17:00:00 pcheck[123]: ('httpd' ,pid=42) Up\n",
			want: Line{Facility: 3, Severity: 3, Timestamp: "Nov  5 17:00:00", Ident: "pcheck", Pid: 123, Text: "('httpd' ,pid=42) Up"},
		},
		{
			name: "network format",
			raw:  "<158>2026-11-25T17:00:00+09:00 host1 padmin[7]: Command execute. [stop] pfile='/etc/p: x'\n",
			want: Line{Facility: 19, Severity: 6, Timestamp: "2026-11-25T17:00:00+09:00", Host: "host1", Ident: "padmin", Pid: 7, Text: "Command execute. [stop] pfile='/etc/p: x'"},
		},
		{
			name: "rsyslog file format",
			raw:  "2026-11-25T17:00:00.000000+00:00 host pcheck[123]: Killed Process: pid= 9",
			want: Line{Facility: -1, Severity: -1, Timestamp: "2026-11-25T17:00:00.000000+00:00", Host: "host", Ident: "pcheck", Pid: 123, Text: "Killed Process: pid= 9"},
		},
		{
			name: "rsyslog traditional format",
			raw:  "Nov 25 17:00:00 host pcheck[123]:  two  spaces ",
			want: Line{Facility: -1, Severity: -1, Timestamp: "Nov 25 17:00:00", Host: "host", Ident: "pcheck", Pid: 123, Text: " two  spaces "},
		},
		{
			name: "tag without pid",
			raw:  "2026-11-25T17:00:00.000000+00:00 vm rsyslogd: [origin software=\"rsyslogd\"] start",
			want: Line{Facility: -1, Severity: -1, Timestamp: "2026-11-25T17:00:00.000000+00:00", Host: "vm", Ident: "rsyslogd", Text: "[origin software=\"rsyslogd\"] start"},
		},
		{
			name: "rsyslog protocol-23 format",
			raw:  "<27>1 2026-11-25T17:00:00.000000+00:00 vm pcheck 123 - -   two  spaces \n",
			want: Line{Facility: 3, Severity: 3, Timestamp: "2026-11-25T17:00:00.000000+00:00", Host: "vm", Ident: "pcheck", Pid: 123, Text: " two  spaces "},
		},
		{
			name: "rsyslog protocol-23 format, no procid, empty text",
			raw:  "<14>1 2026-11-25T17:00:00.000000+00:00 vm pcheck - - - ",
			want: Line{Facility: 1, Severity: 6, Timestamp: "2026-11-25T17:00:00.000000+00:00", Host: "vm", Ident: "pcheck", Text: ""},
		},
		{
			name: "empty text",
			raw:  "<14>Nov 25 17:00:00 pcheck[1]:",
			want: Line{Facility: 1, Severity: 6, Timestamp: "Nov 25 17:00:00", Ident: "pcheck", Pid: 1, Text: ""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.raw)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.raw, err)
			}
			tt.want.Raw = strings.TrimSuffix(tt.raw, "\n")
			if got != tt.want {
				t.Errorf("Parse(%q)\n got %+v\nwant %+v", tt.raw, got, tt.want)
			}
		})
	}
}

func TestParseMalformed(t *testing.T) {
	for _, raw := range []string{
		"",
		"hello",
		"<999>Nov 25 17:00:00 pcheck[1]: x",
		"<27>Nov 25 17:00:00",
		"<27>2026-13-45T00:00:00Z host pcheck[1]: x",
		"<27>Nov 25 17:00:00 host tag-without-colon text",
		"<27>Nov 25 17:00:00 pcheck[x]: text",
		"<27>Nov 25 17:00:00 pcheck[1: text",
	} {
		if l, err := Parse(raw); !errors.Is(err, ErrMalformed) {
			t.Errorf("Parse(%q) = %+v, %v; want ErrMalformed", raw, l, err)
		}
	}
}

func TestListenGoSyslog(t *testing.T) {
	r := Listen(t)
	w, err := gsyslog.DialLogger("unixgram", r.Addr(), gsyslog.LOG_INFO, "LOCAL3", "pcheck")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.WriteLevel(gsyslog.LOG_ERR, []byte("Process ['a',pid=1] Down")); err != nil {
		t.Fatal(err)
	}
	got := r.WaitText(t, "Process ['a',pid=1] Down", wait)
	host, _ := os.Hostname()
	if got.Facility != 19 || got.Severity != 3 || got.Ident != "pcheck" || got.Pid != os.Getpid() || got.Host != host {
		t.Errorf("got %+v; want local3.err from pcheck[%d] on %s", got, os.Getpid(), host)
	}
}

// send writes raw datagrams to the receiver's socket.
func send(t *testing.T, r *Receiver, raws ...string) {
	t.Helper()
	c, err := net.Dial("unixgram", r.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, raw := range raws {
		if _, err := c.Write([]byte(raw)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestWaitConsumesLines(t *testing.T) {
	r := Listen(t)
	send(t, r,
		"<30>Nov 25 17:00:00 pcheck[1]: same",
		"<30>Nov 25 17:00:00 pcheck[2]: same",
		"not syslog at all",
	)
	a := r.WaitText(t, "same", wait)
	b := r.WaitText(t, "same", wait)
	if a.Pid != 1 || b.Pid != 2 {
		t.Errorf("two waits for the same text returned pids %d and %d; want 1 then 2", a.Pid, b.Pid)
	}
	bad := r.WaitText(t, "not syslog at all", wait)
	if bad.Facility != -1 || bad.Raw != "not syslog at all" {
		t.Errorf("malformed datagram kept as %+v", bad)
	}
	if n := len(r.Lines()); n != 3 {
		t.Errorf("Lines() has %d lines; want 3", n)
	}
}

func TestWaitBlocksUntilLineArrives(t *testing.T) {
	r := Listen(t)
	got := make(chan Line, 1)
	ftb := &fatalTB{TB: t}
	go func() {
		got <- r.Wait(ftb, func(l Line) bool { return l.Pid == 5 }, wait)
	}()
	send(t, r, "<30>Nov 25 17:00:00 pcheck[5]: late")
	select {
	case l := <-got:
		if l.Text != "late" {
			t.Errorf("Wait returned %+v", l)
		}
	case <-time.After(2 * wait):
		ftb.mu.Lock()
		defer ftb.mu.Unlock()
		t.Fatalf("Wait did not return after the line arrived: %s", ftb.msg)
	}
}

// fatalTB records Fatalf instead of failing the real test.
type fatalTB struct {
	testing.TB
	mu  sync.Mutex
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.msg = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

func TestWaitTimeoutListsLines(t *testing.T) {
	r := Listen(t)
	send(t, r, "<30>Nov 25 17:00:00 pcheck[1]: something else")
	r.WaitText(t, "something else", wait)

	ftb := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.WaitText(ftb, "never sent", 50*time.Millisecond)
	}()
	<-done
	ftb.mu.Lock()
	defer ftb.mu.Unlock()
	if !strings.Contains(ftb.msg, "no matching line") || !strings.Contains(ftb.msg, "pcheck[1]: something else") {
		t.Errorf("timeout message %q does not list the lines seen", ftb.msg)
	}
}

func TestCloseAndListenAgain(t *testing.T) {
	r := Listen(t)
	path := r.Addr()
	r.Close()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket %s still there after Close: %v", path, err)
	}
	r2 := ListenAt(t, path)
	send(t, r2, "<30>Nov 25 17:00:00 pcheck[1]: again")
	r2.WaitText(t, "again", wait)
}

func TestFileTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "messages")
	r := FileTail(t, path) // the file does not exist yet
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("Nov 25 17:00:00 host pcheck[3]: first\n2026-11-25T17:00:00.000000+00:00 host pcheck[3]: sec"); err != nil {
		t.Fatal(err)
	}
	first := r.WaitText(t, "first", wait)
	if first.Host != "host" || first.Pid != 3 || first.Facility != -1 {
		t.Errorf("first line parsed as %+v", first)
	}
	// The second line is complete only once its newline is written.
	if _, err := f.WriteString("ond\n"); err != nil {
		t.Fatal(err)
	}
	second := r.WaitText(t, "second", wait)
	if second.Timestamp != "2026-11-25T17:00:00.000000+00:00" {
		t.Errorf("second line parsed as %+v", second)
	}
	for _, l := range r.Lines() {
		if l.Text == "sec" {
			t.Errorf("a partial line was parsed: %+v", l)
		}
	}
}

// TestFillBlocksWriters: a filled receiver takes no datagram (a writer
// would block) until Resume, and then receives what was queued, the exact
// bytes kept in Datagram.
func TestFillBlocksWriters(t *testing.T) {
	r := Listen(t)
	n := r.Fill(t)
	c, err := net.Dial("unixgram", r.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := c.Write([]byte("<30>Nov 25 17:00:00 pcheck[1]: blocked\n")); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write to a filled receiver: %v; want a timeout", err)
	}
	if got := len(r.Lines()); got != 0 {
		t.Fatalf("a paused receiver read %d datagrams", got)
	}
	r.Resume()
	c.SetWriteDeadline(time.Now().Add(wait))
	if _, err := c.Write([]byte("<30>Nov 25 17:00:00 pcheck[1]: taken\n")); err != nil {
		t.Fatal(err)
	}
	l := r.WaitText(t, "taken", wait)
	if l.Datagram != "<30>Nov 25 17:00:00 pcheck[1]: taken\n" || l.Raw != strings.TrimSuffix(l.Datagram, "\n") {
		t.Errorf("datagram kept as %q, raw %q", l.Datagram, l.Raw)
	}
	fill := 0
	for _, l := range r.Lines() {
		if l.Text == FillText {
			fill++
		}
	}
	if fill != n {
		t.Errorf("%d fill datagrams received after Resume; Fill queued %d", fill, n)
	}
}
