package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/pcheck/pcheck/checker/message"
	"github.com/pcheck/pcheck/checker/proc"
	"github.com/pcheck/pcheck/checker/trust"
)

// scriptRecord is the record of a running restart script, kept in the
// state directory beside its output file while it runs. A pcheck killed
// while the script runs leaves it running; the next one finds it through
// the record and waits for it instead of running a second script (and so
// starting a second copy of the service) beside it.
type scriptRecord struct {
	Pid int `json:"pid"`
	// Start is the script's start time (field 22 of /proc/PID/stat): a
	// pid given to another program since is never taken for the script.
	Start   uint64 `json:"start"`
	Pgid    int    `json:"pgid"`
	Attempt int    `json:"attempt"`
	Reason  string `json:"reason"`
	// Boot is the kernel's boot id when the script started: after a
	// reboot pids and start times repeat, and a record left by the last
	// boot must never name a process of this one.
	Boot string `json:"boot"`
}

// maxRecord bounds the size of a record read back.
const maxRecord = 4 << 10

// write saves the record atomically at path.
func (r scriptRecord) write(path string) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return trust.WriteFileAtomic(path, append(b, '\n'), 0o600)
}

// remove removes the record at path if it is still this one: a run
// started after it (Pause and Resume while it ran) has its own.
func (r scriptRecord) remove(path string) {
	if cur, err := readRecord(path); err == nil && cur.Pid == r.Pid && cur.Start == r.Start {
		os.Remove(path)
	}
}

// readRecord reads the record at path without following a link.
func readRecord(path string) (scriptRecord, error) {
	var r scriptRecord
	f, err := trust.OpenNoFollow(path, os.O_RDONLY, 0)
	if err != nil {
		return r, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxRecord))
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, err
	}
	if r.Pid <= 1 || r.Pgid <= 1 {
		return r, fmt.Errorf("pid %d, group %d", r.Pid, r.Pgid)
	}
	return r, nil
}

// live returns the script the record names when it still runs: the same
// pid with the same start time, alive, still in its process group.
func (r scriptRecord) live() (proc.Info, bool) {
	if boot, err := proc.BootID(); err != nil || r.Boot != boot {
		return proc.Info{}, false
	}
	info, err := proc.Read(r.Pid)
	if err != nil || info.Start != r.Start || info.PGid != r.Pgid || info.Dead() {
		return proc.Info{}, false
	}
	return info, true
}

// orphan returns the restart script of this entry that a previous pcheck
// left running, if any, and the directory of its record and output file:
// ScriptOutputDir or one of Options.ScriptRecordDirs (a previous pcheck
// may have written in the state directory that this one cannot write
// now). A record naming a script that has ended is removed.
func (e *entry) orphan() (scriptRecord, proc.Info, string, bool) {
	for _, dir := range e.in.recordDirs() {
		path := e.fileIn(dir, ".script")
		rec, err := readRecord(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			e.log(message.Warning(fmt.Sprintf("('%s'): record of a running restart script %s ignored: %v", e.name(), path, err)))
			os.Remove(path)
			continue
		}
		if info, ok := rec.live(); ok {
			return rec, info, dir, true
		}
		os.Remove(path)
	}
	return scriptRecord{}, proc.Info{}, "", false
}

// awaitOrphan waits, Restarting, for a restart script that a previous
// pcheck left running (found by orphan), at most RestartTimeout from the
// script's start; then the process is looked for during StartWait as
// after any script. The attempt was counted by the pcheck that ran the
// script: it is not counted again.
func (e *entry) awaitOrphan(rec scriptRecord, script proc.Info, dir string) step {
	return func(ctx context.Context) step {
		e.setState(StateRestarting, nil)
		p := e.config()
		age := max(0, bootClock()-script.StartTime)
		e.log(message.Info(fmt.Sprintf("('%s'): restart script (pid %d, attempt %d, reason %s) of a previous pcheck still runs, started %s ago; waiting for it, up to RestartTimeout (%s)",
			p.Name, rec.Pid, rec.Attempt, rec.Reason, age.Round(time.Second), p.Timeout)))
		exited, cancel := e.exitOf(script.ID)
		defer cancel()
		timer := time.NewTimer(max(0, p.Timeout-age))
		defer timer.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case c := <-e.ctl:
				if next := e.handle(ctx, c); next != nil {
					return next
				}
			case <-exited:
				e.log(message.Info(fmt.Sprintf("('%s'): the restart script of the previous pcheck (pid %d) has ended", p.Name, rec.Pid)))
				e.orphanOutput(dir)
				rec.remove(e.fileIn(dir, ".script"))
				return e.find(StateRestarting, e.in.params().StartWait)
			case <-timer.C:
				e.log(message.ScriptFailed(p.Name, "timeout"))
				params := e.in.params()
				if !e.scriptGroup().stop(script.ID, rec.Pgid, exited, params.KillWait) {
					// Not our child: its exit is awaited, bounded.
					gone := time.NewTimer(params.KillWait + time.Second)
					select {
					case <-exited:
					case <-gone.C:
					}
					gone.Stop()
				}
				e.orphanOutput(dir)
				rec.remove(e.fileIn(dir, ".script"))
				return e.afterTimeout(ctx, rec.Reason, 0)
			}
		}
	}
}

// recordDirs are the directories where a script record may be found:
// ScriptOutputDir first, then ScriptRecordDirs, each once.
func (in *Instance) recordDirs() []string {
	var dirs []string
	for _, d := range append([]string{in.outDir}, in.recDirs...) {
		if d != "" && !slices.Contains(dirs, filepath.Clean(d)) {
			dirs = append(dirs, filepath.Clean(d))
		}
	}
	return dirs
}

// orphanOutput logs the output file, in dir, of a script that a previous
// pcheck started and could not log.
func (e *entry) orphanOutput(dir string) {
	f, err := trust.OpenNoFollow(e.fileIn(dir, ".out"), os.O_RDONLY, 0)
	if err != nil {
		return
	}
	defer f.Close()
	e.outMark = scriptRun{proc: e.name(), log: e.log}.forwardOutput(f)
}

// exitOf returns a channel closed when the process id has exited, and a
// function that stops watching it.
func (e *entry) exitOf(id proc.ID) (<-chan struct{}, func()) {
	ch := make(chan struct{})
	exit := sync.OnceFunc(func() { close(ch) })
	if e.in.watcher != nil {
		cancel, err := e.in.watcher.Watch(id, func(proc.Event) { exit() })
		switch {
		case errors.Is(err, proc.ErrNotFound):
			exit()
			return ch, func() {}
		case err == nil:
			return ch, cancel
		}
	}
	// No pidfd: /proc is looked at.
	stop := make(chan struct{})
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			if _, ok := proc.Current(id); !ok {
				exit()
				return
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	return ch, sync.OnceFunc(func() { close(stop) })
}
