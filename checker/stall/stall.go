// Package stall runs pcheck's stall monitors: the PS_EXEC entries of a
// pfile's _bi_* blocks. Each is a probe (package probe) attempted every
// interval while its process is Up; when attempts have failed without a
// success for the failover time the process is stalled: the find message,
// then the block's ACTION, a kill through the engine, whose death detection
// restarts the process with reason stall.
//
// The probes are stateless one-shot checks; everything that makes an
// attempt part of a schedule lives here: the interval and its random first
// stagger, the attempt's deadline, the failover time, the In doubt state,
// PS_EXEC error (stop after the first stall) and PS_ACTION error (retry
// over when the kill fails).
//
// Design: one goroutine per monitor whose process is Up, driven by one
// timer; a monitor whose process is not Up has no goroutine. The engine
// reports every change of a process entry through OnState: Up (with its
// pids) starts the entry's monitors afresh, anything else pauses them (a
// restarting process is on hold and never stalled). A fresh run waits for
// the previous run of the same monitor to end, so two attempts of one
// check never overlap. Attempts of one run are sequential: the next starts
// one interval after the previous started, or at once when the previous
// took longer than the interval.
//
// The failover time is measured on the monotonic clock from the start of
// the first failed attempt of an uninterrupted series of failures to the
// end of a failed attempt: a service is stalled only once it has been seen
// failing for the failover time, however soon after a success it hung, and
// a step of the wall clock changes nothing. An attempt the probe could not
// make because of pcheck's own side (probe.Result.Unknown) is no failure:
// the monitor is Unknown with the reason, logged once when it becomes
// Unknown or the reason changes (Monitor unknown), and the series of
// failures in progress ends, as the service was not seen failing then.
// Time in which pcheck itself did not run (a late timer, late ticks of its
// own freeze watch, a suspend) never counts toward the failover, and a
// failed attempt during which pcheck did not run is not measured. A heartbeat attempt
// fails when the file is missing or its modification time is the one the
// previous attempt saw (the first attempt of a run only takes note of it).
// These rules are the Failover type's, a pure threshold with no clock.
package stall

import (
	"context"
	"errors"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/pcheck/pcheck/checker/engine"
	"github.com/pcheck/pcheck/checker/message"
	"github.com/pcheck/pcheck/checker/proc"
	"github.com/pcheck/pcheck/checker/state"
	"github.com/pcheck/pcheck/pfile"
)

// Target is what the scheduler acts on when a process is stalled: the
// engine Instance of the pfile. name is the entry key. KillStalledEach logs
// Killed Process or Can not killed Process for each pid.
type Target interface {
	KillStalledEach(name, reason string) ([]engine.KillResult, error)
	RetryOver(name string) error
}

// Options configure a Scheduler.
type Options struct {
	// File is the validated pfile. Required.
	File *pfile.File
	// Log receives the find, kill and warning messages. Required.
	Log engine.Logger
	// OnEvent, when set, is called for every message the scheduler logs
	// (a stall found, why a kill failed), for the event ring buffer; the
	// kill's own lines are the engine's events. Return quickly.
	OnEvent func(engine.Event)
	// OnAttempt, when set, is called after every attempt, for the
	// statistics and the probe latency histogram. Return quickly.
	OnAttempt func(Attempt)
	// Clock is the time source; nil is the system clock.
	Clock Clock
	// Scan reads /proc for the listen and children probes; nil is
	// proc.Scan. pcheck passes the engine's shared scan (Instance.Procs).
	// The result is read only.
	Scan func() ([]proc.Info, error)
}

// Attempt is one probe attempt as OnAttempt sees it.
type Attempt struct {
	Process string
	Kind    pfile.Kind
	// Target is the monitor's target as MonitorStatus shows it.
	Target string
	OK     bool
	// Unknown: the attempt could not be made (pcheck's side); it is not
	// a failure of the service.
	Unknown bool
	Latency time.Duration
}

// ErrInvalid is returned by New and Apply when a block cannot be monitored
// (a pfile that passed validation never gives it).
var ErrInvalid = errors.New("stall monitor cannot be built")

// Scheduler runs the stall monitors of one pfile.
type Scheduler struct {
	log       engine.Logger
	onEvent   func(engine.Event)
	onAttempt func(Attempt)
	clock     Clock
	// stagger returns the delay of the first attempt of a run.
	stagger func(interval time.Duration) time.Duration
	// scan reads /proc for the listen and children probes.
	scan func() ([]proc.Info, error)
	// freeze sees the time pcheck did not run; nil with a Clock of the
	// caller's (tests), whose readings it could not compare.
	freeze *freezeWatch

	applyMu sync.Mutex // one Apply at a time

	mu    sync.Mutex
	path  string
	procs []*process           // pfile order
	gen   uint64               // counts the reloads committed
	up    map[string][]proc.ID // entry key -> pids, for entries Up
	// renamed maps the old keys of the entries the last reload carried
	// over under new keys to the new ones, for a state change the entry
	// sent under its old key as the reload went on.
	renamed map[string]string
	ctx     context.Context // Run's, nil before Run
	target  Target
	ended   bool
	wg      sync.WaitGroup
}

