package daemon

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pcheck/pcheck/checker/pidlock"
	"github.com/pcheck/pcheck/checker/state"
	"github.com/pcheck/pcheck/checker/syslogtest"
)

// The exact product strings, written out here rather than taken from the
// catalogue, so that a change of wording there fails here.
func upLine(pid int) string   { return fmt.Sprintf("('%s' ,pid=%d) Up", bin, pid) }
func downLine(pid int) string { return fmt.Sprintf("Process ['%s',pid=%d] Down", bin, pid) }

var (
	tryLine     = fmt.Sprintf("Try to restart ('%s')", bin)
	pidFailLine = fmt.Sprintf("Set pid fail ('%s')", bin)
)

// TestKillRestartStop: an adopted process is not restarted; SIGKILL gives
// the exact Down, Try to restart and Up lines, at their priorities, from
// pcheck's pid; SIGTERM stops pcheck with status 0 and leaves the process
// running.
func TestKillRestartStop(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := newService(t, e.dir, "a", "")
	pid := s.start()
	pf := filepath.Join(e.dir, "a.pf")
	writeFile(t, pf, pfileHead+s.entry(""))
	p := e.start(nil, pf)

	start := e.wait("pcheck start. pfile='" + pf + "'")
	if start.Ident != "pcheck" || start.Pid != p.pid() || start.Facility != 3 {
		t.Fatalf("start line = %+v, want ident pcheck, pid %d, facility daemon", start, p.pid())
	}
	up := e.wait(upLine(pid))
	if up.Severity != 6 {
		t.Fatalf("Up severity %d, want info (6)", up.Severity)
	}
	if len(s.callReasons()) != 1 {
		t.Fatal("an adopted process was restarted")
	}

	syscall.Kill(pid, syscall.SIGKILL)
	if l := e.wait(downLine(pid)); l.Severity != 3 {
		t.Fatalf("Down severity %d, want err (3)", l.Severity)
	}
	if l := e.wait(tryLine); l.Severity != 5 {
		t.Fatalf("Try to restart severity %d, want notice (5)", l.Severity)
	}
	newPid := s.waitPid(pid)
	e.wait(upLine(newPid))
	if r := s.callReasons(); len(r) != 2 || r[1] != "down" {
		t.Fatalf("script reasons = %v", r)
	}

	p.stop(t, syscall.SIGTERM)
	e.wait("pcheck stop. pfile='" + pf + "'")
	if !alive(newPid) {
		t.Fatal("SIGTERM killed the monitored process")
	}
	// The lock is released: the pid file is gone.
	if _, err := os.Stat(filepath.Join(e.state, state.Name(pf)+".pid")); !os.IsNotExist(err) {
		t.Fatalf("pid file left after stop: %v", err)
	}
	// In the foreground, messages are also on stderr.
	if !strings.Contains(p.stderr.String(), downLine(pid)) {
		t.Fatalf("stderr lacks the Down line:\n%s", p.stderr)
	}
}

// TestZombie: a watched process that its parent does not reap is Down and
// restarted.
func TestZombie(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := newService(t, e.dir, "a", "")
	parentTag := tagFor(t, "parent")
	t.Cleanup(func() { killTagged(parentTag) })
	ps := newService(t, e.dir, "p", fmt.Sprintf(`DAEMON_TEST_ROLE=parent CHILD_TAG='%s' "$BIN" parent '%s' </dev/null >/dev/null 2>&1 &`, s.tag, parentTag))
	if out, err := execOut(ps.script); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	pid := s.waitPid(0)
	pf := filepath.Join(e.dir, "a.pf")
	writeFile(t, pf, pfileHead+s.entry(""))
	e.start(nil, pf)
	e.wait(upLine(pid))
	syscall.Kill(pid, syscall.SIGKILL)
	e.wait(downLine(pid))
	e.wait(tryLine)
	e.wait(upLine(s.waitPid(pid)))
}

// TestScriptFailures: a script that exits non-zero but starts the process
// is a success with its status logged; one that hangs is killed after
// RestartTimeout (status=timeout); one that starts nothing is Set pid
// fail. All are counted.
func TestScriptFailures(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bad := newService(t, e.dir, "bad", startService+"\necho started with a complaint\nexit 4")
	hang := newService(t, e.dir, "hang", "exec sleep 600")
	none := newService(t, e.dir, "none", "true")
	pf := filepath.Join(e.dir, "a.pf")
	writeFile(t, pf, pfileHead+bad.entry("")+hang.entry("timeout=1 retry=1")+none.entry("retry=1"))
	e.start(nil, pf)

	e.wait(fmt.Sprintf("Restart script failed ('%s') status=4", bin))
	e.wait(fmt.Sprintf("restart script ('%s'): started with a complaint", bin))
	e.wait(upLine(bad.waitPid(0)))
	e.wait(fmt.Sprintf("Restart script failed ('%s') status=timeout", bin))
	// hang and none each: one attempt, then retry over.
	e.wait(fmt.Sprintf("Retry over ('%s') action=continue", bin))
	e.wait(fmt.Sprintf("Retry over ('%s') action=continue", bin))
	// Set pid fail: at start for all three, and after none's attempt.
	if n := e.count(pidFailLine); n != 4 {
		t.Fatalf("Set pid fail x%d, want 4:\n%v", n, e.log.Lines())
	}
	if len(hang.callReasons()) != 1 || len(none.callReasons()) != 1 {
		t.Fatalf("calls: hang %v, none %v", hang.callReasons(), none.callReasons())
	}
}

