package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pcheck/pcheck/checker/message"
	"github.com/pcheck/pcheck/checker/proc"
	"github.com/pcheck/pcheck/checker/state"
	"github.com/pcheck/pcheck/pfile"
)

func TestCheckPids(t *testing.T) {
	ids := []proc.ID{{Pid: 10, Start: 100}, {Pid: 11, Start: 110}, {Pid: 12, Start: 120}, {Pid: 13, Start: 130}}
	all := []proc.Info{
		{ID: proc.ID{Pid: 10, Start: 100}, State: 'S'},
		{ID: proc.ID{Pid: 11, Start: 999}, State: 'S'}, // pid reused by another program
		{ID: proc.ID{Pid: 12, Start: 120}, State: 'Z'},
		// 13 is gone
	}
	alive, gone := checkPids(ids, newSnapshot(all))
	if len(alive) != 1 || alive[0] != ids[0] {
		t.Fatalf("alive = %v, want only pid 10", alive)
	}
	want := map[proc.ID]string{ids[1]: ReasonDown, ids[2]: ReasonZombie, ids[3]: ReasonDown}
	if len(gone) != len(want) {
		t.Fatalf("gone = %v, want %v", gone, want)
	}
	for id, r := range want {
		if gone[id] != r {
			t.Errorf("pid %d: reason %q, want %q", id.Pid, gone[id], r)
		}
	}
}

func TestWindow(t *testing.T) {
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var w window
	grace := 10 * time.Minute
	for i := range 3 {
		now := t0.Add(time.Duration(i) * time.Minute)
		if !w.allow(now, 3, grace) {
			t.Fatalf("attempt %d refused", i+1)
		}
		w.record(now)
	}
	if w.allow(t0.Add(5*time.Minute), 3, grace) {
		t.Fatal("fourth attempt inside the window allowed")
	}
	// At t0+10m the first attempt leaves the window (it is exactly
	// grace old): one slot frees up.
	if !w.allow(t0.Add(10*time.Minute), 3, grace) {
		t.Fatal("attempt refused after the oldest left the window")
	}
	if got := w.used(t0.Add(10*time.Minute), grace); got != 2 {
		t.Fatalf("used = %d, want 2", got)
	}
	if w.allow(t0, 0, grace) {
		t.Fatal("RetryCount 0 allows an attempt")
	}
	w.reset()
	if w.used(t0, grace) != 0 {
		t.Fatal("reset kept attempts")
	}
}

// TestAdoptAndRestart: a running process is adopted without a restart;
// killed, it is Down, restarted through the script with the documented
// argv and environment, and Up again.
func TestAdoptAndRestart(t *testing.T) {
	f := newFixture(t, "a", "")
	pid := f.start()
	log := newRecorder()
	file := testFile("/etc/pcheck/test.pf", testParams(), f.process())
	r := run(t, Options{File: file, Log: log})

	up := message.Up(bin, pid).Text
	log.wait(t, up, 1)
	if got := f.readCalls(); len(got) != 1 {
		t.Fatalf("adoption ran the restart script: calls %v", got)
	}
	if st := r.state(bin); st.State != StateUp || len(st.Pids) != 1 || st.Pids[0] != pid {
		t.Fatalf("status after adoption = %+v", st)
	}

	kill(t, pid)
	log.wait(t, message.Down(bin, pid).Text, 1)
	log.wait(t, message.TryRestart(bin).Text, 1)
	newPid := f.waitPid(pid)
	log.wait(t, message.Up(bin, newPid).Text, 1)

	// The order of the lines.
	iDown, iTry, iUp := log.indexOf(message.Down(bin, pid).Text), log.indexOf(message.TryRestart(bin).Text), log.indexOf(message.Up(bin, newPid).Text)
	if !(log.indexOf(up) < iDown && iDown < iTry && iTry < iUp) {
		t.Fatalf("lines out of order:\n%s", strings.Join(log.texts(), "\n"))
	}
	calls := f.readCalls()
	want := fmt.Sprintf("%s|%d|down|%s|%d|down|1|/etc/pcheck/test.pf", bin, pid, bin, pid)
	if len(calls) != 2 || calls[1] != want {
		t.Fatalf("script calls = %q, want second %q", calls, want)
	}
	st := r.state(bin)
	if st.State != StateUp || st.Restarts != 1 || st.RetriesUsed != 1 || st.RetriesAllowed != 3 || st.LastReason != ReasonDown {
		t.Fatalf("status after restart = %+v", st)
	}
	if r.stop(t) != Stopped {
		t.Fatal("result is not Stopped")
	}
	// Stopping leaves the process running.
	if _, err := proc.Read(newPid); err != nil {
		t.Fatalf("process gone after stop: %v", err)
	}
	if log.count(message.Stop("/etc/pcheck/test.pf").Text) != 1 || log.indexOf(message.Start("/etc/pcheck/test.pf").Text) != 0 {
		t.Fatalf("start/stop lines missing:\n%s", strings.Join(log.texts(), "\n"))
	}
}

