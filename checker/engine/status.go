package engine

import (
	"fmt"
	"time"

	"github.com/pcheck/pcheck/checker/proc"
)

// State is where a process entry is in its life cycle.
type State int

// The states of a process entry, as padmin status shows them.
const (
	// StateDown: the process is not running and pcheck is looking for it
	// (at start, after Resume) or about to restart it.
	StateDown State = iota
	// StateUp: the process runs and is watched.
	StateUp
	// StateRestarting: the restart sequence runs (killing leftovers, the
	// restart script, waiting StartWait for the process).
	StateRestarting
	// StatePaused: monitoring is paused (padmin stop); the process is
	// left alone.
	StatePaused
	// StateRetryOver: retries are exhausted and the action was continue:
	// the process is no longer restarted until Resume.
	StateRetryOver
)

var stateNames = [...]string{"Down", "Up", "Restarting", "Paused", "RetryOver"}

// String returns the name padmin prints.
func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// MarshalText implements encoding.TextMarshaler.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// The reasons a restart script is given as its third argument and in
// PCHECK_REASON.
const (
	ReasonDown    = "down"    // the process exited (or its pid was reused)
	ReasonZombie  = "zombie"  // the process became a zombie
	ReasonStall   = "stall"   // a stall monitor killed it
	ReasonPidFail = "pidfail" // it was not found within StartWait
	ReasonManual  = "manual"  // padmin restart
)

// Status is a snapshot of one pfile's process entries.
type Status struct {
	Pfile     string          `json:"pfile"`
	Started   time.Time       `json:"started"`
	Processes []ProcessStatus `json:"processes"`
}

// ProcessStatus is the state of one process entry.
type ProcessStatus struct {
	// Name is the process as written in the pfile; Key tells entries of
	// the same name apart (args, user, pidfile).
	Name  string `json:"name"`
	Key   string `json:"key"`
	State State  `json:"state"`
	// Pids are the watched processes while Up.
	Pids []int `json:"pids,omitempty"`
	// Since is when the entry entered its state (for Up: the uptime).
	Since time.Time `json:"since"`
	// Restarts counts the restart scripts run since pcheck started.
	Restarts int `json:"restarts"`
	// RetriesUsed are the attempts inside the Grace window, out of
	// RetriesAllowed.
	RetriesUsed    int           `json:"retries_used"`
	RetriesAllowed int           `json:"retries_allowed"`
	Grace          time.Duration `json:"grace"`
	Action         string        `json:"action"`
	// LastReason is the reason of the last restart ("" before any).
	LastReason string `json:"last_reason,omitempty"`
}

// Event is one thing that happened to a process entry, for the event ring
// buffer: every message the engine logs, and the controls it obeyed.
type Event struct {
	Time    time.Time `json:"time"`
	Pfile   string    `json:"pfile"`
	Process string    `json:"process,omitempty"`
	// Kind is the catalogue ID of a logged message ("up", "down",
	// "try-restart", ...) or a control ("pause", "resume", "reset").
	Kind string `json:"kind"`
	Text string `json:"text"`
	// Output, on a Down, holds the last lines of the output file of the
	// process's restart script: what the daemon it started wrote last.
	Output []string `json:"output,omitempty"`
}

// StateChange tells a stall monitor that a process entry changed state:
// Up with its pids (start monitoring afresh), anything else (pause).
type StateChange struct {
	Process string
	Key     string
	State   State
	Pids    []proc.ID
}
