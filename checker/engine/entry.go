package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pcheck/pcheck/checker/message"
	"github.com/pcheck/pcheck/checker/proc"
	"github.com/pcheck/pcheck/checker/stall"
	"github.com/pcheck/pcheck/checker/state"
	"github.com/pcheck/pcheck/pfile"
)

// Polling for a process that should come up starts fast and slows down:
// a restarted daemon is usually there within milliseconds.
const (
	findFirstPoll = 20 * time.Millisecond
	findMaxPoll   = 500 * time.Millisecond
)

type cmdKind int

const (
	cmdPause cmdKind = iota
	cmdResume
	cmdRestart
	cmdReset
	cmdPing
)

var cmdNames = [...]string{"pause", "resume", "restart", "reset", "ping"}

// command is a control sent to an entry's goroutine.
type command struct {
	kind  cmdKind
	force bool
	reply chan error
}

// step is one state of an entry's goroutine; it returns the next one, nil
// to end.
type step func(ctx context.Context) step

// watched is one process an entry watches.
type watched struct {
	id     proc.ID
	pgid   int
	cancel func() // nil without a pidfd: then fresh
	// fresh: the stat walks read it every time (Scans.watchFresh), for
	// the re-check to see it die.
	fresh bool
	// started is its start time since boot.
	started time.Duration
	// desc are the descendants seen while it lived, killed with it.
	desc []proc.ID
}

// death is a watched process that is gone.
type death struct {
	w      *watched
	reason string
}

// entry is one process entry and its goroutine. The goroutine owns the
// fields below "goroutine state"; mu guards the rest.
type entry struct {
	in     *Instance
	cancel context.CancelFunc
	// killing is when the goroutine began a kill (terminate), 0 when it
	// is not killing: a kill waits up to KillWait without taking
	// controls, and Alive must not take that for a wedged loop.
	killing atomic.Int64

	ctl      chan command
	done     chan struct{}  // closed when the goroutine ends
	looked   func()         // tells the Instance the first look for the process is over; nil after
	recheckC chan *snapshot // latest snapshot, buffer 1

	died    mailbox[proc.Event]   // deaths, from the watcher
	results mailbox[stall.Result] // from the stall monitors

	// raised, buffer 1: a reload raised count=; an Up entry with fewer
	// processes looks for the rest at once.
	raised chan struct{}

	mu         sync.Mutex
	key        string // changed by a reload that carries the entry over
	uid        int
	cfg        *pfile.Process
	state      State
	since      time.Time
	ids        []proc.ID // the watched processes while Up
	monitors   []*stall.Monitor
	restarts   int
	lastReason string
	window     window
	// nextAttempt is when the restart delay or the re-arm after a retry
	// over ends; zero when the entry waits for neither.
	nextAttempt time.Time
	cpu         cpuSample // the last CPU reading, for Usage.CPUPercent

	// goroutine state
	watching   map[int]*watched
	announced  map[proc.ID]bool // pids logged Up and not since Down
	upSnap     time.Time
	killReason string // ReasonStall after a stall kill
	// stallKilled are the watched processes a stall killed since they
	// were found: however many monitors stall, each is killed once.
	stallKilled map[proc.ID]bool
	// noDiagWarned: the entry warned that its stall diagnostics cannot
	// be saved for want of a state directory (once).
	noDiagWarned bool
	outMark      outMark // how far the script output file has been logged
	// delay is the restart backoff's last delay before jitter (0: the
	// next is RestartDelay); upAt is when the process last came Up, zero
	// after a failure, for RestartDelayReset.
	delay time.Duration
	upAt  time.Time
}

func newEntry(in *Instance, key string, p *pfile.Process, uid int, monitors []*stall.Monitor) *entry {
	e := &entry{
		in:        in,
		key:       key,
		uid:       uid,
		ctl:       make(chan command),
		done:      make(chan struct{}),
		recheckC:  make(chan *snapshot, 1),
		died:      newMailbox[proc.Event](),
		results:   newMailbox[stall.Result](),
		raised:    make(chan struct{}, 1),
		monitors:  monitors,
		cfg:       p,
		since:     in.clock.Now(),
		watching:  make(map[int]*watched),
		announced: make(map[proc.ID]bool),
	}
	if in.store != nil {
		e.window.attempts = in.store.Attempts(key)
	}
	return e
}

func (e *entry) config() *pfile.Process {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.cfg
}

