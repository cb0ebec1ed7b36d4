package stall

import (
	"context"
	"sync"
	"time"
)

// freezeTick is how often the freeze watch's own goroutine runs.
const freezeTick = 250 * time.Millisecond

// freezeKeep is how long the freeze watch remembers a freeze: longer than
// any attempt's interval and timeout (an hour each at most).
const freezeKeep = 3 * time.Hour

// freezeWatch sees the time in which pcheck did not run (SIGSTOP, a
// debugger, a VM pause, starvation) from the lateness of its own ticks: a
// goroutine that wakes every freezeTick and records each gap longer than
// freezeTick + FreezeMargin as a freeze. It reads the real clock only.
//
// It ticks only while a monitor run needs it (hold, release): a freeze
// matters to the attempts it delays, and a pcheck without running
// monitors (process entries only, or every process down) would otherwise
// wake four times a second for nothing, most of its idle CPU.
type freezeWatch struct {
	mu    sync.Mutex
	last  time.Time // the last tick (monotonic)
	gaps  []gap     // oldest first
	ticks func() time.Time
	// runs counts the monitor runs that hold the watch; parked is set
	// while its goroutine waits for one, when the time since the last
	// tick is no freeze. wake (buffer 1) ends the wait.
	runs   int
	parked bool
	wake   chan struct{}
}

// gap is one freeze: pcheck did not run from from to to.
type gap struct{ from, to time.Time }

func newFreezeWatch() *freezeWatch {
	return &freezeWatch{last: time.Now(), ticks: time.Now, wake: make(chan struct{}, 1)}
}

// hold makes the watch tick for one more monitor run, from now on if it
// was parked.
func (w *freezeWatch) hold() {
	if w == nil {
		return
	}
	w.mu.Lock()
	w.runs++
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// release ends a hold: the watch parks at its next tick once no run holds
// it.
func (w *freezeWatch) release() {
	if w == nil {
		return
	}
	w.mu.Lock()
	w.runs--
	w.mu.Unlock()
}

// reset makes now the last tick, forgetting no freeze.
func (w *freezeWatch) reset(now time.Time) {
	w.mu.Lock()
	w.last = now
	w.mu.Unlock()
}

// run ticks until ctx ends, while a run holds the watch.
func (w *freezeWatch) run(ctx context.Context) {
	t := time.NewTicker(freezeTick)
	defer t.Stop()
	for {
		if !w.park(ctx, t) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.tick(w.ticks())
		}
	}
}

// park waits, without ticking, while no run holds the watch; then it
// starts the ticks afresh from now. It reports false when ctx ended.
func (w *freezeWatch) park(ctx context.Context, t *time.Ticker) bool {
	w.mu.Lock()
	if w.runs > 0 {
		w.mu.Unlock()
		return true
	}
	w.parked = true
	w.mu.Unlock()
	t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-w.wake:
		}
		w.mu.Lock()
		if w.runs > 0 {
			w.parked = false
			w.last = w.ticks()
			w.mu.Unlock()
			t.Reset(freezeTick)
			return true
		}
		w.mu.Unlock()
	}
}

// tick records a tick at now.
func (w *freezeWatch) tick(now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if g, ok := w.pendingLocked(now); ok {
		w.gaps = append(w.gaps, g)
	}
	w.last = now
	for len(w.gaps) > 0 && now.Sub(w.gaps[0].to) > freezeKeep {
		w.gaps = w.gaps[1:]
	}
}

// pendingLocked is the freeze that ends at now if the watch's goroutine
// has not run for longer than a tick and the margin: its own tick may
// simply not have come yet after pcheck resumed.
func (w *freezeWatch) pendingLocked(now time.Time) (gap, bool) {
	if w.parked || now.Sub(w.last) <= freezeTick+FreezeMargin {
		return gap{}, false
	}
	return gap{from: w.last.Add(freezeTick), to: now}, true
}

// frozen returns how much of [from, to] (monotonic readings of the real
// clock) pcheck did not run, a freeze still unrecorded at now included.
func (w *freezeWatch) frozen(from, to, now time.Time) time.Duration {
	if w == nil || !to.After(from) {
		return 0
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	gaps := w.gaps
	if g, ok := w.pendingLocked(now); ok {
		gaps = append(gaps[:len(gaps):len(gaps)], g)
	}
	var sum time.Duration
	for _, g := range gaps {
		a, b := maxTime(from, g.from), minTime(to, g.to)
		if b.After(a) {
			sum += b.Sub(a)
		}
	}
	return sum
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
