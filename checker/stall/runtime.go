package stall

import (
	"container/heap"
	"context"
	"math/rand/v2"
	"runtime"
	"sync"
	"time"
)

// batchWindow is how close together attempts must be due to start as one
// batch, on one wake-up of the scheduler.
const batchWindow = 2 * time.Millisecond

// workerIdle is how long an attempt worker waits for more work before it
// ends: a steady schedule reuses the same few goroutines.
const workerIdle = time.Minute

// maxWorkers bounds the workers of the attempts that are not on the probe
// event loop (HTTPS, CMD, heartbeat, listen, children, resource); attempts
// beyond it wait in a queue, in the order they came due. HTTPS handshakes
// are CPU work, a few per core; the others mostly wait for a check command
// or read /proc, so four per core and at least 8 leave room for a few
// hung check commands without delaying every other attempt.
var maxWorkers = max(8, 4*runtime.GOMAXPROCS(0))

// Runtime runs the attempts of every stall monitor of a pcheck process,
// of every pfile: one goroutine whose one timer is the next attempt due
// (a heap ordered by due time), attempts due within batchWindow started on
// the same wake-up. The TCP and plain HTTP attempts run on the probe
// event loop (probe.Starter), which holds no goroutine per attempt; the
// others on a pool of at most maxWorkers workers that grows with the
// attempts in flight and shrinks when idle. No monitor has a goroutine or a
// timer of its own. A monitor's attempts are sequential and its phase its own: its
// first attempt comes after a random stagger within its interval, each
// next one an interval after the previous started, or at once when the
// previous took longer.
type Runtime struct {
	clock Clock
	// freeze sees the time pcheck did not run; nil with a Clock of the
	// caller's (tests), whose readings it could not compare.
	freeze *freezeWatch
	// stagger returns the delay of the first attempt of a run.
	stagger func(interval time.Duration) time.Duration
	// base is the parent of every run's context; cancelled when Run ends.
	base   context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	queue   runQueue      // runs waiting for their next attempt
	kick    chan struct{} // buffer 1: the queue's head changed
	tasks   []func()      // attempts waiting for a worker
	workers int           // running
	idle    int           // of the workers, waiting for a task
	more    chan struct{} // buffer maxWorkers: a task was queued
	running bool
	ended   bool
	// wg counts the workers and the attempts on the probe event loop.
	wg sync.WaitGroup
}

// RuntimeOptions configure a Runtime.
type RuntimeOptions struct {
	// Clock is the time source; nil is the system clock (with the freeze
	// watch).
	Clock Clock
	// NoStagger starts every run's first attempt at once (tests).
	NoStagger bool
}

// NewRuntime returns a Runtime; Run starts its scheduler.
func NewRuntime(o RuntimeOptions) *Runtime {
	rt := &Runtime{clock: o.Clock, stagger: randomStagger, kick: make(chan struct{}, 1), more: make(chan struct{}, maxWorkers)}
	if rt.clock == nil {
		rt.clock = realClock{}
		rt.freeze = newFreezeWatch()
	}
	if o.NoStagger {
		rt.stagger = func(time.Duration) time.Duration { return 0 }
	}
	rt.base, rt.cancel = context.WithCancel(context.Background())
	return rt
}

// randomStagger spreads the first attempts of monitors over their
// interval, so that a thousand monitors do not probe in the same instant.
func randomStagger(interval time.Duration) time.Duration {
	if interval <= 0 {
		return 0
	}
	return rand.N(interval)
}