func (e *entry) name() string { return e.config().Name }

// getKey returns the entry key.
func (e *entry) getKey() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.key
}

// update gives the entry its settings from a reloaded pfile: its key and
// user change when a reload carries it over.
func (e *entry) update(key string, uid int, p *pfile.Process) {
	e.mu.Lock()
	e.key, e.uid, e.cfg = key, uid, p
	e.mu.Unlock()
}

func (e *entry) getState() State {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.state
}

// setState records a new state and starts or stops the stall monitors:
// Up with pids starts each afresh, anything else stops them.
func (e *entry) setState(s State, pids []proc.ID) {
	e.mu.Lock()
	changed := e.state != s || s == StateUp
	e.state = s
	e.since = e.in.clock.Now()
	e.ids = slices.Clone(pids)
	if changed {
		for _, m := range e.monitors {
			switch {
			case s == StateUp && len(pids) > 0 && m.Running(pids[0]):
				// The main process lives on (another of count > 1
				// died): the run of failures in progress goes on.
				m.SetPids(pids)
			case s == StateUp && len(pids) > 0:
				m.Start(pids, e.deliverAttempt)
			default:
				m.Stop()
			}
		}
	}
	name, key := e.cfg.Name, e.key
	e.mu.Unlock()
	if changed && e.in.onState != nil {
		e.in.onState(stateChange{Process: name, Key: key, State: s, Pids: slices.Clone(pids)})
	}
}

// status returns the entry's state and, while Up, the watched processes.
func (e *entry) status(now time.Time) (ProcessStatus, []proc.ID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var ids []proc.ID
	if e.state == StateUp {
		ids = slices.Clone(e.ids)
	}
	return ProcessStatus{
		Name:           e.cfg.Name,
		Key:            e.key,
		State:          e.state,
		Pids:           pidsOf(e.ids),
		Since:          e.since,
		Restarts:       e.restarts,
		RetriesUsed:    e.window.used(now, e.cfg.Grace),
		RetriesAllowed: e.cfg.Retry,
		Grace:          e.cfg.Grace,
		Action:         e.cfg.Action.String(),
		LastReason:     e.lastReason,
		NextAttempt:    e.nextAttempt,
	}, ids
}

// setNextAttempt records when the current wait ends (zero: none).
func (e *entry) setNextAttempt(t time.Time) {
	e.mu.Lock()
	e.nextAttempt = t
	e.mu.Unlock()
}

func (e *entry) log(m message.Message) { e.in.emit(e.name(), m) }

// send delivers a control and waits for its answer.
func (e *entry) send(c command) error {
	return e.sendCtx(context.Background(), c)
}

// sendCtx is send bounded by wait: it returns wait's error when the
// entry's goroutine did not take the control in time.
func (e *entry) sendCtx(wait context.Context, c command) error {
	c.reply = make(chan error, 1)
	e.in.mu.Lock()
	ctx := e.in.runCtx
	e.in.mu.Unlock()
	if ctx == nil {
		return ErrStopped
	}
	select {
	case e.ctl <- c:
	case <-e.done:
		return ErrStopped
	case <-ctx.Done():
		return ErrStopped
	case <-wait.Done():
		return wait.Err()
	}
	return <-c.reply
}

// offerRecheck hands the entry the latest /proc snapshot without waiting;
// an entry busy restarting gets it when it is Up again, or a newer one.
func (e *entry) offerRecheck(all *snapshot) {
	for {
		select {
		case e.recheckC <- all:
			return
		default:
		}
		select {
		case <-e.recheckC:
		default:
		}
	}
}

// recheckIdle reports whether the entry's re-check of snap would change
// nothing: it is Up, without a pid file, and every process it watches is
// in snap with its start time, not a zombie and without children (no
// descendants to remember). Such a snapshot is not handed to the entry: a
// re-check of a thousand idle entries costs the Instance a thousand map
// lookups, not a thousand goroutine wake-ups. Run's goroutine calls it.
func (e *entry) recheckIdle(snap *snapshot) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.state != StateUp || e.cfg.PidFile != "" || len(e.ids) == 0 {
		return false
	}
	for _, id := range e.ids {
		p, ok := snap.get(id.Pid)
		if !ok || p.Start != id.Start || p.Dead() || len(snap.children[id.Pid]) > 0 {
			return false
		}
	}
	return true
}

