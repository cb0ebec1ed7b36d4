package daemon

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pcheck/pcheck/checker/state"
	"github.com/pcheck/pcheck/checker/syslogtest"
)

// TestUnexecutableScriptPaced: a restart script that vanished after start
// cannot be executed; each attempt still counts, but the next one waits
// StartWait as for a script whose process did not come up, so RetryCount
// 3 with action exit takes at least 3 x StartWait, not a millisecond, and
// the log says why the script could not run.
func TestUnexecutableScriptPaced(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := newService(t, e.dir, "a", "")
	pid := s.start()
	pf := filepath.Join(e.dir, "a.pf")
	const startWait = 2 * time.Second
	writeFile(t, pf, "MonitorInterval 10\nStartWait 2\nKillWait 1\nRestartTimeout 3\nRetryCount 3\nretry_over_action exit\n"+s.entry(""))
	p := e.start(nil, pf)
	e.wait(upLine(pid))

	if err := os.Remove(s.script); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	syscall.Kill(pid, syscall.SIGKILL)
	e.wait(downLine(pid))
	e.wait(fmt.Sprintf("Retry over ('%s') action=exit", bin))
	took := time.Since(killed)
	if st := p.wait(); st != 3 {
		t.Fatalf("exit status %d, want 3; stderr:\n%s", st, p.stderr)
	}
	// Three attempts, each followed by StartWait: at least 3 x 2 s. The
	// bound asserted is generous (it can only be exceeded under load).
	t.Logf("retry over %v after the death", took)
	if took < 2*startWait {
		t.Fatalf("retry over %v after the death, want at least %v (3 attempts paced by StartWait %v)", took, 2*startWait, startWait)
	}
	cannot := fmt.Sprintf("('%s'): restart script %s cannot be executed: no such file or directory", bin, s.script)
	if n := e.count(cannot); n != 3 {
		t.Fatalf("%q logged %d times, want 3; log:\n%v", cannot, n, e.log.Lines())
	}
	for _, line := range []string{tryLine, fmt.Sprintf("Restart script failed ('%s') status=127", bin), pidFailLine} {
		if n := e.count(line); n != 3 {
			t.Fatalf("%q logged %d times, want 3; log:\n%v", line, n, e.log.Lines())
		}
	}
}

// TestOrphanScriptWaitedFor: pcheck killed -9 while a slow restart script
// runs leaves the script running; the next pcheck, with a StartWait
// shorter than the script, finds it through its record in the state
// directory and waits for it instead of running a second script beside
// it: one script run, one service, one attempt counted.
func TestOrphanScriptWaitedFor(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := newService(t, e.dir, "slow", "sleep 6\n"+startService)
	pf := filepath.Join(e.dir, "a.pf")
	writeFile(t, pf, "MonitorInterval 10\nStartWait 1\nKillWait 1\nRestartTimeout 20\n"+s.entry(""))
	p := e.start(nil, pf)
	e.wait(pidFailLine)
	e.wait(tryLine)
	waitFor(t, "the restart script to run", func() bool { return len(s.callReasons()) == 1 })
	// The record is written just after the script starts; give it a
	// moment (the script sleeps 6 s), but do not insist: without a
	// record the second pcheck shows what it does.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if m, _ := filepath.Glob(filepath.Join(e.state, "*.script")); len(m) > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.signal(syscall.SIGKILL)
	p.wait()

	e.start(nil, pf)
	pid := s.waitPid(0)
	e.wait(upLine(pid))
	// Every restart script has ended: its argv names the script.
	scriptsGone(t, s.script)
	if r := s.callReasons(); len(r) != 1 {
		t.Fatalf("restart script ran %d times (%v), want once", len(r), r)
	}
	oneCopyOneAttempt(t, s, filepath.Join(e.state, state.Name(pf)+".state"))
	e.log.Wait(t, func(l syslogtest.Line) bool {
		return strings.Contains(l.Text, "restart script") && strings.Contains(l.Text, "still runs")
	}, 30*time.Second)
}

// attemptsSaved counts the restart attempts in a state file.
func attemptsSaved(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Entries map[string]struct {
			Attempts []time.Time `json:"attempts"`
		} `json:"entries"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range d.Entries {
		n += len(e.Attempts)
	}
	return n
}
