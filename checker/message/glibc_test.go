package message

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pcheck/pcheck/checker/syslogtest"
)

// devLogEnv makes the test binary a child that logs one line through a
// Logger on the default socket, /dev/log (TestLocalFormatMatchesGlibc).
const devLogEnv = "MESSAGE_TEST_CHILD_DEVLOG"

// glibcLogger is a C program that sends one line as glibc's syslog(3)
// does: openlog(ident, LOG_PID, facility); syslog(priority, "%s", text).
const glibcLogger = `#include <stdlib.h>
#include <syslog.h>
int main(int argc, char **argv) {
	if (argc != 5) return 2;
	openlog(argv[1], LOG_PID, atoi(argv[2]) << 3);
	syslog(atoi(argv[3]), "%s", argv[4]);
	closelog();
	return 0;
}
`

// childDevLog logs the line in $MESSAGE_TEST_CHILD_DEVLOG (facility,
// severity, text) through the local syslog, /dev/log.
func childDevLog(spec string) int {
	var fac, sev int
	var text string
	if _, err := fmt.Sscanf(spec, "%d %d %q", &fac, &sev, &text); err != nil {
		fmt.Fprintln(os.Stderr, "child: bad spec:", err)
		return 1
	}
	l, err := New(Options{Ident: IdentPcheck, Facility: Facility(fac).String()})
	if err != nil {
		fmt.Fprintln(os.Stderr, "New:", err)
		return 1
	}
	l.Log(Message{Priority: Priority(sev), Text: text})
	if err := l.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "Close:", err)
		return 1
	}
	return 0
}

// requireTool finds a program the test needs, skipping the test without
// it (failing it where PCHECK_REQUIRE_RSYSLOG asks for every syslog test).
func requireTool(t *testing.T, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv(syslogtest.RequireRsyslogEnv) != "" {
			t.Fatalf("%s not installed but %s is set (apt-get install -y %s)", name, syslogtest.RequireRsyslogEnv, pkg)
		}
		t.Skipf("%s not installed (apt-get install -y %s)", name, pkg)
	}
	return path
}

// normalise replaces the timestamp and the pid of a local-format datagram,
// the two fields that differ between two senders.
var localHeader = regexp.MustCompile(`^(<\d+>)[A-Z][a-z]{2} [ 1-3]\d \d\d:\d\d:\d\d ([^\[ ]+)\[\d+\]: `)

func normalise(raw string) string {
	return localHeader.ReplaceAllString(raw, "${1}TIME ${2}[PID]: ")
}

// TestLocalFormatMatchesGlibc: what a Logger sends to a local socket is
// byte for byte what glibc's syslog(3) sends, timestamp and pid aside,
// both to /dev/log (the default) and to a socket named by --syslog
// unixgram:PATH. glibc and a child of this test run in a private mount
// namespace in which the test's socket is /dev/log.
func TestLocalFormatMatchesGlibc(t *testing.T) {
	gcc := requireTool(t, "gcc", "gcc libc6-dev")
	unshare := requireTool(t, "unshare", "util-linux")
	if os.Geteuid() != 0 {
		if os.Getenv(syslogtest.RequireRsyslogEnv) != "" {
			t.Fatal("a private mount namespace needs root")
		}
		t.Skip("a private mount namespace needs root")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	src, prog := filepath.Join(work, "logger.c"), filepath.Join(work, "logger")
	if err := os.WriteFile(src, []byte(glibcLogger), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(gcc, "-o", prog, src).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	dev, err := os.MkdirTemp("", "devlog") // short: the socket path must fit sun_path
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dev) })
	r := syslogtest.ListenAt(t, filepath.Join(dev, "log"))

	for _, tt := range []struct {
		facility Facility
		severity Priority
		text     string
	}{
		{FacilityDaemon, PriorityErr, "Process ['/usr/sbin/httpd',pid=1234] Down"},
		{FacilityLocal3, PriorityNotice, "Command execute. [stop] pfile='/etc/p: x'"},
		{FacilityUser, PriorityInfo, " two  spaces, a tab\tand 100% "},
	} {
		spec := fmt.Sprintf("%d %d %q", tt.facility, tt.severity, tt.text)
		// In the namespace /dev is the directory of the test's socket, so
		// both programs' /dev/log is that socket.
		cmd := exec.Command(unshare, "--mount", "--propagation", "private", "sh", "-c",
			`mount --bind "$1" /dev && "$2" pcheck "$3" "$4" "$5" && exec "$6" -test.run='^$'`,
			"sh", dev, prog, fmt.Sprint(int(tt.facility)), fmt.Sprint(int(tt.severity)), tt.text, exe)
		cmd.Env = append(os.Environ(), devLogEnv+"="+spec)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", cmd, err, out)
		}
		l, err := New(Options{Ident: IdentPcheck, Facility: tt.facility.String(), Network: "unixgram", Addr: r.Addr()})
		if err != nil {
			t.Fatal(err)
		}
		l.Log(Message{Priority: tt.severity, Text: tt.text})
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}

		deadline := time.Now().Add(wait)
		for len(r.Lines()) < 3 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond) // polling with a deadline
		}
		got := r.Lines()
		if len(got) != 3 {
			t.Fatalf("%q: %d datagrams received, want 3 (glibc, /dev/log, unixgram:PATH): %q", tt.text, len(got), got)
		}
		glibc := got[0].Datagram
		if want := fmt.Sprintf("<%d>", int(tt.facility)<<3|int(tt.severity)); normalise(glibc) != want+"TIME pcheck[PID]: "+tt.text {
			t.Fatalf("glibc sent %q; the test expects %sMmm dd hh:mm:ss pcheck[pid]: %s", glibc, want, tt.text)
		}
		for i, via := range []string{"/dev/log", "unixgram:" + r.Addr()} {
			if normalise(got[i+1].Datagram) != normalise(glibc) {
				t.Errorf("%s: pcheck sent\n\t%q\nglibc sent\n\t%q", via, got[i+1].Datagram, glibc)
			}
		}
		r.Close()
		r = syslogtest.ListenAt(t, filepath.Join(dev, "log"))
	}
}

// TestUnixStreamFraming: on a stream socket (--syslog unix:PATH) each line
// is sent in the local format and ended by a NUL, as glibc does when
// /dev/log is a stream socket.
func TestUnixStreamFraming(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- err.Error()
			return
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(wait))
		b, _ := io.ReadAll(c) // until the Logger closes the connection
		got <- string(b)
	}()
	l, err := New(Options{Ident: IdentPcheck, Facility: "local3", Network: "unix", Addr: path, fallbackTo: &syncBuffer{}})
	if err != nil {
		t.Fatal(err)
	}
	l.Log(Down("httpd", 42))
	l.Log(Up("httpd", 43))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	stream := <-got
	records := strings.Split(stream, "\x00")
	want := []string{"<155>TIME pcheck[PID]: Process ['httpd',pid=42] Down", "<158>TIME pcheck[PID]: ('httpd' ,pid=43) Up", ""}
	if len(records) != len(want) {
		t.Fatalf("stream %q: %d records; want 2, each ended by a NUL", stream, len(records)-1)
	}
	for i := range want {
		if normalise(records[i]) != want[i] {
			t.Errorf("record %d: %q; want %q", i, records[i], want[i])
		}
	}
}