// dropRecheck takes back a snapshot offered earlier and not yet taken, as
// offerRecheck does when it replaces it: the entry would otherwise re-check
// an older snapshot than the latest, which recheckIdle found idle.
func (e *entry) dropRecheck() {
	select {
	case <-e.recheckC:
	default:
	}
}

// deliver is the watcher's callback: it queues the event and returns.
func (e *entry) deliver(ev proc.Event) { e.died.put(ev) }

// run is the entry's goroutine.
//
// The goroutine spends its life parked in the select of a step, and its
// stack is what a thousand idle entries cost: run and the steps keep small
// frames (the work of a case is done by a method of its own, whose frame
// is gone once it returns), so that the garbage collector can shrink an
// idle entry's stack to 4 KiB.
func (e *entry) run(ctx context.Context) {
	defer close(e.done)
	defer e.stopMonitors()
	defer e.unwatchAll()
	defer e.lookedOnce()
	for next := e.first(); next != nil && ctx.Err() == nil; {
		next = next(ctx)
	}
}

// first returns the entry's first step: the look for its process, or the
// wait for a previous pcheck's restart script still running. Not inlined:
// its frame, with orphan's results, must not stay in run's.
//
//go:noinline
func (e *entry) first() step {
	if rec, script, dir, ok := e.orphan(); ok {
		e.lookedOnce() // a script of a previous pcheck is running: nothing to adopt
		return e.awaitOrphan(rec, script, dir)
	}
	return e.lookFor(StateDown)
}

// lookFor returns the step that looks for the process for StartWait,
// showing state s meanwhile. Not inlined: the copy of the parameters must
// not stay in the frame of the step that calls it.
//
//go:noinline
func (e *entry) lookFor(s State) step {
	return e.find(s, e.in.params().StartWait)
}

// lookedOnce reports the end of the entry's first look for its process
// (adopted, not found in the first scan, or a previous pcheck's script
// waited for) to the Instance, once.
func (e *entry) lookedOnce() {
	if e.looked != nil {
		e.looked()
		e.looked = nil
	}
}

// matcher returns the proc.Matcher of the entry's settings.
func (e *entry) matcher() proc.Matcher {
	e.mu.Lock()
	p, uid := e.cfg, e.uid
	e.mu.Unlock()
	return proc.Matcher{Target: p.Name, ByName: p.ByName, Args: p.Args, UID: uid, PidFile: p.PidFile}
}

// find looks for the process for up to wait, showing state s meanwhile: at
// start and on Resume (Down), and after a restart script (Restarting).
// Found, it is Up; not found, Set pid fail and a failed attempt.
func (e *entry) find(s State, wait time.Duration) step {
	return func(ctx context.Context) step {
		e.setState(s, nil)
		deadline := time.Now().Add(wait)
		poll := findFirstPoll
		timer := time.NewTimer(0)
		defer timer.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case c := <-e.ctl:
				if next := e.handle(ctx, c); next != nil {
					return next
				}
			case <-timer.C:
				asked := time.Now()
				snap, err := e.in.scans.full.get(ctx, asked)
				if err != nil {
					if ctx.Err() != nil {
						return nil
					}
					e.log(message.Err(fmt.Sprintf("('%s'): scanning /proc: %v", e.name(), err)))
				} else if found := e.matcher().Match(snap.all); len(found) >= e.config().Count {
					next := e.becomeUp(ctx, found, snap)
					e.lookedOnce()
					return next
				}
				e.lookedOnce()
				if !asked.Before(deadline) {
					e.log(message.SetPidFail(e.name()))
					return e.failure(ReasonPidFail, 0, nil)
				}
				timer.Reset(min(poll, time.Until(deadline)))
				poll = min(2*poll, findMaxPoll)
			}
		}
	}
}

// becomeUp watches found (taken from snap), logs Up for each process not
// already announced, and returns the Up step.
func (e *entry) becomeUp(ctx context.Context, found []proc.Info, snap *snapshot) step {
	e.unwatchAll()
	e.upSnap = snap.taken
	e.upAt = time.Now()
	e.killReason = ""
	e.stallKilled = nil
	ids := make([]proc.ID, 0, len(found))
	for _, p := range found {
		ids = append(ids, p.ID)
		e.watch(p, snap)
	}
	e.setState(StateUp, ids)
	announced := make(map[proc.ID]bool, len(found))
	for _, p := range found {
		announced[p.ID] = true
		if !e.announced[p.ID] {
			e.log(message.Up(e.name(), p.Pid))
		}
	}
	e.announced = announced
	return e.up
}

