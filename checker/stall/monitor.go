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

// maxDefaultTimeout bounds the default attempt timeout (pfile.md).
const maxDefaultTimeout = 10 * time.Second

// ErrNoHeartbeat is the failure of a heartbeat attempt that found the
// file's modification time unchanged since the previous attempt.
var ErrNoHeartbeat = errors.New("heartbeat file not modified since the previous attempt")

// monitor is one PS_EXEC: its settings, its probe and its state. The fields
// below "guarded" are guarded by Scheduler.mu; a run's goroutine owns the
// rest of what it uses (its timer, the heartbeat's last mtime).
type monitor struct {
	s       *Scheduler
	key     string // engine entry key
	process string // the process as written in the pfile
	block   string
	cfg     pfile.Monitor
	timeout time.Duration
	target  string
	prober  probe.Prober

	// guarded
	gen        uint64 // bumped by every start and pause: a run is current while gen is its own
	cancel     context.CancelFunc
	done       chan struct{} // closed when the last started run's goroutine ended
	pids       []proc.ID     // the process's watched pids while a run is current
	state      State
	stopped    bool
	lastOK     time.Time // last success, or the start of the run
	failSince  time.Time // start of the first failed attempt of the current series
	attempts   int
	failures   int
	stalls     int
	latency    time.Duration
	lastErr    string
	lastDetail string
}

// newMonitor builds the monitor of block b of the process entry key.
func newMonitor(s *Scheduler, key, name string, b *pfile.Block) (*monitor, error) {
	cfg := b.Monitor
	if cfg.Interval <= 0 || cfg.Failover <= 0 {
		return nil, fmt.Errorf("%s: %s: %w: interval %v and failover %v must be positive", b.Pos, b.Name, ErrInvalid, cfg.Interval, cfg.Failover)
	}
	m := &monitor{s: s, key: key, process: name, block: b.Name, cfg: cfg, timeout: cfg.Timeout, target: targetText(cfg)}
	if m.timeout <= 0 {
		m.timeout = min(cfg.Interval, maxDefaultTimeout)
	}
	pr, err := probe.New(cfg, m.tree)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w: %w", b.Pos, b.Name, ErrInvalid, err)
	}
	m.prober = pr
	return m, nil
}

// targetText is what an attempt checks, for status.
func targetText(m pfile.Monitor) string {
	host := m.Host
	if host == "" {
		host = "localhost"
	}
	hostPort := net.JoinHostPort(host, strconv.Itoa(m.Port))
	switch m.Kind {
	case pfile.KindWebserv:
		return "http://" + hostPort + "/"
	case pfile.KindWebservs:
		path := m.Path
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		return "https://" + hostPort + path
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

// loop is one run: attempts every interval until the run is paused (ctx)
// or a stall ends it. gen identifies the run.
func (m *monitor) loop(ctx context.Context, gen uint64) {
	clock := m.s.clock
	var (
		lastMod time.Time // heartbeat: the mtime the previous attempt saw
		haveMod bool
	)
	timer := clock.NewTimer(m.s.stagger(m.cfg.Interval))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C():
		}
		start := clock.Now()
		actx, cancel := context.WithTimeout(ctx, m.timeout)
		res := m.prober.Run(actx)
		cancel()
		if ctx.Err() != nil {
			return // paused during the attempt: its result means nothing
		}
		if m.cfg.Kind == pfile.KindHeartbeat && res.OK {
			if haveMod && res.ModTime.Equal(lastMod) {
				res.OK, res.Err = false, ErrNoHeartbeat
				res.Detail = "no heartbeat: " + res.Detail
			}
			lastMod, haveMod = res.ModTime, true
		}
		end := clock.Now()
		if m.s.onAttempt != nil {
			m.s.onAttempt(Attempt{Process: m.process, Kind: m.cfg.Kind, Target: m.target, OK: res.OK, Unknown: res.Unknown, Latency: res.Latency})
		}
		stalled, pid, current, unknown := m.record(gen, start, end, res)
		if !current {
			return
		}
		if unknown != "" {
			m.s.emit(m.process, message.MonitorUnknown(m.process, m.block, unknown))
		}
		if stalled {
			m.act(pid, res)
			return
		}
		timer.Reset(max(0, m.cfg.Interval-end.Sub(start)))
	}
}

