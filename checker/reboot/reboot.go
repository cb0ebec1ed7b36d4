// Package reboot is auto-reboot: after a retry over whose action is exit,
// with AutoReboot on, the node is rebooted through RebootCommand unless
// RebootLimit reboots already happened inside RebootWindow, which ends a
// reboot loop.
//
// The count lives in RebootStateFile as the wall-clock times of the
// reboots (the only clock that survives a reboot). A reboot is recorded,
// written and fsynced before the command runs, so a node that goes down
// mid-command still counts it.
package reboot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/pcheck/pcheck/checker/message"
	"github.com/pcheck/pcheck/checker/trust"
)

// Logger receives the Auto reboot messages.
type Logger interface {
	Log(message.Message)
}

// commandTimeout bounds RebootCommand; shutdown(8) returns at once.
const commandTimeout = 60 * time.Second

// Rebooter decides and performs one pfile's auto-reboot.
type Rebooter struct {
	// File is RebootStateFile.
	File    string
	Limit   int
	Window  time.Duration
	Command string
	Log     Logger
	// Now is the wall clock; nil is time.Now.
	Now func() time.Time
}

// record is the state file's content.
type record struct {
	Reboots []time.Time `json:"reboots"`
}

// Reboots returns the times of the reboots inside the window, oldest
// first. A missing file is no reboots; an unreadable one is an error.
func (r *Rebooter) Reboots() ([]time.Time, error) {
	data, err := trust.ReadFileNoFollow(r.File)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reboot count %s: %w", r.File, err)
	}
	var rec record
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("reboot count %s: %w", r.File, err)
	}
	cutoff := r.now().Add(-r.Window)
	var in []time.Time
	for _, t := range rec.Reboots {
		if t.After(cutoff) {
			in = append(in, t)
		}
	}
	return in, nil
}

// Count returns the number of reboots inside the window.
func (r *Rebooter) Count() (int, error) {
	in, err := r.Reboots()
	return len(in), err
}

// Reset forgets every recorded reboot (padmin reset).
func (r *Rebooter) Reset() error {
	return r.write(nil)
}

// Trigger is called for a retry over with action exit of proc. Under the
// limit it records the reboot, logs `Auto reboot (...) count=n/limit` and
// runs RebootCommand; at the limit it logs `Auto reboot skipped` and does
// nothing more. It reports whether the command ran. pcheck exits with
// status 3 either way.
func (r *Rebooter) Trigger(ctx context.Context, proc string) (bool, error) {
	in, err := r.Reboots()
	if err != nil {
		// A count that cannot be read cannot prove we are under the
		// limit: do not reboot.
		r.Log.Log(message.AutoRebootSkipped(proc, r.Limit))
		return false, err
	}
	if len(in) >= r.Limit {
		r.Log.Log(message.AutoRebootSkipped(proc, r.Limit))
		return false, nil
	}
	// Checked when the pfile was loaded, and again now, before it runs
	// as root: a program made writable by others since is not run.
	if err := trust.CheckCommand(r.Command); err != nil {
		r.Log.Log(message.Err(fmt.Sprintf("Auto reboot ('%s'): RebootCommand refused, not run: %v", proc, err)))
		return false, err
	}
	in = append(in, r.now())
	if err := r.write(in); err != nil {
		r.Log.Log(message.AutoRebootSkipped(proc, r.Limit))
		return false, err
	}
	r.Log.Log(message.AutoReboot(proc, len(in), r.Limit))
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", r.Command)
	out, err := cmd.CombinedOutput()
	if text := strings.TrimSpace(string(out)); text != "" {
		r.Log.Log(message.Info("RebootCommand: " + text))
	}
	if err != nil {
		return true, fmt.Errorf("RebootCommand %q: %w", r.Command, err)
	}
	return true, nil
}

func (r *Rebooter) write(times []time.Time) error {
	data, err := json.Marshal(record{Reboots: times})
	if err != nil {
		return err
	}
	return trust.WriteFileAtomic(r.File, append(data, '\n'), 0o644)
}

func (r *Rebooter) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}
