package cluster

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/pcheck/pcheck/checker/state"
	"github.com/pcheck/pcheck/checker/trust"
)

// ExitSuffix ends the name of the exit record in the state directory:
// <state-dir>/<name>.exit, <name> as for the retry counts (state.Name).
const ExitSuffix = ".exit"

// WriteExitRecord records in stateDir that pcheck exits with status 3 on
// the retry over of process, for the agent's monitor: once pcheck is gone
// nobody else can tell its exit status (pcheck -D has no parent that
// waits for it). The record is text, one "key value" a line:
//
//	pfile /etc/pcheck/web.pfile
//	status 3
//	process '/usr/sbin/apache2'
//	time 2026-12-01T23:40:00Z
//
// The agent finds it by its pfile line and removes it at start and stop.
// It is written atomically in the checked state directory
// (trust.WriteDir), never through a symbolic link.
func WriteExitRecord(stateDir, pfilePath, process string, status int, now time.Time) error {
	abs, err := filepath.Abs(pfilePath)
	if err != nil {
		abs = filepath.Clean(pfilePath)
	}
	dir, err := trust.OpenWriteDir(stateDir)
	if err != nil {
		return fmt.Errorf("exit record: %w", err)
	}
	defer dir.Close()
	text := fmt.Sprintf("pfile %s\nstatus %d\nprocess '%s'\ntime %s\n", abs, status, process, now.UTC().Format(time.RFC3339))
	if err := dir.WriteFile(state.Name(pfilePath)+ExitSuffix, []byte(text), 0o644); err != nil {
		return fmt.Errorf("exit record: %w", err)
	}
	return nil
}
