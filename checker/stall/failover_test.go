package stall

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/pcheck/pcheck/checker/proc"
	"github.com/pcheck/pcheck/pfile"
)

// try is one attempt of a failover table: it was due at due, started at
// start and lasted took, on the monotonic clock, and suspend more on the
// boot clock (seconds from the table's origin).
type try struct {
	due, start, took, suspend float64
	// paused and pausedBefore are what pcheck's ticks saw frozen during
	// the attempt and between its due time and its start.
	paused, pausedBefore float64
	outcome              Outcome
	timedOut             bool // failed: the attempt's timeout ran out
	mod                  int  // heartbeat mtime, seconds
	want                 State
	measured             bool
}

func secs(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }

// TestFailover: the threshold alone, attempt by attempt, on made-up times:
// interval 1 s, attempt timeout 1 s, failover 3 s unless the case says.
func TestFailover(t *testing.T) {
	const F, S, U = Failed, Succeeded, NotMade
	tests := []struct {
		name      string
		kind      pfile.Kind
		failover  float64
		stopAfter bool
		timeout   float64 // the attempt timeout; 0 leaves it unset
		tries     []try
	}{
		{name: "failures for the failover time stall", tries: []try{
			{start: 0, took: 0.1, outcome: F, want: StateInDoubt, measured: true},
			{start: 1, took: 0.1, outcome: F, want: StateInDoubt, measured: true},
			{start: 2, took: 0.1, outcome: F, want: StateInDoubt, measured: true},
			{start: 3, took: 0.1, outcome: F, want: StateStalled, measured: true},
		}},
		{name: "measured from the first failure, not the last success", tries: []try{
			{start: 0, took: 0.1, outcome: S, want: StateOk, measured: true},
			{start: 1, took: 1, outcome: F, want: StateInDoubt, measured: true},
			{start: 2, took: 1, outcome: F, want: StateInDoubt, measured: true},
			{start: 3, took: 1, outcome: F, want: StateStalled, measured: true},
		}},
		{name: "a success ends the run", tries: []try{
			{start: 0, took: 0.1, outcome: F, want: StateInDoubt, measured: true},
			{start: 1, took: 0.1, outcome: F, want: StateInDoubt, measured: true},
			{start: 2, took: 0.1, outcome: F, want: StateInDoubt, measured: true},
			{start: 3, took: 0.1, outcome: S, want: StateOk, measured: true},
			{start: 4, took: 0.1, outcome: F, want: StateInDoubt, measured: true},
			{start: 7, took: 0.1, outcome: F, want: StateStalled, measured: true},
		}},
		{name: "Unknown ends the run and never stalls", tries: []try{
			{start: 0, took: 0.1, outcome: F, want: StateInDoubt, measured: true},
			{start: 2, took: 0.1, outcome: F, want: StateInDoubt, measured: true},
			{start: 3, took: 0.1, outcome: U, want: StateUnknown, measured: true},
			{start: 10, took: 0.1, outcome: U, want: StateUnknown, measured: true},
			{start: 11, took: 0.1, outcome: F, want: StateInDoubt, measured: true},
			{start: 14, took: 0.1, outcome: F, want: StateStalled, measured: true},
		}},
		{name: "heartbeat: an unchanged mtime fails, any change succeeds", kind: pfile.KindHeartbeat, tries: []try{
			{start: 0, took: 0, outcome: S, mod: 100, want: StateOk, measured: true},
			{start: 1, took: 0, outcome: S, mod: 100, want: StateInDoubt, measured: true},
			{start: 2, took: 0, outcome: S, mod: 50, want: StateOk, measured: true},
			{start: 3, took: 0, outcome: S, mod: 50, want: StateInDoubt, measured: true},
			{start: 4, took: 0, outcome: F, want: StateInDoubt, measured: true},
			{start: 6, took: 0, outcome: S, mod: 50, want: StateStalled, measured: true},
		}},
		{name: "PS_EXEC error=1 is stopped after its stall", stopAfter: true, tries: []try{
			{start: 0, took: 0.1, outcome: F, want: StateInDoubt, measured: true},
			{start: 3, took: 0.1, outcome: F, want: StateStalled, measured: true},
		}},
		{name: "freeze during an attempt: not measured, not a failure", failover: 5, tries: []try{
			{start: 0, took: 0.3, outcome: S, want: StateOk, measured: true},
			{start: 1, took: 15, paused: 14.8, outcome: F, want: StateOk, measured: false},
			{start: 16, took: 0.3, outcome: S, want: StateOk, measured: true},
		}},
		{name: "freeze during an attempt of a failing run: its time is lost", failover: 5, tries: []try{
			{start: 0, took: 1, outcome: F, want: StateInDoubt, measured: true},
			{start: 1, took: 1, outcome: F, want: StateInDoubt, measured: true},
			{start: 2, took: 15, paused: 14, outcome: F, want: StateInDoubt, measured: false},
			{start: 17, took: 1, outcome: F, want: StateInDoubt, measured: true},
			{start: 18, took: 1, outcome: F, want: StateInDoubt, measured: true},
			// 0..2 and 17..20: 5 s seen failing.
			{start: 19, took: 1, outcome: F, want: StateStalled, measured: true},
		}},
		{name: "freeze between attempts: the timer's lateness is lost", failover: 5, tries: []try{
			{due: 0, start: 0, took: 1, outcome: F, want: StateInDoubt, measured: true},
			{due: 1, start: 16, took: 1, outcome: F, want: StateInDoubt, measured: true},
			{due: 17, start: 17, took: 1, outcome: F, want: StateInDoubt, measured: true},
			{due: 18, start: 18, took: 1, outcome: F, want: StateInDoubt, measured: true},
			// 0..1 and 16..20: 5 s.
			{due: 19, start: 19, took: 1, outcome: F, want: StateStalled, measured: true},
		}},
		{name: "freeze between attempts seen by the ticks is lost", failover: 5, tries: []try{
			{start: 0, took: 1, outcome: F, want: StateInDoubt, measured: true},
			{start: 16, took: 1, pausedBefore: 15, outcome: F, want: StateInDoubt, measured: true},
			{start: 17, took: 1, outcome: F, want: StateInDoubt, measured: true},
			{start: 18, took: 1, outcome: F, want: StateInDoubt, measured: true},
			{start: 19, took: 1, outcome: F, want: StateStalled, measured: true},
		}},
		{name: "a late timer within the margin counts", failover: 3, tries: []try{
			{due: 0, start: 0, took: 0.1, outcome: F, want: StateInDoubt, measured: true},
			{due: 1, start: 1.9, took: 0.1, outcome: F, want: StateInDoubt, measured: true},
			{due: 3, start: 3, took: 0.1, outcome: F, want: StateStalled, measured: true},
		}},
		{name: "an attempt that overran while pcheck ran is a failure", failover: 3, tries: []try{
			{start: 0, took: 1, outcome: F, want: StateInDoubt, measured: true},
			// A check command stuck in the kernel: 20 s past its 1 s.
			{start: 1, took: 20, outcome: F, want: StateStalled, measured: true},
		}},
		{name: "suspend during an attempt: seen on the boot clock", failover: 3, tries: []try{
			{start: 0, took: 0.5, outcome: F, want: StateInDoubt, measured: true},
			{start: 1, took: 0.5, suspend: 600, outcome: F, want: StateInDoubt, measured: false},
			{start: 2, took: 0.5, outcome: F, want: StateInDoubt, measured: true},
			// 0..2.5 and 3..3.5: the suspended attempt's 0.5 s is lost.
			{start: 3, took: 0.5, outcome: F, want: StateStalled, measured: true},
		}},
		{name: "a success during a freeze is a success", failover: 3, tries: []try{
			{start: 0, took: 0.1, outcome: F, want: StateInDoubt, measured: true},
			{start: 1, took: 20, paused: 19, outcome: S, want: StateOk, measured: true},
			{start: 21, took: 0.1, outcome: F, want: StateInDoubt, measured: true},
		}},
		{name: "a timeout the freeze made is not measured", failover: 5, timeout: 1, tries: []try{
			{start: 0, took: 0.3, outcome: S, want: StateOk, measured: true},
			// 15 s SIGSTOP: 0.2 s of the 1 s timeout while pcheck ran.
			{start: 1, took: 15, paused: 14.8, outcome: F, timedOut: true, want: StateOk, measured: false},
			{start: 16, took: 0.3, outcome: S, want: StateOk, measured: true},
		}},
		{name: "starved machine: a hung server still stalls", failover: 30, timeout: 10, tries: []try{
			// Each attempt had its whole 10 s while pcheck ran, and 1.5 s
			// more in which it did not: a failure, the 1.5 s lost.
			{start: 0, took: 11.5, paused: 1.5, outcome: F, timedOut: true, want: StateInDoubt, measured: true},
			{start: 11.5, took: 11.5, paused: 1.5, outcome: F, timedOut: true, want: StateInDoubt, measured: true},
			// 34.5 s failing, 4.5 s of it lost: 30 s.
			{start: 23, took: 11.5, paused: 1.5, outcome: F, timedOut: true, want: StateStalled, measured: true},
		}},
		{name: "Unknown during a freeze is not measured either", failover: 3, tries: []try{
			{start: 0, took: 0.1, outcome: F, want: StateInDoubt, measured: true},
			{start: 1, took: 5, paused: 4, outcome: U, want: StateInDoubt, measured: false},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := pfile.Monitor{Kind: tt.kind, Interval: time.Second, Failover: 3 * time.Second, StopAfterStall: tt.stopAfter}
			if tt.kind == "" {
				cfg.Kind = pfile.KindSocket
			}
			if tt.failover != 0 {
				cfg.Failover = secs(tt.failover)
			}
			cfg.Timeout = secs(tt.timeout)
			f := NewFailover(cfg)
			f.Start()
			origin := time.Now()
			var boot time.Duration
			for i, a := range tt.tries {
				s := Sample{
					Outcome:      a.outcome,
					TimedOut:     a.timedOut,
					ModTime:      time.Unix(int64(a.mod), 0),
					Start:        origin.Add(secs(a.start)),
					End:          origin.Add(secs(a.start + a.took)),
					BootStart:    boot + secs(a.start),
					PausedBefore: secs(a.pausedBefore),
					PausedDuring: secs(a.paused),
				}
				boot += secs(a.suspend)
				s.BootEnd = boot + secs(a.start+a.took)
				if a.due != 0 || a.start == 0 {
					s.Due = origin.Add(secs(a.due))
				}
				v := f.Add(s)
				if v.State != a.want || v.Measured != a.measured {
					t.Fatalf("attempt %d %+v: %v measured %v, want %v measured %v", i, a, v.State, v.Measured, a.want, a.measured)
				}
			}
			if tt.stopAfter && !f.Stopped() {
				t.Fatal("PS_EXEC error=1: not stopped after the stall")
			}
		})
	}
}