// watch starts watching p; snap is a recent snapshot for its descendants.
func (e *entry) watch(p proc.Info, snap *snapshot) {
	w := &watched{id: p.ID, pgid: p.PGid, started: p.StartTime, desc: snap.descendants(p.Pid)}
	e.watching[p.Pid] = w
	defer func() {
		if w.cancel == nil {
			w.fresh = true
			e.in.scans.watchFresh(p.Pid)
		}
	}()
	if e.in.watcher == nil {
		return // deaths are seen by the re-check only
	}
	cancel, err := e.in.watcher.Watch(p.ID, e.deliver)
	switch {
	case errors.Is(err, proc.ErrNotFound):
		// Gone before we could watch it: a death like any other.
		e.deliver(proc.Event{ID: p.ID})
	case err != nil:
		// No event for this one: the MonitorInterval re-check sees it.
		e.log(message.Warning(fmt.Sprintf("('%s' ,pid=%d): cannot watch: %v; relying on the re-check every MonitorInterval", e.name(), p.Pid, err)))
	default:
		w.cancel = cancel
	}
}

func (e *entry) unwatch(w *watched) {
	if w.cancel != nil {
		w.cancel()
	}
	if w.fresh {
		e.in.scans.unwatchFresh(w.id.Pid)
	}
	delete(e.watching, w.id.Pid)
}

func (e *entry) unwatchAll() {
	for _, w := range e.watching {
		e.unwatch(w)
	}
}

func (e *entry) watchedIDs() []proc.ID {
	ids := make([]proc.ID, 0, len(e.watching))
	for _, w := range e.watching {
		ids = append(ids, w.id)
	}
	slices.SortFunc(ids, func(a, b proc.ID) int { return a.Pid - b.Pid })
	return ids
}

// up is the healthy state: idle until a death, a re-check or a control.
func (e *entry) up(ctx context.Context) step {
	for {
		select {
		case <-ctx.Done():
			return nil
		case c := <-e.ctl:
			if next := e.handle(ctx, c); next != nil {
				return next
			}
		case <-e.died.ready:
			if dead := e.deaths(); len(dead) > 0 {
				return e.lost(ctx, dead)
			}
		case all := <-e.recheckC:
			if next := e.recheck(ctx, all); next != nil {
				return next
			}
		case <-e.results.ready:
			if next := e.attempted(ctx); next != nil {
				return next
			}
		case <-e.raised:
			if len(e.watching) < e.config().Count {
				// As at start: the processes are looked for during
				// StartWait, then Set pid fail and a restart.
				return e.lookFor(StateDown)
			}
		}
	}
}

// deaths takes the watcher's events: the watched processes that died.
func (e *entry) deaths() []death {
	var dead []death
	for _, ev := range e.died.take() {
		w := e.watching[ev.ID.Pid]
		if w == nil || w.id != ev.ID {
			continue // stale: no longer watched
		}
		// Every process is a zombie for an instant when it exits, so an
		// event says "down"; a process that stays a zombie is found so
		// by the re-check.
		dead = append(dead, death{w: w, reason: ReasonDown})
	}
	return dead
}

// checkPids compares the watched processes with a /proc snapshot: a pid
// that is gone, or now has another start time (reused by another program),
// is down; one that is a zombie is a zombie; the rest are alive.
func checkPids(ids []proc.ID, snap *snapshot) (alive []proc.ID, gone map[proc.ID]string) {
	gone = make(map[proc.ID]string)
	for _, id := range ids {
		p, ok := snap.get(id.Pid)
		switch {
		case !ok || p.Start != id.Start:
			gone[id] = ReasonDown
		case p.Dead():
			gone[id] = ReasonZombie
		default:
			alive = append(alive, id)
		}
	}
	return alive, gone
}

