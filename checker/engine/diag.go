package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pcheck/pcheck/checker/message"
	"github.com/pcheck/pcheck/checker/proc"
	"github.com/pcheck/pcheck/checker/stall"
	"github.com/pcheck/pcheck/checker/state"
	"github.com/pcheck/pcheck/checker/trust"
)

// Diagnostics before a stall kill (StallDiagnostics on): what the stalled
// process tree was doing, read from /proc, and what it wrote last, saved
// to a file of its own in <state-dir>/diag before the kill destroys it.

// The bounds of the diagnostics: a file holds at most diagMaxBytes (what
// is past it is cut, and the file says so), each /proc file read at most
// diagProcBytes, at most diagMaxProcs processes of the tree, the last
// diagOutLines lines within the last diagOutBytes of the script output;
// an entry keeps its newest diagKeep files.
const (
	diagDir       = "diag"
	diagMaxBytes  = 256 << 10
	diagProcBytes = 16 << 10
	diagMaxProcs  = 64
	diagOutLines  = 200
	diagOutBytes  = 64 << 10
	diagKeep      = 20
	// diagScanWait bounds the /proc scan of the diagnostics.
	diagScanWait = 2 * time.Second
)

// diagProcFiles are the files of /proc/PID saved for each process.
var diagProcFiles = []string{"status", "stack", "wchan", "syscall"}

// diagnose runs before the kill of a stall found by r when its block asks
// for diagnostics and there is a directory to save them in: StallSignal
// to the watched processes and its wait (controls are taken meanwhile;
// a death of a watched process ends it), then the diagnostics file of
// what is left, logged with its path. It returns the step a control
// moved the entry to, nil to go on with the kill (and nil when ctx ends:
// the caller checks ctx), and the watched processes that died meanwhile:
// marked killed for the stall, so that the kill leaves them alone.
func (e *entry) diagnose(ctx context.Context, r stall.Result) (step, []death) {
	cfg := r.Monitor().Config()
	if !cfg.StallDiagnostics {
		return nil, nil
	}
	ids := slices.DeleteFunc(e.watchedIDs(), func(id proc.ID) bool { return e.stallKilled[id] })
	if len(ids) == 0 {
		return nil, nil // killed for another monitor's stall already
	}
	d := e.diagDir(r.Monitor().Block())
	if d == nil {
		return nil, nil // nowhere to save them: no signal, no wait
	}
	defer d.Close()
	var dead []death
	if cfg.StallSignal != "" {
		e.stallSignal(ids, cfg.StallSignal)
		if cfg.StallSignalWait > 0 {
			next, died, ok := e.waitWatched(ctx, cfg.StallSignalWait, false, e.died.ready)
			if !ok && len(died) == 0 {
				return next, nil
			}
			dead = died
		}
	}
	// A fresh scan of stat alone, bounded: the tree may be stuck in
	// the kernel, where reading a command line can block.
	sctx, cancel := context.WithTimeout(ctx, diagScanWait)
	snap, scanErr := e.in.scans.stat.get(sctx, time.Now())
	cancel()
	if scanErr == nil {
		// Died without an event yet (or without a watcher).
		_, gone := checkPids(e.watchedIDs(), snap)
		for id, reason := range gone {
			if !slices.ContainsFunc(dead, func(d death) bool { return d.w.id == id }) {
				dead = append(dead, death{w: e.watching[id.Pid], reason: reason})
			}
		}
		slices.SortFunc(dead, func(a, b death) int { return a.w.id.Pid - b.w.id.Pid })
	}
	for _, dd := range dead {
		if e.stallKilled == nil {
			e.stallKilled = map[proc.ID]bool{}
		}
		e.stallKilled[dd.w.id] = true
	}
	ids = slices.DeleteFunc(ids, func(id proc.ID) bool { return e.stallKilled[id] })
	if len(ids) == 0 {
		return nil, dead // nothing left to save
	}
	path, err := e.saveDiagnostics(d, ids, r, snap, scanErr)
	if err != nil {
		e.log(message.Warning(fmt.Sprintf("('%s'): %s: stall diagnostics not saved: %v", e.name(), r.Monitor().Block(), err)))
		return nil, dead
	}
	e.log(message.StallDiagnostics(e.name(), path))
	return nil, dead
}