// TestFailoverActed: after a stall, the action's outcome with PS_EXEC
// error 0/1 and PS_ACTION error 0/1.
func TestFailoverActed(t *testing.T) {
	tests := []struct {
		stopAfter, retryOverOnFailure, killed bool
		want                                  State
		retryOver                             bool
	}{
		{killed: true, want: StateStalled},
		{stopAfter: true, killed: true, want: StateStopped},
		{killed: false, want: StateStopped},
		{retryOverOnFailure: true, killed: true, want: StateStalled},
		{retryOverOnFailure: true, killed: false, want: StateStopped, retryOver: true},
		{stopAfter: true, retryOverOnFailure: true, killed: false, want: StateStopped, retryOver: true},
	}
	for _, tt := range tests {
		cfg := pfile.Monitor{Kind: pfile.KindSocket, Interval: time.Second, Failover: time.Second,
			StopAfterStall: tt.stopAfter, RetryOverOnKillFailure: tt.retryOverOnFailure}
		f := NewFailover(cfg)
		f.Start()
		now := time.Now()
		f.Add(Sample{Outcome: Failed, Start: now, End: now.Add(100 * time.Millisecond)})
		if v := f.Add(Sample{Outcome: Failed, Start: now.Add(time.Second), End: now.Add(1100 * time.Millisecond)}); v.State != StateStalled {
			t.Fatalf("%+v: %v, want Stalled", tt, v.State)
		}
		state, retryOver := f.Acted(tt.killed)
		if state != tt.want || retryOver != tt.retryOver {
			t.Errorf("%+v: %v retry over %v, want %v, %v", tt, state, retryOver, tt.want, tt.retryOver)
		}
		// Up again after the restart: a stopped one stays Stopped.
		f.Start()
		if wantStopped := tt.want == StateStopped; (f.State() == StateStopped) != wantStopped {
			t.Errorf("%+v: after Start %v", tt, f.State())
		}
	}
}

