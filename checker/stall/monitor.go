package stall

import (
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pcheck/pcheck/checker/message"
	"github.com/pcheck/pcheck/checker/probe"
	"github.com/pcheck/pcheck/checker/proc"
	"github.com/pcheck/pcheck/pfile"
)

// ErrNoHeartbeat is the failure of a heartbeat attempt that found the
// file's modification time unchanged since the previous attempt.
var ErrNoHeartbeat = errors.New("heartbeat file not modified since the previous attempt")

// renewedBy is how much later a certificate must end than the one whose
// TLSExpiryFail stalled the process to count as renewed: a renewal adds
// weeks, a server that only made itself a new certificate at start (a
// test's) adds seconds.
const renewedBy = 24 * time.Hour

// ErrInvalid is returned by NewMonitor when a block cannot be monitored (a
// pfile that passed validation never gives it).
var ErrInvalid = errors.New("stall monitor cannot be built")

// Monitor is one PS_EXEC of a process entry: its settings, its probe, its
// failover and its counts. Its owner (the engine's entry) starts it when
// the process comes Up and stops it when the process leaves Up; every
// attempt's result is delivered to the owner, who acts on a stall. The
// fields below "guarded" are guarded by mu.
type Monitor struct {
	rt      *Runtime
	process string // the process as written in the pfile
	block   string
	cfg     pfile.Monitor
	target  string
	prober  probe.Prober
	scan    func(context.Context) ([]proc.Info, error)

	mu sync.Mutex
	// guarded
	cur      *run   // the current run, nil when stopped
	gen      uint64 // bumped by every start and stop
	pids     []proc.ID
	inFlight bool // an attempt is running (of this run or an ended one)
	// actx is the context of the attempt in flight, for the scans of the
	// listen and children probes: a scan that hangs ends with the
	// attempt's timeout, as Unknown.
	actx     context.Context
	waiting  bool // cur's first attempt came due while an ended run's was in flight
	fo       Failover
	lastOK   time.Time // last success, or the start of the run
	attempts int
	failures int
	stalls   int
	latency  time.Duration
	lastErr  string
	detail   string
	// notAfter is the server certificate's end of validity as the last
	// attempt saw it (TLSExpiryWarn, TLSExpiryFail); warned is when the
	// monitor last warned that it expires soon.
	notAfter time.Time
	warned   time.Time
	// expiryStall is the NotAfter of the certificate whose TLSExpiryFail
	// stalled the process: a restart that brings the same certificate
	// back (not renewed) cannot help, and is not done again.
	expiryStall time.Time
	// queue and backlog are the listener's of the last attempt
	// (_bi_listen, when it succeeded); queueKnown says they are.
	queue, backlog int
	queueKnown     bool
	// The attempt in flight on the probe event loop (a probe.Starter):
	// its run (nil when none), due and start times, and its handle.
	loopRun       *run
	loopDue       time.Time
	loopStart     time.Time
	loopBootStart time.Duration
	loopAttempt   probe.Handle
	// done is the monitor's probe.Completion, made once.
	done probe.Completion
}

// Result is one attempt of a monitor as its owner receives it.
type Result struct {
	m   *Monitor
	gen uint64
	// Verdict is the failover's: the monitor's state after the attempt.
	Verdict Verdict
	// Probe is the attempt's own result.
	Probe probe.Result
	// Stalled: the failover time is reached; the owner acts (the find
	// message, the kill, then Acted). Pid is the main watched pid.
	Stalled bool
	Pid     int
	// Unknown, when not empty, is the reason to log Monitor unknown with:
	// the monitor has just become Unknown, or is Unknown for another
	// reason.
	Unknown string
	// ExpiresSoon, when not zero, is the certificate expiry warning to
	// log (TLSExpiryWarn: at most once a day).
	ExpiresSoon message.Message
}

// Monitor returns the monitor the result is of.
func (r Result) Monitor() *Monitor { return r.m }

// Current reports whether the run the result belongs to is still the
// monitor's: a result of a run stopped since means nothing.
func (r Result) Current() bool {
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	return r.m.cur != nil && r.m.gen == r.gen
}

// Attempt is the result for the statistics and the latency histogram.
func (r Result) Attempt() Attempt {
	return Attempt{Process: r.m.process, Kind: r.m.cfg.Kind, Target: r.m.target, OK: r.Verdict.State == StateOk, Unknown: r.Probe.Unknown, Latency: r.Probe.Latency}
}

