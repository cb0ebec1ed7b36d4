package compare

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// DeathResult is W1 for one monitor.
type DeathResult struct {
	Monitor string
	// Script is kill -> restart script exec (none for supervisord), Exec
	// kill -> new target exec, Serve kill -> the port answering again.
	Script, Exec, Serve Summary
	// Scripts and Execs count the restart scripts run and targets started
	// over the workload: one of each per kill when nothing is doubled.
	Scripts, Execs int
	// Early counts kills after which the port was served by a process
	// started before the kill (a spurious restart of the healthy target):
	// those trials time nothing and are left out of the figures.
	Early int
	Err   error
}

// StallResult is W2 for one monitor.
type StallResult struct {
	Monitor string
	// Kill is hang -> the hung process gone, Serve hang -> a new process
	// answering.
	Kill, Serve Summary
	// NA says why the workload does not apply; Pending why it could not
	// be measured (the monitor did not act).
	NA, Pending string
	Err         error
}

// LoadResult is W3 (and W4, for the first set) for one monitor and set of
// targets.
type LoadResult struct {
	Monitor string
	Targets int
	// Check is the health check on every target: CheckNone for
	// supervisord, which has none.
	Check Check
	// UpTime is monitor start -> every target reported running (W4); 0
	// for the floor, which reports nothing.
	UpTime time.Duration
	// CPU is the monitor's CPU, children included, over Window.
	CPU, Window time.Duration
	PeakRSS     int64
	// AnonRSS and FileRSS split the resident set at the end of the
	// window: anonymous memory (heap, stacks) and file-backed pages (the
	// program's code and read-only data, shared page cache).
	AnonRSS, FileRSS int64
	// Restarts counts restarts (or exits, for supervisord) the monitor
	// logged during the window: 0 unless something went wrong.
	Restarts int
	// Checks is the connections each target accepted per second over the
	// window, the harness's own excluded: the monitor's checks (TCP
	// connects or HTTP requests) as the targets saw them (about 1 at a 1 s
	// cycle; 0 without checks).
	Checks float64
	Err    error
}

// restartMark is a text each monitor logs once per restart.
func restartMark(m monitor) string {
	switch m.name() {
	case Pcheck:
		return "Try to restart ("
	case Monit:
		return "trying to restart"
	case Floor:
		return "" // it restarts nothing
	default:
		return "exited: "
	}
}