// TestRetryOverActions: continue keeps the other processes monitored;
// shutdown exits 0; exit exits 3.
func TestRetryOverActions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		action string
		status int
	}{{"continue", -1}, {"shutdown", 0}, {"exit", 3}} {
		t.Run(tc.action, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			none := newService(t, e.dir, "none", "true")
			good := newService(t, e.dir, "good", "")
			goodPid := good.start()
			pf := filepath.Join(e.dir, "a.pf")
			writeFile(t, pf, pfileHead+"RetryCount 1\nretry_over_action "+tc.action+"\n"+none.entry("")+good.entry(""))
			p := e.start(nil, pf)
			e.wait(upLine(goodPid))
			e.wait(fmt.Sprintf("Retry over ('%s') action=%s", bin, tc.action))
			if tc.status >= 0 {
				if st := p.wait(); st != tc.status {
					t.Fatalf("exit status %d, want %d; stderr:\n%s", st, tc.status, p.stderr)
				}
				if !alive(goodPid) {
					t.Fatal("the other process was killed")
				}
				return
			}
			// continue: the other process is still watched.
			syscall.Kill(goodPid, syscall.SIGKILL)
			e.wait(downLine(goodPid))
			e.wait(upLine(good.waitPid(goodPid)))
		})
	}
}

// TestCountsSurviveRestart: the attempts made by one pcheck count for the
// next one on the same pfile.
func TestCountsSurviveRestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	none := newService(t, e.dir, "none", "true")
	pf := filepath.Join(e.dir, "a.pf")
	writeFile(t, pf, pfileHead+"RetryCount 2\nretry_over_action exit\n"+none.entry(""))
	p := e.start(nil, pf)
	e.wait(tryLine)
	p.stop(t, syscall.SIGTERM)
	p2 := e.start(nil, pf)
	if st := p2.wait(); st != 3 {
		t.Fatalf("second pcheck exit status %d, want 3; stderr:\n%s", st, p2.stderr)
	}
	// Two attempts in all, whichever pcheck made them.
	if n := e.count(tryLine); n != 2 {
		t.Fatalf("%d restart attempts in all, want 2 (RetryCount)", n)
	}
	waitFor(t, "the restart scripts", func() bool { return len(none.callReasons()) == 2 })
}

// TestSecondInstanceAndStaleLock: a second pcheck on the same pfile is
// refused naming the first's pid; a pid file left by a dead pcheck is
// taken over; --force stops a live one and takes over.
func TestSecondInstanceAndStaleLock(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := newService(t, e.dir, "a", "")
	pid := s.start()
	pf := filepath.Join(e.dir, "a.pf")
	writeFile(t, pf, pfileHead+s.entry(""))

	// A stale pid file: no process holds its lock.
	if err := os.MkdirAll(e.state, 0o755); err != nil {
		t.Fatal(err)
	}
	lockPath := filepath.Join(e.state, state.Name(pf)+".pid")
	writeFile(t, lockPath, "999999\n")
	first := e.start(nil, pf)
	e.wait(fmt.Sprintf("pfile '%s': stale pid file of pcheck pid 999999 (not running) taken over", pf))
	e.wait(upLine(pid))
	if got, _ := pidlock.ReadPid(lockPath); got != first.pid() {
		t.Fatalf("pid file holds %d, want %d", got, first.pid())
	}

	second := e.start(nil, pf)
	if st := second.wait(); st != 1 {
		t.Fatalf("second instance exit status %d, want 1", st)
	}
	if want := fmt.Sprintf("pcheck pid %d", first.pid()); !strings.Contains(second.stderr.String(), want) {
		t.Fatalf("refusal does not name the first pid (%s):\n%s", want, second.stderr)
	}

	forced := e.start(nil, "--force", pf)
	e.wait(fmt.Sprintf("pfile '%s': --force: pcheck pid %d stopped, its lock taken over", pf, first.pid()))
	if st := first.wait(); st != 0 {
		t.Fatalf("first pcheck, stopped by --force: status %d", st)
	}
	forced.signal(syscall.SIGTERM)
	if st := forced.wait(); st != 0 {
		t.Fatalf("forced pcheck status %d", st)
	}
}