// Attempt is one probe attempt as the statistics see it.
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

// NewMonitor builds the monitor of block b of process name, run by rt.
// scan reads /proc for the listen, children and resource probes (the
// engine's shared scan; the result is read only), bounded by the attempt's
// context. b comes from pfile.Builder, the
// one validator, which has filled in every default (host, path, attempt
// timeout): nothing is checked or defaulted again here.
func (rt *Runtime) NewMonitor(name string, b *pfile.Block, scan func(context.Context) ([]proc.Info, error)) (*Monitor, error) {
	cfg := b.Monitor
	m := &Monitor{rt: rt, process: name, block: b.Name, cfg: cfg, target: targetText(cfg), scan: scan}
	tree := m.tree
	if cfg.Kind == pfile.KindChildren || cfg.Metric == pfile.MetricChildren {
		tree = m.descendants
	}
	pr, err := probe.New(cfg, tree)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w: %w", b.Pos, b.Name, ErrInvalid, err)
	}
	m.prober = pr
	m.done = loopDone{m}
	m.fo = NewFailover(cfg)
	return m, nil
}

// Prefetch looks up, all at once, the host names the monitors of f
// connect to: the monitors built afterwards take these lookups instead of
// each making its own while the engine builds them (under its lock, on a
// reload).
func Prefetch(f *pfile.File) {
	var hosts []string
	for _, p := range f.Processes {
		for _, b := range p.Blocks {
			if h := b.Monitor.Host; h != "" {
				hosts = append(hosts, h)
			}
		}
	}
	probe.Prefetch(hosts)
}

// Same reports whether m monitors block b as it is: a reload keeps such
// a monitor, with its state and counts.
func (m *Monitor) Same(b *pfile.Block) bool {
	return m.block == b.Name && reflect.DeepEqual(m.cfg, b.Monitor)
}

// Block is the block name as written (_bi_webserv, ...).
func (m *Monitor) Block() string { return m.block }

// Config is the monitor's settings, as pfile resolved its block.
func (m *Monitor) Config() pfile.Monitor { return m.cfg }

// Start begins a fresh run for the process's pids (it came Up, or its
// pids changed), ending the current one: Ok, no failures carried over,
// the first attempt after the stagger. A stopped monitor (PS_EXEC
// error=1 after a stall, a failed kill) does not start. Each attempt's
// result goes to deliver, which must return quickly.
func (m *Monitor) Start(pids []proc.ID, deliver func(Result)) {
	m.mu.Lock()
	m.stopLocked()
	if m.fo.Stopped() || len(pids) == 0 {
		m.mu.Unlock()
		return
	}
	ctx, cancel := context.WithCancel(m.rt.base)
	r := &run{m: m, gen: m.gen, deliver: deliver, ctx: ctx, cancel: cancel, index: -1}
	if _, ok := m.prober.(probe.Starter); ok {
		// The end of the run (Stop, or the Runtime's end) cancels its
		// attempt on the loop, as it does a worker's through ctx.
		context.AfterFunc(ctx, func() {
			m.mu.Lock()
			if m.loopRun == r {
				m.loopAttempt.Cancel()
			}
			m.mu.Unlock()
		})
	}
	m.cur, m.pids = r, slices.Clone(pids)
	m.rt.freeze.hold() // the run's attempts need the freeze watch
	now := m.rt.clock.Now()
	m.fo.Start()
	m.lastOK = now
	m.rt.schedule(r, now.Add(m.rt.stagger(m.cfg.Interval)))
	m.mu.Unlock()
}

// SetPids gives the current run the watched pids without starting it
// afresh (a process of an entry with count > 1 died, the main one lives
// on): the run of failures in progress goes on.
func (m *Monitor) SetPids(pids []proc.ID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cur != nil && len(pids) > 0 {
		m.pids = slices.Clone(pids)
	}
}

// Running reports whether the monitor has a run for the main pid id.
func (m *Monitor) Running(id proc.ID) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cur != nil && len(m.pids) > 0 && m.pids[0] == id
}

// Stop ends the current run (the process left Up): an attempt in flight
// is cancelled and its result dropped.
func (m *Monitor) Stop() {
	m.mu.Lock()
	m.stopLocked()
	m.mu.Unlock()
}

