package syslogtest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// RequireRsyslogEnv, when set in the environment (CI sets it), makes
// StartRsyslogd fail the test instead of skipping it where rsyslogd is not
// installed, so a missing package cannot pass unnoticed.
const RequireRsyslogEnv = "PCHECK_REQUIRE_RSYSLOG"

// rsyslogConf runs a private rsyslogd on rsyslog's stock settings, so
// that a test sees what a stock system logs: its imuxsock input parses the
// local syslog(3) format as it does for /dev/log (the special parser, the
// timestamp of reception, no host name in the message), and every message
// is written with three stock templates. The settings that are not
// rsyslog's defaults, none of them about the format:
//
//   - workDirectory: its state files go to the test's directory;
//   - SysSock.Use="off": it must not take /dev/log from the machine's own
//     syslog, only the test's socket;
//   - RateLimit.Interval="0": a test sends hundreds of lines within a
//     second (a restart script's output), which the stock limit (200 in
//     5 s per process) would cut, and a cut line would fail the test for a
//     reason that is not the format.
//
// It also reads UDP on a loopback port with imudp's stock settings, the
// network transport.
const rsyslogConf = `global(workDirectory="%[1]s")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="%[1]s/log.sock" RateLimit.Interval="0")
module(load="imudp")
input(type="imudp" Address="127.0.0.1" Port="%[2]d")
action(type="omfile" file="%[1]s/pri.log" template="RSYSLOG_SyslogProtocol23Format")
action(type="omfile" file="%[1]s/file.log" template="RSYSLOG_FileFormat")
action(type="omfile" file="%[1]s/traditional.log" template="RSYSLOG_TraditionalFileFormat")
`

// Rsyslog is a private rsyslogd started for one test.
type Rsyslog struct {
	// Dir holds its configuration and log files.
	Dir string
	// Socket is the unixgram socket it reads (give it to pcheck as
	// --syslog unixgram:<Socket>).
	Socket string
	// UDP is the loopback host:port it reads (--syslog udp:<UDP>).
	UDP string
}

// PriLog, FileLog and TraditionalLog are its three output files, in the
// stock templates RSYSLOG_SyslogProtocol23Format (with the <PRI>, so that
// facility and severity can be checked), RSYSLOG_FileFormat and
// RSYSLOG_TraditionalFileFormat.
func (r *Rsyslog) PriLog() string         { return filepath.Join(r.Dir, "pri.log") }
func (r *Rsyslog) FileLog() string        { return filepath.Join(r.Dir, "file.log") }
func (r *Rsyslog) TraditionalLog() string { return filepath.Join(r.Dir, "traditional.log") }

// Hostname is this machine's name as rsyslog records it in a local
// message: the host name up to its first dot (rsyslog drops the domain
// unless PreserveFQDN is on).
func Hostname(t testing.TB) string {
	t.Helper()
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	short, _, _ := strings.Cut(host, ".")
	return short
}

// TraditionalLine is the whole line RSYSLOG_TraditionalFileFormat writes
// for a local message: "Mmm dd hh:mm:ss host ident[pid]: text", the
// timestamp being the time of reception. CheckTraditional compares a line
// against it.
func TraditionalLine(stamp, host, ident string, pid int, text string) string {
	return fmt.Sprintf("%s %s %s[%d]: %s", stamp, host, ident, pid, text)
}

// CheckTraditional fails the test unless raw is, whole, the line
// RSYSLOG_TraditionalFileFormat writes for text from ident[pid] on this
// machine, received at a time within [from-1s, to+1s] (rsyslog's own
// clock, to the second).
func CheckTraditional(t testing.TB, raw, ident string, pid int, text string, from, to time.Time) {
	t.Helper()
	if len(raw) < len(time.Stamp) {
		t.Errorf("rsyslog line %q: too short", raw)
		return
	}
	stamp := raw[:len(time.Stamp)]
	if want := TraditionalLine(stamp, Hostname(t), ident, pid, text); raw != want {
		t.Errorf("rsyslog wrote\n\t%q\nwant\n\t%q", raw, want)
		return
	}
	checkStamp(t, raw, stamp, from, to)
}

// checkStamp fails the test unless stamp (time.Stamp, local time) is within
// [from-1s, to+1s].
func checkStamp(t testing.TB, raw, stamp string, from, to time.Time) {
	t.Helper()
	ts, err := time.ParseInLocation(time.Stamp, stamp, time.Local)
	if err != nil {
		t.Errorf("rsyslog line %q: timestamp %q: %v", raw, stamp, err)
		return
	}
	// time.Stamp has no year: take the one nearest to from.
	ts = ts.AddDate(from.Year(), 0, 0)
	if ts.After(from.AddDate(0, 6, 0)) {
		ts = ts.AddDate(-1, 0, 0)
	}
	if ts.Before(from.Truncate(time.Second).Add(-time.Second)) || ts.After(to.Add(time.Second)) {
		t.Errorf("rsyslog line %q: timestamp %s not within [%s, %s]", raw, ts.Format(time.StampMilli), from.Format(time.StampMilli), to.Format(time.StampMilli))
	}
}

