// Package states holds the one set of state names of pcheck: where a
// process entry is (Process) and where a stall monitor is (Monitor). The
// engine and the stall monitors use these typed values; the control
// protocol, padmin, the state dump and the metrics spell them with their
// String names. The package depends on nothing, so that padmin can use it
// without linking the probes.
package states

import "fmt"

// Process is where a process entry is in its life cycle.
type Process int

// The states of a process entry, as padmin status shows them.
const (
	// Down: the process is not running and pcheck is looking for it (at
	// start, after Resume) or about to restart it.
	Down Process = iota
	// Up: the process runs and is watched.
	Up
	// Restarting: the restart sequence runs (killing leftovers, the
	// restart script, waiting StartWait for the process).
	Restarting
	// Paused: monitoring is paused (padmin stop); the process is left
	// alone.
	Paused
	// RetryOver: retries are exhausted and the action was continue: the
	// process is no longer restarted until Resume.
	RetryOver
)

var processNames = [...]string{"Down", "Up", "Restarting", "Paused", "RetryOver"}

// Processes returns every process state, in the order of their values.
func Processes() []Process { return all[Process](len(processNames)) }

// String returns the name padmin prints.
func (s Process) String() string { return name(processNames[:], int(s)) }

// MarshalText implements encoding.TextMarshaler.
func (s Process) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Monitor is where a stall monitor is.
type Monitor int

// The states of a stall monitor.
const (
	// MonitorPaused: the process is not Up (not found yet, down,
	// restarting, paused by padmin, retry over): no attempts run.
	MonitorPaused Monitor = iota
	// MonitorOk: the last attempt succeeded, or none has run since
	// monitoring (re)started.
	MonitorOk
	// MonitorInDoubt: attempts are failing but not yet for the failover
	// time (the Enterprise Server seed's "In doubt").
	MonitorInDoubt
	// MonitorStalled: attempts failed for the failover time; the process
	// is being killed and will be restarted.
	MonitorStalled
	// MonitorStopped: stall monitoring of the block has ended: PS_EXEC
	// error=1 after a stall, or the stalled process could not be killed.
	// It stays so until pcheck restarts or a reload changes the block.
	MonitorStopped
	// MonitorUnknown: the last attempt could not be made because of
	// pcheck's own side (a CA file it cannot read, a check command that
	// vanished, no descriptor for a socket). It never counts toward a
	// stall; the next attempt that is made leaves it for Ok or In doubt.
	MonitorUnknown
)

var monitorNames = [...]string{"Paused", "Ok", "In doubt", "Stalled", "Stopped", "Unknown"}

// Monitors returns every monitor state, in the order of their values.
func Monitors() []Monitor { return all[Monitor](len(monitorNames)) }

// String returns the name padmin prints.
func (s Monitor) String() string { return name(monitorNames[:], int(s)) }

// MarshalText implements encoding.TextMarshaler.
func (s Monitor) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// all returns the n values of a state type, in order.
func all[S ~int](n int) []S {
	out := make([]S, n)
	for i := range out {
		out[i] = S(i)
	}
	return out
}

// name is the name of state i of names, or State(i) out of range.
func name(names []string, i int) string {
	if i >= 0 && i < len(names) {
		return names[i]
	}
	return fmt.Sprintf("State(%d)", i)
}
