// Package message is the syslog catalogue of pcheck and padmin and the
// Logger that sends it.
//
// Every string pcheck or padmin writes to syslog is one row of a single
// table (catalogue below): its ident, its priority and its wording, with
// <placeholders> for the arguments. Log monitors and cluster products match
// the ProcessSaver strings byte for byte, so a wording is changed in that one
// place only, and call sites build messages through typed constructors (Up,
// Down, Killed, ...) that cannot put an argument in the wrong slot.
package message

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The idents of the two programs; a Message carries one of them.
const (
	IdentPcheck = "pcheck"
	IdentPadmin = "padmin"
)

// Priority is a syslog severity (RFC 5424 numbering).
type Priority int

// The syslog severities.
const (
	PriorityEmerg Priority = iota
	PriorityAlert
	PriorityCrit
	PriorityErr
	PriorityWarning
	PriorityNotice
	PriorityInfo
	PriorityDebug
)

var priorityNames = [...]string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}

// String returns the syslog name of the severity, as in messages.md.
func (p Priority) String() string {
	if p >= 0 && int(p) < len(priorityNames) {
		return priorityNames[p]
	}
	return fmt.Sprintf("Priority(%d)", int(p))
}

// MarshalText implements encoding.TextMarshaler.
func (p Priority) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// ID names one entry of the catalogue.
type ID string

// The catalogue entries, in the order of messages.md.
const (
	IDUp                ID = "up"
	IDDown              ID = "down"
	IDTryRestart        ID = "try-restart"
	IDSetPidFail        ID = "set-pid-fail"
	IDWebServerStall    ID = "webserver-stall"
	IDSocketStall       ID = "socket-stall"
	IDKilled            ID = "killed"
	IDCannotKill        ID = "cannot-kill"
	IDPadminCommand     ID = "padmin-command"
	IDRetryOver         ID = "retry-over"
	IDAutoReboot        ID = "auto-reboot"
	IDAutoRebootSkipped ID = "auto-reboot-skipped"
	IDHeartbeatStall    ID = "heartbeat-stall"
	IDListenStall       ID = "listen-stall"
	IDChildStall        ID = "child-stall"
	IDCommandStall      ID = "command-stall"
	IDResourceStall     ID = "resource-stall"
	IDCleanupKilled     ID = "cleanup-killed"
	IDScriptFailed      ID = "script-failed"
	IDStart             ID = "start"
	IDStop              ID = "stop"
	IDPfileError        ID = "pfile-error"
	IDDropped           ID = "dropped"
	IDTLSExpiresSoon    ID = "tls-expires-soon"
	IDMonitorUnknown    ID = "monitor-unknown"
	IDRestartDelayed    ID = "restart-delayed"
	IDRetryOverRearmed  ID = "retry-over-rearmed"
	IDStallDiagnostics  ID = "stall-diagnostics"
	IDInfo              ID = "info"
	IDWarning           ID = "warning"
	IDErr               ID = "err"
)

// Entry is one row of the catalogue.
type Entry struct {
	ID       ID       `json:"id"`
	Ident    string   `json:"ident"`
	Priority Priority `json:"priority"`
	// Format is the wording with <placeholders> for the arguments, as
	// written in messages.md.
	Format string `json:"format"`
	// Product is true for the ProcessSaver strings that outside tools
	// match byte for byte, false for this project's own.
	Product bool `json:"product"`
}

