package stall

import (
	"fmt"
	"time"

	"github.com/pcheck/pcheck/pfile"
)

// State is where a stall monitor is, as padmin status shows it.
type State int

// The states of a monitor.
const (
	// StatePaused: the process is not Up (not found yet, down,
	// restarting, paused by padmin, retry over): no attempts run.
	StatePaused State = iota
	// StateOk: the last attempt succeeded, or none has run since
	// monitoring (re)started.
	StateOk
	// StateInDoubt: attempts are failing but not yet for the failover
	// time (the Enterprise Server seed's "In doubt").
	StateInDoubt
	// StateStalled: attempts failed for the failover time; the process
	// is being killed and will be restarted.
	StateStalled
	// StateStopped: stall monitoring of this block has ended: PS_EXEC
	// error=1 after a stall, or the stalled process could not be
	// killed. It stays so until pcheck restarts or a reload changes
	// the block.
	StateStopped
	// StateUnknown: the last attempt could not be made because of
	// pcheck's own side (probe.Result.Unknown: a CA file it cannot read,
	// a check command that vanished, no descriptor for a socket); the
	// reason is MonitorStatus.LastError. It never counts toward a stall.
	// The next attempt that is made leaves it for Ok or In doubt.
	StateUnknown
)

// stateNames is the one list of the names of the states: padmin status,
// the control protocol and the metrics' state label use these.
var stateNames = [...]string{"Paused", "Ok", "In doubt", "Stalled", "Stopped", "Unknown"}

// States returns every state, in the order of their values.
func States() []State {
	out := make([]State, len(stateNames))
	for i := range out {
		out[i] = State(i)
	}
	return out
}

// String returns the name padmin prints.
func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// MarshalText implements encoding.TextMarshaler.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// MonitorStatus is the state of one stall monitor (one PS_EXEC block).
type MonitorStatus struct {
	// Process is the process as written in the pfile; Key is its engine
	// entry key (engine.ProcessStatus.Key).
	Process string `json:"process"`
	Key     string `json:"key"`
	// Block is the block name as written (_bi_webserv, ...).
	Block string     `json:"block"`
	Kind  pfile.Kind `json:"kind"`
	// Target is what an attempt checks, as text: "http://localhost:8080/",
	// "127.0.0.1:9000", a heartbeat file, a command line.
	Target   string        `json:"target"`
	Interval time.Duration `json:"interval"`
	Failover time.Duration `json:"failover"`
	Timeout  time.Duration `json:"timeout"`
	State    State         `json:"state"`
	// Pid is the main watched pid (the <pid> of the messages) while the
	// process is Up.
	Pid int `json:"pid,omitempty"`
	// SinceSuccess is the time since the last successful attempt, or
	// since monitoring (re)started when none succeeded since; zero while
	// Paused or Stopped.
	SinceSuccess time.Duration `json:"since_success"`
	// FailingFor is how long attempts have been failing without a
	// success in between, counted from the start of the first failed
	// one: a stall when it reaches Failover. Zero when not failing.
	FailingFor time.Duration `json:"failing_for"`
	// Attempts and Failures count since the monitor was built (pcheck
	// start or the reload that changed its block); Stalls counts the
	// stalls found. An Unknown attempt is an attempt, not a failure.
	Attempts int `json:"attempts"`
	Failures int `json:"failures"`
	Stalls   int `json:"stalls"`
	// LastLatency is the duration of the last attempt; LastError the
	// cause of its failure (with the errno text: "dial tcp
	// 127.0.0.1:8080: connect: connection refused"), or while Unknown why
	// it could not be made; empty when it succeeded.
	LastLatency time.Duration `json:"last_latency"`
	LastError   string        `json:"last_error,omitempty"`
	// LastDetail is the last attempt's short result: "HTTP/1.1 200 OK",
	// "connect: connection refused", "timeout".
	LastDetail string `json:"last_detail,omitempty"`
}
