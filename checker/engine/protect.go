package engine

import (
	"errors"
	"fmt"
	"os"

	"github.com/pcheck/pcheck/checker/proc"
)

// ErrProtected is returned for a kill the engine refuses: pid 1, pcheck
// itself, or one of pcheck's ancestors. Recorded descendants and group
// members of a watched process can include them when pcheck runs under
// the very process it watches (a wrapper script, a supervisor).
var ErrProtected = errors.New("pcheck never signals pid 1, itself or its ancestors")

// protected is the set of pids the engine never signals, fixed when the
// Instance is made (pcheck's ancestors do not change while it runs, but
// for a parent that dies: its pid then belongs to no one we kill by pid
// without a start-time check anyway).
type protected map[int]bool

func newProtected() protected {
	p := protected{1: true}
	for pid := os.Getpid(); pid > 1 && !p[pid]; {
		p[pid] = true
		info, err := proc.Read(pid)
		if err != nil {
			break
		}
		pid = info.PPid
	}
	return p
}

func (p protected) check(pid int) error {
	if pid <= 1 || p[pid] {
		return fmt.Errorf("pid %d: %w", pid, ErrProtected)
	}
	return nil
}