// TestFreezeWatch: the watch's own ticks tell the time pcheck did not run,
// recorded gaps and a gap still open when asked (its tick has not come
// yet after the resume) alike; ticks on time tell none.
func TestFreezeWatch(t *testing.T) {
	t0 := time.Now()
	at := func(s float64) time.Time { return t0.Add(secs(s)) }
	w := &freezeWatch{last: t0}
	for s := 0.25; s <= 2; s += 0.25 {
		w.tick(at(s))
	}
	if got := w.frozen(at(0), at(2), at(2)); got != 0 {
		t.Fatalf("ticks on time: %v frozen", got)
	}
	w.tick(at(17)) // stopped from 2.25 to 17
	if got := w.frozen(at(1), at(18), at(17.1)); got != secs(14.75) {
		t.Fatalf("a recorded freeze: %v frozen, want 14.75s", got)
	}
	// Stopped again from 17.25; asked at 30 before its tick came.
	if got := w.frozen(at(20), at(30), at(30)); got != 10*time.Second {
		t.Fatalf("an open freeze: %v frozen, want 10s", got)
	}
	if got := w.frozen(at(20), at(30), at(17.5)); got != 0 {
		t.Fatalf("no freeze yet at 17.5: %v frozen", got)
	}
	var none *freezeWatch
	if got := none.frozen(at(0), at(30), at(30)); got != 0 {
		t.Fatalf("no watch: %v frozen", got)
	}
}