// TestScriptOutputAndStatus: the script's output goes to the log line by
// line; a non-zero exit is logged, but the process coming up is success.
func TestScriptOutputAndStatus(t *testing.T) {
	f := newFixture(t, "a", startHelper+"\necho first line\necho second line >&2\nexit 7")
	log := newRecorder()
	p := f.process()
	params := testParams()
	params.StartWait = time.Second
	r := run(t, Options{File: testFile("x.pf", params, p), Log: log})

	// Not running at start: Set pid fail after StartWait, then restart.
	log.wait(t, message.SetPidFail(bin).Text, 1)
	log.wait(t, message.ScriptFailed(bin, "7").Text, 1)
	pid := f.waitPid(0)
	log.wait(t, message.Up(bin, pid).Text, 1)
	log.wait(t, "restart script ('"+bin+"'): first line", 1)
	log.wait(t, "restart script ('"+bin+"'): second line", 1)
	calls := f.readCalls()
	if len(calls) != 1 || !strings.HasPrefix(calls[0], bin+"|0|pidfail|") {
		t.Fatalf("calls = %q", calls)
	}
	if st := r.state(bin); st.State != StateUp || st.RetriesUsed != 1 {
		t.Fatalf("status = %+v", st)
	}
}

// TestScriptTimeout: a script that hangs is killed with its process group
// after RestartTimeout; it counts as a failed attempt.
func TestScriptTimeout(t *testing.T) {
	// The script starts a sleeper in its own group, records its pid,
	// and hangs.
	subTag := tagFor(t, "sub")
	f := newFixture(t, "a", `ENGINE_TEST_HELPER=child "$BIN" helper '`+subTag+`' &
echo $! > "$DIR/sub.pid"
exec sleep 3600`)
	defer killTagged(subTag)
	log := newRecorder()
	p := f.process()
	p.Timeout = time.Second
	p.Retry = 1
	params := testParams()
	params.StartWait = 500 * time.Millisecond
	r := run(t, Options{File: testFile("x.pf", params, p), Log: log})

	log.wait(t, message.ScriptFailed(bin, "timeout").Text, 1)
	log.wait(t, message.RetryOver(bin, "continue").Text, 1)
	b, err := os.ReadFile(filepath.Join(f.dir, "sub.pid"))
	if err != nil {
		t.Fatal(err)
	}
	sub, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	waitFor(t, "the script's group to be killed", func() bool {
		i, err := proc.Read(sub)
		return err != nil || i.Dead()
	})
	if st := r.state(bin); st.State != StateRetryOver || st.RetriesUsed != 1 {
		t.Fatalf("status = %+v", st)
	}
	// A timed-out attempt does not wait StartWait for the process.
	if n := log.count(message.SetPidFail(bin).Text); n != 1 {
		t.Fatalf("Set pid fail logged %d times, want once (at start)", n)
	}
}

// TestRetryOverContinue: a script that starts nothing fails StartWait
// each time; after RetryCount attempts it is a retry over, the entry
// stays RetryOver and the other entries are still watched. Resume re-arms.
func TestRetryOverContinue(t *testing.T) {
	bad := newFixture(t, "bad", "true")
	good := newFixture(t, "good", "")
	goodPid := good.start()
	log := newRecorder()
	pb, pg := bad.process(), good.process()
	pb.Retry = 2
	params := testParams()
	params.StartWait = 300 * time.Millisecond
	r := run(t, Options{File: testFile("x.pf", params, pb, pg), Log: log})

	log.wait(t, message.RetryOver(bin, "continue").Text, 1)
	// Start: Set pid fail; two attempts, each Set pid fail; then over.
	if n := log.count(message.SetPidFail(bin).Text); n != 3 {
		t.Fatalf("Set pid fail x%d, want 3:\n%s", n, strings.Join(log.texts(), "\n"))
	}
	if n := len(bad.readCalls()); n != 2 {
		t.Fatalf("script ran %d times, want 2", n)
	}
	if st := r.state(pb.BaseKey()); st.State != StateRetryOver || st.RetriesUsed != 2 || st.RetriesAllowed != 2 {
		t.Fatalf("bad status = %+v", st)
	}

	// The other entry is still watched and restarted.
	kill(t, goodPid)
	newPid := good.waitPid(goodPid)
	log.wait(t, message.Up(bin, newPid).Text, 1)

	// Resume re-arms the entry: counts cleared, restarted again.
	if err := r.Resume(pb.BaseKey()); err != nil {
		t.Fatal(err)
	}
	log.wait(t, message.RetryOver(bin, "continue").Text, 2)
	if n := len(bad.readCalls()); n != 4 {
		t.Fatalf("script ran %d times after Resume, want 4", n)
	}
}

func TestRetryOverShutdownAndExit(t *testing.T) {
	for _, tc := range []struct {
		action pfile.Action
		want   Result
	}{{pfile.ActionShutdown, Shutdown}, {pfile.ActionExit, Exit}} {
		t.Run(tc.action.String(), func(t *testing.T) {
			f := newFixture(t, "a", "true")
			log := newRecorder()
			p := f.process()
			p.Retry = 0
			p.Action = tc.action
			params := testParams()
			params.StartWait = 200 * time.Millisecond
			r := run(t, Options{File: testFile("x.pf", params, p), Log: log})
			if got := r.result(t); got != tc.want {
				t.Fatalf("Run = %v, want %v", got, tc.want)
			}
			if log.count(message.RetryOver(bin, tc.action.String()).Text) != 1 {
				t.Fatalf("no retry over line:\n%s", strings.Join(log.texts(), "\n"))
			}
			if len(f.readCalls()) != 0 {
				t.Fatal("RetryCount 0 ran the script")
			}
		})
	}
}

