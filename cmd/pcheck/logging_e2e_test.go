package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pcheck/pcheck/checker/syslogtest"
)

// chattyScript makes the e2e restart script print n lines before it starts
// the service, as a verbose init script does.
func (e *e2e) chattyScript(n int) {
	e.t.Helper()
	script := filepath.Join(e.dir, "restart.sh")
	b, err := os.ReadFile(script)
	if err != nil {
		e.t.Fatal(err)
	}
	loop := fmt.Sprintf("i=0; while [ $i -lt %d ]; do echo \"chatty line $i\"; i=$((i+1)); done\ncase", n)
	if err := os.WriteFile(script, []byte(strings.Replace(string(b), "\ncase", "\n"+loop, 1)), 0o755); err != nil {
		e.t.Fatal(err)
	}
}

// waitStderr polls pcheck's stderr until text occurs n times; it returns
// false after timeout.
func (r *running) waitStderr(text string, n int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for strings.Count(r.stderr.String(), text) < n {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond) // polling with a deadline
	}
	return true
}

// TestDeafSyslogDoesNotDelayRestart: with a syslog receiver that is there
// but reads nothing (its queue full), a restart script that prints 300
// lines does not leave the entry blind: the service it started, killed at
// once, is restarted again within seconds.
func TestDeafSyslogDoesNotDelayRestart(t *testing.T) {
	t.Parallel()
	e := setup(t, "start", 5, "continue")
	e.chattyScript(300)
	pid := e.startService()
	p := e.pcheck(e.pfile)
	e.wait(fmt.Sprintf("('%s' ,pid=%d) Up", self, pid))
	e.log.Fill(t)

	syscall.Kill(pid, syscall.SIGKILL)
	second := e.servicePid(pid) // started by the script, after its 300 lines
	killed := time.Now()
	syscall.Kill(second, syscall.SIGKILL)
	try := fmt.Sprintf("]: Try to restart ('%s')\n", self)
	const bound = 3 * time.Second
	if !p.waitStderr(try, 2, bound) {
		t.Fatalf("no second %q within %v of killing the restarted service (pid %d); stderr:\n%s", strings.TrimSpace(try), bound, second, tail(p.stderr.String(), 20))
	}
	t.Logf("second Try to restart %v after the kill", time.Since(killed).Round(time.Millisecond))
	if n := strings.Count(p.stderr.String(), "]: restart script ('"+self+"'): chatty line "); n < 300 {
		t.Errorf("stderr has %d lines of the script's output; want its 300", n)
	}

	// The receiver reads again: it gets the lines queued for it, or a
	// count of those it lost.
	e.log.Resume()
	tryText := fmt.Sprintf("Try to restart ('%s')", self)
	e.log.WaitText(t, tryText, 30*time.Second)
	e.log.Wait(t, func(l syslogtest.Line) bool {
		return l.Text == tryText || l.Ident == "pcheck" && strings.HasSuffix(l.Text, " syslog messages dropped")
	}, 30*time.Second)
	// The second restart starts a third service after its 300 lines:
	// wait for it, so that the cleanup kills it rather than leave it.
	e.servicePid(second)
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "")
}

// TestDaemonFallbackLog: a detached pcheck (-D, no stderr) with no syslog
// socket at all writes its lines to the fallback log, append-only, in the
// traditional syslog file format, and never through a symlink.
func TestDaemonFallbackLog(t *testing.T) {
	t.Parallel()
	e := setup(t, "start", 3, "continue")
	pid := e.startService()
	logPath := filepath.Join(e.dir, "pcheck.log")
	missing := filepath.Join(e.dir, "no-syslog.sock")
	from := time.Now()
	p := e.pcheck("--syslog", "unixgram:"+missing, "--fallback-log", logPath, "-D", e.pfile) // the last --syslog wins
	if st := p.status(t); st != 0 {
		t.Fatalf("-D exit status %d; stderr:\n%s", st, p.stderr)
	}
	file := syslogtest.FileTail(t, logPath)
	up := file.WaitText(t, fmt.Sprintf("('%s' ,pid=%d) Up", self, pid), 30*time.Second)
	child := up.Pid
	if child == 0 || child == p.cmd.Process.Pid {
		t.Fatalf("Up logged by pid %d, want the detached pcheck", child)
	}
	t.Cleanup(func() { syscall.Kill(child, syscall.SIGKILL) })
	syscall.Kill(child, syscall.SIGTERM)
	stop := file.WaitText(t, "pcheck stop. pfile='"+e.pfile+"'", 30*time.Second)
	to := time.Now()

	st, err := os.Lstat(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode() != 0o640 {
		t.Errorf("%s has mode %v, want -rw-r-----", logPath, st.Mode())
	}
	lines := file.Lines()
	warn := "syslog unavailable, logging to " + logPath + ": dialing syslog unixgram " + missing + ": "
	if len(lines) == 0 || !strings.HasPrefix(lines[0].Text, warn) {
		t.Errorf("the first line of %s is not the warning %q...: %v", logPath, warn, lines)
	}
	for _, l := range []syslogtest.Line{up, stop} {
		syslogtest.CheckTraditional(t, l.Raw, "pcheck", child, l.Text, from, to)
	}
	if last := lines[len(lines)-1]; last.Text != stop.Text {
		t.Errorf("the last line of %s is %q, want the stop", logPath, last.Raw)
	}
}

// TestStopIsLastLine: stopped while a slow receiver is still taking a
// restart script's output, pcheck flushes it and its stop is the last line
// the receiver gets.
func TestStopIsLastLine(t *testing.T) {
	t.Parallel()
	e := setup(t, "start", 3, "continue")
	e.chattyScript(100)
	pid := e.startService()
	p := e.pcheck(e.pfile)
	e.wait(fmt.Sprintf("('%s' ,pid=%d) Up", self, pid))
	e.log.SetReadDelay(5 * time.Millisecond)
	syscall.Kill(pid, syscall.SIGKILL)
	newPid := e.servicePid(pid)
	if !p.waitStderr(fmt.Sprintf("]: ('%s' ,pid=%d) Up\n", self, newPid), 1, 30*time.Second) {
		t.Fatalf("no Up of the restarted service; stderr:\n%s", tail(p.stderr.String(), 20))
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if st := p.status(t); st != 0 {
		t.Fatalf("exit status %d after SIGTERM; stderr:\n%s", st, tail(p.stderr.String(), 20))
	}
	stop := "pcheck stop. pfile='" + e.pfile + "'"
	e.log.SetReadDelay(0)
	e.wait(stop)
	// pcheck has exited: a datagram sent now comes after all of its own.
	c, err := net.Dial("unixgram", e.log.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("<30>Jan  1 00:00:00 test: marker")); err != nil {
		t.Fatal(err)
	}
	e.wait("marker")
	lines := e.log.Lines()
	if n := len(lines); lines[n-2].Text != stop {
		t.Errorf("the last line pcheck sent is %q, want its stop", lines[n-2].Raw)
	}
	if n := strings.Count(p.stderr.String(), "chatty line "); n != 100 {
		t.Errorf("%d lines of the script's output on stderr, want 100", n)
	}
}
