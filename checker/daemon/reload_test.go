package daemon

import (
	"fmt"
	"github.com/pcheck/pcheck/checker/syslogtest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pcheck/pcheck/checker/proc"
	"github.com/pcheck/pcheck/checker/state"
)

// scriptsGone waits until no process runs script (its argv names it).
func scriptsGone(t *testing.T, script string) {
	t.Helper()
	waitFor(t, "the restart scripts to end", func() bool {
		all, _ := proc.Scan()
		for _, q := range all {
			if strings.Contains(strings.Join(q.Argv, " "), script) {
				return false
			}
		}
		return true
	})
}

// TestReloadDuringRestart: a reload that changes the entry's key (adds
// user=root) while its restart script sleeps 4 s carries the entry over:
// the restart in progress goes on (no Set pid fail, the script runs once),
// one service runs, and the attempt is counted once, under the new key.
func TestReloadDuringRestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := newService(t, e.dir, "slow", "sleep 4\n"+startService)
	pid := s.start()
	pf := filepath.Join(e.dir, "a.pf")
	head := "MonitorInterval 10\nStartWait 1\nKillWait 1\nRestartTimeout 10\n"
	writeFile(t, pf, head+s.entry(""))
	p := e.start(nil, pf)
	e.wait(upLine(pid))

	syscall.Kill(pid, syscall.SIGKILL)
	e.wait(tryLine)
	waitFor(t, "the restart script to run", func() bool { return len(s.callReasons()) == 2 })
	writeFile(t, pf, head+s.entry("user=root"))
	p.signal(syscall.SIGHUP)
	e.wait(fmt.Sprintf("pfile '%s' reloaded", pf))
	t.Cleanup(func() {
		if t.Failed() {
			for _, l := range e.log.Lines() {
				t.Log(l.Text)
			}
		}
	})
	newPid := s.waitPid(pid)
	e.wait(upLine(newPid))
	scriptsGone(t, s.script)

	if r := s.callReasons(); len(r) != 2 {
		t.Fatalf("restart script ran %d times (%v), want once after the setup", len(r)-1, r[1:])
	}
	if n := e.count(pidFailLine); n != 0 {
		t.Fatalf("%q logged %d times; log:\n%v", pidFailLine, n, e.log.Lines())
	}
	oneCopyOneAttempt(t, s, filepath.Join(e.state, state.Name(pf)+".state"))
	// The record of the running script moved with the entry's new key
	// and went when the script ended: none is left to be mistaken for
	// a running script by the next pcheck.
	waitFor(t, "the script record to go", func() bool {
		recs, _ := filepath.Glob(filepath.Join(e.state, "*.script"))
		return len(recs) == 0
	})
}

// oneCopyOneAttempt checks that one copy of s runs and that the state
// file holds one restart attempt.
func oneCopyOneAttempt(t *testing.T, s *service, stateFile string) {
	t.Helper()
	all, err := proc.Scan()
	if err != nil {
		t.Fatal(err)
	}
	if found := (proc.Matcher{Target: bin, Args: s.tag, UID: -1}).Match(all); len(found) != 1 {
		t.Fatalf("%d copies of the service run, want 1: %+v", len(found), found)
	}
	if n := attemptsSaved(t, stateFile); n != 1 {
		t.Fatalf("%d attempts saved, want 1", n)
	}
}