// TestBadPfile: an invalid pfile at start exits 2, names the error, and
// touches nothing (no state directory, no process started).
func TestBadPfile(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := newService(t, e.dir, "a", "")
	pf := filepath.Join(e.dir, "a.pf")
	writeFile(t, pf, pfileHead+"RetryCount many\n"+s.entry(""))
	p := e.start(nil, pf)
	if st := p.wait(); st != 2 {
		t.Fatalf("exit status %d, want 2; stderr:\n%s", st, p.stderr)
	}
	l := e.log.Wait(t, func(l syslogtest.Line) bool { return strings.HasPrefix(l.Text, "pfile error: "+pf+":5:") }, 10*time.Second)
	if !strings.Contains(p.stderr.String(), strings.TrimPrefix(l.Text, "pfile error: ")) {
		t.Fatalf("stderr lacks the error %q:\n%s", l.Text, p.stderr)
	}
	if _, err := os.Stat(e.state); !os.IsNotExist(err) {
		t.Fatalf("state directory created for an invalid pfile: %v", err)
	}
	if len(s.callReasons()) != 0 {
		t.Fatal("a restart script ran")
	}
}

// TestReload: SIGHUP with a new entry starts watching it; a bad pfile is
// refused with its errors and the old rules stay.
func TestReload(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := newService(t, e.dir, "a", "")
	b := newService(t, e.dir, "b", "")
	pa, pb := a.start(), b.start()
	pf := filepath.Join(e.dir, "a.pf")
	writeFile(t, pf, pfileHead+a.entry(""))
	p := e.start(nil, pf)
	e.wait(upLine(pa))

	writeFile(t, pf, pfileHead+a.entry("retry=5")+b.entry(""))
	p.signal(syscall.SIGHUP)
	e.wait(upLine(pb))
	e.wait(fmt.Sprintf("pfile '%s' reloaded", pf))
	if e.count(upLine(pa)) != 1 {
		t.Fatal("an unchanged entry was announced again")
	}

	writeFile(t, pf, pfileHead+"Grace 0\n"+a.entry(""))
	p.signal(syscall.SIGHUP)
	e.log.Wait(t, func(l syslogtest.Line) bool { return strings.HasPrefix(l.Text, "pfile error: "+pf+":5:") }, 30*time.Second)
	e.wait(fmt.Sprintf("pfile '%s': reload refused, the old rules stay", pf))
	// b is still watched under the old rules.
	syscall.Kill(pb, syscall.SIGKILL)
	e.wait(downLine(pb))
	e.wait(upLine(b.waitPid(pb)))
}

// TestWatchReload: with --watch a changed pfile is reloaded.
func TestWatchReload(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := newService(t, e.dir, "a", "")
	b := newService(t, e.dir, "b", "")
	pa, pb := a.start(), b.start()
	pf := filepath.Join(e.dir, "a.pf")
	writeFile(t, pf, pfileHead+a.entry(""))
	e.start(nil, "--watch", pf)
	e.wait(upLine(pa))
	// Replace by rename, as editors save.
	tmp := pf + ".new"
	writeFile(t, tmp, pfileHead+a.entry("")+b.entry(""))
	if err := os.Rename(tmp, pf); err != nil {
		t.Fatal(err)
	}
	e.wait(upLine(pb))
}

// TestSeveralPfiles: two pfiles in one pcheck, each with its own lock and
// rules: one shut down by its retry over, the other still monitored.
func TestSeveralPfiles(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dir := filepath.Join(e.dir, "pfiles")
	os.Mkdir(dir, 0o755)
	good := newService(t, e.dir, "good", "")
	none := newService(t, e.dir, "none", "true")
	gp := good.start()
	pf1 := filepath.Join(dir, "1.pf")
	pf2 := filepath.Join(dir, "2.pf")
	writeFile(t, pf1, pfileHead+good.entry(""))
	writeFile(t, pf2, pfileHead+"RetryCount 0\nretry_over_action shutdown\n"+none.entry(""))
	writeFile(t, filepath.Join(dir, "1.pf~"), "not a pfile")
	p := e.start(nil, dir)
	e.wait("pcheck start. pfile='" + pf1 + "'")
	e.wait("pcheck start. pfile='" + pf2 + "'")
	e.wait(upLine(gp))
	e.wait("pcheck stop. pfile='" + pf2 + "'")
	waitFor(t, "the shut-down pfile's lock to go", func() bool {
		_, err := os.Stat(filepath.Join(e.state, state.Name(pf2)+".pid"))
		return os.IsNotExist(err)
	})
	syscall.Kill(gp, syscall.SIGKILL)
	e.wait(downLine(gp))
	e.wait(upLine(good.waitPid(gp)))
	p.stop(t, syscall.SIGINT)
}