// TestCountsPersist: attempts survive a new Instance on the same state
// file, and the Grace window is measured on the injected clock.
func TestCountsPersist(t *testing.T) {
	f := newFixture(t, "a", "true")
	storePath := filepath.Join(t.TempDir(), "x.state")
	clock := &fakeClock{t: time.Now()}
	p := f.process()
	p.Retry = 3
	p.Grace = time.Hour
	params := testParams()
	params.StartWait = 200 * time.Millisecond

	store, err := state.Open(storePath, "x.pf")
	if err != nil {
		t.Fatal(err)
	}
	log := newRecorder()
	r := run(t, Options{File: testFile("x.pf", params, p), Log: log, Store: store, Clock: clock})
	log.wait(t, message.TryRestart(bin).Text, 2)
	r.stop(t)
	used := len(store.Attempts(p.BaseKey()))
	if used < 2 {
		t.Fatalf("store holds %d attempts, want >= 2", used)
	}

	// A new pcheck: the attempts are still counted.
	store2, err := state.Open(storePath, "x.pf")
	if err != nil {
		t.Fatal(err)
	}
	log2 := newRecorder()
	r2 := run(t, Options{File: testFile("x.pf", params, p), Log: log2, Store: store2, Clock: clock})
	log2.wait(t, message.RetryOver(bin, "continue").Text, 1)
	if n := log2.count(message.TryRestart(bin).Text); n != 3-used {
		t.Fatalf("restarted %d times after the pcheck restart, want %d", n, 3-used)
	}
	st := r2.state(bin)
	if st.RetriesUsed != 3 {
		t.Fatalf("retries used = %d, want 3", st.RetriesUsed)
	}
	// An hour later the window is empty.
	clock.Add(time.Hour + time.Second)
	if st := r2.state(bin); st.RetriesUsed != 0 {
		t.Fatalf("retries used after the window = %d, want 0", st.RetriesUsed)
	}
}

// TestZombie: a watched process whose parent does not reap it is Down and
// restarted.
func TestZombie(t *testing.T) {
	f := newFixture(t, "a", "")
	parentTag := tagFor(t, "parent")
	cmd := fmt.Sprintf(`ENGINE_TEST_HELPER=parent CHILD_TAG='%s' '%s' parent '%s' </dev/null >/dev/null 2>&1 &`, f.tag, bin, parentTag)
	writeScript(t, f.dir, "parent.sh", cmd)
	t.Cleanup(func() { killTagged(parentTag) })
	if out, err := execScript(filepath.Join(f.dir, "parent.sh")); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	pid := f.waitPid(0)
	log := newRecorder()
	r := run(t, Options{File: testFile("x.pf", testParams(), f.process()), Log: log})
	log.wait(t, message.Up(bin, pid).Text, 1)

	kill(t, pid)
	log.wait(t, message.Down(bin, pid).Text, 1)
	newPid := f.waitPid(pid)
	log.wait(t, message.Up(bin, newPid).Text, 1)
	if i, err := proc.Read(pid); err != nil || !i.Dead() {
		t.Fatalf("the old process is not a zombie: %+v %v", i, err)
	}
	if st := r.state(bin); st.State != StateUp || st.Pids[0] != newPid {
		t.Fatalf("status = %+v", st)
	}
}

// noPidfd is a Watcher that cannot watch anything: deaths are the
// re-check's to find.
type noPidfd struct{}

func (noPidfd) Watch(proc.ID, func(proc.Event)) (func(), error) {
	return nil, errors.New("no pidfd here")
}

// TestZombieWithoutPidfd: a process watched without a pidfd that becomes a
// zombie is found so by the re-check, whose stat walk reads it fresh.
func TestZombieWithoutPidfd(t *testing.T) {
	f := newFixture(t, "a", "")
	parentTag := tagFor(t, "parent")
	cmd := fmt.Sprintf(`ENGINE_TEST_HELPER=parent CHILD_TAG='%s' '%s' parent '%s' </dev/null >/dev/null 2>&1 &`, f.tag, bin, parentTag)
	writeScript(t, f.dir, "parent.sh", cmd)
	t.Cleanup(func() { killTagged(parentTag) })
	if out, err := execScript(filepath.Join(f.dir, "parent.sh")); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	pid := f.waitPid(0)
	log := newRecorder()
	params := testParams()
	params.MonitorInterval = time.Second
	r := run(t, Options{File: testFile("x.pf", params, f.process()), Log: log, Watcher: noPidfd{}})
	log.wait(t, message.Up(bin, pid).Text, 1)
	// A walk with the process alive, so that the walker has read it.
	if _, err := r.scans.stat.get(context.Background(), time.Now()); err != nil {
		t.Fatal(err)
	}
	kill(t, pid)
	log.wait(t, message.Down(bin, pid).Text, 1)
}

