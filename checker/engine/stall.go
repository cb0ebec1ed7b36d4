package engine

import (
	"errors"
	"fmt"
)

// KillResult is the outcome of killing one watched pid of a stalled
// process: Err is nil when the process is gone.
type KillResult struct {
	Pid int
	Err error
}

// PidError is the failure to kill one pid (KillStalled joins one per pid
// that survived or could not be signalled).
type PidError struct {
	Pid int
	Err error
}

func (e *PidError) Error() string { return fmt.Sprintf("pid %d: %v", e.Pid, e.Err) }

// Unwrap returns the cause, for errors.Is (unix.EPERM, proc.ErrStillAlive).
func (e *PidError) Unwrap() error { return e.Err }

// KillStalledEach is KillStalled with one result per pid it tried to kill,
// for the stall monitors. The kill logs `Killed Process` or `Can not
// killed Process` for each pid on the entry's goroutine, so that the line
// comes before the Down and the restart that follow. name should be an
// entry key (StateChange.Key) so that exactly one entry is meant. The
// error is non-nil only when no pid was tried: the entry is not Up
// (ErrNotUp), unknown, or monitoring stopped.
func (in *Instance) KillStalledEach(name, reason string) ([]KillResult, error) {
	pids, err := in.KillStalled(name, reason)
	if len(pids) == 0 {
		return nil, err
	}
	failed := map[int]error{}
	collectPidErrors(err, failed)
	out := make([]KillResult, len(pids))
	for i, pid := range pids {
		out[i] = KillResult{Pid: pid, Err: failed[pid]}
	}
	return out, nil
}

// collectPidErrors walks an error tree (wrapped and joined errors) and
// records the cause of every *PidError in it.
func collectPidErrors(err error, into map[int]error) {
	switch x := err.(type) {
	case nil:
		return
	case *PidError:
		into[x.Pid] = x.Err
		return
	case interface{ Unwrap() []error }:
		for _, e := range x.Unwrap() {
			collectPidErrors(e, into)
		}
	default:
		collectPidErrors(errors.Unwrap(err), into)
	}
}

// RetryOver carries out the retry over of the entry named name (a key or a
// process name) as if its retries were exhausted: `Retry over` is logged
// and retry_over_action runs (continue: the entry is no longer restarted
// until Resume; shutdown and exit end Run). The stall monitors use it when
// a stalled process cannot be killed and PS_ACTION error is 1. The entry
// must be Up (ErrNotUp otherwise: a process that went down meanwhile is
// restarted as usual).
func (in *Instance) RetryOver(name string) error {
	return in.control(name, command{kind: cmdRetryOver})
}