// record accounts for one attempt of run gen that started at start and
// ended at end. It reports whether the process is now stalled and its main
// pid, whether the run is still current, and the reason to log when the
// monitor has just become Unknown or is Unknown for another reason.
//
// An Unknown attempt (pcheck could not make it) is neither a success nor
// a failure: it ends the series of failures in progress, since a stall
// needs the service seen failing for the whole failover time and while
// Unknown it was not seen at all. The next attempt that is made starts a
// new series if it fails.
func (m *monitor) record(gen uint64, start, end time.Time, res probe.Result) (stalled bool, pid int, current bool, unknown string) {
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	if m.gen != gen {
		return false, 0, false, ""
	}
	m.attempts++
	m.latency = res.Latency
	m.lastDetail = res.Detail
	if res.OK {
		m.lastOK, m.failSince = end, time.Time{}
		m.state, m.lastErr = StateOk, ""
		return false, 0, true, ""
	}
	if res.Unknown {
		reason := res.Detail
		if res.Err != nil {
			reason = res.Err.Error()
		}
		if m.state != StateUnknown || m.lastErr != reason {
			unknown = reason
		}
		m.state, m.lastErr, m.failSince = StateUnknown, reason, time.Time{}
		return false, 0, true, unknown
	}
	m.failures++
	m.lastErr = res.Detail
	if res.Err != nil {
		m.lastErr = res.Err.Error()
	}
	if m.failSince.IsZero() {
		m.failSince = start
	}
	if end.Sub(m.failSince) < m.cfg.Failover {
		m.state = StateInDoubt
		return false, 0, true, ""
	}
	m.state = StateStalled
	m.stalls++
	if m.cfg.StopAfterStall {
		// Decided now, so that the restart that follows the kill does
		// not start a new run.
		m.stopped = true
	}
	return true, m.pids[0].Pid, true, ""
}

// act carries out a stall: the find message, then the ACTION (the kill,
// which logs Killed Process or Can not killed Process per pid), then
// PS_ACTION error when the kill fails and PS_EXEC error after it.
func (m *monitor) act(pid int, res probe.Result) {
	s := m.s
	s.emit(m.process, m.findMessage(pid, res))
	results, err := s.target.KillStalledEach(m.key, engine.ReasonStall)
	if !s.running() {
		return // pcheck is stopping: the kill was cut short, not refused
	}
	if err != nil {
		// Nothing was tried: the process went down meanwhile (it is
		// restarted as any death) or its entry was removed.
		if !errors.Is(err, engine.ErrNotUp) {
			s.emit(m.process, message.Warning(fmt.Sprintf("('%s' ,pid=%d): %s: cannot kill the stalled process: %v", m.process, pid, m.block, err)))
		}
		m.afterStall()
		return
	}
	// The engine logged Killed Process or Can not killed Process for
	// each pid; the cause of a failure is told here.
	failed := false
	for _, r := range results {
		if r.Err != nil {
			failed = true
			s.emit(m.process, message.Warning(fmt.Sprintf("('%s' ,pid=%d): %s: cannot kill the stalled process: %v", m.process, r.Pid, m.block, r.Err)))
		}
	}
	if !failed {
		m.afterStall()
		return
	}
	s.stop(m)
	if m.cfg.RetryOverOnKillFailure {
		if err := s.target.RetryOver(m.key); err != nil && s.running() {
			s.emit(m.process, message.Warning(fmt.Sprintf("('%s'): %s: retry_over_action not run: %v", m.process, m.block, err)))
		}
	}
}

// afterStall ends stall monitoring after a stall with PS_EXEC error=1.
func (m *monitor) afterStall() {
	if m.cfg.StopAfterStall {
		m.s.stop(m)
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
		State:       m.state,
		Attempts:    m.attempts,
		Failures:    m.failures,
		Stalls:      m.stalls,
		LastLatency: m.latency,
		LastError:   m.lastErr,
		LastDetail:  m.lastDetail,
	}
	if len(m.pids) > 0 && m.state != StatePaused && m.state != StateStopped {
		st.Pid = m.pids[0].Pid
		st.SinceSuccess = now.Sub(m.lastOK)
		if !m.failSince.IsZero() {
			st.FailingFor = now.Sub(m.failSince)
		}
	}
	return st
}