// catalogue is the one table of every syslog string. Change a wording here
// and nowhere else.
var catalogue = []Entry{
	// ProcessSaver / WebEdition strings: byte-exact contracts.
	{IDUp, IdentPcheck, PriorityInfo, "('<proc>' ,pid=<pid>) Up", true},
	{IDDown, IdentPcheck, PriorityErr, "Process ['<proc>',pid=<pid>] Down", true},
	{IDTryRestart, IdentPcheck, PriorityNotice, "Try to restart ('<proc>')", true},
	{IDSetPidFail, IdentPcheck, PriorityErr, "Set pid fail ('<proc>')", true},
	{IDWebServerStall, IdentPcheck, PriorityErr, "Find Web Server Stall: pid = <pid> : port = <port>", true},
	{IDSocketStall, IdentPcheck, PriorityErr, "Find Socket Service Stall: pid = <pid> : port = <port>", true},
	{IDKilled, IdentPcheck, PriorityNotice, "Killed Process: pid= <pid>", true},
	{IDCannotKill, IdentPcheck, PriorityErr, "Can not killed Process: pid= <pid>", true},
	{IDPadminCommand, IdentPadmin, PriorityNotice, "Command execute. [<command>] pfile='<pfile>'", true},

	// This project's own strings, in the same style.
	{IDRetryOver, IdentPcheck, PriorityErr, "Retry over ('<proc>') action=<action>", false},
	{IDAutoReboot, IdentPcheck, PriorityCrit, "Auto reboot ('<proc>') count=<n>/<limit>", false},
	{IDAutoRebootSkipped, IdentPcheck, PriorityCrit, "Auto reboot skipped ('<proc>'): limit <limit> reached", false},
	{IDHeartbeatStall, IdentPcheck, PriorityErr, "Find Heartbeat Stall: pid = <pid> : file = <path>", false},
	{IDListenStall, IdentPcheck, PriorityErr, "Find Listen Port Stall: pid = <pid> : port = <port>", false},
	{IDChildStall, IdentPcheck, PriorityErr, "Find Child Process Stall: pid = <pid> : child = <name>", false},
	{IDCommandStall, IdentPcheck, PriorityErr, "Find Check Command Stall: pid = <pid> : command = <file>", false},
	{IDResourceStall, IdentPcheck, PriorityErr, "Find Resource Stall: pid = <pid> : <metric> = <value> : limit = <limit>", false},
	{IDCleanupKilled, IdentPcheck, PriorityNotice, "Cleanup killed process: pid= <pid> : pattern = '<pattern>'", false},
	{IDScriptFailed, IdentPcheck, PriorityWarning, "Restart script failed ('<proc>') status=<n>", false},
	{IDStart, IdentPcheck, PriorityInfo, "pcheck start. pfile='<pfile>'", false},
	{IDStop, IdentPcheck, PriorityInfo, "pcheck stop. pfile='<pfile>'", false},
	{IDPfileError, IdentPcheck, PriorityErr, "pfile error: <diagnostic>", false},
	{IDDropped, IdentPcheck, PriorityWarning, "<n> syslog messages dropped", false},
	{IDTLSExpiresSoon, IdentPcheck, PriorityWarning, "TLS certificate expires soon: port = <port> : days = <n>", false},
	{IDMonitorUnknown, IdentPcheck, PriorityWarning, "Monitor unknown ('<proc>') <block>: <reason>", false},
	{IDRestartDelayed, IdentPcheck, PriorityNotice, "Restart delayed ('<proc>') seconds=<seconds>", false},
	{IDRetryOverRearmed, IdentPcheck, PriorityNotice, "Retry over rearmed ('<proc>')", false},
	{IDStallDiagnostics, IdentPcheck, PriorityNotice, "Stall diagnostics saved ('<proc>'): <path>", false},
	{IDInfo, IdentPcheck, PriorityInfo, "<text>", false},
	{IDWarning, IdentPcheck, PriorityWarning, "<text>", false},
	{IDErr, IdentPcheck, PriorityErr, "<text>", false},
}

var byID = func() map[ID]Entry {
	m := make(map[ID]Entry, len(catalogue))
	for _, e := range catalogue {
		m[e.ID] = e
	}
	return m
}()

// Catalogue returns every entry of the table, in the order of messages.md.
// The slice is a copy.
func Catalogue() []Entry {
	return append([]Entry(nil), catalogue...)
}

// Message is one syslog line ready to send: the catalogue entry it came
// from, the program that speaks it, its severity and its final text.
type Message struct {
	ID       ID       `json:"id"`
	Ident    string   `json:"ident"`
	Priority Priority `json:"priority"`
	Text     string   `json:"text"`
}

// String returns the text.
func (m Message) String() string { return m.Text }

// render fills the placeholders of entry id. args alternate a placeholder
// name (without angle brackets) and its value. Values are inserted as they
// are: a value that itself looks like a placeholder is not expanded again.
func render(id ID, args ...string) Message {
	e, ok := byID[id]
	if !ok {
		panic(fmt.Sprintf("message: no catalogue entry %q", id))
	}
	pairs := make([]string, len(args))
	for i := 0; i+1 < len(args); i += 2 {
		pairs[i] = "<" + args[i] + ">"
		pairs[i+1] = args[i+1]
	}
	return Message{ID: e.ID, Ident: e.Ident, Priority: e.Priority, Text: strings.NewReplacer(pairs...).Replace(e.Format)}
}

func itoa(n int) string { return strconv.Itoa(n) }

// Up reports a process found running (start, restart or adoption):
// ('<proc>' ,pid=<pid>) Up.
func Up(proc string, pid int) Message { return render(IDUp, "proc", proc, "pid", itoa(pid)) }

// Down reports a watched process that exited, became a zombie or had its
// pid reused: Process ['<proc>',pid=<pid>] Down.
func Down(proc string, pid int) Message { return render(IDDown, "proc", proc, "pid", itoa(pid)) }

// TryRestart is logged just before the restart script runs.
func TryRestart(proc string) Message { return render(IDTryRestart, "proc", proc) }

// SetPidFail reports a process not found within StartWait.
func SetPidFail(proc string) Message { return render(IDSetPidFail, "proc", proc) }

// WebServerStall reports a _bi_webserv or _bi_webservs stall.
func WebServerStall(pid, port int) Message {
	return render(IDWebServerStall, "pid", itoa(pid), "port", itoa(port))
}

// SocketStall reports a _bi_socket stall.
func SocketStall(pid, port int) Message {
	return render(IDSocketStall, "pid", itoa(pid), "port", itoa(port))
}

// Killed reports that a stalled process was killed.
func Killed(pid int) Message { return render(IDKilled, "pid", itoa(pid)) }

// CannotKill reports that killing a stalled process failed.
func CannotKill(pid int) Message { return render(IDCannotKill, "pid", itoa(pid)) }