// stopLocked ends the current run; m.mu is held.
func (m *Monitor) stopLocked() {
	m.gen++
	if r := m.cur; r != nil {
		r.cancel()
		m.rt.unschedule(r)
		m.rt.freeze.release()
		m.cur = nil
	}
	m.pids = nil
	m.waiting = false
	m.fo.Pause()
}

// begin starts the attempt of r that is due, unless r has ended; one
// attempt of a monitor at a time: a run whose first attempt comes due
// while an ended run's attempt is still in flight waits for its end. A
// probe.Starter's attempt goes to the probe event loop, any other to a
// worker.
func (m *Monitor) begin(r *run) {
	m.mu.Lock()
	if m.cur != r || r.ctx.Err() != nil {
		m.mu.Unlock()
		return
	}
	if m.inFlight {
		m.waiting = true
		m.mu.Unlock()
		return
	}
	st, onLoop := m.prober.(probe.Starter)
	if onLoop && !m.rt.track() {
		m.mu.Unlock()
		return
	}
	m.inFlight = true
	due := r.due
	if onLoop {
		m.loopRun, m.loopDue = r, due
		m.loopStart, m.loopBootStart = m.rt.clock.Now(), m.rt.clock.Boot()
		// The loop takes m.mu only in Complete, never within Start.
		m.loopAttempt = st.Start(time.Now().Add(m.cfg.Timeout), m.done)
		m.mu.Unlock()
		return
	}
	m.mu.Unlock()
	m.rt.dispatch(func() { m.attempt(r, due) })
}

// loopDone is a monitor's probe.Completion: the end of its attempt on the
// probe event loop, on the loop's goroutine.
type loopDone struct{ m *Monitor }

func (d loopDone) Complete(res probe.Result) {
	m := d.m
	m.mu.Lock()
	r, due, start, bootStart := m.loopRun, m.loopDue, m.loopStart, m.loopBootStart
	m.loopRun, m.loopAttempt = nil, probe.Handle{}
	m.mu.Unlock()
	m.finish(r, due, start, bootStart, res)
	m.rt.wg.Done()
}

// attempt makes one attempt of run r, due at due; on a worker.
func (m *Monitor) attempt(r *run, due time.Time) {
	clock := m.rt.clock
	start, bootStart := clock.Now(), clock.Boot()
	actx, cancel := context.WithTimeout(r.ctx, m.cfg.Timeout)
	m.mu.Lock()
	m.actx = actx
	m.mu.Unlock()
	res := m.prober.Run(actx)
	cancel()
	m.finish(r, due, start, bootStart, res)
}

// finish accounts for the attempt of run r, due at due and started at
// start, whose result is res: it records it, schedules the next attempt
// and delivers the result, unless the run has ended meanwhile.
func (m *Monitor) finish(r *run, due, start time.Time, bootStart time.Duration, res probe.Result) {
	rt := m.rt
	clock := rt.clock
	end, bootEnd := clock.Now(), clock.Boot()
	sample := Sample{Outcome: Failed, ModTime: res.ModTime, Due: due, Start: start, End: end, BootStart: bootStart, BootEnd: bootEnd,
		PausedBefore: rt.freeze.frozen(due, start, end), PausedDuring: rt.freeze.frozen(start, end, end)}
	switch {
	case res.Unknown:
		sample.Outcome = NotMade
	case res.OK:
		sample.Outcome = Succeeded
	default:
		sample.TimedOut = errors.Is(res.Err, context.DeadlineExceeded)
	}

	m.mu.Lock()
	m.inFlight = false
	if m.cur != r || r.ctx.Err() != nil {
		// Stopped or started afresh during the attempt: its result
		// means nothing; a new run waiting for it begins now.
		next, waiting := m.cur, m.waiting
		m.waiting = false
		m.mu.Unlock()
		if waiting && next != nil {
			m.begin(next)
		}
		return
	}
	out := m.recordLocked(r.gen, sample, res)
	if !out.Stalled {
		rt.schedule(r, end.Add(max(0, m.cfg.Interval-end.Sub(start))))
	}
	m.mu.Unlock()
	r.deliver(out)
}