// recheck is the MonitorInterval backstop of an Up entry.
func (e *entry) recheck(ctx context.Context, snap *snapshot) step {
	if snap.taken.Before(e.upSnap) {
		return nil // taken before the processes were found: stale
	}
	alive, gone := checkPids(e.watchedIDs(), snap)
	if len(gone) > 0 {
		var dead []death
		for id, reason := range gone {
			dead = append(dead, death{w: e.watching[id.Pid], reason: reason})
		}
		slices.SortFunc(dead, func(a, b death) int { return a.w.id.Pid - b.w.id.Pid })
		return e.lost(ctx, dead)
	}
	for _, id := range alive {
		w := e.watching[id.Pid]
		// Remember the newest descendants: killed with their parent.
		for _, d := range snap.descendants(id.Pid) {
			if !slices.Contains(w.desc, d) {
				w.desc = append(w.desc, d)
			}
		}
	}
	// A pid file that now names another live matching process (a daemon
	// that re-executed itself): that one is watched from now on.
	if e.config().PidFile != "" {
		found := e.matcher().Match(snap.all)
		if len(found) == 1 && e.watching[found[0].Pid] == nil {
			return e.becomeUp(ctx, found, snap)
		}
	}
	return nil
}

// lost handles watched processes that died: Down for each; when fewer than
// count remain, a failure.
func (e *entry) lost(ctx context.Context, dead []death) step {
	reason := dead[0].reason
	if e.killReason != "" {
		reason = e.killReason
	}
	var leftovers []proc.ID
	oldPid := dead[0].w.id.Pid
	for _, d := range dead {
		e.in.emitDown(e.name(), d.w.id.Pid, e.crashOutput(d.w))
		e.unwatch(d.w)
		delete(e.announced, d.w.id)
		leftovers = append(leftovers, e.leftovers(ctx, d.w)...)
	}
	if len(e.watching) >= e.config().Count {
		e.setState(StateUp, e.watchedIDs())
		return e.up
	}
	// The survivors are looked for again after the restart.
	e.unwatchAll()
	return e.failure(reason, oldPid, leftovers)
}

// leftovers returns what is left of a dead process: its descendants
// recorded while it lived and the members of the process group it led. A
// pid that now belongs to another program is never part of it. (A zombie
// has no children to look for: they are handed to a reaper at its exit.)
func (e *entry) leftovers(ctx context.Context, w *watched) []proc.ID {
	var out []proc.ID
	add := func(id proc.ID) {
		if id != w.id && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	for _, d := range w.desc {
		if _, ok := proc.Current(d); ok {
			add(d)
		}
	}
	if w.pgid != w.id.Pid {
		return out
	}
	if self, err := proc.Read(w.id.Pid); err == nil && self.Start != w.id.Start {
		return out // the pid, and so the group id, went to another program
	}
	// A group with nobody left needs no scan of /proc: kill(-pgid, 0)
	// tells, and keeps the common case (a lone daemon, reaped by its
	// parent) fast. A group outlives its leader, and its id cannot be
	// given to a new process while members remain.
	if unix.Kill(-w.pgid, 0) != nil {
		return out
	}
	snap, err := e.in.scans.full.get(ctx, time.Now())
	if err != nil {
		return out
	}
	for _, p := range snap.all {
		if p.PGid == w.pgid && !p.Dead() && p.Start >= w.id.Start {
			add(p.ID)
		}
	}
	return out
}

// failure is a failed process: the retry check, then a restart or the
// retry over.
func (e *entry) failure(reason string, oldPid int, leftovers []proc.ID) step {
	return func(ctx context.Context) step {
		p := e.config()
		e.mu.Lock()
		allowed := e.window.allow(e.in.clock.Now(), p.Retry, p.Grace)
		e.mu.Unlock()
		if !allowed {
			return e.retryOver(ctx, p)
		}
		return e.restart(reason, oldPid, leftovers, true, e.nextDelay(p.Backoff))
	}
}

// nextDelay is the restart backoff's wait before the restart of a
// failure: 0 when b is off; else RestartDelay the first time and after
// the process stayed Up for RestartDelayReset, twice the previous delay
// otherwise, at most RestartDelayMax, each with a jitter of 20 percent
// (never above the max).
func (e *entry) nextDelay(b pfile.Backoff) time.Duration {
	if b.Delay <= 0 {
		e.delay = 0
		return 0
	}
	if !e.upAt.IsZero() && time.Since(e.upAt) >= b.Reset {
		e.delay = 0
	}
	e.upAt = time.Time{}
	if e.delay == 0 {
		e.delay = b.Delay
	} else {
		e.delay = min(2*e.delay, b.Max)
	}
	return min(time.Duration(float64(e.delay)*(0.8+0.4*rand.Float64())), b.Max)
}

// wait waits d while taking controls. It reports true when d has passed,
// or, with takeRestart, when padmin restart asked not to wait any longer;
// false with the step a control moved the entry to, or nil when ctx ended.
func (e *entry) wait(ctx context.Context, d time.Duration, takeRestart bool) (step, bool) {
	next, _, ok := e.waitWatched(ctx, d, takeRestart, nil)
	return next, ok
}

// waitWatched is wait that, given the entry's died.ready as mail, also ends
// at a death of a watched process: it then reports false with the deaths
// and a nil step.
func (e *entry) waitWatched(ctx context.Context, d time.Duration, takeRestart bool, mail <-chan struct{}) (step, []death, bool) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, nil, false
		case <-timer.C:
			return nil, nil, true
		case <-mail:
			if dead := e.deaths(); len(dead) > 0 {
				return nil, dead, false
			}
		case c := <-e.ctl:
			if takeRestart && c.kind == cmdRestart {
				e.reply(c, nil)
				return nil, nil, true
			}
			if next := e.handle(ctx, c); next != nil {
				return next, nil, false
			}
		}
	}
}

