// Package control is the control plane of pcheck, shared by the daemon and
// padmin: the protocol spoken on each pfile's Unix socket, the Server that
// answers it, the Client padmin uses, and the in-memory records behind
// `padmin events` and `padmin stats` (an event ring that keeps failures
// longer than successes, and per-time-bucket counters).
//
// The protocol is line-delimited JSON: a client writes one Request per
// line and reads one Response per line, any number of times on one
// connection. docs/control.md describes it for scripts.
package control

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"

	"github.com/pcheck/pcheck/checker/state"
)

// MaxRequest is the largest request line a server reads, newline
// excluded; a longer one is answered with ErrTooLarge and the connection
// is closed.
const MaxRequest = 64 << 10

// The commands of the protocol (Request.Command).
const (
	CmdInfo    = "info"    // who serves this socket: InfoResult
	CmdStatus  = "status"  // StatusResult
	CmdRules   = "rules"   // RulesResult
	CmdStop    = "stop"    // pause monitoring of Process ("" every process)
	CmdStart   = "start"   // resume monitoring of Process ("" every process)
	CmdReload  = "reload"  // re-read the pfile
	CmdRestart = "restart" // restart Process now; Force when it is Up
	CmdReset   = "reset"   // zero retry counts (and statistics when Process is "")
	CmdDump    = "dump"    // write the state dump: DumpResult
	CmdEvents  = "events"  // the newest N events: []Event
	CmdStats   = "stats"   // StatsResult
	CmdConfig  = "config"  // resize the event ring or the buckets: ConfigResult
)

// Request is one line a client sends.
type Request struct {
	Command string `json:"command"`
	// Process names a process entry as written in the pfile (or its key);
	// "" is every process.
	Process string `json:"process,omitempty"`
	// Force lets restart kill a healthy process.
	Force bool `json:"force,omitempty"`
	// N is the number of events wanted (0: all kept).
	N int `json:"n,omitempty"`
	// Config carries the new sizes for CmdConfig.
	Config *Config `json:"config,omitempty"`
}

// Config resizes the records of a pfile (CmdConfig); zero fields are left
// as they are. Resizing the buckets clears them.
type Config struct {
	Events        int     `json:"events,omitempty"`
	Buckets       int     `json:"buckets,omitempty"`
	BucketSeconds float64 `json:"bucket_seconds,omitempty"`
}

// Response is one line a server answers.
type Response struct {
	OK bool `json:"ok"`
	// Pfile is the path of the pfile served, as pcheck was given it, and
	// Facility its SyslogFacility (padmin logs under it).
	Pfile    string `json:"pfile,omitempty"`
	Facility string `json:"facility,omitempty"`
	// Result is the command's answer when OK.
	Result json.RawMessage `json:"result,omitempty"`
	// Error says why not when !OK.
	Error *RemoteError `json:"error,omitempty"`
}

// The error codes of a refused or failed request, each with its sentinel
// error: errors.Is(err, control.ErrHealthy) holds for a RemoteError of
// code "healthy".
var (
	ErrDenied         = errors.New("permission denied")
	ErrMalformed      = errors.New("malformed request")
	ErrTooLarge       = errors.New("request too large")
	ErrUnknownCommand = errors.New("unknown command")
	ErrUnknownProcess = errors.New("no such process in the pfile")
	ErrHealthy        = errors.New("process is up")
	ErrBusy           = errors.New("process is being restarted")
	ErrStopped        = errors.New("monitoring of the pfile has stopped")
	ErrInvalidPfile   = errors.New("invalid pfile")
	ErrNoDumpFile     = errors.New("pfile sets no DumpFileName")
	ErrBadArgument    = errors.New("bad argument")
	ErrFailed         = errors.New("command failed")
)

// codes pairs each code with its sentinel; "failed" is last, for an error
// that also wraps a more telling one.
var codes = []struct {
	code string
	err  error
}{
	{"denied", ErrDenied},
	{"malformed", ErrMalformed},
	{"too-large", ErrTooLarge},
	{"unknown-command", ErrUnknownCommand},
	{"unknown-process", ErrUnknownProcess},
	{"healthy", ErrHealthy},
	{"busy", ErrBusy},
	{"stopped", ErrStopped},
	{"invalid-pfile", ErrInvalidPfile},
	{"no-dump-file", ErrNoDumpFile},
	{"bad-argument", ErrBadArgument},
	{"failed", ErrFailed},
}

// codeOf returns the code of the first sentinel err wraps, "failed" for
// none.
func codeOf(err error) string {
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return "failed"
}

// RemoteError is a request the server refused or could not carry out.
type RemoteError struct {
	// Code is one of the codes above ("healthy", "invalid-pfile", ...).
	Code string `json:"code"`
	// Message says what and why, for an operator.
	Message string `json:"message"`
	// Details are the lines behind it: every error of a bad pfile.
	Details []string `json:"details,omitempty"`
}

// Error returns the message and the details, one per line.
func (e *RemoteError) Error() string {
	if len(e.Details) == 0 {
		return e.Message
	}
	return e.Message + "\n" + strings.Join(e.Details, "\n")
}

// Unwrap returns the sentinel error of the code.
func (e *RemoteError) Unwrap() error {
	for _, c := range codes {
		if c.code == e.Code {
			return c.err
		}
	}
	return ErrFailed
}

// SocketName returns the file name of a pfile's control socket in the run
// directory: the stem that also names its pid lock and state file.
func SocketName(pfilePath string) string { return state.Name(pfilePath) + ".sock" }

// SocketPath returns the control socket of pfilePath in runDir.
func SocketPath(runDir, pfilePath string) string {
	return filepath.Join(runDir, SocketName(pfilePath))
}