// Run schedules attempts until ctx is cancelled; then it cancels the
// attempts in flight and returns once they have ended (the workers and the
// attempts on the probe event loop). Monitors may
// be started before Run: their attempts begin when it does.
func (rt *Runtime) Run(ctx context.Context) {
	rt.mu.Lock()
	if rt.running || rt.ended {
		rt.mu.Unlock()
		panic("stall: Runtime.Run called twice")
	}
	rt.running = true
	rt.mu.Unlock()
	if rt.freeze != nil {
		rt.freeze.reset(time.Now()) // the time before Run was no freeze
		rt.wg.Add(1)
		go func() { defer rt.wg.Done(); rt.freeze.run(ctx) }()
	}
	timer := rt.clock.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		var ready []*run
		wait := time.Duration(-1)
		rt.mu.Lock()
		now := rt.clock.Now()
		for len(rt.queue) > 0 && !rt.queue[0].due.After(now.Add(batchWindow)) {
			ready = append(ready, heap.Pop(&rt.queue).(*run))
		}
		if len(rt.queue) > 0 {
			wait = max(0, rt.queue[0].due.Sub(now))
		}
		rt.mu.Unlock()
		for _, r := range ready {
			r.m.begin(r)
		}
		if wait >= 0 {
			timer.Reset(wait)
		} else {
			timer.Stop()
		}
		select {
		case <-ctx.Done():
			rt.mu.Lock()
			rt.ended = true
			rt.queue = nil
			clear(rt.tasks)
			rt.tasks = nil
			rt.mu.Unlock()
			rt.cancel()
			rt.wg.Wait()
			return
		case <-rt.kick:
		case <-timer.C():
		}
	}
}

// schedule queues r for an attempt at due.
func (rt *Runtime) schedule(r *run, due time.Time) {
	rt.mu.Lock()
	if rt.ended {
		rt.mu.Unlock()
		return
	}
	r.due = due
	heap.Push(&rt.queue, r)
	head := rt.queue[0] == r
	rt.mu.Unlock()
	if head {
		rt.wake()
	}
}

// unschedule takes r out of the queue, if it is there.
func (rt *Runtime) unschedule(r *run) {
	rt.mu.Lock()
	if r.index >= 0 && r.index < len(rt.queue) && rt.queue[r.index] == r {
		heap.Remove(&rt.queue, r.index)
	}
	rt.mu.Unlock()
	rt.wake()
}

func (rt *Runtime) wake() {
	select {
	case rt.kick <- struct{}{}:
	default:
	}
}

// track counts an attempt about to start on the probe event loop, unless
// the Runtime has ended; its Completion calls wg.Done.
func (rt *Runtime) track() bool {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.ended {
		return false
	}
	rt.wg.Add(1)
	return true
}

// dispatch runs fn on an idle worker, or on a new one while there are
// fewer than maxWorkers, or queues it for the first worker free.
func (rt *Runtime) dispatch(fn func()) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.ended {
		return
	}
	rt.tasks = append(rt.tasks, fn)
	switch {
	case rt.idle > 0:
		select {
		case rt.more <- struct{}{}:
		default: // enough wake-ups pending
		}
	case rt.workers < maxWorkers:
		rt.workers++
		rt.wg.Add(1)
		go rt.worker()
	}
}

// worker runs the queued attempts, until it has been idle for workerIdle
// or the Runtime ends.
func (rt *Runtime) worker() {
	defer rt.wg.Done()
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	rt.mu.Lock()
	for !rt.ended {
		if len(rt.tasks) > 0 {
			fn := rt.tasks[0]
			rt.tasks[0] = nil
			rt.tasks = rt.tasks[1:]
			rt.mu.Unlock()
			fn()
			rt.mu.Lock()
			continue
		}
		rt.idle++
		rt.mu.Unlock()
		idle.Reset(workerIdle)
		quit := false
		select {
		case <-rt.more:
		case <-idle.C:
			quit = true
		case <-rt.base.Done():
			quit = true
		}
		rt.mu.Lock()
		rt.idle--
		if quit && len(rt.tasks) == 0 {
			break
		}
	}
	rt.workers--
	rt.mu.Unlock()
}

// run is one run of a monitor: from its process coming Up to it leaving
// Up (or a stall). Its fields are set when it is made, but for due and
// index, which the Runtime's lock guards.
type run struct {
	m       *Monitor
	gen     uint64
	deliver func(Result)
	ctx     context.Context
	cancel  context.CancelFunc
	due     time.Time
	index   int // in the queue; -1 when not queued
}

// runQueue is a heap of runs by due time.
type runQueue []*run

func (q runQueue) Len() int           { return len(q) }
func (q runQueue) Less(i, j int) bool { return q[i].due.Before(q[j].due) }
func (q runQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}

func (q *runQueue) Push(x any) {
	r := x.(*run)
	r.index = len(*q)
	*q = append(*q, r)
}

func (q *runQueue) Pop() any {
	old := *q
	r := old[len(old)-1]
	old[len(old)-1] = nil
	r.index = -1
	*q = old[:len(old)-1]
	return r
}
