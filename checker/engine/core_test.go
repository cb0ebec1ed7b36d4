package engine

import (
	"context"
	"testing"
	"time"

	"github.com/pcheck/pcheck/checker/message"
	"github.com/pcheck/pcheck/checker/proc"
)

// TestRaisedCountNoticedAtOnce: a reload that raises count= above the
// processes running is noticed at once, not at the next death or
// re-check (MonitorInterval is a minute): the entry looks for them during
// StartWait, then Set pid fail and a restart.
func TestRaisedCountNoticedAtOnce(t *testing.T) {
	a := newFixture(t, "a", "")
	pa := a.start()
	log := newRecorder()
	p := testParams()
	p.MonitorInterval = time.Minute
	r := run(t, Options{File: testFile("x.pf", p, a.process()), Log: log})
	log.wait(t, message.Up(bin, pa).Text, 1)

	na := a.process()
	na.Count = 2
	reloaded := time.Now()
	if err := r.Apply(testFile("x.pf", p, na)); err != nil {
		t.Fatal(err)
	}
	log.wait(t, message.SetPidFail(bin).Text, 1)
	log.wait(t, message.TryRestart(bin).Text, 1)
	if took := time.Since(reloaded); took > p.MonitorInterval/2 {
		t.Fatalf("shortfall noticed %v after the reload, want well before MonitorInterval %v", took, p.MonitorInterval)
	}
}

// TestProtectedTree: the processes cleanup must spare are those of every
// entry that is Up (its watched pids) and of every entry that is not
// (Paused here: the process it would match), and their descendants.
func TestProtectedTree(t *testing.T) {
	a := newFixture(t, "a", "")
	b := newFixture(t, "b", "")
	pa, pb := a.start(), b.start()
	log := newRecorder()
	r := run(t, Options{File: testFile("x.pf", testParams(), a.process(), b.process()), Log: log})
	log.wait(t, message.Up(bin, pa).Text, 1)
	log.wait(t, message.Up(bin, pb).Text, 1)
	if err := r.Pause(b.process().BaseKey()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b paused", func() bool { return r.state(b.process().BaseKey()).State == StatePaused })
	all, err := proc.Scan()
	if err != nil {
		t.Fatal(err)
	}
	got := map[int]bool{}
	for _, pid := range r.Protected(all) {
		got[pid] = true
	}
	if !got[pa] || !got[pb] {
		t.Fatalf("protected %v, want the Up pid %d and the Paused entry's process %d", got, pa, pb)
	}
}

// TestAdopted: Adopted is closed once every entry has made its first
// look: the running process is Up by then, and the missing one is still
// being looked for (its StartWait has not run out: no Set pid fail yet).
func TestAdopted(t *testing.T) {
	a := newFixture(t, "a", "")
	missing := newFixture(t, "m", "exit 0")
	pa := a.start()
	log := newRecorder()
	p := testParams()
	p.StartWait = 20 * time.Second
	in, err := New(Options{File: testFile("x.pf", p, a.process(), missing.process()), Log: log})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-in.Adopted():
		t.Fatal("Adopted closed before Run")
	default:
	}
	r := startRunning(t, in)
	select {
	case <-in.Adopted():
	case <-time.After(30 * time.Second):
		t.Fatal("Adopted not closed")
	}
	if st := r.state(a.process().BaseKey()); st.State != StateUp || len(st.Pids) != 1 || st.Pids[0] != pa {
		t.Fatalf("at Adopted, the running process is %+v, want Up", st)
	}
	if n := log.count(message.SetPidFail(bin).Text); n != 0 {
		t.Fatal("Adopted waited for StartWait of the missing process")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Alive(ctx); err != nil {
		t.Fatalf("Alive: %v", err)
	}
}

// TestAdoptedAfterEarlyReload: a reload before Run started removes an
// entry of the first pfile: Adopted does not wait for the first look that
// entry will never make.
func TestAdoptedAfterEarlyReload(t *testing.T) {
	a := newFixture(t, "a", "")
	gone := newFixture(t, "g", "exit 0")
	pa := a.start()
	log := newRecorder()
	in, err := New(Options{File: testFile("x.pf", testParams(), a.process(), gone.process()), Log: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Apply(testFile("x.pf", testParams(), a.process())); err != nil {
		t.Fatal(err)
	}
	startRunning(t, in)
	select {
	case <-in.Adopted():
	case <-time.After(30 * time.Second):
		t.Fatal("Adopted waits for an entry removed before Run")
	}
	log.wait(t, message.Up(bin, pa).Text, 1)
}