// persist writes the attempts to the state file.
func (e *entry) persist(attempts []time.Time) {
	if e.in.store == nil {
		return
	}
	if err := e.in.store.SetAttempts(e.getKey(), attempts); err != nil {
		e.log(message.Err(fmt.Sprintf("('%s'): retry count not saved: %v", e.name(), err)))
	}
}

// retryOver logs the retry over and carries out the action.
func (e *entry) retryOver(ctx context.Context, p *pfile.Process) step {
	e.setState(StateRetryOver, nil)
	e.log(message.RetryOver(p.Name, p.Action.String()))
	switch p.Action {
	case pfile.ActionShutdown:
		e.in.end(Shutdown)
	case pfile.ActionExit:
		e.in.mu.Lock()
		e.in.exitBy, e.in.exitKey = p.Name, e.getKey()
		e.in.mu.Unlock()
		e.in.end(Exit)
	case pfile.ActionContinue:
		if p.RetryOverRearm > 0 {
			return e.rearmAfter(p.RetryOverRearm)
		}
	}
	return e.idle
}

// rearmAfter is RetryOver with RetryOverRearm: controls are taken as in
// idle, and after d the entry is re-armed as padmin start would
// (Retry over rearmed).
func (e *entry) rearmAfter(d time.Duration) step {
	return func(ctx context.Context) step {
		e.setNextAttempt(e.in.clock.Now().Add(d))
		defer e.setNextAttempt(time.Time{})
		if next, ok := e.wait(ctx, d, false); !ok {
			return next
		}
		e.log(message.RetryOverRearmed(e.name()))
		return e.rearm()
	}
}

// rearm ends a RetryOver: the retry count is cleared and saved, the
// restart backoff starts again at RestartDelay, and the process is looked
// for during StartWait (restarted when not found).
func (e *entry) rearm() step {
	e.mu.Lock()
	e.window.reset()
	e.mu.Unlock()
	e.delay = 0
	e.persist(nil)
	return e.lookFor(StateDown)
}