// TestDumpOnSIGUSR1: SIGUSR1 writes the state dump to DumpFileName.
func TestDumpOnSIGUSR1(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := newService(t, e.dir, "a", "")
	pid := s.start()
	pf := filepath.Join(e.dir, "a.pf")
	dump := filepath.Join(e.dir, "dump.json")
	writeFile(t, pf, pfileHead+"DumpFileName "+dump+"\n"+s.entry(""))
	p := e.start(nil, pf)
	e.wait(upLine(pid))
	p.signal(syscall.SIGUSR1)
	e.wait(fmt.Sprintf("pfile '%s': state dump written to %s", pf, dump))
	b, err := os.ReadFile(dump)
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Pfile     string
		Processes []struct {
			State string
			Pids  []int
		}
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatalf("dump is not JSON: %v\n%s", err, b)
	}
	if st.Pfile != pf || len(st.Processes) != 1 || st.Processes[0].State != "Up" || st.Processes[0].Pids[0] != pid {
		t.Fatalf("dump = %s", b)
	}
}

// TestDaemonize: -D returns 0 once the detached pcheck has started; that
// pcheck runs in its own session and monitors. A detached pcheck that
// cannot start makes -D fail with its message.
func TestDaemonize(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := newService(t, e.dir, "a", "")
	pid := s.start()
	pf := filepath.Join(e.dir, "a.pf")
	writeFile(t, pf, pfileHead+s.entry(""))
	parent := e.start(nil, "-D", pf)
	if st := parent.wait(); st != 0 {
		t.Fatalf("-D exit status %d; stderr:\n%s", st, parent.stderr)
	}
	lockPath := filepath.Join(e.state, state.Name(pf)+".pid")
	child, err := pidlock.ReadPid(lockPath)
	if err != nil || child == 0 || child == parent.pid() {
		t.Fatalf("detached pid %d (parent %d): %v", child, parent.pid(), err)
	}
	t.Cleanup(func() { syscall.Kill(child, syscall.SIGKILL) })
	if sid, _ := unixGetsid(child); sid != child {
		t.Fatalf("detached pcheck is not a session leader (sid %d)", sid)
	}
	line := e.wait(upLine(pid))
	if line.Pid != child {
		t.Fatalf("Up logged by pid %d, want the detached %d", line.Pid, child)
	}

	// A second -D is refused by the running one's lock.
	again := e.start(nil, "-D", pf)
	if st := again.wait(); st != 1 {
		t.Fatalf("second -D status %d, want 1", st)
	}
	if !strings.Contains(again.stderr.String(), "pcheck pid "+strconv.Itoa(child)) {
		t.Fatalf("second -D stderr:\n%s", again.stderr)
	}
	syscall.Kill(child, syscall.SIGTERM)
	e.wait("pcheck stop. pfile='" + pf + "'")
}

// TestSdNotify: in the foreground with NOTIFY_SOCKET, READY=1 once the
// pfiles are loaded, then WATCHDOG=1 at half of WATCHDOG_USEC.
func TestSdNotify(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := newService(t, e.dir, "a", "")
	s.start()
	sock, read := notifySocket(t, "notify")
	pf := filepath.Join(e.dir, "a.pf")
	writeFile(t, pf, pfileHead+s.entry(""))
	p := e.start([]string{"NOTIFY_SOCKET=" + sock, "WATCHDOG_USEC=200000"}, pf)
	if got := read(); got != "READY=1" {
		t.Fatalf("first notification %q, want READY=1", got)
	}
	if got := read(); got != "WATCHDOG=1" {
		t.Fatalf("second notification %q, want WATCHDOG=1", got)
	}
	p.signal(syscall.SIGTERM)
	for {
		if got := read(); got == "STOPPING=1" {
			break
		}
	}
	p.wait()
}

// TestNoSyslog: with no syslog socket, one warning and every message on
// stderr.
func TestNoSyslog(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := newService(t, dir, "a", "")
	pid := s.start()
	pf := filepath.Join(dir, "a.pf")
	writeFile(t, pf, pfileHead+s.entry(""))
	cmd := newPcheckCmd("--state-dir", filepath.Join(dir, "state"), "--syslog", "unixgram:"+filepath.Join(dir, "nosuch.sock"), pf)
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stderr.String(), upLine(pid)) {
		if time.Now().After(deadline) {
			t.Fatalf("no Up line on stderr:\n%s", stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := strings.Count(stderr.String(), "syslog unavailable"); n != 1 {
		t.Fatalf("%d syslog warnings, want 1:\n%s", n, stderr)
	}
}
