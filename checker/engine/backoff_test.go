package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pcheck/pcheck/checker/message"
	"github.com/pcheck/pcheck/pfile"
)

// The tests below run the real engine on real processes started by real
// restart scripts: the restart backoff (RestartDelay), the re-arm after a
// retry over (RetryOverRearm). Timings are asserted with tolerances taken
// from the events' own times, never exact.

// events keeps every event of an Instance (Options.OnEvent) with its time.
type events struct {
	mu  sync.Mutex
	all []Event
}

func (ev *events) add(e Event) {
	ev.mu.Lock()
	ev.all = append(ev.all, e)
	ev.mu.Unlock()
}

// wait returns the events of kind, oldest first, once there are n: an
// event is reported just after its line is logged.
func (ev *events) wait(t testing.TB, kind string, n int) []Event {
	t.Helper()
	var out []Event
	waitFor(t, fmt.Sprintf("%d %s events", n, kind), func() bool {
		out = ev.of(kind)
		return len(out) >= n
	})
	return out
}

// of returns the events of kind, oldest first.
func (ev *events) of(kind string) []Event {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	var out []Event
	for _, e := range ev.all {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// delayedSeconds returns the seconds of every Restart delayed line.
func delayedSeconds(t *testing.T, log *recorder) []float64 {
	t.Helper()
	var out []float64
	prefix := fmt.Sprintf("Restart delayed ('%s') seconds=", bin)
	for _, s := range log.texts() {
		if rest, ok := strings.CutPrefix(s, prefix); ok {
			f, err := strconv.ParseFloat(rest, 64)
			if err != nil {
				t.Fatalf("%q: %v", s, err)
			}
			out = append(out, f)
		}
	}
	return out
}

// TestRestartBackoffGrowsAndResets: a process killed as soon as it is Up
// (a crash loop) is restarted after 1 s, then 2 s, then 4 s (each with
// its 20 % jitter); once it has stayed Up for RestartDelayReset (2 s) the
// next restart waits 1 s again. Status shows the next attempt's time while
// the entry waits. Every script run is counted once, when it runs.
func TestRestartBackoffGrowsAndResets(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "bo", "")
	pid := f.start()
	log := newRecorder()
	ev := &events{}
	p := f.process()
	p.Retry = 10
	p.Backoff = pfile.Backoff{Delay: time.Second, Max: 8 * time.Second, Reset: 2 * time.Second}
	r := run(t, Options{File: testFile("x.pf", testParams(), p), Log: log, OnEvent: ev.add})
	log.wait(t, message.Up(bin, pid).Text, 1)

	// Three crashes in a row, each as soon as the process is Up.
	for i := 1; i <= 3; i++ {
		kill(t, pid)
		if i == 3 {
			// The 4 s wait: Restarting, with the next attempt's time.
			waitFor(t, "NextAttempt in status", func() bool { return !r.state(bin).NextAttempt.IsZero() })
			st := r.state(bin)
			down := ev.wait(t, "down", 3)[2].Time
			if st.State != StateRestarting || st.NextAttempt.Sub(down) < 3*time.Second || st.NextAttempt.Sub(down) > 6*time.Second {
				t.Fatalf("status while waiting %+v, down at %s: want Restarting, next attempt 3.2-4.8 s after the down", st, down)
			}
		}
		log.wait(t, message.TryRestart(bin).Text, i)
		pid = f.waitPid(pid)
		log.wait(t, message.Up(bin, pid).Text, 1)
	}
	if st := r.state(bin); !st.NextAttempt.IsZero() {
		t.Fatalf("NextAttempt %s while Up", st.NextAttempt)
	}
	// A stable run as long as RestartDelayReset, then a crash.
	ups := ev.wait(t, "up", 4)
	stable := ups[len(ups)-1].Time
	waitFor(t, "a run of RestartDelayReset", func() bool { return time.Since(stable) > 2200*time.Millisecond })
	kill(t, pid)
	log.wait(t, message.TryRestart(bin).Text, 4)
	pid = f.waitPid(pid)
	log.wait(t, message.Up(bin, pid).Text, 1)

	// The delays as logged: exactly the jitter's range of 1, 2, 4, 1 s.
	want := []float64{1, 2, 4, 1}
	got := delayedSeconds(t, log)
	if len(got) != len(want) {
		t.Fatalf("Restart delayed logged %v, want 4 delays", got)
	}
	for i, base := range want {
		if got[i] < 0.8*base-0.05 || got[i] > 1.2*base+0.05 {
			t.Fatalf("delay %d is %.1f s, want %g s +-20%%: %v", i+1, got[i], base, got)
		}
	}
	// The waits as they happened: from each down to its Try to restart,
	// at least the logged delay, and not much more (a loaded machine).
	downs, tries := ev.wait(t, "down", 4), ev.wait(t, "try-restart", 4)
	for i := range want {
		gap := tries[i].Time.Sub(downs[i].Time).Seconds()
		if gap < got[i]-0.05 || gap > got[i]+3 {
			t.Fatalf("restart %d came %.2f s after the down, the delay was %.1f s", i+1, gap, got[i])
		}
	}
	if tries[2].Time.Sub(downs[2].Time) <= tries[3].Time.Sub(downs[3].Time) {
		t.Fatal("the delay after a stable run is not shorter than the one before it")
	}
	// Counted as today: one attempt per script run.
	if st, calls := r.state(bin), f.readCalls(); st.RetriesUsed != 4 || st.Restarts != 4 || len(calls) != 5 {
		t.Fatalf("status %+v and %d script calls: want 4 attempts and 4 restarts (and the setup call)", st, len(calls))
	}
}

// TestRestartDelayControls: during a long restart delay pause drops the
// restart, stop ends the wait at once, and padmin restart does not wait:
// the pending restart runs now, with its own reason, counted once. The
// start after the pause is the operator's: the backoff starts again at
// RestartDelay.
func TestRestartDelayControls(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "ctl", "")
	pid := f.start()
	log := newRecorder()
	p := f.process()
	p.Backoff = pfile.Backoff{Delay: 20 * time.Second, Max: 60 * time.Second, Reset: time.Hour}
	r := run(t, Options{File: testFile("x.pf", testParams(), p), Log: log})
	log.wait(t, message.Up(bin, pid).Text, 1)

	kill(t, pid)
	log.wait(t, message.Down(bin, pid).Text, 1)
	waitFor(t, "the restart delay", func() bool { return !r.state(bin).NextAttempt.IsZero() })
	if err := r.Pause(bin); err != nil {
		t.Fatal(err)
	}
	if st := r.state(bin); st.State != StatePaused || !st.NextAttempt.IsZero() {
		t.Fatalf("after pause during the delay: %+v", st)
	}
	if err := r.Resume(bin); err != nil {
		t.Fatal(err)
	}
	// Not found within StartWait: Set pid fail and a wait of RestartDelay
	// again (the resume reset the backoff); padmin restart ends it.
	log.wait(t, message.SetPidFail(bin).Text, 1)
	waitFor(t, "the second restart delay", func() bool { return !r.state(bin).NextAttempt.IsZero() })
	if got := delayedSeconds(t, log); len(got) != 2 || got[1] > 24.05 {
		t.Fatalf("delays %v: want the second, after padmin start, RestartDelay 20 s +-20%%", got)
	}
	asked := time.Now()
	if err := r.RestartNow(bin, false); err != nil {
		t.Fatalf("padmin restart during the delay: %v", err)
	}
	log.wait(t, message.TryRestart(bin).Text, 1)
	newPid := f.waitPid(pid)
	log.wait(t, message.Up(bin, newPid).Text, 1)
	if waited := time.Since(asked); waited > 20*time.Second {
		t.Fatalf("the restart came %s after padmin restart", waited)
	}
	calls := f.readCalls()
	if len(calls) != 2 || !strings.Contains(calls[1], "|pidfail|1|") {
		t.Fatalf("script calls %q: want one restart, reason pidfail, attempt 1", calls)
	}
	if st := r.state(bin); st.RetriesUsed != 1 || st.Restarts != 1 {
		t.Fatalf("status %+v: want the one restart counted once", st)
	}

	// Stop during a delay returns at once, without running the script.
	kill(t, newPid)
	waitFor(t, "the third restart delay", func() bool { return !r.state(bin).NextAttempt.IsZero() })
	stopped := time.Now()
	if res := r.stop(t); res != Stopped {
		t.Fatalf("result %v", res)
	}
	if d := time.Since(stopped); d > 10*time.Second {
		t.Fatalf("stop during the delay took %s", d)
	}
	if got := f.readCalls(); len(got) != 2 {
		t.Fatalf("the script ran after stop: %q", got)
	}
}

