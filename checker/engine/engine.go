// Package engine watches the processes of one pfile and restarts them.
//
// An Instance runs one goroutine per process entry (not per pid). A healthy
// entry is idle, blocked on a channel: a death arrives as an event from the
// shared proc.Watcher (pidfd), within milliseconds whatever MonitorInterval
// is. Once per MonitorInterval the Instance scans /proc once for all its
// entries and hands the snapshot to each as a backstop: pid reuse, zombies,
// pid files, and deaths where pidfd is not available.
//
// A dead process goes through the restart sequence of behaviour.md: the
// retry check against the Grace window, killing what is left of it, the
// restart script, and StartWait for the process to come up.
package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/pcheck/pcheck/checker/message"
	"github.com/pcheck/pcheck/checker/proc"
	"github.com/pcheck/pcheck/checker/stall"
	"github.com/pcheck/pcheck/checker/state"
	"github.com/pcheck/pcheck/checker/trust"
	"github.com/pcheck/pcheck/pfile"
)

// Logger receives every message the engine logs; *message.Logger is one.
type Logger interface {
	Log(message.Message)
}

// Watcher delivers process deaths; *proc.Watcher is one. fn runs on the
// watcher's goroutine and must return quickly.
type Watcher interface {
	Watch(id proc.ID, fn func(proc.Event)) (cancel func(), err error)
}

