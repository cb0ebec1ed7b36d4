package stall

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pcheck/pcheck/checker/engine"
	"github.com/pcheck/pcheck/checker/message"
	"github.com/pcheck/pcheck/checker/probe"
	"github.com/pcheck/pcheck/checker/proc"
	"github.com/pcheck/pcheck/pfile"
)

// ErrNoHeartbeat is the failure of a heartbeat attempt that found the
// file's modification time unchanged since the previous attempt.
var ErrNoHeartbeat = errors.New("heartbeat file not modified since the previous attempt")

// monitor is one PS_EXEC: its settings, its probe and its state. The fields
// below "guarded" are guarded by Scheduler.mu; a run's goroutine owns the
// rest of what it uses (its timer, the heartbeat's last mtime).
type monitor struct {
	s       *Scheduler
	process string // the process as written in the pfile
	block   string
	cfg     pfile.Monitor
	timeout time.Duration
	target  string
	prober  probe.Prober

	// guarded
	key        string // engine entry key; a reload carrying the entry over changes it
	gen        uint64 // bumped by every start and pause: a run is current while gen is its own
	cancel     context.CancelFunc
	done       chan struct{} // closed when the last started run's goroutine ended
	pids       []proc.ID     // the process's watched pids while a run is current
	fo         Failover
	lastOK     time.Time // last success, or the start of the run
	attempts   int
	failures   int
	stalls     int
	latency    time.Duration
	lastErr    string
	lastDetail string
}

// newMonitor builds the monitor of block b of the process entry key. b
// comes from pfile.Build, the one validator, which has filled in every
// default (host, path, attempt timeout): nothing is checked or defaulted
// again here.
func newMonitor(s *Scheduler, key, name string, b *pfile.Block) (*monitor, error) {
	cfg := b.Monitor
	m := &monitor{s: s, key: key, process: name, block: b.Name, cfg: cfg, timeout: cfg.Timeout, target: targetText(cfg)}
	tree := m.tree
	if cfg.Kind == pfile.KindChildren {
		tree = m.descendants
	}
	pr, err := probe.New(cfg, tree)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w: %w", b.Pos, b.Name, ErrInvalid, err)
	}
	m.prober = pr
	m.fo = NewFailover(cfg)
	return m, nil
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
	}
	return m.File // heartbeat
}

// tree is the probe.TreeFunc of the listen and children probes: the main
// watched process first, then its descendants, then the other watched
// processes of the entry (count > 1) with theirs. It is empty when the
// main process is gone: the engine is about to report it down. A /proc
// that cannot be scanned is an error: the attempt is Unknown.
func (m *monitor) tree() ([]probe.ProcName, error) {
	m.s.mu.Lock()
	pids := slices.Clone(m.pids)
	m.s.mu.Unlock()
	if len(pids) == 0 {
		return nil, nil
	}
	all, err := m.s.scan()
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
		out = append(out, probe.ProcName{Pid: p.Pid, Comm: p.Comm, Argv0: argv0})
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

// descendants is the probe.TreeFunc of the children probe: the main
// watched process first (the probe leaves it out: it is not its own
// child), then the descendants of the watched processes, without the other
// watched processes (count > 1): a second apache2 master must not stand in
// for a worker named apache2 that died.
func (m *monitor) descendants() ([]probe.ProcName, error) {
	all, err := m.tree()
	if err != nil || len(all) == 0 {
		return all, err
	}
	m.s.mu.Lock()
	pids := slices.Clone(m.pids)
	m.s.mu.Unlock()
	return append(all[:1:1], slices.DeleteFunc(all[1:], func(p probe.ProcName) bool {
		return slices.ContainsFunc(pids, func(id proc.ID) bool { return id.Pid == p.Pid })
	})...), nil
}

// loop is one run: attempts every interval until the run is paused (ctx)
// or a stall ends it. gen identifies the run.
func (m *monitor) loop(ctx context.Context, gen uint64) {
	clock := m.s.clock
	delay := m.s.stagger(m.cfg.Interval)
	due := clock.Now().Add(delay)
	timer := clock.NewTimer(delay)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C():
		}
		start, bootStart := clock.Now(), clock.Boot()
		actx, cancel := context.WithTimeout(ctx, m.timeout)
		res := m.prober.Run(actx)
		cancel()
		if ctx.Err() != nil {
			return // paused during the attempt: its result means nothing
		}
		end, bootEnd := clock.Now(), clock.Boot()
		sample := Sample{Outcome: Failed, ModTime: res.ModTime, Due: due, Start: start, End: end, BootStart: bootStart, BootEnd: bootEnd,
			PausedBefore: m.s.freeze.frozen(due, start, end), PausedDuring: m.s.freeze.frozen(start, end, end)}
		switch {
		case res.Unknown:
			sample.Outcome = NotMade
		case res.OK:
			sample.Outcome = Succeeded
		default:
			sample.TimedOut = errors.Is(res.Err, context.DeadlineExceeded)
		}
		stalled, pid, v, current, unknown := m.record(gen, sample, res)
		if !current {
			return
		}
		if m.s.onAttempt != nil && v.Measured {
			m.s.onAttempt(Attempt{Process: m.process, Kind: m.cfg.Kind, Target: m.target, OK: v.State == StateOk, Unknown: res.Unknown, Latency: res.Latency})
		}
		if unknown != "" {
			m.s.emit(m.process, message.MonitorUnknown(m.process, m.block, unknown))
		}
		if stalled {
			m.act(pid, res)
			return
		}
		delay = max(0, m.cfg.Interval-end.Sub(start))
		due = end.Add(delay)
		timer.Reset(delay)
	}
}

