package stall

import (
	"time"

	"github.com/pcheck/pcheck/pfile"
)

// FreezeMargin is how late pcheck may be before the time counts as time in
// which it did not run: a timer that fires later than this after it was
// due, a tick of pcheck's own freeze watch later than this, the boot clock
// running ahead of the monotonic clock by more than this during an attempt
// (a suspend). Go timers are late by microseconds, milliseconds on a
// loaded machine; a second is no load, it is pcheck stopped (SIGSTOP, a
// debugger), its VM paused, the node suspended, or starved of CPU.
const FreezeMargin = time.Second

// Outcome is what one attempt said about the service.
type Outcome int

// The outcomes of an attempt.
const (
	// Failed: the service was seen failing (refused, timed out, a bad
	// answer, a CMD check that exited non-zero).
	Failed Outcome = iota
	// Succeeded: the service answered.
	Succeeded
	// NotMade: the attempt could not be made because of pcheck's own side
	// (probe.Result.Unknown).
	NotMade
)

// Sample is one attempt as the failover counts it: its outcome and its
// times. Due, Start and End are monotonic readings (time.Now); BootStart
// and BootEnd are CLOCK_BOOTTIME readings taken with Start and End, which
// also run while the node is suspended, when the monotonic clock stops.
// PausedBefore and PausedDuring are the time in [Due, Start] and [Start,
// End] in which pcheck's own ticks saw it not running (freezeWatch).
type Sample struct {
	Outcome Outcome
	// TimedOut: the attempt failed because its timeout ran out (no
	// answer), not because of an answer.
	TimedOut bool
	// ModTime is a heartbeat attempt's modification time of the file.
	ModTime time.Time
	// Due is when the attempt should have started (its timer's expiry);
	// zero is Start.
	Due                        time.Time
	Start, End                 time.Time
	BootStart, BootEnd         time.Duration
	PausedBefore, PausedDuring time.Duration
}

// Verdict is what the failover made of one sample.
type Verdict struct {
	// State is the monitor's state after the sample: Ok, In doubt,
	// Stalled or Unknown; a sample that was not measured leaves the
	// state it found.
	State State
	// Measured is false for an attempt that did not succeed while pcheck
	// did not run during it: neither a failure nor a success.
	Measured bool
	// NoHeartbeat: a heartbeat attempt that found the file but not
	// modified since the previous attempt, so failed.
	NoHeartbeat bool
	// Lost is the time of the sample in which pcheck did not run before
	// the attempt (a late timer, late ticks), and the whole attempt when
	// it is not measured.
	Lost time.Duration
}

// Failover is the threshold of one stall monitor (Consul's StatusHandler,
// the kubelet's threshold run): it takes attempt results with their times
// and says whether the service is Ok, In doubt, Stalled or Unknown, and
// what follows a stall. It has no goroutine and reads no clock; the
// monitor that owns it serialises its calls.
//
// The rule: the failover time is measured on the monotonic clock from the
// start of the first failed attempt of an unbroken run of failures to the
// end of a failed attempt, less the time in the run in which pcheck did
// not run. A success ends the run; so does an attempt that could not be
// made (Unknown: the service was not seen then). Time in which pcheck did
// not run is seen three ways, each beyond FreezeMargin: a timer that fired
// late (the attempt started after it was due), pcheck's own ticks coming
// late (Sample.PausedBefore, PausedDuring), and the boot clock running
// ahead of the monotonic one during an attempt (a suspend). A failed
// attempt during which pcheck did not run is not measured: its deadline
// may have passed, or its answer come and gone unread, while pcheck was
// stopped; it is discarded (the run of failures neither grows nor ends)
// and its whole time is lost. Except a timeout that had its whole timeout
// while pcheck ran: that is the service's, and a failure (its frozen time
// still lost), or a hung server would never be found on a machine starved
// at every attempt. A success is a success however long it
// took. An attempt that overran its deadline while pcheck ran (a check
// command stuck in the kernel) is a failure like any other. Lost time
// never counts toward the failover.
type Failover struct {
	cfg pfile.Monitor

	state     State
	stopped   bool
	failSince time.Time     // start of the first failed attempt of the run; zero when none
	lost      time.Duration // time lost in the run since failSince
	lastMod   time.Time     // heartbeat: the mtime the previous attempt saw
	haveMod   bool
}