// recordLocked accounts for one attempt of the current run through the
// failover; m.mu is held. An attempt that was not measured (pcheck did not
// run while it was due or in flight) is counted as an attempt and nothing
// else.
func (m *Monitor) recordLocked(gen uint64, sample Sample, res probe.Result) Result {
	out := Result{m: m, gen: gen, Probe: res}
	if !res.NotAfter.IsZero() && m.cfg.WatchesExpiry() {
		m.notAfter = res.NotAfter
		now := m.rt.clock.Now()
		if days, warn := probe.ExpiryWarning(res.NotAfter, m.cfg.TLSExpiryWarnDays, m.warned, now); warn {
			m.warned = now
			out.ExpiresSoon = message.TLSExpiresSoon(m.cfg.Port, days)
		}
	}
	if errors.Is(res.Err, probe.ErrCertExpiring) && !m.expiryStall.IsZero() && !res.NotAfter.After(m.expiryStall.Add(renewedBy)) {
		// The restart for this certificate did not renew it: killing
		// the server again would only take it down, again and again
		// until retry over. Unknown, said once, until it is renewed.
		sample.Outcome = NotMade
		res.Unknown = true
		res.Err = fmt.Errorf("%w; a restart did not renew it (not after %s): renew the certificate, pcheck restarts the server no more for it",
			res.Err, res.NotAfter.UTC().Format(time.RFC3339))
		out.Probe = res
	}
	was := m.fo.State()
	m.attempts++
	m.latency = res.Latency
	m.queueKnown = res.OK && m.cfg.Kind == pfile.KindListen
	m.queue, m.backlog = res.AcceptQueue, res.Backlog
	v := m.fo.Add(sample)
	out.Verdict = v
	if !v.Measured {
		m.detail = fmt.Sprintf("not measured: pcheck did not run for %v of the attempt", v.Lost.Round(time.Millisecond))
		return out
	}
	m.detail = res.Detail
	reason := res.Detail
	if res.Err != nil {
		reason = res.Err.Error()
	}
	switch v.State {
	case StateOk:
		m.lastOK, m.lastErr = sample.End, ""
		return out
	case StateUnknown:
		if was != StateUnknown || m.lastErr != reason {
			out.Unknown = reason
		}
		m.lastErr = reason
		return out
	}
	if v.NoHeartbeat {
		reason, m.detail = ErrNoHeartbeat.Error(), "no heartbeat: "+res.Detail
	}
	m.failures++
	m.lastErr = reason
	if v.State == StateStalled {
		m.stalls++
		out.Stalled, out.Pid = true, m.pids[0].Pid
		if errors.Is(res.Err, probe.ErrCertExpiring) {
			m.expiryStall = res.NotAfter
		}
	}
	return out
}

// Acted tells the monitor how the action on its stall went: killed is
// false when a kill was tried and failed. It reports whether the process
// goes to retry over (PS_ACTION error=1 and the kill failed). A monitor
// stopped for good (PS_EXEC error=1, a failed kill) ends its run.
func (m *Monitor) Acted(killed bool) (retryOver bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, retryOver = m.fo.Acted(killed)
	if m.fo.Stopped() {
		m.stopLocked() // Stopped stays Stopped
	}
	return retryOver
}

// targetText is what an attempt checks, for status.
func targetText(m pfile.Monitor) string {
	hostPort := net.JoinHostPort(m.Host, strconv.Itoa(m.Port))
	switch m.Kind {
	case pfile.KindWebserv:
		return "http://" + hostPort + "/"
	case pfile.KindWebservs:
		return "https://" + hostPort + m.Path
	case pfile.KindSocket:
		return hostPort
	case pfile.KindListen:
		addr := m.Address
		if addr == "" {
			addr = "*"
		}
		return "LISTEN " + net.JoinHostPort(addr, strconv.Itoa(m.Port))
	case pfile.KindChildren:
		return "children " + strings.Join(m.Children, " ")
	case pfile.KindCommand:
		return strings.Join(append([]string{m.File}, m.Args...), " ")
	case pfile.KindResource:
		return string(m.Metric) + " <= " + m.Limit.String()
	}
	return m.File // heartbeat
}