// Clock tells the time for the Grace window and the status; tests replace
// it to move through a window without waiting.
type Clock interface {
	Now() time.Time
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// Result is why an Instance stopped.
type Result int

// The results of Run.
const (
	// Stopped: the context was cancelled (SIGTERM, SIGINT).
	Stopped Result = iota
	// Shutdown: a retry over with action shutdown stopped this pfile.
	Shutdown
	// Exit: a retry over with action exit; pcheck exits with status 3.
	Exit
)

var resultNames = [...]string{"stopped", "shutdown", "exit"}

// String names the result.
func (r Result) String() string {
	if r >= 0 && int(r) < len(resultNames) {
		return resultNames[r]
	}
	return fmt.Sprintf("Result(%d)", int(r))
}

// Errors returned by the controls.
var (
	// ErrUnknownProcess: no process entry has that name.
	ErrUnknownProcess = errors.New("no such process in the pfile")
	// ErrHealthy: RestartNow without force on a process that is Up.
	ErrHealthy = errors.New("process is up; use force to restart it")
	// ErrBusy: the process is being restarted already.
	ErrBusy = errors.New("process is being restarted")
	// ErrStopped: the Instance is not running.
	ErrStopped = errors.New("monitoring of the pfile has stopped")
)

// Options configure an Instance.
type Options struct {
	// File is the validated pfile.
	File *pfile.File
	// Log receives every message. Required.
	Log Logger
	// Watcher delivers deaths; one is shared by every Instance of a
	// pcheck process. nil where pidfds are not available: deaths are
	// then noticed by the re-check every MonitorInterval.
	Watcher Watcher
	// Store persists retry counts; nil keeps them in memory only.
	Store *state.Store
	// ScriptOutputDir, when set, holds one file per process entry that
	// receives its restart script's output (and that of daemons the
	// script leaves running without redirecting theirs); the output is
	// sent to syslog when the script ends. Empty: the output goes through
	// a pipe that pcheck reads, which dies with pcheck.
	ScriptOutputDir string
	// ScriptRecordDirs are other directories where a previous pcheck may
	// have left the record of a restart script still running (the state
	// directory, when this pcheck writes in the run directory because the
	// state directory cannot be written). ScriptOutputDir is searched
	// first.
	ScriptRecordDirs []string
	// Clock is the time for the Grace window; nil is the real clock.
	Clock Clock
	// OnEvent, when set, is called for every event (for the ring
	// buffer). It runs on the entry's goroutine: return quickly.
	OnEvent func(Event)
	// Scans are the /proc scans; one is shared by every Instance of a
	// pcheck process. nil: the Instance has its own.
	Scans *Scans
	// Monitors runs the attempts of the entries' stall monitors; one is
	// shared by every Instance of a pcheck process. nil: the Instance has
	// its own, run by Run.
	Monitors *stall.Runtime
	// OnAttempt, when set, is called for every measured attempt of a
	// stall monitor, for the statistics and the latency histogram. It
	// runs on the entry's goroutine: return quickly.
	OnAttempt func(stall.Attempt)
	// onState, set by tests only, is called on every state change.
	onState func(stateChange)
	// DumpMonitors, when set, gives the stall monitors' states that the
	// state dump shows beside the process entries ("monitors").
	DumpMonitors func() any
}

// Instance watches the processes of one pfile.
type Instance struct {
	log     Logger
	watcher Watcher
	store   *state.Store
	outDir  string
	recDirs []string
	protect protected // pids the engine never signals
	clock   Clock
	onEvent func(Event)
	onState func(stateChange)
	scans   *Scans
	// monitors runs the stall monitors' attempts; ownMonitors: made by
	// New, so run by Run.
	monitors    *stall.Runtime
	ownMonitors bool
	onAttempt   func(stall.Attempt)
	started     time.Time

	// dumpMonitors is Options.DumpMonitors.
	dumpMonitors func() any

	// onExec, set by tests and benchmarks, runs just before a restart
	// script is started.
	onExec func()

	mu      sync.Mutex
	file    *pfile.File
	entries []*entry // in pfile order
	gen     uint64   // counts the reloads committed
	runCtx  context.Context
	ended   bool
	exitBy  string // the process whose retry over ended Run with Exit
	exitKey string // and its entry key (pfile.Process.Key)
	wg      sync.WaitGroup
	finish  chan Result

	// adopting counts the entries of the first pfile whose first look
	// for their process is not over; adopted is closed when none is left.
	adopting sync.WaitGroup
	adopted  chan struct{}
	// ping reaches Run's loop (Alive); stopped is closed when Run ends.
	ping    chan chan struct{}
	stopped chan struct{}
}

// New returns an Instance for o.File; Run starts it. It fails when a
// process entry names a user that does not exist.
func New(o Options) (*Instance, error) {
	if o.File == nil || o.Log == nil {
		return nil, errors.New("engine: File and Log are required")
	}
	in := &Instance{
		log:       o.Log,
		watcher:   o.Watcher,
		store:     o.Store,
		outDir:    o.ScriptOutputDir,
		recDirs:   o.ScriptRecordDirs,
		protect:   newProtected(),
		clock:     o.Clock,
		onEvent:   o.OnEvent,
		onState:   o.onState,
		scans:     o.Scans,
		monitors:  o.Monitors,
		onAttempt: o.OnAttempt,
		file:      o.File,
		finish:    make(chan Result, 1),
		adopted:   make(chan struct{}),
		ping:      make(chan chan struct{}),
		stopped:   make(chan struct{}),
	}
	if in.scans == nil {
		in.scans = NewScans()
	}
	in.dumpMonitors = o.DumpMonitors
	if in.clock == nil {
		in.clock = realClock{}
	}
	if in.monitors == nil {
		in.monitors, in.ownMonitors = stall.NewRuntime(stall.RuntimeOptions{}), true
	}
	stall.Prefetch(o.File) // every name at once, not one after another
	pl, err := in.makePlan(o.File, nil)
	if err != nil {
		return nil, err
	}
	in.entries = in.build(pl)
	for _, e := range in.entries {
		in.adopting.Add(1)
		e.looked = in.adopting.Done
	}
	go func() { in.adopting.Wait(); close(in.adopted) }()
	return in, nil
}

// plan is how the entries of a pfile map onto those running: for each
// process entry of the pfile, its key, its user's uid and the running
// entry it continues, or a new one.
type plan struct {
	file    *pfile.File
	keys    []string
	uids    []int
	entries []*entry
	// monitors are each entry's stall monitors: those of a continued
	// entry whose block is unchanged (stall.Monitor.Same) are its own, the
	// rest are new, not started.
	monitors [][]*stall.Monitor
	// renames maps the old key of every entry carried over under a new
	// key to that new key.
	renames map[string]string
}

// makePlan maps the entries of f onto old (nil at start). An entry whose
// key is unchanged is continued; so is one whose key changed but whose
// process is the same (pfile.Process.SameProcess: only its script, user or pid
// file changed), taken in order among the old entries not continued
// otherwise: it keeps its goroutine, state, pids, counts and any restart
// in progress. The rest are new, not started. It fails, changing nothing,
// when a process entry names a user that does not exist.
func (in *Instance) makePlan(f *pfile.File, old []*entry) (*plan, error) {
	pl := &plan{file: f, renames: map[string]string{}}
	for _, p := range f.Processes {
		pl.keys = append(pl.keys, p.Key)
	}
	pl.uids = make([]int, len(f.Processes))
	pl.entries = make([]*entry, len(f.Processes))
	for i, p := range f.Processes {
		pl.uids[i] = -1
		if p.User != "" {
			u, err := proc.LookupUID(p.User)
			if err != nil {
				return nil, fmt.Errorf("%s: process %s: %w", p.Pos, p.Name, err)
			}
			pl.uids[i] = u
		}
	}
	byKey := make(map[string]*entry, len(old))
	for _, e := range old {
		byKey[e.getKey()] = e
	}
	taken := map[*entry]bool{}
	for i, key := range pl.keys {
		if e, ok := byKey[key]; ok {
			pl.entries[i], taken[e] = e, true
		}
	}
	for i, p := range f.Processes {
		if pl.entries[i] != nil {
			continue
		}
		j := slices.IndexFunc(old, func(e *entry) bool { return !taken[e] && e.config().SameProcess(p) })
		if j < 0 {
			continue
		}
		e := old[j]
		pl.entries[i], taken[e] = e, true
		pl.renames[e.getKey()] = pl.keys[i]
	}
	pl.monitors = make([][]*stall.Monitor, len(f.Processes))
	var errs []error
	for i, p := range f.Processes {
		var have []*stall.Monitor
		if e := pl.entries[i]; e != nil {
			have = slices.Clone(e.getMonitors()) // taken from below: never the entry's own slice
		}
		for _, b := range p.Blocks {
			if j := slices.IndexFunc(have, func(m *stall.Monitor) bool { return m.Same(b) }); j >= 0 {
				pl.monitors[i] = append(pl.monitors[i], have[j])
				have = slices.Delete(have, j, j+1)
				continue
			}
			m, err := in.monitors.NewMonitor(p.Name, b, in.procs)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			pl.monitors[i] = append(pl.monitors[i], m)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return pl, nil
}

// build makes the new entries of pl (those it does not continue).
func (in *Instance) build(pl *plan) []*entry {
	out := slices.Clone(pl.entries)
	for i, e := range out {
		if e == nil {
			out[i] = newEntry(in, pl.keys[i], pl.file.Processes[i], pl.uids[i], pl.monitors[i])
		}
	}
	return out
}

// Pfile returns the pfile's path as pcheck was given it.
func (in *Instance) Pfile() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.file.Path
}

// File returns the rules in force.
func (in *Instance) File() *pfile.File {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.file
}

func (in *Instance) params() pfile.Params {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.file.Params
}

// Run watches the processes until ctx is cancelled (Stopped) or a retry
// over ends this pfile (Shutdown, Exit). Processes already running are
// adopted, never restarted. When Run returns, every entry goroutine has
// ended; the processes are left running. It logs `pcheck stop.` as it
// returns, except for Exit: the caller then logs it with LogStop once it
// has done what the exit asks (telling the cluster, auto-reboot), so that
// the stop stays the last line of the pfile.
func (in *Instance) Run(ctx context.Context) Result {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	in.mu.Lock()
	if in.runCtx != nil {
		in.mu.Unlock()
		panic("engine: Run called twice")
	}
	in.runCtx = ctx
	in.started = time.Now()
	path := in.file.Path
	in.mu.Unlock()

	in.emit("", message.Start(path))
	monitorsDone := make(chan struct{})
	if in.ownMonitors {
		go func() { defer close(monitorsDone); in.monitors.Run(ctx) }()
	} else {
		close(monitorsDone)
	}
	in.mu.Lock()
	for _, e := range in.entries {
		in.startEntry(ctx, e)
	}
	in.mu.Unlock()

	timer := time.NewTimer(in.params().MonitorInterval)
	defer timer.Stop()
	var res Result
loop:
	for {
		select {
		case <-ctx.Done():
			res = Stopped
			break loop
		case res = <-in.finish:
			break loop
		case <-timer.C:
			in.recheck(ctx)
			timer.Reset(in.params().MonitorInterval)
		case answer := <-in.ping:
			close(answer)
		}
	}

	in.mu.Lock()
	in.ended = true
	for _, e := range in.entries {
		e.cancel()
	}
	in.mu.Unlock()
	close(in.stopped)
	in.wg.Wait()
	cancel()
	<-monitorsDone
	if res != Exit {
		in.LogStop()
	}
	return res
}

// LogStop logs `pcheck stop.` for the pfile: Run does for every result
// but Exit, whose caller does.
func (in *Instance) LogStop() { in.emit("", message.Stop(in.Pfile())) }

// procs is the scan of the stall monitors' listen and children probes:
// one taken in the last probeScanAge serves. ctx is the attempt's: a scan
// that does not end in its time makes the attempt Unknown.
func (in *Instance) procs(ctx context.Context) ([]proc.Info, error) {
	snap, err := in.scans.full.get(ctx, time.Now().Add(-probeScanAge))
	if err != nil {
		return nil, err
	}
	return snap.all, nil
}

// Procs returns a /proc scan that started no earlier than now, shared
// with every entry and every other caller asking meanwhile: one walk of
// /proc serves the entries looking for processes, the listen and children
// probes and the cleanup list at once. The slice is shared: read only.
func (in *Instance) Procs(ctx context.Context) ([]proc.Info, error) {
	snap, err := in.scans.full.get(ctx, time.Now())
	if err != nil {
		return nil, err
	}
	return snap.all, nil
}

// Adopted is closed once every entry of the pfile given to New has made
// its first look for its process: adopted (Up), not found in the first
// /proc scan (it goes on looking during StartWait), or waiting for a
// previous pcheck's restart script. An Instance that stops first closes
// it too. systemd's READY=1 waits for it.
func (in *Instance) Adopted() <-chan struct{} { return in.adopted }

// killMargin is how much longer than KillWait a kill may take (SIGKILL,
// the wait for the death) before Alive takes its entry for wedged.
const killMargin = 10 * time.Second

// Alive reports whether the Instance's loops run: Run's own (the
// MonitorInterval re-check) and every entry's goroutine (deaths, controls,
// restarts) each take a ping before ctx ends. A loop that is wedged makes
// it fail with ctx's error; systemd's WATCHDOG=1 is sent only when it
// succeeds. An entry in a kill (SIGTERM, up to KillWait, SIGKILL) takes no
// controls meanwhile and is not pinged while the kill is younger than
// KillWait and a margin: with KillWait over half of WatchdogSec, systemd
// would otherwise kill pcheck in the middle of a kill it waits out.
func (in *Instance) Alive(ctx context.Context) error {
	answer := make(chan struct{})
	select {
	case in.ping <- answer:
	case <-in.stopped:
		return ErrStopped
	case <-ctx.Done():
		return fmt.Errorf("pfile '%s': the re-check loop does not answer: %w", in.Pfile(), ctx.Err())
	}
	<-answer
	in.mu.Lock()
	entries := slices.Clone(in.entries)
	in.mu.Unlock()
	killWait := in.params().KillWait
	for _, e := range entries {
		if e.killingFor(killWait + killMargin) {
			continue
		}
		if err := e.sendCtx(ctx, command{kind: cmdPing}); err != nil && !errors.Is(err, ErrStopped) {
			return fmt.Errorf("('%s'): the entry's loop does not answer: %w", e.name(), err)
		}
	}
	return nil
}

// startEntry starts e's goroutine, unless it runs already (a reload
// committed as Run started); in.mu is held.
func (in *Instance) startEntry(ctx context.Context, e *entry) {
	if e.cancel != nil {
		return
	}
	ectx, cancel := context.WithCancel(ctx)
	e.cancel = cancel
	in.wg.Add(1)
	go func() {
		defer in.wg.Done()
		e.run(ectx)
	}()
}

// end asks Run to stop with r (a retry over's action).
// ExitProcess names the process whose retry over with action exit ended
// Run with Exit, and its entry key ("" otherwise): auto-reboot names it in
// its message and clears its retry counts.
func (in *Instance) ExitProcess() (name, key string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.exitBy, in.exitKey
}

func (in *Instance) end(r Result) {
	select {
	case in.finish <- r:
	default:
	}
}

// recheck scans /proc once and hands the snapshot to every entry. Only an
// entry with a pid file matches processes in its re-check (a daemon that
// re-executed itself): without one, the cheaper stat-only scan serves.
func (in *Instance) recheck(ctx context.Context) {
	in.mu.Lock()
	entries := slices.Clone(in.entries)
	// Re-checks of entries that follow processes already found need
	// /proc/PID/stat only, of the new processes and those watched without
	// a pidfd (Scans.stat). The entries' settings are the
	// file's processes (a reload commits both at once): reading them
	// there spares a lock of every entry.
	pidFile := slices.ContainsFunc(in.file.Processes, func(p *pfile.Process) bool { return p.PidFile != "" })
	in.mu.Unlock()
	sc := &in.scans.stat
	if pidFile {
		sc = &in.scans.full
	}
	snap, err := sc.get(ctx, time.Now())
	if err != nil {
		if ctx.Err() == nil {
			in.emit("", message.Err(fmt.Sprintf("pfile '%s': re-check: %v", in.Pfile(), err)))
		}
		return
	}
	for _, e := range entries {
		if e.recheckIdle(snap) {
			e.dropRecheck()
			continue
		}
		e.offerRecheck(snap)
	}
}

// Apply replaces the rules with f (a reload): Prepare, then Commit.
func (in *Instance) Apply(f *pfile.File) error {
	r, err := in.Prepare(f)
	if err != nil {
		return err
	}
	return r.Commit()
}

// Reload is a reload of an Instance made ready by Prepare: everything that
// can fail is done, nothing has changed yet. Commit switches to it.
type Reload struct {
	in      *Instance
	plan    *plan
	entries []*entry
	gen     uint64 // in.gen at Prepare
}

// ErrChanged is returned by Commit when the Instance's entries changed
// since Prepare (another reload committed meanwhile).
var ErrChanged = errors.New("the rules changed since the reload was prepared")

// Prepare makes ready the switch to f: the mapping of f's entries onto
// the running ones and the new entries, unstarted. It changes nothing;
// an error (a user that does not exist, an Instance that has stopped)
// leaves the old rules in force.
func (in *Instance) Prepare(f *pfile.File) (*Reload, error) {
	stall.Prefetch(f) // a slow resolver must not hold the lock
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.ended {
		return nil, ErrStopped
	}
	pl, err := in.makePlan(f, in.entries)
	if err != nil {
		return nil, err
	}
	return &Reload{in: in, plan: pl, entries: in.build(pl), gen: in.gen}, nil
}

// Renames returns, for every entry the reload carries over under a new
// key, its old key and its new one.
func (r *Reload) Renames() map[string]string { return maps.Clone(r.plan.renames) }

// Keys returns the entry keys of the reloaded pfile, in order.
func (r *Reload) Keys() []string { return slices.Clone(r.plan.keys) }

// Commit switches the Instance to the prepared rules in one step, under
// its lock. Entries whose key is unchanged keep their pids, counts and
// state and take their new settings (retry, grace, action, timeout,
// count); an entry carried over under a new key keeps them too, its retry
// count and files in the state directory (script output, running script
// record) move to the new key, and a restart in progress goes on; removed
// entries stop being watched and their processes are left alone; new
// entries start by looking for their process. It fails, changing nothing,
// with ErrStopped once the Instance has stopped and ErrChanged when
// another reload committed since Prepare.
func (r *Reload) Commit() error {
	in := r.in
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.ended {
		return ErrStopped
	}
	if in.gen != r.gen {
		return ErrChanged
	}
	in.gen++
	f := r.plan.file
	keep := make(map[*entry]bool, len(r.entries))
	for _, e := range r.entries {
		keep[e] = true
	}
	for _, e := range in.entries {
		switch {
		case keep[e]:
		case e.cancel != nil:
			e.cancel()
		default:
			// Removed before Run started it: its first look will never
			// come, and Adopted must not wait for it.
			e.lookedOnce()
		}
	}
	for old, key := range r.plan.renames {
		for _, dir := range in.recordDirs() {
			for _, suffix := range []string{".out", ".out.1", ".script"} {
				from := entryFile(dir, in.file.Path, old, suffix)
				if err := os.Rename(from, entryFile(dir, in.file.Path, key, suffix)); err != nil && !errors.Is(err, fs.ErrNotExist) {
					in.log.Log(message.Warning(fmt.Sprintf("pfile '%s': %v", f.Path, err)))
				}
			}
		}
	}
	// Each entry of f holds its own *pfile.Process; the kept ones are
	// told theirs.
	for i, e := range r.entries {
		_, renamed := r.plan.renames[e.getKey()]
		oldCount := e.config().Count
		e.update(r.plan.keys[i], r.plan.uids[i], f.Processes[i])
		e.setMonitors(r.plan.monitors[i])
		if f.Processes[i].Count > oldCount {
			select {
			case e.raised <- struct{}{}:
			default:
			}
		}
		if renamed && in.store != nil {
			// Under e.mu: an attempt the entry records meanwhile is saved
			// after this, under the new key, never overwritten by it.
			e.mu.Lock()
			err := in.store.SetAttempts(r.plan.keys[i], slices.Clone(e.window.attempts))
			e.mu.Unlock()
			if err != nil {
				in.log.Log(message.Err(fmt.Sprintf("('%s'): retry count not saved: %v", f.Processes[i].Name, err)))
			}
		}
		if e.cancel == nil && in.runCtx != nil {
			in.startEntry(in.runCtx, e)
		}
	}
	in.file = f
	in.entries = r.entries
	if in.store != nil {
		if err := in.store.Keep(r.plan.keys); err != nil {
			in.log.Log(message.Err(err.Error()))
		}
	}
	return nil
}

// matching returns the entries named proc, every entry for "".
func (in *Instance) matching(name string) ([]*entry, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.ended {
		return nil, ErrStopped
	}
	var out []*entry
	for _, e := range in.entries {
		if name == "" || e.name() == name || e.getKey() == name {
			out = append(out, e)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("process %q: %w", name, ErrUnknownProcess)
	}
	return out, nil
}

// control sends c to every entry named name and returns the first error.
func (in *Instance) control(name string, c command) error {
	entries, err := in.matching(name)
	if err != nil {
		return err
	}
	var first error
	for _, e := range entries {
		if err := e.send(c); err != nil && first == nil {
			first = fmt.Errorf("process %q: %w", e.name(), err)
		}
	}
	return first
}

// Pause stops monitoring the process named name (every process for ""):
// its processes keep running and are not restarted until Resume.
func (in *Instance) Pause(name string) error {
	return in.control(name, command{kind: cmdPause})
}

// Resume resumes monitoring (every process for ""). An entry in RetryOver
// is re-armed: its retry count is cleared. The process is looked for
// again; if it is not found within StartWait it is restarted.
func (in *Instance) Resume(name string) error {
	return in.control(name, command{kind: cmdResume})
}

// RestartNow runs the restart sequence of the process now (reason
// manual). It is refused with ErrHealthy while the process is Up unless
// force is set; then the running process is killed first.
func (in *Instance) RestartNow(name string, force bool) error {
	return in.control(name, command{kind: cmdRestart, force: force})
}

// Reset zeroes the retry count and restart counter (every process for "").
func (in *Instance) Reset(name string) error {
	return in.control(name, command{kind: cmdReset})
}

// Snapshot returns the state of every process entry, with the Usage of
// each Up entry's processes read from /proc now.
func (in *Instance) Snapshot() Status {
	in.mu.Lock()
	entries := slices.Clone(in.entries)
	st := Status{Pfile: in.file.Path, Started: in.started}
	in.mu.Unlock()
	now := in.clock.Now()
	for _, e := range entries {
		ps, ids := e.status(now)
		ps.Usage = in.usage(e, ids)
		st.Processes = append(st.Processes, ps)
	}
	return st
}

// States returns the state of every process entry, in pfile order: the
// Snapshot without its /proc reads, for callers that follow states alone.
func (in *Instance) States() []State {
	in.mu.Lock()
	entries := slices.Clone(in.entries)
	in.mu.Unlock()
	states := make([]State, len(entries))
	for i, e := range entries {
		states[i] = e.getState()
	}
	return states
}

// Monitors returns the state of every stall monitor, in pfile order.
func (in *Instance) Monitors() []stall.MonitorStatus {
	in.mu.Lock()
	entries := slices.Clone(in.entries)
	in.mu.Unlock()
	now := time.Now()
	var out []stall.MonitorStatus
	for _, e := range entries {
		key := e.getKey()
		for _, m := range e.getMonitors() {
			st := m.Status(now)
			st.Key = key
			out = append(out, st)
		}
	}
	return out
}

// Dump writes the Snapshot as indented JSON, with the stall monitors'
// states (Options.DumpMonitors) under "monitors".
func (in *Instance) Dump(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	dump := struct {
		Status
		Monitors any `json:"monitors,omitempty"`
	}{Status: in.Snapshot()}
	if in.dumpMonitors != nil {
		dump.Monitors = in.dumpMonitors()
	}
	return enc.Encode(dump)
}

// DumpFile writes the Snapshot to DumpFileName; it does nothing when the
// pfile sets none. The file is replaced atomically in a checked directory
// (trust.WriteFileAtomic), never written through a symbolic link.
func (in *Instance) DumpFile() error {
	name := in.params().DumpFileName
	if name == "" {
		return nil
	}
	var b bytes.Buffer
	if err := in.Dump(&b); err != nil {
		return fmt.Errorf("state dump %s: %w", name, err)
	}
	if err := trust.WriteFileAtomic(name, b.Bytes(), 0o600); err != nil {
		return fmt.Errorf("state dump: %w", err)
	}
	return nil
}

// emit logs m and reports it as an event of process name.
func (in *Instance) emit(name string, m message.Message) {
	in.log.Log(m)
	in.event(name, string(m.ID), m.Text, nil)
}

// emitDown logs the Down of pid of process name followed by output, the
// last lines its restart script's output file holds (crashOutput), and
// reports them as one event.
func (in *Instance) emitDown(name string, pid int, output []string) {
	m := message.Down(name, pid)
	in.log.Log(m)
	for _, line := range output {
		in.log.Log(crashLine(name, line))
	}
	in.event(name, string(m.ID), m.Text, output)
}

// event reports a control or message to OnEvent.
func (in *Instance) event(name, kind, text string, output []string) {
	if in.onEvent == nil {
		return
	}
	in.mu.Lock()
	path := in.file.Path
	in.mu.Unlock()
	in.onEvent(Event{Time: in.clock.Now(), Pfile: path, Process: name, Kind: kind, Text: text, Output: output})
}

// Protected returns the processes of all (a /proc snapshot) that belong
// to an entry, for the cleanup list to spare with their descendants: the
// watched pids of the entries that are Up, and for every entry, whatever
// its state (Paused, Restarting, RetryOver, Down), the processes its
// matcher finds: a paused or retried-over product is still the product.
func (in *Instance) Protected(all []proc.Info) []int {
	in.mu.Lock()
	entries := slices.Clone(in.entries)
	in.mu.Unlock()
	var pids []int
	for _, e := range entries {
		e.mu.Lock()
		pids = append(pids, pidsOf(e.ids)...)
		e.mu.Unlock()
		for _, p := range e.matcher().Match(all) {
			pids = append(pids, p.Pid)
		}
	}
	return pids
}