// TestRetryOverRearm: an entry in RetryOver with RetryOverRearm 2 s is
// re-armed after that long (Retry over rearmed), its retry count cleared,
// looked for and, absent, restarted; status shows when the re-arm comes.
func TestRetryOverRearm(t *testing.T) {
	t.Parallel()
	// The script starts the daemon only once the test has created
	// $DIR/armed: before, every attempt fails.
	f := newFixture(t, "rearm", `if [ -f "$DIR/armed" ]; then `+startHelper+` fi`)
	log := newRecorder()
	ev := &events{}
	p := f.process()
	p.Retry = 1
	p.RetryOverRearm = 2 * time.Second
	r := run(t, Options{File: testFile("x.pf", testParams(), p), Log: log, OnEvent: ev.add})

	over := message.RetryOver(bin, "continue").Text
	log.wait(t, over, 1)
	waitFor(t, "the re-arm time in status", func() bool { return !r.state(bin).NextAttempt.IsZero() })
	st := r.state(bin)
	at := ev.wait(t, "retry-over", 1)[0].Time
	if st.State != StateRetryOver || st.RetriesUsed != 1 || st.NextAttempt.Sub(at) < 1900*time.Millisecond || st.NextAttempt.Sub(at) > 3*time.Second {
		t.Fatalf("status in RetryOver %+v (retry over at %s): want the re-arm 2 s later", st, at)
	}
	if err := os.WriteFile(filepath.Join(f.dir, "armed"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	log.wait(t, message.RetryOverRearmed(bin).Text, 1)
	if gap := ev.wait(t, "retry-over-rearmed", 1)[0].Time.Sub(at); gap < 2*time.Second-50*time.Millisecond {
		t.Fatalf("re-armed %s after the retry over, want 2 s", gap)
	}
	// Looked for during StartWait, absent, restarted: attempt 1 again.
	log.wait(t, message.SetPidFail(bin).Text, 3)
	pid := f.waitPid(0)
	log.wait(t, message.Up(bin, pid).Text, 1)
	if i, j := log.indexOf(over), log.indexOf(message.RetryOverRearmed(bin).Text); i > j {
		t.Fatal("rearmed logged before the retry over")
	}
	calls := f.readCalls()
	if len(calls) != 2 || !strings.HasSuffix(calls[1], "|pidfail|1|x.pf") {
		t.Fatalf("script calls %q: want the first attempt, then attempt 1 after the re-arm", calls)
	}
	if st := r.state(bin); st.State != StateUp || st.RetriesUsed != 1 || !st.NextAttempt.IsZero() {
		t.Fatalf("status after the re-arm %+v", st)
	}
}

// TestRearmResetsBackoff: a re-arm starts the restart backoff afresh, the
// timed one (RetryOverRearm) as padmin start of a RetryOver entry: each
// first restart after it waits RestartDelay, not the doubled delay of the
// failures before the retry over. Status shows the failure's reason as
// soon as its restart delay begins.
func TestRearmResetsBackoff(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "rearmbo", ":")
	log := newRecorder()
	p := f.process()
	p.Retry = 1
	p.RetryOverRearm = 2 * time.Second
	p.Backoff = pfile.Backoff{Delay: time.Second, Max: 8 * time.Second, Reset: time.Hour}
	r := run(t, Options{File: testFile("x.pf", testParams(), p), Log: log})

	var st ProcessStatus
	waitFor(t, "the first restart delay", func() bool { st = r.state(bin); return !st.NextAttempt.IsZero() })
	if st.State != StateRestarting || st.LastReason != ReasonPidFail {
		t.Fatalf("status during the restart delay %+v: want Restarting, last reason pidfail", st)
	}
	over := message.RetryOver(bin, "continue").Text
	log.wait(t, over, 1)
	// The timed re-arm, its Set pid fail and restart, the retry over.
	log.wait(t, message.RetryOverRearmed(bin).Text, 1)
	log.wait(t, over, 2)
	// padmin start of the RetryOver entry.
	if err := r.Resume(bin); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the third restart delay", func() bool { return len(delayedSeconds(t, log)) == 3 })
	for i, d := range delayedSeconds(t, log) {
		if d < 0.75 || d > 1.25 {
			t.Fatalf("delay %d is %.1f s, want RestartDelay 1 s +-20%% after each re-arm: %v", i+1, d, delayedSeconds(t, log))
		}
	}
}