// process is one process entry with its monitors.
type process struct {
	key      string
	name     string
	monitors []*monitor
}

// New builds the monitors of o.File. They start when Run is called and
// their process is Up.
func New(o Options) (*Scheduler, error) {
	if o.File == nil || o.Log == nil {
		return nil, errors.New("stall: File and Log are required")
	}
	s := &Scheduler{
		log:       o.Log,
		onEvent:   o.OnEvent,
		onAttempt: o.OnAttempt,
		clock:     o.Clock,
		stagger:   randomStagger,
		scan:      o.Scan,
		up:        map[string][]proc.ID{},
	}
	if s.scan == nil {
		s.scan = proc.Scan
	}
	if s.clock == nil {
		s.clock = realClock{}
		s.freeze = newFreezeWatch()
	}
	procs, err := s.build(o.File, nil, nil)
	if err != nil {
		return nil, err
	}
	s.procs, s.path = procs, o.File.Path
	return s, nil
}

// randomStagger spreads the first attempts of monitors over their
// interval, so that a thousand monitors do not probe in the same instant.
func randomStagger(interval time.Duration) time.Duration {
	if interval <= 0 {
		return 0
	}
	return rand.N(interval)
}

// build makes the processes and monitors of f, taking over from old every
// monitor whose entry key (after renames, old key to new: the entries a
// reload carries over under a new key), block name and settings are
// unchanged.
func (s *Scheduler) build(f *pfile.File, old []*process, renames map[string]string) ([]*process, error) {
	reuse := map[string][]*monitor{}
	for _, p := range old {
		key := p.key
		if k, ok := renames[key]; ok {
			key = k
		}
		reuse[key] = slices.Clone(p.monitors)
	}
	var out []*process
	var errs []error
	for i, key := range state.Keys(f) {
		fp := f.Processes[i]
		p := &process{key: key, name: fp.Name}
		for _, b := range fp.Blocks {
			cands := reuse[key]
			j := slices.IndexFunc(cands, func(m *monitor) bool {
				return m.block == b.Name && reflect.DeepEqual(m.cfg, b.Monitor)
			})
			if j >= 0 {
				p.monitors = append(p.monitors, cands[j])
				reuse[key] = slices.Delete(cands, j, j+1)
				continue
			}
			m, err := newMonitor(s, key, fp.Name, b)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			p.monitors = append(p.monitors, m)
		}
		out = append(out, p)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// Run starts the monitors of the processes that are Up, and those of
// every process that comes Up later, until ctx is cancelled; then it stops
// them all and returns once their goroutines have ended. t is the engine
// Instance whose OnState is s.OnState.
func (s *Scheduler) Run(ctx context.Context, t Target) {
	s.mu.Lock()
	if s.ctx != nil {
		s.mu.Unlock()
		panic("stall: Run called twice")
	}
	s.ctx, s.target = ctx, t
	if s.freeze != nil {
		s.wg.Add(1)
		go func() { defer s.wg.Done(); s.freeze.run(ctx) }()
	}
	for _, p := range s.procs {
		if pids := s.up[p.key]; pids != nil {
			for _, m := range p.monitors {
				s.startLocked(m, pids)
			}
		}
	}
	s.mu.Unlock()

	<-ctx.Done()
	s.mu.Lock()
	s.ended = true
	for _, p := range s.procs {
		for _, m := range p.monitors {
			s.pauseLocked(m)
		}
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// OnState is the engine's Options.OnState: an entry Up with pids starts
// its monitors afresh; any other state pauses them. It returns at once.
func (s *Scheduler) OnState(c engine.StateChange) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if key, ok := s.renamed[c.Key]; ok {
		// Sent by the entry under the key it had before the reload that
		// carried it over: the entry is known by its new key now.
		c.Key = key
	}
	up := c.State == engine.StateUp && len(c.Pids) > 0
	if up {
		s.up[c.Key] = slices.Clone(c.Pids)
	} else {
		delete(s.up, c.Key)
	}
	for _, p := range s.procs {
		if p.key != c.Key {
			continue
		}
		for _, m := range p.monitors {
			if up {
				s.startLocked(m, c.Pids)
			} else {
				s.pauseLocked(m)
			}
		}
	}
}

// Apply replaces the monitors with those of f (a reload): Prepare, then
// Commit.
func (s *Scheduler) Apply(f *pfile.File) error {
	r, err := s.Prepare(f, nil)
	if err != nil {
		return err
	}
	return r.Commit()
}

// Reload is a reload of a Scheduler made ready by Prepare: its monitors
// are built, nothing has changed yet.
type Reload struct {
	s       *Scheduler
	f       *pfile.File
	procs   []*process
	renames map[string]string
	base    []*process
	gen     uint64 // Scheduler.gen at Prepare
}

// ErrChanged is returned by Commit when the monitors changed since
// Prepare (another reload committed meanwhile).
var ErrChanged = errors.New("stall monitors changed since the reload was prepared")

// Prepare builds the monitors of f (a reload, prepared with the engine's:
// renames maps the old key of every entry the engine carries over under a
// new key to the new one). It changes nothing; when a block cannot be
// built it fails and the old monitors stay.
func (s *Scheduler) Prepare(f *pfile.File, renames map[string]string) (*Reload, error) {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	s.mu.Lock()
	old, gen := s.procs, s.gen
	s.mu.Unlock()
	procs, err := s.build(f, old, renames)
	if err != nil {
		return nil, err
	}
	return &Reload{s: s, f: f, procs: procs, renames: renames, base: old, gen: gen}, nil
}

// Commit switches to the prepared monitors in one step. A monitor whose
// process entry (key, after renames), block name and settings are
// unchanged keeps running with its state and counts; a changed one is
// rebuilt and, if its process is Up, starts afresh; a removed one stops.
// It fails, changing nothing, with ErrChanged when another reload
// committed since Prepare.
func (r *Reload) Commit() error {
	s := r.s
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	wasOld := map[*monitor]bool{}
	for _, p := range r.base {
		for _, m := range p.monitors {
			wasOld[m] = true
		}
	}
	keys := map[string]bool{}
	kept := map[*monitor]bool{}
	for _, p := range r.procs {
		keys[p.key] = true
		for _, m := range p.monitors {
			kept[m] = true
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen != r.gen {
		return ErrChanged
	}
	s.gen++
	for m := range wasOld {
		if !kept[m] {
			s.pauseLocked(m)
		}
	}
	for old, key := range r.renames {
		// An Up reported under the new key since the engine's switch is
		// the newer news.
		if pids, ok := s.up[old]; ok {
			if _, newer := s.up[key]; !newer {
				s.up[key] = pids
			}
		}
		delete(s.up, old)
	}
	for key := range s.up {
		if !keys[key] {
			delete(s.up, key)
		}
	}
	for _, p := range r.procs {
		for _, m := range p.monitors {
			m.key = p.key
		}
		if pids := s.up[p.key]; pids != nil {
			for _, m := range p.monitors {
				if !wasOld[m] {
					s.startLocked(m, pids)
				}
			}
		}
	}
	s.procs, s.path = r.procs, r.f.Path
	s.renamed = maps.Clone(r.renames)
	return nil
}

// Snapshot returns the state of every monitor, in pfile order.
func (s *Scheduler) Snapshot() []MonitorStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	var out []MonitorStatus
	for _, p := range s.procs {
		for _, m := range p.monitors {
			out = append(out, m.statusLocked(now))
		}
	}
	return out
}

// startLocked begins a fresh run of m for the process's pids; s.mu is
// held. Nothing starts before Run, after it, or for a stopped monitor.
func (s *Scheduler) startLocked(m *monitor, pids []proc.ID) {
	s.pauseLocked(m)
	if s.ctx == nil || s.ended || m.fo.Stopped() || len(pids) == 0 {
		return
	}
	ctx, cancel := context.WithCancel(s.ctx)
	prev, done := m.done, make(chan struct{})
	m.cancel, m.done = cancel, done
	m.pids = slices.Clone(pids)
	now := s.clock.Now()
	m.fo.Start()
	m.lastOK = now
	gen := m.gen
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(done)
		if prev != nil {
			// The previous run may be in an attempt: let it end.
			select {
			case <-prev:
			case <-ctx.Done():
				return
			}
		}
		m.loop(ctx, gen)
	}()
}

// pauseLocked ends m's current run, if any; s.mu is held. A run that is
// in an attempt sees its context cancelled and its result ignored.
func (s *Scheduler) pauseLocked(m *monitor) {
	m.gen++
	if m.cancel != nil {
		m.cancel()
		m.cancel = nil
	}
	m.pids = nil
	m.fo.Pause()
}

// acted tells m's failover how the action on its stall went (killed is
// false when a kill failed) and ends stall monitoring of m when it is
// stopped for good (PS_EXEC error=1, a failed kill). It reports whether
// the process goes to retry over.
func (s *Scheduler) acted(m *monitor, killed bool) (retryOver bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, retryOver = m.fo.Acted(killed)
	if m.fo.Stopped() {
		s.pauseLocked(m)
	}
	return retryOver
}

// emit logs msg and reports it to OnEvent.
func (s *Scheduler) emit(proc string, msg message.Message) {
	s.log.Log(msg)
	if s.onEvent == nil {
		return
	}
	s.mu.Lock()
	path := s.path
	s.mu.Unlock()
	s.onEvent(engine.Event{Time: s.clock.Now(), Pfile: path, Process: proc, Kind: string(msg.ID), Text: msg.Text})
}

// running reports whether Run's context is still live (pcheck is not
// stopping).
func (s *Scheduler) running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ctx != nil && s.ctx.Err() == nil && !s.ended
}