// TestReloadFailureChangesNothing: a reload that fails at any step of the
// switch (a user that does not exist; an injected failure after the
// engine's preparation, which builds the entries and their stall
// monitors, and after the logger's) is refused
// and changes nothing: the entry it adds is never watched, the old one
// goes on under the old rules.
func TestReloadFailureChangesNothing(t *testing.T) {
	t.Parallel()
	for _, step := range []string{"user", "engine", "logger"} {
		t.Run(step, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			a := newService(t, e.dir, "a", "")
			b := newService(t, e.dir, "b", "")
			pa, pb := a.start(), b.start()
			pf := filepath.Join(e.dir, "a.pf")
			writeFile(t, pf, pfileHead+a.entry(""))
			var env []string
			if step != "user" {
				env = []string{failReloadEnv + "=" + step}
			}
			p := e.start(env, pf)
			e.wait(upLine(pa))

			bEntry := b.entry("")
			if step == "user" {
				bEntry = b.entry("user=pcheck-no-such-user")
			}
			writeFile(t, pf, pfileHead+"SyslogFacility local3\n"+a.entry("")+bEntry)
			p.signal(syscall.SIGHUP)
			e.log.Wait(t, func(l syslogtest.Line) bool {
				return strings.HasPrefix(l.Text, fmt.Sprintf("pfile '%s': reload refused", pf))
			}, 30*time.Second)
			// a is watched as before; by the time it is Up again, b
			// would long have been adopted had the reload gone through.
			syscall.Kill(pa, syscall.SIGKILL)
			e.wait(downLine(pa))
			up := e.wait(upLine(a.waitPid(pa)))
			if n := e.count(upLine(pb)); n != 0 {
				t.Fatalf("the entry of a refused reload is watched: %q", upLine(pb))
			}
			if up.Facility != 3 { // daemon, the default; local3 is 19
				t.Fatalf("facility %d after a refused reload, want the old one (3)", up.Facility)
			}
		})
	}
}

// TestWatchdogFollowsTheEngine: WATCHDOG=1 is sent while the engine's
// loops answer, and a kill that waits out KillWait is no wedged loop: an
// entry killing what is left of its dead service (a child that ignores
// SIGTERM: KillWait 3 s, far longer than the 200 ms watchdog interval)
// takes no control meanwhile, yet the pings go on. (They used to stop,
// and systemd would have killed pcheck in the middle of the kill.)
func TestWatchdogFollowsTheEngine(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	childTag := tagFor(t, "zz-child")
	t.Cleanup(func() { killTagged(childTag) })
	s := newService(t, e.dir, "svc", fmt.Sprintf(`DAEMON_TEST_ROLE=stubborn CHILD_TAG='%s' "$BIN" stubborn "$TAG" </dev/null >/dev/null 2>&1 &`, childTag))
	pid := s.start()
	// Before pcheck looks: the service leads its own group and its child
	// runs in it, ignoring SIGTERM.
	waitFor(t, "the stubborn child", func() bool {
		all, _ := proc.Scan()
		for _, q := range all {
			if q.Pid == pid && q.PGid != pid {
				return false
			}
			if q.PGid == pid && strings.Contains(strings.Join(q.Argv, " "), childTag) {
				return ignoresTerm(q.Pid)
			}
		}
		return false
	})
	sock, read := notifySocket(t, "watchdog")
	pf := filepath.Join(e.dir, "a.pf")
	writeFile(t, pf, "MonitorInterval 10\nStartWait 5\nKillWait 3\nRestartTimeout 10\n"+s.entry(""))
	e.start([]string{"NOTIFY_SOCKET=" + sock, "WATCHDOG_USEC=400000"}, pf)
	if got := read(); got != "READY=1" {
		t.Fatalf("first notification %q, want READY=1", got)
	}
	if got := read(); got != "WATCHDOG=1" {
		t.Fatalf("second notification %q, want WATCHDOG=1", got)
	}
	e.wait(upLine(pid))
	syscall.Kill(pid, syscall.SIGKILL)
	e.wait(downLine(pid))
	// KillWait is 3 s: pings that arrive meanwhile come from a pcheck
	// busy in the kill.
	killed := time.Now()
	pings := 0
	for time.Since(killed) < 2*time.Second {
		if got := read(); got == "WATCHDOG=1" {
			pings++
		}
	}
	if pings < 3 {
		t.Fatalf("%d WATCHDOG=1 in the 2 s of the kill, want them every 200 ms", pings)
	}
	e.wait(upLine(s.waitPid(pid)))
	for _, l := range e.log.Lines() {
		if strings.HasPrefix(l.Text, "sd_notify: WATCHDOG=1 withheld: ") {
			t.Fatalf("the watchdog was withheld during a kill: %q", l.Text)
		}
	}
}

// ignoresTerm reports whether pid ignores SIGTERM (SigIgn in its status).
func ignoresTerm(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if hex, ok := strings.CutPrefix(line, "SigIgn:"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
			return err == nil && mask&(1<<(syscall.SIGTERM-1)) != 0
		}
	}
	return false
}
