package daemon

import (
	"errors"
	"fmt"

	"github.com/pcheck/pcheck/checker/message"
	"github.com/pcheck/pcheck/checker/pidlock"
	"github.com/pcheck/pcheck/pfile"
)

// force is --force: before any lock is taken, it stops the live pchecks
// that hold the pid locks of files, in the state directory or in the run
// directory (a fallback lock), with pidlock.Force, and records in
// d.forced which pcheck was stopped for each pfile. Nothing is signalled
// unless every holder is proved a pcheck that watches no pfile but these:
// a refusal leaves every pfile watched as it was.
func (d *daemon) force(files []*pfile.File) error {
	var paths []string
	owner := map[string]string{} // pid file -> pfile
	dirs := []string{d.o.StateDir}
	if d.runOK {
		dirs = append(dirs, d.o.RunDir)
	}
	for _, f := range files {
		locks := []string{d.statePath(f.Path, ".pid")}
		if d.runOK {
			locks = append(locks, d.runPath(f.Path, ".pid"))
		}
		for _, p := range locks {
			paths = append(paths, p)
			owner[p] = f.Path
		}
	}
	stopped, err := pidlock.Force(paths, dirs)
	d.forced = map[string]int{}
	for p, pid := range stopped {
		d.forced[owner[p]] = pid
	}
	if err == nil {
		return nil
	}
	// A holder that did not stop in time does not bring back those that
	// did: their pfiles are watched by nobody now, and say so.
	for _, f := range files {
		if pid := d.forced[f.Path]; pid != 0 {
			d.main.Log(message.Err(fmt.Sprintf("pfile '%s': --force: pcheck pid %d was stopped, but this pcheck does not start: the pfile is not watched", f.Path, pid)))
		}
	}
	var refused *pidlock.RefusedError
	if errors.As(err, &refused) {
		return fmt.Errorf("pfile '%s': %w", owner[refused.Path], err)
	}
	return err
}
