package engine

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/pcheck/pcheck/checker/message"
	"github.com/pcheck/pcheck/checker/proc"
	"github.com/pcheck/pcheck/pfile"
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
	// The restart script starts a helper in the background: wait for it,
	// so that the cleanup kills it instead of a later run of this test
	// (same tag) finding it.
	a.waitPid(pa)
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

// blockingLog holds the first Start message until released: the window
// between Run making its context and starting the entries.
type blockingLog struct {
	*recorder
	once    sync.Once
	started chan struct{}
	release chan struct{}
}

func (b *blockingLog) Log(m message.Message) {
	if m.ID == message.IDStart {
		b.once.Do(func() { close(b.started); <-b.release })
	}
	b.recorder.Log(m)
}

// TestCommitDuringRunStart: a reload committed while Run is starting
// (after it made its context, before it started the entries: a SIGHUP or
// --watch at pcheck's start) starts each entry once. It used to start
// every entry twice: two goroutines looking for one process and running
// its restart script, and a panic (close of a closed channel) when Run
// ended.
func TestCommitDuringRunStart(t *testing.T) {
	p := &pfile.Process{Name: "/nonexistent/pcheck-commit-during-start", Script: "/bin/true", Count: 1, Retry: 1, Grace: time.Hour}
	f := testFile(t.TempDir()+"/a.pf", testParams(), p)
	bl := &blockingLog{recorder: newRecorder(), started: make(chan struct{}), release: make(chan struct{})}
	in, err := New(Options{File: f, Log: bl})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); in.Run(ctx) }()
	<-bl.started
	p2 := *p
	if err := in.Apply(testFile(f.Path, testParams(), &p2)); err != nil {
		t.Fatal(err)
	}
	close(bl.release)
	// Each goroutine looks for the process during StartWait, then logs
	// Set pid fail: two goroutines log it twice, at once.
	setPidFail := message.SetPidFail(p.Name).Text
	bl.wait(t, setPidFail, 1)
	if err := in.Alive(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-done
	if n := bl.count(setPidFail); n != 1 {
		t.Fatalf("%q logged %d times: %d goroutines for one entry", setPidFail, n, n)
	}
}