// TestLeftoversKilled: when a group leader dies, the rest of its group is
// killed before the restart script runs.
func TestLeftoversKilled(t *testing.T) {
	f := newFixture(t, "a", "")
	childPidFile := filepath.Join(f.dir, "child.pid")
	writeScript(t, f.dir, "leader.sh", fmt.Sprintf(`ENGINE_TEST_HELPER=leader CHILD_TAG='%s-child' CHILD_PIDFILE='%s' '%s' helper '%s' </dev/null >/dev/null 2>&1 &`, f.tag, childPidFile, bin, f.tag))
	t.Cleanup(func() { killTagged(f.tag + "-child") })
	if out, err := execScript(filepath.Join(f.dir, "leader.sh")); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	pid := f.waitPid(0)
	var child int
	waitFor(t, "the child's pid file", func() bool {
		b, err := os.ReadFile(childPidFile)
		child, _ = strconv.Atoi(string(b))
		return err == nil && child > 0
	})
	// The child matches too (same tag prefix), but it is not top of tree.
	log := newRecorder()
	run(t, Options{File: testFile("x.pf", testParams(), f.process()), Log: log})
	log.wait(t, message.Up(bin, pid).Text, 1)
	if log.count(message.Up(bin, child).Text) != 0 {
		t.Fatal("a child of the matching process was taken as a top-level match")
	}

	kill(t, pid)
	log.wait(t, message.TryRestart(bin).Text, 1)
	if i, err := proc.Read(child); err == nil && !i.Dead() {
		t.Fatalf("leftover child %d still alive after the restart began", child)
	}
}

// TestControls: Pause and Resume, RestartNow refused while healthy and
// forced, Reset. (A stall kill is TestHungServerKilledAndRestarted.)
func TestControls(t *testing.T) {
	f := newFixture(t, "a", "")
	pid := f.start()
	log := newRecorder()
	var events []Event
	evc := make(chan Event, 100)
	states := make(chan stateChange, 100)
	r := run(t, Options{
		File: testFile("x.pf", testParams(), f.process()), Log: log,
		OnEvent: func(e Event) { evc <- e },
		onState: func(s stateChange) { states <- s },
	})
	log.wait(t, message.Up(bin, pid).Text, 1)
	waitState(t, states, StateUp, pid)

	if err := r.RestartNow(bin, false); !errors.Is(err, ErrHealthy) {
		t.Fatalf("RestartNow on a healthy process: %v, want ErrHealthy", err)
	}
	if err := r.Pause("nosuch"); !errors.Is(err, ErrUnknownProcess) {
		t.Fatalf("Pause(nosuch) = %v", err)
	}

	// Paused: a death is not acted upon.
	if err := r.Pause(""); err != nil {
		t.Fatal(err)
	}
	waitState(t, states, StatePaused, 0)
	kill(t, pid)
	// SIGKILL takes effect when the process next runs: on a loaded
	// machine a scan right after kill(2) can still find it alive, and
	// Resume would rightly adopt it (Up, then Down) instead of missing it.
	waitFor(t, "the killed process to die", func() bool {
		i, err := proc.Read(pid)
		return err != nil || i.Dead()
	})
	if err := r.Resume(bin); err != nil {
		t.Fatal(err)
	}
	// Resumed with nothing running: StartWait, Set pid fail, restart.
	log.wait(t, message.SetPidFail(bin).Text, 1)
	if log.count(message.Down(bin, pid).Text) != 0 {
		t.Fatal("a death while paused was logged")
	}
	pid2 := f.waitPid(pid)
	log.wait(t, message.Up(bin, pid2).Text, 1)
	waitState(t, states, StateUp, pid2)

	// Forced restart: the process is killed and the script run.
	if err := r.RestartNow(bin, true); err != nil {
		t.Fatal(err)
	}
	pid3 := f.waitPid(pid2)
	log.wait(t, message.Up(bin, pid3).Text, 1)
	if calls := f.readCalls(); !strings.Contains(calls[len(calls)-1], "|manual|") {
		t.Fatalf("forced restart call = %q", calls[len(calls)-1])
	}
	waitState(t, states, StateUp, pid3)

	if err := r.Reset(""); err != nil {
		t.Fatal(err)
	}
	if st := r.state(bin); st.RetriesUsed != 0 || st.Restarts != 0 {
		t.Fatalf("status after Reset = %+v", st)
	}
	for len(evc) > 0 {
		events = append(events, <-evc)
	}
	kinds := map[string]bool{}
	for _, e := range events {
		kinds[e.Kind] = true
		if e.Pfile != "x.pf" {
			t.Fatalf("event of pfile %q", e.Pfile)
		}
	}
	for _, k := range []string{"up", "try-restart", "pause", "resume", "restart", "reset", "set-pid-fail"} {
		if !kinds[k] {
			t.Errorf("no %q event among %v", k, kinds)
		}
	}
}

// waitState waits for a state change to s (with pid first when non-zero).
func waitState(t *testing.T, states chan stateChange, s State, pid int) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case c := <-states:
			if c.State == s && (pid == 0 || (len(c.Pids) > 0 && c.Pids[0].Pid == pid)) {
				return
			}
		case <-deadline:
			t.Fatalf("no state change to %v (pid %d)", s, pid)
		}
	}
}