// TestFreezeWatchParks: the watch ticks only while a monitor run holds
// it, and the time it spent parked is no freeze.
func TestFreezeWatchParks(t *testing.T) {
	w := newFreezeWatch()
	var mu sync.Mutex
	ticks := 0
	w.ticks = func() time.Time {
		mu.Lock()
		ticks++
		mu.Unlock()
		return time.Now()
	}
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return ticks
	}
	parked := func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.parked
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.run(ctx) }()
	defer func() { cancel(); <-done }()

	waitFor(t, "the watch to park without runs", parked)
	if n := count(); n != 0 {
		t.Fatalf("%d ticks without a run", n)
	}
	// Parked for long: no freeze, though the last tick is old.
	w.mu.Lock()
	w.last = time.Now().Add(-time.Hour)
	w.mu.Unlock()
	if got := w.frozen(time.Now().Add(-time.Minute), time.Now(), time.Now()); got != 0 {
		t.Fatalf("parked: %v frozen", got)
	}
	w.hold()
	waitFor(t, "ticks while a run holds the watch", func() bool { return count() >= 2 })
	if got := w.frozen(time.Now().Add(-time.Minute), time.Now(), time.Now()); got != 0 {
		t.Fatalf("ticking again: the parked time is %v frozen", got)
	}
	w.release()
	waitFor(t, "the watch to park once released", parked)
}

// TestMonitorHoldsFreezeWatch: a monitor's run holds the Runtime's freeze
// watch from Start to Stop, so that it ticks while attempts may need it
// and parks when no monitor runs.
func TestMonitorHoldsFreezeWatch(t *testing.T) {
	rt := NewRuntime(RuntimeOptions{}) // the real clock: with a freeze watch
	f := loadPfile(t, testProc+" /bin/true\n"+block("socket", "-:1:0:2:3:1", 1))
	b := f.Processes[0].Blocks[0]
	m, err := rt.NewMonitor(f.Processes[0].Name, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	runs := func() int {
		rt.freeze.mu.Lock()
		defer rt.freeze.mu.Unlock()
		return rt.freeze.runs
	}
	m.Start([]proc.ID{{Pid: 4242}}, func(Result) {})
	if n := runs(); n != 1 {
		t.Fatalf("started: %d runs hold the watch, want 1", n)
	}
	m.Start([]proc.ID{{Pid: 4243}}, func(Result) {}) // a fresh run replaces the first
	if n := runs(); n != 1 {
		t.Fatalf("restarted: %d runs hold the watch, want 1", n)
	}
	m.Stop()
	m.Stop()
	if n := runs(); n != 0 {
		t.Fatalf("stopped: %d runs hold the watch, want 0", n)
	}
}