// diagDir opens <output dir>/diag for the diagnostics of a stall found by
// block. When it cannot, a warning says why (once per entry when pcheck
// has no state directory at all) and it returns nil: the kill goes on
// without diagnostics.
func (e *entry) diagDir(block string) *trust.WriteDir {
	if e.in.outDir == "" {
		if !e.noDiagWarned {
			e.noDiagWarned = true
			e.log(message.Warning(fmt.Sprintf("('%s'): %s: StallDiagnostics on, but pcheck has no state directory to save them in: no StallSignal is sent and stalls are killed at once; run pcheck with a writable --state-dir", e.name(), block)))
		}
		return nil
	}
	d, err := trust.MkWriteDir(filepath.Join(e.in.outDir, diagDir))
	if err != nil {
		e.log(message.Warning(fmt.Sprintf("('%s'): %s: stall diagnostics not saved, no StallSignal sent: %v", e.name(), block, err)))
		return nil
	}
	return d
}

// stallSignal sends StallSignal name to the watched processes ids (never
// to a protected pid; proc checks each pid's start time).
func (e *entry) stallSignal(ids []proc.ID, name string) {
	sig := unix.SignalNum("SIG" + name)
	if sig == 0 {
		return // pfile accepts only signals that exist
	}
	for _, id := range ids {
		err := e.in.protect.check(id.Pid)
		if err == nil {
			err = proc.Signal(id, sig)
		}
		if err != nil && !errors.Is(err, proc.ErrNotFound) {
			e.log(message.Warning(fmt.Sprintf("('%s' ,pid=%d): StallSignal %s: %v", e.name(), id.Pid, name, err)))
		}
	}
}

// saveDiagnostics writes the diagnostics of the stalled processes ids and
// their descendants to a new file in d, <output dir>/diag, and removes the
// entry's oldest files beyond diagKeep. It returns the file's path. snap
// is a fresh stat scan, nil with its error scanErr.
func (e *entry) saveDiagnostics(d *trust.WriteDir, ids []proc.ID, r stall.Result, snap *snapshot, scanErr error) (string, error) {
	now := time.Now()
	prefix := diagPrefix(e.in.Pfile(), e.getKey())
	name := prefix + now.UTC().Format("20060102T150405.000000Z") + ".txt"
	if err := d.WriteFile(name, e.diagnostics(ids, r, now, snap, scanErr), 0o600); err != nil {
		return "", err
	}
	pruneDiagnostics(d, prefix, diagKeep)
	return filepath.Join(d.Path(), name), nil
}

// diagPrefix starts the names of the diagnostics files of an entry: its
// state-directory name (entryFile) and a dash; the time follows.
func diagPrefix(pfile, key string) string {
	return state.Name(pfile) + "-" + keyHash(key) + "-"
}