// record accounts for one attempt of run gen through the monitor's
// Failover. It reports whether the process is now stalled and its main
// pid, the verdict, whether the run is still current, and the reason to
// log when the monitor has just become Unknown or is Unknown for another
// reason. An attempt that was not measured (pcheck did not run while it
// was due or in flight) is counted as an attempt and nothing else.
func (m *monitor) record(gen uint64, sample Sample, res probe.Result) (stalled bool, pid int, v Verdict, current bool, unknown string) {
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	if m.gen != gen {
		return false, 0, v, false, ""
	}
	was := m.fo.State()
	m.attempts++
	m.latency = res.Latency
	v = m.fo.Add(sample)
	if !v.Measured {
		m.lastDetail = fmt.Sprintf("not measured: pcheck did not run for %v of the attempt", v.Lost.Round(time.Millisecond))
		return false, 0, v, true, ""
	}
	m.lastDetail = res.Detail
	reason := res.Detail
	if res.Err != nil {
		reason = res.Err.Error()
	}
	switch v.State {
	case StateOk:
		m.lastOK, m.lastErr = sample.End, ""
		return false, 0, v, true, ""
	case StateUnknown:
		if was != StateUnknown || m.lastErr != reason {
			unknown = reason
		}
		m.lastErr = reason
		return false, 0, v, true, unknown
	}
	if v.NoHeartbeat {
		reason, m.lastDetail = ErrNoHeartbeat.Error(), "no heartbeat: "+res.Detail
	}
	m.failures++
	m.lastErr = reason
	if v.State != StateStalled {
		return false, 0, v, true, ""
	}
	m.stalls++
	return true, m.pids[0].Pid, v, true, ""
}

// act carries out a stall: the find message, then the ACTION (the kill,
// which logs Killed Process or Can not killed Process per pid), then
// PS_ACTION error when the kill fails and PS_EXEC error after it.
func (m *monitor) act(pid int, res probe.Result) {
	s := m.s
	s.emit(m.process, m.findMessage(pid, res))
	s.mu.Lock()
	key := m.key
	s.mu.Unlock()
	results, err := s.target.KillStalledEach(key, engine.ReasonStall)
	if !s.running() {
		return // pcheck is stopping: the kill was cut short, not refused
	}
	killed := true
	if err != nil {
		// Nothing was tried: the process went down meanwhile (it is
		// restarted as any death) or its entry was removed.
		if !errors.Is(err, engine.ErrNotUp) {
			s.emit(m.process, message.Warning(fmt.Sprintf("('%s' ,pid=%d): %s: cannot kill the stalled process: %v", m.process, pid, m.block, err)))
		}
	}
	// The engine logged Killed Process or Can not killed Process for
	// each pid; the cause of a failure is told here.
	for _, r := range results {
		if r.Err != nil {
			killed = false
			s.emit(m.process, message.Warning(fmt.Sprintf("('%s' ,pid=%d): %s: cannot kill the stalled process: %v", m.process, r.Pid, m.block, r.Err)))
		}
	}
	if retryOver := s.acted(m, killed); retryOver {
		if err := s.target.RetryOver(key); err != nil && s.running() {
			s.emit(m.process, message.Warning(fmt.Sprintf("('%s'): %s: retry_over_action not run: %v", m.process, m.block, err)))
		}
	}
}

// findMessage is the find message of a stall of the monitor's kind.
func (m *monitor) findMessage(pid int, res probe.Result) message.Message {
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
	}
	return message.CommandStall(pid, m.cfg.File)
}

// statusLocked is the monitor's status at now; Scheduler.mu is held.
func (m *monitor) statusLocked(now time.Time) MonitorStatus {
	st := MonitorStatus{
		Process:     m.process,
		Key:         m.key,
		Block:       m.block,
		Kind:        m.cfg.Kind,
		Target:      m.target,
		Interval:    m.cfg.Interval,
		Failover:    m.cfg.Failover,
		Timeout:     m.timeout,
		State:       m.fo.State(),
		Attempts:    m.attempts,
		Failures:    m.failures,
		Stalls:      m.stalls,
		LastLatency: m.latency,
		LastError:   m.lastErr,
		LastDetail:  m.lastDetail,
	}
	if state := m.fo.State(); len(m.pids) > 0 && state != StatePaused && state != StateStopped {
		st.Pid = m.pids[0].Pid
		st.SinceSuccess = now.Sub(m.lastOK)
		st.FailingFor = m.fo.FailingFor(now)
	}
	return st
}