// NewFailover returns the failover of a monitor with settings cfg,
// Paused.
func NewFailover(cfg pfile.Monitor) Failover {
	return Failover{cfg: cfg, state: StatePaused}
}

// State returns the current state.
func (f *Failover) State() State { return f.state }

// Stopped reports whether stall monitoring of the block has ended for
// good (PS_EXEC error=1 after a stall, a kill that failed).
func (f *Failover) Stopped() bool { return f.stopped }

// FailingFor returns how long the service has been seen failing at end
// (a monotonic reading), lost time left out; zero when not failing.
func (f *Failover) FailingFor(end time.Time) time.Duration {
	if f.failSince.IsZero() {
		return 0
	}
	return max(0, end.Sub(f.failSince)-f.lost)
}

// Start begins a fresh run (the process came Up): Ok, no failures and no
// heartbeat carried over. A stopped failover stays Stopped.
func (f *Failover) Start() {
	f.clear()
	if !f.stopped {
		f.state = StateOk
	}
}

// Pause ends the run (the process left Up): Paused, unless Stopped.
func (f *Failover) Pause() {
	f.clear()
	if !f.stopped {
		f.state = StatePaused
	}
}

func (f *Failover) clear() {
	f.failSince, f.lost, f.lastMod, f.haveMod = time.Time{}, 0, time.Time{}, false
}

// Add accounts for one attempt.
func (f *Failover) Add(s Sample) Verdict {
	lost := s.PausedBefore
	if !s.Due.IsZero() {
		if late := s.Start.Sub(s.Due); late > FreezeMargin {
			lost = max(lost, late)
		}
	}
	during := s.PausedDuring
	if suspend := (s.BootEnd - s.BootStart) - s.End.Sub(s.Start); suspend > FreezeMargin {
		during = max(during, suspend)
	}
	if during > 0 && s.Outcome != Succeeded && !f.ranOut(s, during) {
		if !f.failSince.IsZero() {
			f.lost += lost + s.End.Sub(s.Start)
		}
		return Verdict{State: f.state, Lost: lost + s.End.Sub(s.Start)}
	}
	if during > 0 {
		// A failure that stands despite the freeze: its frozen time
		// still never counts toward the failover.
		lost += during
	}
	v := Verdict{Measured: true, Lost: lost}
	outcome := s.Outcome
	if f.cfg.Kind == pfile.KindHeartbeat && outcome == Succeeded {
		if f.haveMod && s.ModTime.Equal(f.lastMod) {
			outcome, v.NoHeartbeat = Failed, true
		}
		f.lastMod, f.haveMod = s.ModTime, true
	}
	switch outcome {
	case Succeeded:
		f.failSince, f.lost, f.state = time.Time{}, 0, StateOk
	case NotMade:
		f.failSince, f.lost, f.state = time.Time{}, 0, StateUnknown
	default:
		if f.failSince.IsZero() {
			f.failSince, f.lost = s.Start, 0
		} else {
			f.lost += lost
		}
		f.state = StateInDoubt
		if f.FailingFor(s.End) >= f.cfg.Failover {
			f.state = StateStalled
			if f.cfg.StopAfterStall {
				// Decided now, so that the restart that follows the
				// kill does not start a new run.
				f.stopped = true
			}
		}
	}
	v.State = f.state
	return v
}

// ranOut reports whether a failed attempt during which pcheck was frozen
// for during still timed out on its own: it had its whole timeout while
// pcheck ran and got no answer. That is a failure, not a freeze's doing:
// on a starved machine, late by a second or more at every attempt, a hung
// server would otherwise never be found.
func (f *Failover) ranOut(s Sample, during time.Duration) bool {
	return s.Outcome == Failed && s.TimedOut && f.cfg.Timeout > 0 && s.End.Sub(s.Start)-during >= f.cfg.Timeout
}

// Acted records how the action on a stall went: killed is false when a
// kill was tried and failed (a process gone meanwhile is no failure). It
// returns the state and whether the process goes to retry over (PS_ACTION
// error=1 and the kill failed). After a failed kill, or any stall with
// PS_EXEC error=1, the failover is Stopped for good.
func (f *Failover) Acted(killed bool) (state State, retryOver bool) {
	if !killed {
		f.stopped = true
		retryOver = f.cfg.RetryOverOnKillFailure
	}
	if f.stopped {
		f.clear()
		f.state = StateStopped
	}
	return f.state, retryOver
}
