package control

import (
	"encoding/json"
	"time"

	"github.com/pcheck/pcheck/checker/engine"
	"github.com/pcheck/pcheck/checker/states"
)

// InfoResult says who serves a socket: the answer to CmdInfo, and the
// head of every StatusResult.
type InfoResult struct {
	// Pfile is the path as pcheck was given it; PfileAbs is it made
	// absolute by pcheck (padmin matches its argument against both).
	Pfile    string `json:"pfile"`
	PfileAbs string `json:"pfile_abs"`
	// Pid is the pcheck process serving the pfile.
	Pid           int       `json:"pid"`
	Started       time.Time `json:"started"`
	UptimeSeconds int64     `json:"uptime_seconds"`
	// Processes counts the process entries; States counts them by state
	// ("Up": 2, "Down": 1).
	Processes int            `json:"processes"`
	States    map[string]int `json:"states"`
	// Reboots is the auto-reboot count inside RebootWindow; absent when
	// AutoReboot is off.
	Reboots *int `json:"reboots,omitempty"`
}

// StatusResult is the answer to CmdStatus: everything an operator wants at
// a glance about one pfile.
type StatusResult struct {
	InfoResult
	ProcessList []ProcessStatus `json:"process_list"`
	Monitors    []MonitorStatus `json:"monitors"`
}

// ProcessStatus is the state of one process entry.
type ProcessStatus struct {
	// Name is the process as written in the pfile; Key tells entries of
	// the same name apart.
	Name  string `json:"name"`
	Key   string `json:"key"`
	State string `json:"state"` // Up, Down, Restarting, Paused, RetryOver
	Pids  []int  `json:"pids"`
	// Since is when the entry entered its state; UptimeSeconds is how
	// long its (oldest) process has run while Up, 0 otherwise.
	Since         time.Time `json:"since"`
	UptimeSeconds int64     `json:"uptime_seconds"`
	// Restarts counts restart scripts run since pcheck started (or the
	// last reset).
	Restarts int `json:"restarts"`
	// RetriesUsed of RetriesAllowed attempts were made inside the Grace
	// window.
	RetriesUsed    int    `json:"retries_used"`
	RetriesAllowed int    `json:"retries_allowed"`
	GraceSeconds   int64  `json:"grace_seconds"`
	Action         string `json:"action"`
	LastReason     string `json:"last_reason,omitempty"`
	// NextAttempt is when the restart delay (RestartDelay) or the re-arm
	// of a RetryOver (RetryOverRearm) ends; absent when it waits for
	// neither.
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	// Usage is what the processes and their descendants use, while Up
	// (engine.Usage); absent otherwise.
	Usage *engine.Usage `json:"usage,omitempty"`
}

// The states of a stall monitor (MonitorStatus.State): the names of
// package states, the one set. The protocol carries them as text, so a
// padmin older than its pcheck still shows a state it does not know.
var (
	MonitorOk      = states.MonitorOk.String()
	MonitorInDoubt = states.MonitorInDoubt.String()
	MonitorStalled = states.MonitorStalled.String()
	MonitorPaused  = states.MonitorPaused.String()
	// MonitorStopped: stall monitoring of the block has ended (PS_EXEC
	// error=1 after a stall, or a kill that failed).
	MonitorStopped = states.MonitorStopped.String()
	// MonitorUnknown: the last attempt could not be made because of
	// pcheck's own side; LastError says why. Never a stall.
	MonitorUnknown = states.MonitorUnknown.String()
)

// MonitorStatus is the state of one stall monitor (a _bi_* block).
type MonitorStatus struct {
	// Process is the process as written in the pfile, Key its entry key.
	Process string `json:"process"`
	Key     string `json:"key,omitempty"`
	// Monitor names the block: its kind and target ("webserv
	// 127.0.0.1:80").
	Monitor string `json:"monitor"`
	State   string `json:"state"` // Ok, In doubt, Stalled, Paused, Stopped, Unknown
	// SinceSuccessSeconds is the time since the last successful attempt
	// (since monitoring started when none succeeded yet).
	SinceSuccessSeconds float64 `json:"since_success_seconds"`
	Attempts            int64   `json:"attempts"`
	Failures            int64   `json:"failures"`
	// Stalls counts the stalls found.
	Stalls int64 `json:"stalls"`
	// LastLatencySeconds is how long the last attempt took.
	LastLatencySeconds float64 `json:"last_latency_seconds"`
	// LastError is why the last attempt failed or, while Unknown, why it
	// could not be made.
	LastError string `json:"last_error,omitempty"`
	// TLSNotAfter is the end of validity of the server certificate the
	// last handshake saw, for a _bi_webservs block with TLSExpiryWarn or
	// TLSExpiryFail (pfile.Monitor.WatchesExpiry); zero otherwise.
	// Status shows the days left; the metrics export it.
	TLSNotAfter time.Time `json:"tls_not_after,omitzero"`
	// AcceptQueue and Backlog are the listener's accept queue length and
	// size at the last attempt, where known (_bi_listen).
	AcceptQueue *int `json:"accept_queue,omitempty"`
	Backlog     *int `json:"backlog,omitempty"`
}

// RulesResult is the answer to CmdRules: the effective rules as JSON (the
// pfile model) and as the text `pcheck -n` prints.
type RulesResult struct {
	Rules json.RawMessage `json:"rules"`
	Text  string          `json:"text"`
}

// DumpResult is the answer to CmdDump.
type DumpResult struct {
	File string `json:"file"`
}

// ConfigResult is the answer to CmdConfig: the sizes in force.
type ConfigResult struct {
	Events        int     `json:"events"`
	Buckets       int     `json:"buckets"`
	BucketSeconds float64 `json:"bucket_seconds"`
}

// ProcessList converts the engine's view of a pfile's entries, as padmin
// status and the status page show them at now; never nil.
func ProcessList(st engine.Status, now time.Time) []ProcessStatus {
	out := make([]ProcessStatus, 0, len(st.Processes))
	for _, p := range st.Processes {
		out = append(out, processStatus(p, now))
	}
	return out
}

// processStatus converts the engine's view of an entry.
func processStatus(p engine.ProcessStatus, now time.Time) ProcessStatus {
	ps := ProcessStatus{
		Name:           p.Name,
		Key:            p.Key,
		State:          p.State.String(),
		Pids:           p.Pids,
		Since:          p.Since,
		Restarts:       p.Restarts,
		RetriesUsed:    p.RetriesUsed,
		RetriesAllowed: p.RetriesAllowed,
		GraceSeconds:   int64(p.Grace / time.Second),
		Action:         p.Action,
		LastReason:     p.LastReason,
		NextAttempt:    p.NextAttempt,
		Usage:          p.Usage,
	}
	if ps.Pids == nil {
		ps.Pids = []int{}
	}
	if p.State == engine.StateUp {
		up := now.Sub(p.Since) // Up since pcheck found it, at least
		if p.Usage != nil {
			up = now.Sub(p.Usage.Started)
		}
		ps.UptimeSeconds = int64(up / time.Second)
	}
	return ps
}