// death is W1: SIGKILL the target Kills times.
func (h *harness) death(ctx context.Context, m monitor, port int) (res DeathResult) {
	res.Monitor = m.name()
	h.progress("W1 death: %s", m.name())
	t, err := h.l.NewTarget("w1-"+m.name(), port)
	if err != nil {
		res.Err = err
		return res
	}
	var script, exec, serve []time.Duration
	baseScripts, baseExecs := 0, 0 // the initial start, before the first kill
	defer func() {
		res.Script, res.Exec, res.Serve = Summarize(script), Summarize(exec), Summarize(serve)
		ss, _ := readScriptStamps(t.ScriptStamp)
		es, _ := readExecStamps(t.Stamp)
		res.Scripts, res.Execs = len(ss)-baseScripts, len(es)-baseExecs
		if res.Err != nil {
			h.progress("W1 %s: %v", m.name(), res.Err)
		}
	}()
	pid, err := h.startFor(ctx, m, t, CheckNone)
	if err != nil {
		res.Err = err
		return res
	}
	defer h.stopFor(m, t, &res.Err)
	ss, _ := readScriptStamps(t.ScriptStamp)
	es, _ := readExecStamps(t.Stamp)
	baseScripts, baseExecs = len(ss), len(es)

	for i := 0; i < h.o.Kills; i++ {
		if err := sleep(ctx, phase()); err != nil {
			res.Err = err
			return res
		}
		scripts, _ := readScriptStamps(t.ScriptStamp)
		t0 := time.Now()
		if err := SignalOurs(pid, h.l.Dir, unix.SIGKILL); err != nil {
			res.Err = err
			return res
		}
		tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		newPid, served, err := waitServing(tctx, t.Port, pid)
		cancel()
		if err != nil {
			res.Err = fmt.Errorf("kill %d: %w", i+1, err)
			return res
		}
		execs, err := readExecStamps(t.Stamp)
		if err != nil {
			res.Err = err
			return res
		}
		var execAt time.Time
		for _, e := range execs {
			if e.pid == newPid {
				execAt = e.at
			}
		}
		after, _ := readScriptStamps(t.ScriptStamp)
		ranScript := len(after) > len(scripts)
		if execAt.IsZero() || execAt.Before(t0) || (!m.ownsChildren() && !ranScript) {
			// The process now serving was started before the kill: a
			// restart of the healthy target (or a copy left over from
			// one) that had been waiting for the port. The kill only
			// uncovered it, so it times nothing.
			res.Early++
			h.progress("W1 %s: kill %d: pid %d serves, started before the kill", m.name(), i+1, newPid)
		} else {
			serve = append(serve, served.Sub(t0))
			exec = append(exec, execAt.Sub(t0))
			if !m.ownsChildren() {
				script = append(script, after[len(scripts)].Sub(t0))
			}
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err = m.watching(wctx, t, newPid)
		cancel()
		if err != nil {
			res.Err = fmt.Errorf("kill %d: %w", i+1, err)
			return res
		}
		pid = newPid
	}
	h.progress("W1 %s: kill -> serving median %s", m.name(), ms(Summarize(serve).Median))
	return res
}

// startFor brings up a single target under m: through its restart script
// first for a monitor that watches processes it did not start, by m itself
// for supervisord. It returns the target's pid once m holds it; on an
// error m is stopped again.
func (h *harness) startFor(ctx context.Context, m monitor, t *Target, check Check) (int, error) {
	if !m.ownsChildren() {
		if _, err := h.runScript(ctx, t); err != nil {
			return 0, err
		}
	}
	if err := m.start(ctx, []*Target{t}, check); err != nil {
		return 0, fmt.Errorf("start %s: %w", m.name(), err)
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	pid, _, err := waitServing(sctx, t.Port, 0)
	if err == nil {
		err = m.watching(sctx, t, pid)
	}
	if err != nil {
		_ = m.proc().stop()
	}
	return pid, err
}

// stopFor stops m and then the target it was keeping alive, recording the
// first error in *errp.
func (h *harness) stopFor(m monitor, t *Target, errp *error) {
	if err := m.proc().stop(); err != nil && *errp == nil && !m.ownsChildren() {
		*errp = fmt.Errorf("stop %s: %w", m.name(), err)
	}
	if pid, err := readPid(t.PidFile); err == nil {
		_ = SignalOurs(pid, h.l.Dir, unix.SIGKILL)
	}
}

// stall is W2: SIGSTOP the target Stalls times.
func (h *harness) stall(ctx context.Context, m monitor, port int) (res StallResult) {
	res.Monitor = m.name()
	h.progress("W2 stall: %s", m.name())
	t, err := h.l.NewTarget("w2-"+m.name(), port)
	if err != nil {
		res.Err = err
		return res
	}
	var kill, serve []time.Duration
	defer func() {
		res.Kill, res.Serve = Summarize(kill), Summarize(serve)
		if res.Err != nil {
			h.progress("W2 %s: %v", m.name(), res.Err)
		}
	}()
	pid, err := h.startFor(ctx, m, t, CheckHTTP)
	if err != nil {
		res.Err = err
		return res
	}
	defer h.stopFor(m, t, &res.Err)
	// A monitor that does not act within this long has no working stall
	// check: far beyond failover + one interval + one attempt timeout.
	const patience = (stallAfter+checkInterval+attemptTimeout)*time.Second + 15*time.Second
	for i := 0; i < h.o.Stalls; i++ {
		if err := settle(ctx, t, pid); err != nil {
			res.Err = err
			return res
		}
		if err := sleep(ctx, phase()); err != nil {
			res.Err = err
			return res
		}
		w, err := watchExit(pid)
		if err != nil {
			res.Err = err
			return res
		}
		t0 := time.Now()
		if err := SignalOurs(pid, h.l.Dir, unix.SIGSTOP); err != nil {
			w.close()
			res.Err = err
			return res
		}
		kctx, cancel := context.WithTimeout(ctx, patience)
		gone, err := w.wait(kctx)
		cancel()
		w.close()
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			_ = SignalOurs(pid, h.l.Dir, unix.SIGKILL)
			res.Pending = fmt.Sprintf("the hung process was not killed within %v: stall monitors not wired in this build", patience)
			h.progress("W2 %s: pending: %s", m.name(), res.Pending)
			return res
		}
		if err != nil {
			res.Err = err
			return res
		}
		kill = append(kill, gone.Sub(t0))
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		newPid, served, err := waitServing(sctx, t.Port, pid)
		if err == nil {
			serve = append(serve, served.Sub(t0))
			err = m.watching(sctx, t, newPid)
		}
		cancel()
		if err != nil {
			res.Err = fmt.Errorf("stall %d: %w", i+1, err)
			return res
		}
		pid = newPid
	}
	h.progress("W2 %s: hang -> kill median %s", m.name(), ms(Summarize(kill).Median))
	return res
}

// load is W3 and W4 for one set of targets with check: start m on them,
// time until all are reported running, warm up, then measure its CPU over
// the window.
func (h *harness) load(ctx context.Context, m monitor, targets []*Target, check Check) (res LoadResult) {
	res.Monitor, res.Targets, res.Check = m.name(), len(targets), check
	h.progress("W3/W4 %s: %d targets, %s checks", m.name(), len(targets), check)
	defer func() {
		if res.Err != nil {
			h.progress("W3 %s %d %s: %v", m.name(), len(targets), check, res.Err)
		}
	}()
	if err := m.start(ctx, targets, check); err != nil {
		res.Err = fmt.Errorf("start %s: %w", m.name(), err)
		return res
	}
	p := m.proc()
	defer func() {
		if err := p.stop(); err != nil && res.Err == nil && !m.ownsChildren() {
			res.Err = fmt.Errorf("stop %s: %w", m.name(), err)
		}
	}()
	uctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	up, err := m.allUp(uctx, targets)
	cancel()
	if err != nil {
		res.Err = err
		return res
	}
	res.UpTime = up.Sub(p.started)
	h.progress("W4 %s: %d targets up in %s", m.name(), len(targets), ms(res.UpTime))
	if err := sleep(ctx, h.o.Warmup); err != nil {
		res.Err = err
		return res
	}
	conns0, at0, err := sumConns(targets)
	if err != nil {
		res.Err = err
		return res
	}
	cpu0, err := CPUTime(p.Child.Pid)
	if err != nil {
		res.Err = err
		return res
	}
	from := p.log.Len()
	w0 := time.Now()
	if err := sleep(ctx, h.o.Window); err != nil {
		res.Err = err
		return res
	}
	cpu1, err := CPUTime(p.Child.Pid)
	res.Window = time.Since(w0)
	if err == nil {
		res.PeakRSS, err = PeakRSS(p.Child.Pid)
	}
	if err == nil {
		res.AnonRSS, res.FileRSS, err = SplitRSS(p.Child.Pid)
	}
	if err == nil {
		err = p.exited()
	}
	if err != nil {
		res.Err = err
		return res
	}
	res.CPU = cpu1 - cpu0
	conns1, at1, err := sumConns(targets)
	if err != nil {
		res.Err = err
		return res
	}
	n := len(targets)
	res.Checks = float64(conns1-conns0-n) / float64(n) / at1.Sub(at0).Seconds()
	if mark := restartMark(m); mark != "" {
		res.Restarts = p.log.Count(from, func(s string) bool { return strings.Contains(s, mark) })
	}
	h.progress("W3 %s %d %s: CPU %.2f s in %v, peak RSS %d MiB, restarts %d, %.2f checks/target/s", m.name(), len(targets), check,
		res.CPU.Seconds(), res.Window.Round(time.Second), res.PeakRSS>>20, res.Restarts, res.Checks)
	return res
}

// sumConns adds up the connections every target has accepted and returns
// the middle of the time it took to ask them all.
func sumConns(targets []*Target) (int, time.Time, error) {
	start := time.Now()
	sum := 0
	for _, t := range targets {
		n, err := askConns(t.Port)
		if err != nil {
			return 0, time.Time{}, fmt.Errorf("%s: connections accepted: %w", t.ID, err)
		}
		sum += n
	}
	return sum, start.Add(time.Since(start) / 2), nil
}

// serveBeforeHang is how long a W2 target serves before it is hung: a
// server that has been up a while hangs, not one that is still starting
// (monit holds its connection tests back for its start timeout after a
// start), and every monitor has had a successful check.
const serveBeforeHang = time.Duration(2*checkInterval+monitStartTimeout) * time.Second

// settle waits until target pid has served for serveBeforeHang, going by
// its exec stamp.
func settle(ctx context.Context, t *Target, pid int) error {
	execs, err := readExecStamps(t.Stamp)
	if err != nil {
		return err
	}
	for _, e := range execs {
		if e.pid == pid {
			return sleep(ctx, time.Until(e.at.Add(serveBeforeHang)))
		}
	}
	return fmt.Errorf("%s: no exec stamp for pid %d", t.ID, pid)
}

// phase is a random delay of up to one check interval, waited before each
// kill or hang: it spreads the faults uniformly over the monitors' cycles,
// which the harness would otherwise hit at the same point every time (it
// acts right after seeing a monitor's cycle report the target running).
func phase() time.Duration {
	return rand.N(time.Duration(checkInterval) * time.Second)
}

// sleep waits d, or until ctx ends. It times measurement windows; it never
// stands in for waiting on an event.
func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
