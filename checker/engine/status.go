package engine

import (
	"time"

	"github.com/pcheck/pcheck/checker/proc"
	"github.com/pcheck/pcheck/checker/states"
)

// State is where a process entry is in its life cycle: states.Process,
// the one set of names.
type State = states.Process

// The states of a process entry, as padmin status shows them (see
// package states).
const (
	StateDown       = states.Down
	StateUp         = states.Up
	StateRestarting = states.Restarting
	StatePaused     = states.Paused
	StateRetryOver  = states.RetryOver
)

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
	// LastReason is the reason of the last restart, from when its
	// restart began (the restart delay included); "" before any.
	LastReason string `json:"last_reason,omitempty"`
	// NextAttempt is when the restart delay (RestartDelay) or the re-arm
	// of a RetryOver (RetryOverRearm) ends; zero when it waits for
	// neither.
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	// Usage is what the watched processes and their descendants use,
	// while Up; nil otherwise.
	Usage *Usage `json:"usage,omitempty"`
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

// stateChange is a change of an entry's state, for tests (Options.onState).
type stateChange struct {
	Process string
	Key     string
	State   State
	Pids    []proc.ID
}