// TestApply: a reload keeps unchanged entries (same pid, counts), stops
// watching removed ones and starts new ones.
func TestApply(t *testing.T) {
	a := newFixture(t, "a", "")
	b := newFixture(t, "b", "")
	c := newFixture(t, "c", "")
	pa, pb, pc := a.start(), b.start(), c.start()
	log := newRecorder()
	r := run(t, Options{File: testFile("x.pf", testParams(), a.process(), b.process()), Log: log})
	log.wait(t, message.Up(bin, pa).Text, 1)
	log.wait(t, message.Up(bin, pb).Text, 1)
	kill(t, pa)
	pa2 := a.waitPid(pa)
	log.wait(t, message.Up(bin, pa2).Text, 1)

	// New rules: a with another retry count, b removed, c added.
	na := a.process()
	na.Retry = 7
	if err := r.Apply(testFile("x.pf", testParams(), na, c.process())); err != nil {
		t.Fatal(err)
	}
	log.wait(t, message.Up(bin, pc).Text, 1)
	st := r.state(na.BaseKey())
	if st.State != StateUp || st.Pids[0] != pa2 || st.RetriesUsed != 1 || st.RetriesAllowed != 7 {
		t.Fatalf("kept entry after reload = %+v", st)
	}
	if n := len(r.Snapshot().Processes); n != 2 {
		t.Fatalf("%d entries after reload, want 2", n)
	}
	if log.count(message.Up(bin, pa2).Text) != 1 {
		t.Fatal("the kept entry logged Up again")
	}
	// The removed entry's process is left alone and no longer watched.
	kill(t, pb)
	// c is watched: its death is seen. Then b's death must not have
	// been reported in between.
	kill(t, pc)
	log.wait(t, message.Down(bin, pc).Text, 1)
	if log.count(message.Down(bin, pb).Text) != 0 {
		t.Fatal("a removed entry's process is still watched")
	}
}

// TestPidFileEntry: an entry with a pid file watches the process it names.
func TestPidFileEntry(t *testing.T) {
	f := newFixture(t, "a", `HELPER_PIDFILE="$DIR/svc.pid" `+startHelper)
	pid := f.start()
	p := f.process()
	p.PidFile = filepath.Join(f.dir, "svc.pid")
	log := newRecorder()
	run(t, Options{File: testFile("x.pf", testParams(), p), Log: log})
	log.wait(t, message.Up(bin, pid).Text, 1)
	kill(t, pid)
	log.wait(t, message.Down(bin, pid).Text, 1)
	newPid := f.waitPid(pid)
	log.wait(t, message.Up(bin, newPid).Text, 1)
}

// TestRecheckWithoutWatcher: with no watcher (no pidfd), the re-check
// every MonitorInterval notices the death.
func TestRecheckWithoutWatcher(t *testing.T) {
	f := newFixture(t, "a", "")
	pid := f.start()
	log := newRecorder()
	params := testParams()
	params.MonitorInterval = 200 * time.Millisecond
	in, err := New(Options{File: testFile("x.pf", params, f.process()), Log: log})
	if err != nil {
		t.Fatal(err)
	}
	startRunning(t, in)
	log.wait(t, message.Up(bin, pid).Text, 1)
	kill(t, pid)
	log.wait(t, message.Down(bin, pid).Text, 1)
	newPid := f.waitPid(pid)
	log.wait(t, message.Up(bin, newPid).Text, 1)
}

func TestUnknownUser(t *testing.T) {
	p := &pfile.Process{Name: "/bin/true", Script: "/bin/true", User: "no-such-user-pcheck", Count: 1}
	if _, err := New(Options{File: testFile("x.pf", testParams(), p), Log: newRecorder()}); err == nil || !strings.Contains(err.Error(), "no-such-user-pcheck") {
		t.Fatalf("New with an unknown user: %v", err)
	}
}

func execScript(path string) ([]byte, error) {
	return exec.Command(path).CombinedOutput()
}

func TestSnapshotDescendants(t *testing.T) {
	all := []proc.Info{
		{ID: proc.ID{Pid: 1}, PPid: 0},
		{ID: proc.ID{Pid: 10}, PPid: 1},
		{ID: proc.ID{Pid: 11}, PPid: 10},
		{ID: proc.ID{Pid: 12}, PPid: 10},
		{ID: proc.ID{Pid: 13}, PPid: 11},
		{ID: proc.ID{Pid: 20}, PPid: 1},
	}
	snap := newSnapshot(all)
	got := snap.descendants(10)
	want := proc.Descendants(all, 10)
	if fmt.Sprint(got) != fmt.Sprint(want) || len(got) != 3 {
		t.Fatalf("descendants(10) = %v, want %v", got, want)
	}
	if d := snap.descendants(20); len(d) != 0 {
		t.Fatalf("descendants of a leaf = %v", d)
	}
	// The index is not disturbed by the walk.
	if again := snap.descendants(10); fmt.Sprint(again) != fmt.Sprint(got) {
		t.Fatalf("second walk = %v", again)
	}
	// The same answer as proc on the real process table.
	real, err := proc.Scan()
	if err != nil {
		t.Fatal(err)
	}
	rs := newSnapshot(real)
	for _, pid := range []int{1, os.Getpid(), os.Getppid()} {
		if a, b := len(rs.descendants(pid)), len(proc.Descendants(real, pid)); a != b {
			t.Errorf("pid %d: %d descendants, proc says %d", pid, a, b)
		}
	}
}

