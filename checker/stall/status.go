package stall

import (
	"time"

	"github.com/pcheck/pcheck/checker/states"
	"github.com/pcheck/pcheck/pfile"
)

// State is where a stall monitor is, as padmin status shows it:
// states.Monitor, the one set of names.
type State = states.Monitor

// The states of a monitor (see package states).
const (
	StatePaused  = states.MonitorPaused
	StateOk      = states.MonitorOk
	StateInDoubt = states.MonitorInDoubt
	StateStalled = states.MonitorStalled
	StateStopped = states.MonitorStopped
	StateUnknown = states.MonitorUnknown
)

// States returns every state, in the order of their values.
func States() []State { return states.Monitors() }

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
	// TLSNotAfter is the end of validity of the server's certificate as
	// the last attempt saw it (_bi_webservs with TLSExpiryWarn or
	// TLSExpiryFail); zero otherwise.
	TLSNotAfter time.Time `json:"tls_not_after,omitzero"`
	// AcceptQueue and Backlog are the listener's accept queue and its
	// size at the last attempt (_bi_listen, when it succeeded); nil when
	// not known (Backlog: where only /proc/net/tcp could be read).
	AcceptQueue *int `json:"accept_queue,omitempty"`
	Backlog     *int `json:"backlog,omitempty"`
}