// CheckFileFormat fails the test unless raw is, whole, the line
// RSYSLOG_FileFormat writes for text from ident[pid] on this machine:
// "RFC3339 host ident[pid]: text", received within [from-1s, to+1s].
func CheckFileFormat(t testing.TB, raw, ident string, pid int, text string, from, to time.Time) {
	t.Helper()
	stamp, _, _ := strings.Cut(raw, " ")
	if want := fmt.Sprintf("%s %s %s[%d]: %s", stamp, Hostname(t), ident, pid, text); raw != want {
		t.Errorf("rsyslog wrote\n\t%q\nwant\n\t%q", raw, want)
		return
	}
	checkRFC3339(t, raw, stamp, from, to)
}

// checkRFC3339 fails the test unless stamp (RFC 3339) is within
// [from-1s, to+1s].
func checkRFC3339(t testing.TB, raw, stamp string, from, to time.Time) {
	t.Helper()
	ts, err := time.Parse(time.RFC3339Nano, stamp)
	if err != nil {
		t.Errorf("rsyslog line %q: timestamp %q: %v", raw, stamp, err)
		return
	}
	if ts.Before(from.Add(-time.Second)) || ts.After(to.Add(time.Second)) {
		t.Errorf("rsyslog line %q: timestamp %s not within [%s, %s]", raw, ts, from, to)
	}
}

// ProtocolLine is the whole line RSYSLOG_SyslogProtocol23Format writes for
// a local message with the given <PRI>: "<PRI>1 RFC3339 host ident pid - -
// text", where rsyslog keeps the space after the tag's colon, so that two
// spaces stand before text. CheckProtocol compares a line against it.
func ProtocolLine(pri int, stamp, host, ident string, pid int, text string) string {
	return fmt.Sprintf("<%d>1 %s %s %s %d - -  %s", pri, stamp, host, ident, pid, text)
}

// CheckProtocol fails the test unless raw is, whole, the line
// RSYSLOG_SyslogProtocol23Format writes for text from ident[pid] on this
// machine at facility and severity, received within [from-1s, to+1s].
func CheckProtocol(t testing.TB, raw string, facility, severity int, ident string, pid int, text string, from, to time.Time) {
	t.Helper()
	prefix := fmt.Sprintf("<%d>1 ", facility<<3|severity)
	stamp, _, _ := strings.Cut(strings.TrimPrefix(raw, prefix), " ")
	if want := ProtocolLine(facility<<3|severity, stamp, Hostname(t), ident, pid, text); raw != want {
		t.Errorf("rsyslog wrote\n\t%q\nwant\n\t%q", raw, want)
		return
	}
	checkRFC3339(t, raw, stamp, from, to)
}

// StartRsyslogd starts rsyslogd in the foreground on a private
// configuration; it is stopped when the test ends. Without rsyslogd the
// test is skipped, or fails when RequireRsyslogEnv is set.
func StartRsyslogd(t testing.TB) *Rsyslog {
	t.Helper()
	const wait = 10 * time.Second
	bin, err := exec.LookPath("rsyslogd")
	if err != nil {
		if os.Getenv(RequireRsyslogEnv) != "" {
			t.Fatalf("rsyslogd not installed but %s is set (apt-get install -y rsyslog)", RequireRsyslogEnv)
		}
		t.Skip("rsyslogd not installed (apt-get install -y rsyslog)")
	}
	dir, err := os.MkdirTemp("", "rsyslog") // short: the socket path must fit sun_path
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	conf := filepath.Join(dir, "rsyslog.conf")
	port := freeUDPPort(t)
	if err := os.WriteFile(conf, fmt.Appendf(nil, rsyslogConf, dir, port), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(bin, "-n", "-f", conf, "-i", filepath.Join(dir, "rsyslogd.pid"))
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(wait):
			cmd.Process.Kill()
			<-exited
		}
	})

	r := &Rsyslog{Dir: dir, Socket: filepath.Join(dir, "log.sock"), UDP: fmt.Sprintf("127.0.0.1:%d", port)}
	deadline := time.Now().Add(wait)
	for {
		if _, err := os.Stat(r.Socket); err == nil {
			return r
		} else if !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		select {
		case err := <-exited:
			t.Fatalf("rsyslogd exited before creating %s: %v\n%s", r.Socket, err, out.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("rsyslogd did not create %s within %v\n%s", r.Socket, wait, out.String())
		}
	}
}

// freeUDPPort returns a loopback UDP port that was free a moment ago.
func freeUDPPort(t testing.TB) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}