// restart runs the restart sequence: kill the leftovers, the restart
// delay (when not 0), Try to restart, the script, then StartWait. A
// counted attempt is recorded (and saved) just before the script runs;
// once recorded, the script runs even if pcheck is stopping, so the count
// never exceeds the scripts run.
func (e *entry) restart(reason string, oldPid int, leftovers []proc.ID, counted bool, delay time.Duration) step {
	return func(ctx context.Context) step {
		// The reason shows in status from now on, through the delay.
		e.mu.Lock()
		e.lastReason = reason
		e.mu.Unlock()
		e.setState(StateRestarting, nil)
		params := e.in.params()
		p := e.config()
		for i, err := range e.terminate(ctx, leftovers, params.KillWait) {
			if err != nil && !errors.Is(err, proc.ErrNotFound) && ctx.Err() == nil {
				e.log(message.Warning(fmt.Sprintf("('%s'): leftover pid %d: %v", p.Name, leftovers[i].Pid, err)))
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		if delay > 0 {
			if next, ok := e.delayed(ctx, delay); !ok {
				return next
			}
		}
		e.mu.Lock()
		if counted {
			e.window.record(e.in.clock.Now())
		}
		attempts := slices.Clone(e.window.attempts)
		attempt := len(attempts)
		if !counted {
			attempt++
		}
		e.restarts++
		e.mu.Unlock()
		if counted {
			e.persist(attempts)
		}
		e.log(message.TryRestart(p.Name))
		if e.in.onExec != nil {
			e.in.onExec()
		}
		done := scriptRun{
			script:   p.Script,
			proc:     p.Name,
			oldPid:   oldPid,
			reason:   reason,
			attempt:  attempt,
			pfile:    e.in.Pfile(),
			timeout:  p.Timeout,
			killWait: params.KillWait,
			log:      e.log,
			outFile:  e.scriptOutput(),
			record:   e.scriptRecord,
			group:    e.scriptGroup(),
		}.start()
		for {
			select {
			case <-ctx.Done():
				return nil
			case c := <-e.ctl:
				if next := e.handle(ctx, c); next != nil {
					return next
				}
			case res := <-done:
				if res.out.ino != 0 {
					e.outMark = res.out
				}
				if res.err != nil {
					e.log(message.Err(fmt.Sprintf("('%s'): %v", p.Name, res.err)))
				}
				if res.status != "0" {
					e.log(message.ScriptFailed(p.Name, res.status))
				}
				if res.timeout {
					return e.afterTimeout(ctx, reason, oldPid)
				}
				// A script that could not be executed is a failed
				// attempt like one whose process did not come up, and
				// paced the same: the next attempt comes after
				// StartWait, not at once.
				return e.lookFor(StateRestarting)
			}
		}
	}
}

// delayed waits out the restart delay d in state Restarting, showing its
// end as NextAttempt: controls are taken (padmin restart ends the wait, a
// pause drops the restart). It reports true when the restart goes on;
// false with the step to move to: a control's, the Up step of a process
// that came up meanwhile (started by hand: no script, no attempt), or nil
// when ctx ended.
func (e *entry) delayed(ctx context.Context, d time.Duration) (step, bool) {
	e.log(message.RestartDelayed(e.name(), d))
	e.setNextAttempt(e.in.clock.Now().Add(d))
	next, ok := e.wait(ctx, d, true)
	e.setNextAttempt(time.Time{})
	if !ok {
		return next, false
	}
	if next, found := e.lookOnce(ctx); found || ctx.Err() != nil {
		return next, false
	}
	return nil, true
}

// afterTimeout follows a restart script killed at its timeout: its
// process may be up all the same (the script started it, then hung), and
// is looked for once; not found, the attempt failed, without waiting
// StartWait (the attempt took RestartTimeout already).
func (e *entry) afterTimeout(ctx context.Context, reason string, oldPid int) step {
	if next, found := e.lookOnce(ctx); found || ctx.Err() != nil {
		return next
	}
	return e.failure(reason, oldPid, nil)
}

// lookOnce looks for the process in a fresh /proc scan: found, it is Up
// and the Up step is returned with true.
func (e *entry) lookOnce(ctx context.Context) (step, bool) {
	snap, err := e.in.scans.full.get(ctx, time.Now())
	if err != nil {
		if ctx.Err() == nil {
			e.log(message.Err(fmt.Sprintf("('%s'): scanning /proc: %v", e.name(), err)))
		}
		return nil, false
	}
	if found := e.matcher().Match(snap.all); len(found) >= e.config().Count {
		return e.becomeUp(ctx, found, snap), true
	}
	return nil, false
}

// scriptGroup is the killer of the entry's timed-out restart scripts.
func (e *entry) scriptGroup() groupKill {
	return groupKill{
		scan: func() (*snapshot, error) {
			return e.in.scans.full.get(context.Background(), time.Now())
		},
		match:   e.matcher().Match,
		protect: e.in.protect,
	}
}

// terminate kills ids, all at once: SIGTERM, killWait, SIGKILL. proc
// refuses to signal a pid that now belongs to another process.
func (e *entry) terminate(ctx context.Context, ids []proc.ID, killWait time.Duration) []error {
	if len(ids) == 0 {
		return nil
	}
	e.killing.Store(time.Now().UnixNano())
	defer e.killing.Store(0)
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		if err := e.in.protect.check(id.Pid); err != nil {
			errs[i] = err
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = proc.Terminate(ctx, id, killWait)
		}()
	}
	wg.Wait()
	return errs
}

// killingFor reports whether the goroutine is in a kill that began less
// than limit ago.
func (e *entry) killingFor(limit time.Duration) bool {
	since := e.killing.Load()
	return since != 0 && time.Since(time.Unix(0, since)) < limit
}

// idle waits for controls: Paused and RetryOver.
func (e *entry) idle(ctx context.Context) step {
	for {
		select {
		case <-ctx.Done():
			return nil
		case c := <-e.ctl:
			if next := e.handle(ctx, c); next != nil {
				return next
			}
		}
	}
}

// handle carries out a control in any state and returns the step to move
// to, nil to stay.
func (e *entry) handle(ctx context.Context, c command) step {
	cur := e.getState()
	reply := func(err error) { e.reply(c, err) }
	switch c.kind {
	case cmdPing:
		c.reply <- nil // the loop runs; not an operator's control
		return nil

	case cmdReset:
		e.mu.Lock()
		e.window.reset()
		e.restarts = 0
		e.mu.Unlock()
		e.delay = 0 // the next restart delay is RestartDelay again
		e.persist(nil)
		reply(nil)
		return nil

	case cmdPause:
		reply(nil)
		if cur == StatePaused {
			return nil
		}
		e.unwatchAll()
		e.announced = map[proc.ID]bool{}
		e.setState(StatePaused, nil)
		return e.idle

	case cmdResume:
		reply(nil)
		switch cur {
		case StateRetryOver:
			return e.rearm()
		case StatePaused:
			e.delay = 0 // the operator's start: the backoff starts afresh
			return e.lookFor(StateDown)
		}
		return nil

	case cmdRestart:
		switch {
		case cur == StateRestarting:
			reply(ErrBusy)
			return nil
		case cur == StateUp && !c.force:
			reply(ErrHealthy)
			return nil
		}
		ids := e.watchedIDs()
		if len(ids) == 0 {
			// Paused, RetryOver or Down: nothing is watched, but the
			// process may be running all the same. Without force it is
			// left alone; with force it is killed before the script
			// runs, so there are never two of it.
			ids = e.running(ctx)
			if len(ids) > 0 && !c.force {
				reply(ErrHealthy)
				return nil
			}
		}
		reply(nil)
		oldPid := 0
		var leftovers []proc.ID
		for _, id := range ids {
			if oldPid == 0 {
				oldPid = id.Pid
			}
			leftovers = append(leftovers, id)
			if w := e.watching[id.Pid]; w != nil {
				leftovers = append(leftovers, e.leftovers(ctx, w)...)
			}
		}
		e.unwatchAll()
		e.announced = map[proc.ID]bool{}
		// A manual restart is the operator's, not a failure: it is
		// not counted against the retries.
		return e.restart(ReasonManual, oldPid, leftovers, false, 0)
	}
	reply(fmt.Errorf("unknown control %d", c.kind))
	return nil
}

// reply answers control c with err; a control carried out is an event.
func (e *entry) reply(c command, err error) {
	if err == nil {
		e.in.event(e.name(), cmdNames[c.kind], "", nil)
	}
	c.reply <- err
}

// scriptOutput is the file that receives the entry's restart script
// output, "" when the Instance has no ScriptOutputDir.
func (e *entry) scriptOutput() string { return e.stateFile(".out") }

// scriptRecord is the file that records the entry's running restart
// script (scriptRecord), "" when the Instance has no ScriptOutputDir.
func (e *entry) scriptRecord() string { return e.stateFile(".script") }

// stateFile is the entry's file with suffix in ScriptOutputDir.
func (e *entry) stateFile(suffix string) string { return e.fileIn(e.in.outDir, suffix) }

// fileIn is the entry's file with suffix in dir, "" when dir is.
func (e *entry) fileIn(dir, suffix string) string {
	return entryFile(dir, e.in.Pfile(), e.getKey(), suffix)
}

// entryFile is the file with suffix of the entry key of pfile in dir, ""
// when dir is.
func entryFile(dir, pfile, key, suffix string) string {
	if dir == "" {
		return ""
	}
	return filepath.Join(dir, state.Name(pfile)+"-"+keyHash(key)+suffix)
}

// keyHash is a short stable name for an entry key.
func keyHash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:4])
}

// running returns the processes of the entry found in a fresh /proc scan
// (nil when the scan fails).
func (e *entry) running(ctx context.Context) []proc.ID {
	snap, err := e.in.scans.full.get(ctx, time.Now())
	if err != nil {
		return nil
	}
	var ids []proc.ID
	for _, p := range e.matcher().Match(snap.all) {
		ids = append(ids, p.ID)
	}
	return ids
}

// pidsOf returns the pids of ids, nil for none.
func pidsOf(ids []proc.ID) []int {
	var out []int
	for _, id := range ids {
		out = append(out, id.Pid)
	}
	return out
}
