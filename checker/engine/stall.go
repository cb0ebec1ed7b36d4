package engine

import (
	"context"
	"fmt"
	"slices"

	"github.com/pcheck/pcheck/checker/message"
	"github.com/pcheck/pcheck/checker/proc"
	"github.com/pcheck/pcheck/checker/stall"
)

// The entry owns its stall monitors: it starts them when it comes Up
// (setState), stops them when it leaves Up, and receives every attempt's
// result on its goroutine, as it receives deaths. On a stall it alone logs
// the find message, kills (each watched pid once, however many monitors
// stall) and, when the kill fails and PS_ACTION error is 1, goes to retry
// over.

// getMonitors returns the entry's stall monitors.
func (e *entry) getMonitors() []*stall.Monitor {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.monitors
}

// setMonitors gives the entry the monitors of a reload: a monitor no
// longer there stops; a new one starts at once when the entry is Up.
func (e *entry) setMonitors(ms []*stall.Monitor) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, m := range e.monitors {
		if !slices.Contains(ms, m) {
			m.Stop()
		}
	}
	for _, m := range ms {
		if !slices.Contains(e.monitors, m) && e.state == StateUp && len(e.ids) > 0 {
			m.Start(e.ids, e.deliverAttempt)
		}
	}
	e.monitors = ms
}

// stopMonitors stops every monitor of the entry (its goroutine ends).
func (e *entry) stopMonitors() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, m := range e.monitors {
		m.Stop()
	}
}

// deliverAttempt is the monitors' delivery: it queues the result and
// returns.
func (e *entry) deliverAttempt(r stall.Result) { e.results.put(r) }

// attempted handles the results of attempts while Up; it returns the
// step to move to, nil to stay.
func (e *entry) attempted(ctx context.Context) step {
	for _, r := range e.results.take() {
		if ctx.Err() != nil {
			return nil // stopping, or removed by a reload: left alone
		}
		if !r.Current() {
			continue // of a run stopped since
		}
		m := r.Monitor()
		if e.in.onAttempt != nil && r.Verdict.Measured {
			e.in.onAttempt(r.Attempt())
		}
		if r.Unknown != "" {
			e.log(message.MonitorUnknown(e.name(), m.Block(), r.Unknown))
		}
		if r.ExpiresSoon.Text != "" {
			e.log(r.ExpiresSoon)
		}
		if !r.Stalled {
			continue
		}
		if next := e.stalled(ctx, r); next != nil {
			return next
		}
	}
	return nil
}

// stalled acts on a stall of one monitor: the find message, the
// diagnostics when its block asks for them (diagnose), the kill of
// every watched pid not killed for a stall already, then PS_ACTION error
// when the kill fails. Watched processes that died during the
// diagnostics (of StallSignal, usually) are not killed: they are lost
// with reason stall, after the kill of the others.
func (e *entry) stalled(ctx context.Context, r stall.Result) step {
	m := r.Monitor()
	e.log(m.FindMessage(r.Pid, r.Probe))
	next, dead := e.diagnose(ctx, r)
	if next != nil {
		return next // a control during StallSignalWait: no kill
	}
	if ctx.Err() != nil {
		return nil
	}
	if !r.Current() {
		// A reload removed or changed the monitor during
		// StallSignalWait: its stall is void, nothing is killed.
		return e.lostStalled(ctx, dead)
	}
	killed := e.killStalled(ctx, m.Block())
	if ctx.Err() != nil {
		return nil // pcheck is stopping: the kill was cut short
	}
	if m.Acted(killed) {
		e.unwatchAll()
		e.announced = map[proc.ID]bool{}
		return e.retryOver(ctx, e.config())
	}
	return e.lostStalled(ctx, dead)
}

// lostStalled handles the watched processes that died during a stall's
// diagnostics as deaths for the stall; nil when none did.
func (e *entry) lostStalled(ctx context.Context, dead []death) step {
	if len(dead) == 0 {
		return nil
	}
	e.killReason = ReasonStall
	return e.lost(ctx, dead)
}

// killStalled kills the watched processes (SIGTERM, KillWait, SIGKILL)
// for a stall found by block; their deaths are then restarted with reason
// stall. A process killed for a stall already (another monitor of the
// entry stalled with this one) is neither killed nor logged again. Each
// pid logs Killed Process or Can not killed Process, and a failure its
// cause. It reports false when a kill failed.
func (e *entry) killStalled(ctx context.Context, block string) (killed bool) {
	ids := slices.DeleteFunc(e.watchedIDs(), func(id proc.ID) bool { return e.stallKilled[id] })
	if len(ids) == 0 {
		return true
	}
	e.killReason = ReasonStall
	killed = true
	for i, err := range e.terminate(ctx, ids, e.in.params().KillWait) {
		switch {
		case err == nil:
			if e.stallKilled == nil {
				e.stallKilled = map[proc.ID]bool{}
			}
			e.stallKilled[ids[i]] = true
			e.log(message.Killed(ids[i].Pid))
		case ctx.Err() == nil:
			killed = false
			e.log(message.CannotKill(ids[i].Pid))
			e.log(message.Warning(fmt.Sprintf("('%s' ,pid=%d): %s: cannot kill the stalled process: %v", e.name(), ids[i].Pid, block, err)))
		}
	}
	if len(e.stallKilled) == 0 {
		e.killReason = "" // nothing died for the stall
	}
	return killed
}