// PadminCommand is logged under ident padmin for every state-changing
// padmin command (stop, start, reload, restart, reset, ...); pfile is the
// pfile's path as pcheck was given it.
func PadminCommand(command, pfile string) Message {
	return render(IDPadminCommand, "command", command, "pfile", pfile)
}

// RetryOver reports that a process's retries are exhausted; action is the
// retry_over_action taken (continue, shutdown, exit).
func RetryOver(proc string, action string) Message {
	return render(IDRetryOver, "proc", proc, "action", action)
}

// AutoReboot is logged just before RebootCommand runs: the n-th reboot of
// at most limit in the window.
func AutoReboot(proc string, n, limit int) Message {
	return render(IDAutoReboot, "proc", proc, "n", itoa(n), "limit", itoa(limit))
}

// AutoRebootSkipped reports that the reboot limit was reached, so pcheck
// only exits.
func AutoRebootSkipped(proc string, limit int) Message {
	return render(IDAutoRebootSkipped, "proc", proc, "limit", itoa(limit))
}

// HeartbeatStall reports a _bi_heartbeat stall on file.
func HeartbeatStall(pid int, file string) Message {
	return render(IDHeartbeatStall, "pid", itoa(pid), "path", file)
}

// ListenStall reports a _bi_listen stall.
func ListenStall(pid, port int) Message {
	return render(IDListenStall, "pid", itoa(pid), "port", itoa(port))
}

// ChildStall reports a _bi_children stall: child is the missing child's name.
func ChildStall(pid int, child string) Message {
	return render(IDChildStall, "pid", itoa(pid), "name", child)
}

// TLSExpiresSoon reports a _bi_webservs server certificate with fewer
// days left than TLSExpiryWarn (days is negative once it has expired).
// The monitor logs it at most once a day (probe.ExpiryWarning).
func TLSExpiresSoon(port, days int) Message {
	return render(IDTLSExpiresSoon, "port", itoa(port), "n", itoa(days))
}

// MonitorUnknown reports a stall monitor whose probe cannot run because of
// pcheck's own side (block is the block name, reason why): never a stall.
func MonitorUnknown(proc, block, reason string) Message {
	return render(IDMonitorUnknown, "proc", proc, "block", block, "reason", reason)
}

// RestartDelayed reports the restart backoff's wait before the restart
// of a failed process (RestartDelay): seconds with one decimal.
func RestartDelayed(proc string, d time.Duration) Message {
	return render(IDRestartDelayed, "proc", proc, "seconds", strconv.FormatFloat(d.Seconds(), 'f', 1, 64))
}

// RetryOverRearmed reports an entry in RetryOver re-armed by
// RetryOverRearm: its retry count is cleared and it is looked for again.
func RetryOverRearmed(proc string) Message { return render(IDRetryOverRearmed, "proc", proc) }

// StallDiagnostics reports the diagnostics file saved before a stall
// kill (StallDiagnostics on).
func StallDiagnostics(proc, path string) Message {
	return render(IDStallDiagnostics, "proc", proc, "path", path)
}

// CommandStall reports a CMD check stall: command is the check command.
func CommandStall(pid int, command string) Message {
	return render(IDCommandStall, "pid", itoa(pid), "file", command)
}

// ResourceStall reports a _bi_resource stall: metric (rss, cpu, fds,
// threads, children) measured value over the process tree, above limit;
// value and limit are written as the pfile writes the limit (512M, 90%).
func ResourceStall(pid int, metric, value, limit string) Message {
	return render(IDResourceStall, "pid", itoa(pid), "metric", metric, "value", value, "limit", limit)
}

// CleanupKilled reports a process killed by the Cleanup list.
func CleanupKilled(pid int, pattern string) Message {
	return render(IDCleanupKilled, "pid", itoa(pid), "pattern", pattern)
}

// ScriptFailed reports a restart script that exited non-zero or timed out;
// status is the exit status as a number or "timeout".
func ScriptFailed(proc string, status string) Message {
	return render(IDScriptFailed, "proc", proc, "n", status)
}

// Start is logged when pcheck starts monitoring pfile.
func Start(pfile string) Message { return render(IDStart, "pfile", pfile) }

// Stop is logged when pcheck stops monitoring pfile.
func Stop(pfile string) Message { return render(IDStop, "pfile", pfile) }

// PfileError reports a pfile that failed to parse or validate; diag is the
// diagnostic as "<file>:<line>:<column>: <text>" (pfile.Diagnostic.String).
func PfileError(diag string) Message { return render(IDPfileError, "diagnostic", diag) }

// Dropped reports, once the receiver takes lines again, how many lines a
// slow or deaf receiver lost (the Logger sends it itself).
func Dropped(n int64) Message { return render(IDDropped, "n", strconv.FormatInt(n, 10)) }

// Info is free text at severity info, such as a line of a restart script's
// output.
func Info(text string) Message { return render(IDInfo, "text", text) }

// Warning is free text at severity warning, such as an operational warning.
func Warning(text string) Message { return render(IDWarning, "text", text) }

// Err is free text at severity err.
func Err(text string) Message { return render(IDErr, "text", text) }
