// Package pfile is the typed model of a pfile, the configuration language of
// ProcessSaver that pcheck reads: global parameters, process entries and the
// _bi_* monitor blocks that follow them.
//
// The parser (package parser) reads text into Statements that keep every
// position; a Builder turns them, one at a time, into a File, filling every
// default and reporting every problem in one place (build.go).
package pfile

import (
	"fmt"
	"time"
)

// Pos is a position in a pfile: file name, 1-based line and column.
type Pos struct {
	File string `json:"file"`
	Line int    `json:"line"`
	Col  int    `json:"col"`
}

// String formats the position as file:line:col.
func (p Pos) String() string { return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col) }

// Action is what pcheck does when a process's retries are exhausted.
type Action int

// The retry_over_action values.
const (
	ActionContinue Action = iota // stop restarting this process, watch the others
	ActionShutdown               // stop monitoring this pfile, exit 0
	ActionExit                   // exit with status 3 (cluster failover, auto-reboot)
)

var actionNames = [...]string{"continue", "shutdown", "exit"}

// String returns the pfile spelling of the action.
func (a Action) String() string {
	if int(a) < len(actionNames) {
		return actionNames[a]
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// MarshalText implements encoding.TextMarshaler.
func (a Action) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// Kind names a monitor: the built-in library a DLL entry selects, or CMD.
type Kind string

// The monitor kinds.
const (
	KindWebserv   Kind = "webserv"   // HTTP HEAD over TCP
	KindWebservs  Kind = "webservs"  // HTTP HEAD over TLS
	KindSocket    Kind = "socket"    // TCP connect
	KindHeartbeat Kind = "heartbeat" // file modification time
	KindListen    Kind = "listen"    // LISTEN socket held by the process tree
	KindChildren  Kind = "children"  // named children present
	KindCommand   Kind = "cmd"       // external check command (CMD type)
	KindResource  Kind = "resource"  // resource use of the process tree under a limit
)

// File is a validated pfile with every default filled in.
type File struct {
	// Path is the pfile's path as pcheck was given it.
	Path      string     `json:"path"`
	Params    Params     `json:"params"`
	Processes []*Process `json:"processes"`
}

// Params are the global parameters (the PARAM section).
type Params struct {
	MonitorInterval  time.Duration `json:"monitor_interval"`
	MsgCheckInterval time.Duration `json:"msg_check_interval"`
	RetryCount       int           `json:"retry_count"`
	Grace            time.Duration `json:"grace"`
	RetryOverAction  Action        `json:"retry_over_action"`
	RestartTimeout   time.Duration `json:"restart_timeout"`
	StartWait        time.Duration `json:"start_wait"`
	KillWait         time.Duration `json:"kill_wait"`
	DumpFileName     string        `json:"dump_file_name,omitempty"`
	SyslogFacility   string        `json:"syslog_facility"`
	AutoReboot       bool          `json:"auto_reboot"`
	RebootCommand    string        `json:"reboot_command"`
	// RebootCommandPos is where RebootCommand's value starts and
	// AutoRebootPos where AutoReboot's does; zero when the pfile does
	// not set them. They place the errors about RebootCommand's program.
	RebootCommandPos Pos           `json:"-"`
	AutoRebootPos    Pos           `json:"-"`
	RebootLimit      int           `json:"reboot_limit"`
	RebootWindow     time.Duration `json:"reboot_window"`
	// RebootStateFile is empty when the pfile does not set it: the
	// daemon then keeps the count under its state directory.
	RebootStateFile string    `json:"reboot_state_file,omitempty"`
	Cleanup         []Cleanup `json:"cleanup,omitempty"`
	// DumpFileNamePos and RebootStateFilePos are where the values of
	// DumpFileName and RebootStateFile start; zero when the pfile does
	// not set them. They place the errors about their directories.
	DumpFileNamePos    Pos `json:"-"`
	RebootStateFilePos Pos `json:"-"`
	// ClusterNotify names the cluster manager told at once of a retry
	// over with action exit (ClusterPacemaker), empty when off.
	ClusterNotify string `json:"cluster_notify,omitempty"`
	// ClusterHealthAttribute is the node-health attribute set red while
	// an entry is in RetryOver and green when all are Up; empty when off.
	ClusterHealthAttribute string `json:"cluster_health_attribute,omitempty"`
	// Backoff is the restart backoff of every entry that sets none of its
	// own; RetryOverRearm re-arms an entry in RetryOver (action continue)
	// after that long, 0 never. Both are pcheck's own, off by default.
	Backoff        Backoff       `json:"restart_backoff"`
	RetryOverRearm time.Duration `json:"retry_over_rearm,omitempty"`
	// RetryOverRearmPos is where RetryOverRearm is set (zero when not).
	RetryOverRearmPos Pos `json:"-"`
}

// Backoff is the wait before a restart that follows a failure: Delay
// before the first, twice the previous before each next one (with a
// jitter of 20 percent), at most Max; back to Delay once the process has
// stayed Up for Reset. Delay 0, the default, restarts at once.
type Backoff struct {
	Delay time.Duration `json:"delay"`
	Max   time.Duration `json:"max"`
	Reset time.Duration `json:"reset"`
}

// The defaults of RestartDelayMax and RestartDelayReset.
const (
	DefaultRestartDelayMax   = 300 * time.Second
	DefaultRestartDelayReset = 300 * time.Second
)

// ClusterPacemaker is the ClusterNotify value that tells Pacemaker.
const ClusterPacemaker = "pacemaker"

// HealthPrefix starts the name of every node-health attribute: Pacemaker's
// node-health-strategy reads only attributes whose names start with it.
const HealthPrefix = "#health"

// DefaultParams returns the parameters of a pfile that sets none.
func DefaultParams() Params {
	return Params{
		MonitorInterval:  10 * time.Second,
		MsgCheckInterval: 5 * time.Second,
		RetryCount:       3,
		Grace:            86400 * time.Second,
		RetryOverAction:  ActionContinue,
		RestartTimeout:   300 * time.Second,
		StartWait:        30 * time.Second,
		KillWait:         5 * time.Second,
		SyslogFacility:   "daemon",
		RebootCommand:    "/sbin/shutdown -r now",
		RebootLimit:      3,
		RebootWindow:     86400 * time.Second,
		Backoff:          Backoff{Max: DefaultRestartDelayMax, Reset: DefaultRestartDelayReset},
	}
}

// Cleanup is one entry of the cleanup list: processes whose command line
// contains Pattern and that have run longer than Age are killed.
type Cleanup struct {
	Pos     Pos           `json:"pos"`
	Pattern string        `json:"pattern"`
	Age     time.Duration `json:"age"`
}

// Process is a process entry: what to watch and how to bring it back.
type Process struct {
	Pos Pos `json:"pos"`
	// Key tells the entry apart from every other of the pfile (SetKeys):
	// its retry counts, state files and stall monitors are kept under it.
	Key string `json:"key"`
	// Name is the process as written in the pfile (without quotes); it is
	// the <proc> of every message.
	Name string `json:"name"`
	// ByName is true for a quoted name (matched against comm or the base
	// name of argv[0]) and false for an absolute path (matched against
	// /proc/PID/exe or argv[0]).
	ByName bool   `json:"by_name"`
	Script string `json:"script"`
	// ScriptPos is where the restart script is named.
	ScriptPos Pos    `json:"-"`
	Args      string `json:"args,omitempty"`
	PidFile   string `json:"pidfile,omitempty"`
	User      string `json:"user,omitempty"`
	Count     int    `json:"count"`
	// Retry, Grace, Action and Timeout are the per-entry values, filled
	// from the global parameters when the entry does not set them.
	Retry   int           `json:"retry"`
	Grace   time.Duration `json:"grace"`
	Action  Action        `json:"action"`
	Timeout time.Duration `json:"timeout"`
	Blocks  []*Block      `json:"blocks,omitempty"`
	// Backoff and RetryOverRearm are the entry's (RestartDelay=,
	// RestartDelayMax=, RestartDelayReset=, RetryOverRearm=), filled
	// from the global parameters when it sets none. RetryOverRearm is 0
	// unless Action is continue.
	Backoff        Backoff       `json:"restart_backoff"`
	RetryOverRearm time.Duration `json:"retry_over_rearm,omitempty"`
}

// Block is a _bi_* monitor block resolved into a monitor.
type Block struct {
	Pos Pos `json:"pos"`
	// Name is the block name as written (e.g. _bi_webserv).
	Name    string  `json:"name"`
	Entries []Entry `json:"entries"`
	Monitor Monitor `json:"monitor"`
	// TLSCAFilePos is where TLSCAFile's value starts (zero without
	// one). Positions stay out of Monitor: a reload compares Monitors
	// to keep the unchanged ones, and a moved line changes nothing.
	TLSCAFilePos Pos `json:"-"`
}

// EntryKind is PS_INIT, PS_EXEC, PS_ACTION or PS_QUIT.
type EntryKind string

// The entry kinds of a block.
const (
	EntryInit   EntryKind = "PS_INIT"
	EntryExec   EntryKind = "PS_EXEC"
	EntryAction EntryKind = "PS_ACTION"
	EntryQuit   EntryKind = "PS_QUIT"
)

// Entry is one block entry with its fields read by the rule of
// docs/pfile.md ("Reading block entries").
type Entry struct {
	Pos  Pos       `json:"pos"`
	Kind EntryKind `json:"kind"`
	Type string    `json:"type"` // DLL or CMD
	File string    `json:"file"`
	// FilePos is where the file field starts.
	FilePos Pos    `json:"-"`
	Call    string `json:"call"`
	// Timeout and Interval are zero when the field is a default.
	Timeout  time.Duration `json:"timeout"`
	Interval time.Duration `json:"interval"`
	// Error is the entry's error field; -1 when it is a default.
	Error int      `json:"error"`
	Argc  int      `json:"argc"`
	Argv  []string `json:"argv,omitempty"`
}

// Monitor is what a block asks pcheck to do: the PS_EXEC and PS_ACTION
// entries resolved into typed values with defaults filled in.
type Monitor struct {
	Kind Kind `json:"kind"`
	// Interval between attempts; Failover is how long attempts must fail
	// continuously before the process is stalled; Timeout bounds each
	// attempt.
	Interval time.Duration `json:"interval"`
	Failover time.Duration `json:"failover"`
	Timeout  time.Duration `json:"timeout"`
	// StopAfterStall is PS_EXEC error=1: stall-monitor only until the
	// first stall.
	StopAfterStall bool `json:"stop_after_stall"`
	// RetryOverOnKillFailure is PS_ACTION error=1: when the stalled
	// process cannot be killed, run retry_over_action.
	RetryOverOnKillFailure bool `json:"retry_over_on_kill_failure"`

	Host string `json:"host,omitempty"` // webserv, webservs, socket
	Port int    `json:"port,omitempty"` // webserv, webservs, socket, listen
	Path string `json:"path,omitempty"` // webservs: the HTML path
	// TLSVerify turns certificate verification on for webservs;
	// TLSCAFile names extra roots for it.
	TLSVerify bool   `json:"tls_verify,omitempty"`
	TLSCAFile string `json:"tls_ca_file,omitempty"`
	// TLSExpiryWarnDays and TLSExpiryFailDays (webservs, 0 when unset)
	// are the block options TLSExpiryWarn and TLSExpiryFail: warn when
	// the server's certificate has fewer days left than the first, fail
	// the attempt when it has fewer than the second.
	TLSExpiryWarnDays int `json:"tls_expiry_warn_days,omitempty"`
	TLSExpiryFailDays int `json:"tls_expiry_fail_days,omitempty"`

	// ExpectStatus, ExpectHeaders and ExpectBody (webserv, webservs) are
	// what the answer must hold beyond a status line: a status code in
	// one of the ranges, each header matching, the body (then fetched
	// with GET) matching the regular expression. Empty: any answer.
	ExpectStatus  []StatusRange  `json:"expect_status,omitempty"`
	ExpectHeaders []HeaderExpect `json:"expect_headers,omitempty"`
	ExpectBody    string         `json:"expect_body,omitempty"`

	Address  string   `json:"address,omitempty"`  // listen: optional local address
	File     string   `json:"file,omitempty"`     // heartbeat: the file; cmd: the command
	Args     []string `json:"args,omitempty"`     // cmd: the command's arguments
	Children []string `json:"children,omitempty"` // children: the names

	// Metric and Limit are a resource monitor's: what it measures over
	// the process tree and the most it allows.
	Metric Metric `json:"metric,omitempty"`
	Limit  Limit  `json:"limit,omitzero"`
	// StallDiagnostics saves the process tree's /proc state and the last
	// script output to the state directory before a stall kill; first
	// StallSignal (a signal name without SIG, "" for none) is sent and
	// StallSignalWait waited.
	StallDiagnostics bool          `json:"stall_diagnostics,omitempty"`
	StallSignal      string        `json:"stall_signal,omitempty"`
	StallSignalWait  time.Duration `json:"stall_signal_wait,omitempty"`
}

// StatusRange is a range of HTTP status codes, Lo to Hi inclusive (Lo ==
// Hi for one code).
type StatusRange struct {
	Lo int `json:"lo"`
	Hi int `json:"hi"`
}

// HeaderExpect is one ExpectHeader option: a header Name whose value must
// match the regular expression Pattern (RE2 syntax, unanchored; empty: the
// header must be present).
type HeaderExpect struct {
	Name    string `json:"name"`
	Pattern string `json:"pattern"`
}

// WatchesExpiry reports whether the block asks about its server
// certificate's expiry (TLSExpiryWarn or TLSExpiryFail): only then do
// status and the metrics show the certificate's end of validity.
func (m Monitor) WatchesExpiry() bool { return m.TLSExpiryWarnDays > 0 || m.TLSExpiryFailDays > 0 }

// Severity tells an error from a warning.
type Severity int

// Diagnostic severities.
const (
	Error Severity = iota
	Warning
)

// Diagnostic is one problem found in a pfile.
type Diagnostic struct {
	Pos      Pos      `json:"pos"`
	Severity Severity `json:"-"`
	Msg      string   `json:"message"`
}

// String formats the diagnostic as "file:line:col: text", warnings as
// "file:line:col: warning: text".
func (d Diagnostic) String() string {
	if d.Severity == Warning {
		return d.Pos.String() + ": warning: " + d.Msg
	}
	return d.Pos.String() + ": " + d.Msg
}

// Diagnostics is every problem found in one or more pfiles.
type Diagnostics []Diagnostic

// Errors returns the diagnostics that make a pfile invalid.
func (ds Diagnostics) Errors() Diagnostics { return ds.filter(Error) }

// Warnings returns the diagnostics that do not.
func (ds Diagnostics) Warnings() Diagnostics { return ds.filter(Warning) }

// HasErrors reports whether any diagnostic is an error.
func (ds Diagnostics) HasErrors() bool { return len(ds.Errors()) > 0 }

func (ds Diagnostics) filter(s Severity) Diagnostics {
	var out Diagnostics
	for _, d := range ds {
		if d.Severity == s {
			out = append(out, d)
		}
	}
	return out
}

// Err returns the errors as an error value, or nil when there are none.
func (ds Diagnostics) Err() error {
	errs := ds.Errors()
	if len(errs) == 0 {
		return nil
	}
	return &InvalidError{Diagnostics: errs}
}

// InvalidError is returned when a pfile has errors. Its message lists
// every error, one per line.
type InvalidError struct {
	Diagnostics Diagnostics
}

func (e *InvalidError) Error() string {
	s := ""
	for i, d := range e.Diagnostics {
		if i > 0 {
			s += "\n"
		}
		s += d.String()
	}
	return s
}