// pruneDiagnostics removes the files of d named prefix... beyond the
// newest keep (the names sort by time).
func pruneDiagnostics(d *trust.WriteDir, prefix string, keep int) {
	ents, err := os.ReadDir(d.Path())
	if err != nil {
		return
	}
	var names []string
	for _, de := range ents {
		if n := de.Name(); strings.HasPrefix(n, prefix) && strings.HasSuffix(n, ".txt") && de.Type().IsRegular() {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for len(names) > keep {
		d.Remove(names[0])
		names = names[1:]
	}
}

// diagnostics is the text of a diagnostics file: a header, each process
// of the tree (the watched ones first, then their descendants: those in
// snap, a fresh stat scan, and those recorded while they lived) with its
// /proc files, and the last lines of the script output; at most
// diagMaxBytes. Without snap (scanErr), the recorded descendants only,
// none of them checked.
func (e *entry) diagnostics(ids []proc.ID, r stall.Result, now time.Time, snap *snapshot, scanErr error) []byte {
	var b bytes.Buffer
	w := &capWriter{w: &b, left: diagMaxBytes}
	m := r.Monitor()
	fmt.Fprintf(w, "pcheck stall diagnostics\ntime: %s\npfile: %s\nprocess: %s\nentry: %s\nblock: %s\nstall: %s\n",
		now.Format(time.RFC3339Nano), e.in.Pfile(), e.name(), e.getKey(), m.Block(), m.FindMessage(r.Pid, r.Probe).Text)
	if r.Probe.Err != nil {
		fmt.Fprintf(w, "last attempt: %v\n", r.Probe.Err)
	}
	if scanErr != nil {
		fmt.Fprintf(w, "descendants: no fresh scan (%v): those recorded are listed, unchecked\n", scanErr)
	}
	tree := slices.Clone(ids)
	add := func(d proc.ID) {
		if !slices.Contains(tree, d) {
			tree = append(tree, d)
		}
	}
	for _, id := range ids {
		if snap != nil {
			for _, d := range snap.descendants(id.Pid) {
				add(d)
			}
		}
		if wd := e.watching[id.Pid]; wd != nil {
			for _, d := range wd.desc {
				add(d)
			}
		}
	}
	if len(tree) > diagMaxProcs {
		fmt.Fprintf(w, "processes: %d, the first %d saved\n", len(tree), diagMaxProcs)
		tree = tree[:diagMaxProcs]
	}
	for i, id := range tree {
		role := "watched"
		if i >= len(ids) {
			role = "descendant"
		}
		fmt.Fprintf(w, "\n== pid %d (%s) ==\n", id.Pid, role)
		if p, ok := snapGet(snap, id); snap != nil && (!ok || p.Dead()) {
			fmt.Fprintf(w, "gone\n")
			continue
		}
		for _, f := range diagProcFiles {
			fmt.Fprintf(w, "-- /proc/%d/%s --\n", id.Pid, f)
			w.Write(readProcFile(id.Pid, f))
		}
	}
	if out := e.scriptOutput(); out != "" {
		fmt.Fprintf(w, "\n== last output (%s) ==\n", out)
		lines := e.diagOutput(out, ids[0])
		if len(lines) == 0 {
			fmt.Fprintln(w, "(none)")
		}
		for _, l := range lines {
			fmt.Fprintln(w, l)
		}
	}
	if w.cut {
		b.WriteString("\n(cut at " + strconv.Itoa(diagMaxBytes>>10) + " KiB)\n")
	}
	return b.Bytes()
}

// snapGet returns the process id in snap (nil: none), when its pid still
// has id's start time.
func snapGet(snap *snapshot, id proc.ID) (*proc.Info, bool) {
	if snap == nil {
		return nil, false
	}
	p, ok := snap.get(id.Pid)
	if !ok || p.Start != id.Start {
		return nil, false
	}
	return p, true
}

// diagOutput returns the last lines of the script output file out, in
// the bounds of the crash output (what was not logged yet, and what the
// watched process id can have written), diagOutLines within diagOutBytes;
// the mark of what was logged is left as it is, for the Down's lines.
func (e *entry) diagOutput(out string, id proc.ID) []string {
	var started time.Time
	if w := e.watching[id.Pid]; w != nil {
		started = startedAt(w.started)
	}
	lines, _ := tailOutput(out, e.outMark, started, diagOutLines, diagOutBytes)
	return lines
}

// readProcFile reads /proc/PID/name, at most diagProcBytes; an error is
// the text, so that the file says why a part is missing.
func readProcFile(pid int, name string) []byte {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/" + name)
	if err != nil {
		return []byte("(" + err.Error() + ")\n")
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, diagProcBytes))
	if err != nil {
		return []byte("(" + err.Error() + ")\n")
	}
	if len(data) == 0 {
		return []byte("(empty)\n")
	}
	if data[len(data)-1] != '\n' {
		data = append(data, '\n')
	}
	return data
}

// capWriter writes to w until left bytes are written and drops the rest,
// noting that it did.
type capWriter struct {
	w    io.Writer
	left int
	cut  bool
}

func (c *capWriter) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) > c.left {
		p, c.cut = p[:c.left], true
	}
	c.left -= len(p)
	if _, err := c.w.Write(p); err != nil {
		return 0, err
	}
	return n, nil
}