// TestRestartWhilePaused: a paused entry watches nothing, but its process
// may run: restart without force is refused as for a healthy process, and
// with force the running process is killed first, so there is never a
// second copy.
func TestRestartWhilePaused(t *testing.T) {
	f := newFixture(t, "a", "")
	pid := f.start()
	log := newRecorder()
	states := make(chan stateChange, 100)
	r := run(t, Options{File: testFile("x.pf", testParams(), f.process()), Log: log,
		onState: func(s stateChange) { states <- s }})
	log.wait(t, message.Up(bin, pid).Text, 1)
	if err := r.Pause(bin); err != nil {
		t.Fatal(err)
	}
	waitState(t, states, StatePaused, 0)
	if err := r.RestartNow(bin, false); !errors.Is(err, ErrHealthy) {
		t.Fatalf("RestartNow of a paused, running process: %v, want ErrHealthy", err)
	}
	if calls := f.readCalls(); len(calls) != 1 {
		t.Fatalf("the restart script ran: %q", calls)
	}
	if err := r.RestartNow(bin, true); err != nil {
		t.Fatal(err)
	}
	pid2 := f.waitPid(pid)
	log.wait(t, message.Up(bin, pid2).Text, 1)
	if info, err := proc.Read(pid); err == nil && !info.Dead() {
		t.Fatalf("the old process %d still runs beside the new %d", pid, pid2)
	}
	if calls := f.readCalls(); len(calls) != 2 || !strings.Contains(calls[1], fmt.Sprintf("|%d|manual|", pid)) {
		t.Fatalf("script calls %q, want one manual restart naming old pid %d", calls, pid)
	}
}