// tree is the probe.TreeFunc of the listen and resource probes: the main
// watched process first, then its descendants, then the other watched
// processes of the entry (count > 1) with theirs. It is empty when the
// main process is gone: the engine is about to report it down. A /proc
// that cannot be scanned is an error: the attempt is Unknown.
func (m *Monitor) tree() ([]probe.ProcName, error) {
	m.mu.Lock()
	pids := slices.Clone(m.pids)
	ctx := m.actx
	m.mu.Unlock()
	if len(pids) == 0 {
		return nil, nil
	}
	if ctx == nil {
		ctx = context.Background()
	}
	all, err := m.scan(ctx)
	if err != nil {
		return nil, err
	}
	byPid := make(map[int]proc.Info, len(all))
	for _, p := range all {
		byPid[p.Pid] = p
	}
	var out []probe.ProcName
	add := func(p proc.Info) {
		argv0 := ""
		if len(p.Argv) > 0 {
			argv0 = p.Argv[0]
		}
		out = append(out, probe.ProcName{Pid: p.Pid, Comm: p.Comm, Argv0: argv0, Start: p.Start})
	}
	for i, id := range pids {
		p, ok := byPid[id.Pid]
		if !ok || p.Start != id.Start || p.Dead() {
			if i == 0 {
				return nil, nil
			}
			continue
		}
		add(p)
		for _, d := range proc.Descendants(all, id.Pid) {
			if q, ok := byPid[d.Pid]; ok && !q.Dead() {
				add(q)
			}
		}
	}
	return out, nil
}

// descendants is the probe.TreeFunc of the children probe and of the
// resource probe of the children metric: the main watched process first
// (the probe leaves it out: it is not its own child), then the
// descendants of the watched processes, without the other watched
// processes (count > 1): a second apache2 master must not stand in for a
// worker named apache2 that died.
func (m *Monitor) descendants() ([]probe.ProcName, error) {
	all, err := m.tree()
	if err != nil || len(all) == 0 {
		return all, err
	}
	m.mu.Lock()
	pids := slices.Clone(m.pids)
	m.mu.Unlock()
	return append(all[:1:1], slices.DeleteFunc(all[1:], func(p probe.ProcName) bool {
		return slices.ContainsFunc(pids, func(id proc.ID) bool { return id.Pid == p.Pid })
	})...), nil
}

// FindMessage is the find message of a stall of the monitor's kind, for
// a stall of main pid pid found by the attempt res.
func (m *Monitor) FindMessage(pid int, res probe.Result) message.Message {
	switch m.cfg.Kind {
	case pfile.KindWebserv, pfile.KindWebservs:
		return message.WebServerStall(pid, m.cfg.Port)
	case pfile.KindSocket:
		return message.SocketStall(pid, m.cfg.Port)
	case pfile.KindHeartbeat:
		return message.HeartbeatStall(pid, m.cfg.File)
	case pfile.KindListen:
		return message.ListenStall(pid, m.cfg.Port)
	case pfile.KindChildren:
		child := m.cfg.Children[0]
		if len(res.Missing) > 0 {
			child = res.Missing[0]
		}
		return message.ChildStall(pid, child)
	case pfile.KindResource:
		return message.ResourceStall(pid, string(m.cfg.Metric), m.cfg.Limit.Format(res.Usage), m.cfg.Limit.String())
	}
	return message.CommandStall(pid, m.cfg.File)
}

// Status is the monitor's status at now. Key is left to the owner, which
// knows the entry key.
func (m *Monitor) Status(now time.Time) MonitorStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := MonitorStatus{
		Process:     m.process,
		Block:       m.block,
		Kind:        m.cfg.Kind,
		Target:      m.target,
		Interval:    m.cfg.Interval,
		Failover:    m.cfg.Failover,
		Timeout:     m.cfg.Timeout,
		State:       m.fo.State(),
		Attempts:    m.attempts,
		Failures:    m.failures,
		Stalls:      m.stalls,
		LastLatency: m.latency,
		LastError:   m.lastErr,
		LastDetail:  m.detail,
		TLSNotAfter: m.notAfter,
	}
	if m.queueKnown {
		q := m.queue
		st.AcceptQueue = &q
		if m.backlog > 0 {
			b := m.backlog
			st.Backlog = &b
		}
	}
	if state := m.fo.State(); len(m.pids) > 0 && state != StatePaused && state != StateStopped {
		st.Pid = m.pids[0].Pid
		st.SinceSuccess = now.Sub(m.lastOK)
		st.FailingFor = m.fo.FailingFor(now)
	}
	return st
}
