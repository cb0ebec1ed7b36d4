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
)

// diagProcFiles are the files of /proc/PID saved for each process.
var diagProcFiles = []string{"status", "stack", "wchan", "syscall"}

// diagnose runs before the kill of a stall found by r when its block asks
// for diagnostics: StallSignal to the watched processes and its wait
// (controls are taken meanwhile), then the diagnostics file, logged with
// its path. It returns the step a control moved the entry to, nil to go on
// with the kill (and nil when ctx ends: the caller checks ctx).
func (e *entry) diagnose(ctx context.Context, r stall.Result) step {
	cfg := r.Monitor().Config()
	if !cfg.StallDiagnostics {
		return nil
	}
	ids := slices.DeleteFunc(e.watchedIDs(), func(id proc.ID) bool { return e.stallKilled[id] })
	if len(ids) == 0 {
		return nil // killed for another monitor's stall already
	}
	if cfg.StallSignal != "" {
		e.stallSignal(ids, cfg.StallSignal)
		if cfg.StallSignalWait > 0 {
			if next, ok := e.wait(ctx, cfg.StallSignalWait, false); !ok {
				return next
			}
		}
	}
	path, err := e.saveDiagnostics(ctx, ids, r)
	if err != nil {
		e.log(message.Warning(fmt.Sprintf("('%s'): %s: stall diagnostics not saved: %v", e.name(), r.Monitor().Block(), err)))
		return nil
	}
	e.log(message.StallDiagnostics(e.name(), path))
	return nil
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
// their descendants to a new file in <state-dir>/diag and removes the
// entry's oldest files beyond diagKeep. It returns the file's path.
func (e *entry) saveDiagnostics(ctx context.Context, ids []proc.ID, r stall.Result) (string, error) {
	if e.in.outDir == "" {
		return "", errors.New("pcheck has no state directory")
	}
	d, err := trust.MkWriteDir(filepath.Join(e.in.outDir, diagDir))
	if err != nil {
		return "", err
	}
	defer d.Close()
	now := time.Now()
	prefix := diagPrefix(e.in.Pfile(), e.getKey())
	name := prefix + now.UTC().Format("20060102T150405.000000Z") + ".txt"
	if err := d.WriteFile(name, e.diagnostics(ctx, ids, r, now), 0o600); err != nil {
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
// of the tree (the watched ones first, then their descendants from a fresh
// scan) with its /proc files, and the last lines of the script output;
// at most diagMaxBytes.
func (e *entry) diagnostics(ctx context.Context, ids []proc.ID, r stall.Result, now time.Time) []byte {
	var b bytes.Buffer
	w := &capWriter{w: &b, left: diagMaxBytes}
	m := r.Monitor()
	fmt.Fprintf(w, "pcheck stall diagnostics\ntime: %s\npfile: %s\nprocess: %s\nentry: %s\nblock: %s\nstall: %s\n",
		now.Format(time.RFC3339Nano), e.in.Pfile(), e.name(), e.getKey(), m.Block(), m.FindMessage(r.Pid, r.Probe).Text)
	if r.Probe.Err != nil {
		fmt.Fprintf(w, "last attempt: %v\n", r.Probe.Err)
	}
	tree := slices.Clone(ids)
	if snap, err := e.in.scans.full.get(ctx, time.Now()); err == nil {
		for _, id := range ids {
			for _, d := range snap.descendants(id.Pid) {
				if !slices.Contains(tree, d) {
					tree = append(tree, d)
				}
			}
		}
	} else {
		fmt.Fprintf(w, "descendants: not read: %v\n", err)
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
		if _, ok := proc.Current(id); !ok {
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
		lines, _ := tailOutput(out, outMark{}, time.Time{}, diagOutLines, diagOutBytes)
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