// TestScriptNotExecutable: a restart script that cannot be executed is a
// counted attempt logged with the status a shell gives (127 not found,
// 126 not executable) and why; the next attempt waits StartWait, as for a
// script whose process did not come up. The output-file mode behaves the
// same.
func TestScriptNotExecutable(t *testing.T) {
	for _, outDir := range []string{"", t.TempDir()} {
		noExec := filepath.Join(t.TempDir(), "noexec.sh")
		if err := os.WriteFile(noExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct{ script, status, why string }{
			{filepath.Join(t.TempDir(), "missing.sh"), "127", "no such file or directory"},
			{noExec, "126", "permission denied"},
		} {
			f := newFixture(t, "a", "")
			pid := f.start()
			p := f.process()
			p.Script = tc.script
			p.Retry = 1
			log := newRecorder()
			params := testParams()
			params.StartWait = 300 * time.Millisecond
			run(t, Options{File: testFile("x.pf", params, p), Log: log, ScriptOutputDir: outDir})
			log.wait(t, message.Up(bin, pid).Text, 1)
			kill(t, pid)
			log.wait(t, fmt.Sprintf("('%s'): restart script %s cannot be executed: %s", bin, tc.script, tc.why), 1)
			log.wait(t, message.ScriptFailed(bin, tc.status).Text, 1)
			log.wait(t, message.SetPidFail(bin).Text, 1)
			log.wait(t, message.RetryOver(bin, "continue").Text, 1)
		}
	}
}

// TestScriptMadeUnsafe: a restart script made writable by others after
// the pfile was loaded is checked again before it runs, and refused: it
// never runs as root, and the refusal counts as a failed attempt.
func TestScriptMadeUnsafe(t *testing.T) {
	f := newFixture(t, "a", "")
	pid := f.start()
	calls := len(f.readCalls())
	p := f.process()
	p.Retry = 1
	log := newRecorder()
	params := testParams()
	params.StartWait = 300 * time.Millisecond
	run(t, Options{File: testFile("x.pf", params, p), Log: log})
	log.wait(t, message.Up(bin, pid).Text, 1)
	if err := os.Chmod(f.script, 0o777); err != nil {
		t.Fatal(err)
	}
	kill(t, pid)
	log.wait(t, fmt.Sprintf("('%s'): restart script refused, not run: restart script %s is writable by group and other (mode 0777): chmod go-w %s", bin, f.script, f.script), 1)
	log.wait(t, message.RetryOver(bin, "continue").Text, 1)
	if got := f.readCalls(); len(got) != calls {
		t.Fatalf("the unsafe script ran: calls %q", got)
	}
}

// TestProtected: pid 1, this process and its parent are never signalled.
func TestProtected(t *testing.T) {
	p := newProtected()
	for _, pid := range []int{0, 1, os.Getpid(), os.Getppid()} {
		if err := p.check(pid); !errors.Is(err, ErrProtected) {
			t.Errorf("pid %d not protected: %v", pid, err)
		}
	}
	f := newFixture(t, "a", "")
	if pid := f.start(); p.check(pid) != nil {
		t.Errorf("a service pid %d is protected", pid)
	}
}

// TestTimeoutSparesDaemon: a script that starts the daemon in the
// background, in its own process group (no setsid), and then hangs is
// killed after RestartTimeout with its helpers, but the daemon it started,
// the process the entry matches, is spared and Up.
func TestTimeoutSparesDaemon(t *testing.T) {
	f := newFixture(t, "a", `ENGINE_TEST_HELPER=child "$BIN" helper "$TAG" </dev/null >/dev/null 2>&1 &
sleep 3600 &
echo $! > "$DIR/sleep.pid"
wait`)
	log := newRecorder()
	p := f.process()
	p.Timeout = 2 * time.Second
	params := testParams()
	params.StartWait = 300 * time.Millisecond
	r := run(t, Options{File: testFile("x.pf", params, p), Log: log})

	log.wait(t, message.TryRestart(bin).Text, 1)
	pid := f.waitPid(0)
	log.wait(t, message.ScriptFailed(bin, "timeout").Text, 1)
	log.wait(t, message.Up(bin, pid).Text, 1)
	b, err := os.ReadFile(filepath.Join(f.dir, "sleep.pid"))
	if err != nil {
		t.Fatal(err)
	}
	sleeper, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	waitFor(t, "the hung sleep to be killed", func() bool {
		i, err := proc.Read(sleeper)
		return err != nil || i.Dead()
	})
	if info, err := proc.Read(pid); err != nil || info.Dead() {
		t.Fatalf("the daemon %d was killed with the script: %v", pid, err)
	}
	if st := r.state(bin); st.State != StateUp || len(st.Pids) != 1 || st.Pids[0] != pid || st.RetriesUsed != 1 {
		t.Fatalf("status = %+v", st)
	}
	if n := len(f.readCalls()); n != 1 {
		t.Fatalf("script ran %d times, want once", n)
	}
}

// TestTimeoutSparesExecDaemon: a script that became the daemon (exec, in
// the foreground) outlives RestartTimeout; it is the process the entry
// matches, so it is left running, Up, and reaped when it ends.
func TestTimeoutSparesExecDaemon(t *testing.T) {
	f := newFixture(t, "a", `exec env ENGINE_TEST_HELPER=child "$BIN" helper "$TAG"`)
	log := newRecorder()
	p := f.process()
	p.Timeout = time.Second
	params := testParams()
	params.StartWait = 300 * time.Millisecond
	r := run(t, Options{File: testFile("x.pf", params, p), Log: log})

	pid := f.waitPid(0)
	log.wait(t, message.ScriptFailed(bin, "timeout").Text, 1)
	log.wait(t, message.Up(bin, pid).Text, 1)
	if st := r.state(bin); st.State != StateUp || len(st.Pids) != 1 || st.Pids[0] != pid {
		t.Fatalf("status = %+v", st)
	}
	// Killed, it is reaped (no zombie of pcheck's) and restarted.
	kill(t, pid)
	log.wait(t, message.Down(bin, pid).Text, 1)
	waitFor(t, "the old script to be reaped", func() bool {
		_, err := proc.Read(pid)
		return err != nil
	})
}

// TestOrphanTimeout: a restart script recorded by a previous pcheck that
// still runs is waited for, Restarting, up to RestartTimeout from its own
// start; then its group is killed but for the daemon it started, which is
// Up. No second script runs. The record is found where this pcheck writes
// (ScriptOutputDir) and where a previous one may have written when this
// one cannot (ScriptRecordDirs: the state directory while it is full).
func TestOrphanTimeout(t *testing.T) {
	for _, where := range []string{"output dir", "record dir"} {
		t.Run(where, func(t *testing.T) {
			f := newFixture(t, "a", `ENGINE_TEST_HELPER=child "$BIN" helper "$TAG" </dev/null >/dev/null 2>&1 &
exec sleep 3600`)
			p := f.process()
			p.Timeout = 2 * time.Second
			outDir, stateDir := t.TempDir(), t.TempDir()
			recDir := outDir
			if where == "record dir" {
				recDir = stateDir
			}
			orphan, record := startOrphan(t, f, p, recDir, "")
			daemon := f.waitPid(0)

			log := newRecorder()
			states := make(chan stateChange, 100)
			run(t, Options{File: testFile("x.pf", testParams(), p), Log: log, ScriptOutputDir: outDir,
				ScriptRecordDirs: []string{stateDir}, onState: func(s stateChange) { states <- s }})
			waitState(t, states, StateRestarting, 0)
			log.wait(t, message.ScriptFailed(bin, "timeout").Text, 1)
			log.wait(t, message.Up(bin, daemon).Text, 1)
			waitFor(t, "the orphan script to be killed", func() bool {
				i, err := proc.Read(orphan.Pid)
				return err != nil || i.Dead()
			})
			if i, err := proc.Read(daemon); err != nil || i.Dead() {
				t.Fatalf("the daemon %d was killed with the orphan script: %v", daemon, err)
			}
			if calls := f.readCalls(); len(calls) != 1 {
				t.Fatalf("script calls %q, want only the orphan's", calls)
			}
			if _, err := os.Stat(record); !os.IsNotExist(err) {
				t.Fatalf("record left after the orphan ended: %v", err)
			}
			if n := log.count(message.TryRestart(bin).Text); n != 0 {
				t.Fatalf("Try to restart x%d while an orphan script ran", n)
			}
		})
	}
}

// TestOrphanOtherBoot: a record written before a reboot names a pid and
// start time that repeat in this boot; the process that now has them is
// not the script, and is never waited for nor signalled.
func TestOrphanOtherBoot(t *testing.T) {
	f := newFixture(t, "a", "")
	p := f.process()
	dir := t.TempDir()
	// A live process of ours stands for the one that got the pid.
	other := newFixture(t, "b", "exec sleep 3600")
	stranger, record := startOrphan(t, other, p, dir, "00000000-0000-0000-0000-000000000000")
	log := newRecorder()
	states := make(chan stateChange, 100)
	run(t, Options{File: testFile("x.pf", testParams(), p), Log: log, ScriptOutputDir: dir,
		onState: func(s stateChange) { states <- s }})
	pid := f.waitPid(0)
	log.wait(t, message.Up(bin, pid).Text, 1)
	if i, err := proc.Read(stranger.Pid); err != nil || i.Dead() {
		t.Fatalf("the process named by last boot's record was killed: %v", err)
	}
	if _, err := os.Stat(record); !os.IsNotExist(err) {
		t.Fatalf("last boot's record was kept: %v", err)
	}
}

// startOrphan runs the fixture's script as a previous pcheck would have
// (its own group) and records it in dir, with boot as the boot id (""
// is this boot's). It returns the script and the record's path.
func startOrphan(t *testing.T, f *fixture, p *pfile.Process, dir, boot string) (proc.Info, string) {
	t.Helper()
	orphan := exec.Command(f.script, bin, "0", ReasonDown)
	orphan.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := orphan.Start(); err != nil {
		t.Fatal(err)
	}
	go orphan.Wait()
	t.Cleanup(func() { orphan.Process.Kill() })
	info, err := proc.Read(orphan.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if boot == "" {
		if boot, err = proc.BootID(); err != nil {
			t.Fatal(err)
		}
	}
	record := filepath.Join(dir, state.Name("x.pf")+"-"+keyHash(p.BaseKey())+".script")
	rec := scriptRecord{Pid: info.Pid, Start: info.Start, Pgid: info.Pid, Attempt: 1, Reason: ReasonDown, Boot: boot}
	if err := rec.write(record); err != nil {
		t.Fatal(err)
	}
	return info, record
}

// TestApplyCarriesOverNewKey: a reload that changes only an entry's user
// and script (its key, not its process) carries the entry over: same pid,
// same counts, no new Up, its retry count saved under the new key; the
// Reload names the rename.
func TestApplyCarriesOverNewKey(t *testing.T) {
	a := newFixture(t, "a", "")
	pa := a.start()
	log := newRecorder()
	store, err := state.Open(filepath.Join(t.TempDir(), "x.state"), "x.pf")
	if err != nil {
		t.Fatal(err)
	}
	r := run(t, Options{File: testFile("x.pf", testParams(), a.process()), Log: log, Store: store})
	log.wait(t, message.Up(bin, pa).Text, 1)
	kill(t, pa)
	pa2 := a.waitPid(pa)
	log.wait(t, message.Up(bin, pa2).Text, 1)
	oldKey := a.process().BaseKey()

	na := a.process()
	na.User = "root"
	na.Script = writeScript(t, t.TempDir(), "other.sh", "exit 0")
	rl, err := r.Prepare(testFile("x.pf", testParams(), na))
	if err != nil {
		t.Fatal(err)
	}
	if got := rl.Renames(); len(got) != 1 || got[oldKey] != na.BaseKey() {
		t.Fatalf("renames %v, want %q -> %q", got, oldKey, na.BaseKey())
	}
	if err := rl.Commit(); err != nil {
		t.Fatal(err)
	}
	st := r.state(na.BaseKey())
	if st.State != StateUp || len(st.Pids) != 1 || st.Pids[0] != pa2 || st.RetriesUsed != 1 || st.Restarts != 1 {
		t.Fatalf("carried-over entry = %+v", st)
	}
	if n := log.count(message.Up(bin, pa2).Text); n != 1 {
		t.Fatalf("Up logged %d times, want once", n)
	}
	if n := len(store.Attempts(na.BaseKey())); n != 1 {
		t.Fatalf("%d attempts under the new key, want 1", n)
	}
	if n := len(store.Attempts(oldKey)); n != 0 {
		t.Fatalf("%d attempts left under the old key", n)
	}
	// A second commit of the same preparation finds the rules changed.
	if err := rl.Commit(); !errors.Is(err, ErrChanged) {
		t.Fatalf("second Commit: %v, want ErrChanged", err)
	}
}

// TestRecheckIdle: the re-check leaves an entry's goroutine asleep only
// when its own re-check would find nothing: Up, no pid file, every watched
// process in the snapshot alive with its start time and without children.
func TestRecheckIdle(t *testing.T) {
	ids := []proc.ID{{Pid: 10, Start: 100}, {Pid: 11, Start: 110}}
	quiet := []proc.Info{
		{ID: ids[0], PPid: 1, State: 'S'},
		{ID: ids[1], PPid: 1, State: 'S'},
		{ID: proc.ID{Pid: 20, Start: 200}, PPid: 1, State: 'S'},
	}
	with := func(change func(all []proc.Info) []proc.Info) *snapshot {
		return newSnapshot(change(slices.Clone(quiet)))
	}
	p := &pfile.Process{Name: "/bin/x", Count: 2, Retry: 3, Grace: time.Hour, Action: pfile.ActionContinue}
	in, err := New(Options{File: testFile("x.pf", testParams(), p), Log: newRecorder()})
	if err != nil {
		t.Fatal(err)
	}
	e := in.entries[0]
	if e.recheckIdle(newSnapshot(quiet)) {
		t.Fatal("an entry not Up yet is idle for the re-check")
	}
	e.setState(StateUp, ids)
	if !e.recheckIdle(newSnapshot(quiet)) {
		t.Fatal("Up with both processes alive and childless: not idle")
	}
	for name, snap := range map[string]*snapshot{
		"gone":   with(func(all []proc.Info) []proc.Info { return all[1:] }),
		"reused": with(func(all []proc.Info) []proc.Info { all[1].Start = 999; return all }),
		"zombie": with(func(all []proc.Info) []proc.Info { all[0].State = 'Z'; return all }),
		"child":  with(func(all []proc.Info) []proc.Info { all[2].PPid = ids[1].Pid; return all }),
	} {
		if e.recheckIdle(snap) {
			t.Errorf("%s: idle, but the entry's re-check has work", name)
		}
	}
	p.PidFile = "/run/x.pid"
	if e.recheckIdle(newSnapshot(quiet)) {
		t.Error("an entry with a pid file is idle: its re-check reads the file")
	}
}
