package probe

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ProcName names one process of a tree.
type ProcName struct {
	Pid  int
	Comm string // /proc/PID/comm: at most 15 bytes
	// Argv0 is the first word of the command line.
	Argv0 string
	// Start is the start time (proc.ID's), 0 when unknown: a resource
	// probe leaves out a pid whose start time is not this one any more.
	Start uint64
}

// commLen is the longest comm the kernel keeps (TASK_COMM_LEN - 1).
const commLen = 15

// matches reports whether the process answers to name: its comm (the
// kernel cuts it to 15 bytes), argv[0], or the base name of argv[0].
func (p ProcName) matches(name string) bool {
	if p.Comm == name || (len(name) > commLen && p.Comm == name[:commLen]) {
		return true
	}
	return p.Argv0 != "" && (p.Argv0 == name || filepath.Base(p.Argv0) == name)
}

// childrenProber checks that named processes are present in a tree.
type childrenProber struct {
	names []string
	tree  func() ([]ProcName, error)
}

// Children returns the _bi_children probe: every name must appear among
// tree() by comm or by the base name of argv[0]. Result.Missing lists the
// names not found and Detail names the first of them. A tree that cannot be
// read (tree's error) makes the attempt Unknown: no child is called
// missing because pcheck could not look.
func Children(names []string, tree func() ([]ProcName, error)) Prober {
	return &childrenProber{names: names, tree: tree}
}

// Run performs one attempt.
func (p *childrenProber) Run(ctx context.Context) Result {
	start := time.Now()
	if err := ctx.Err(); err != nil {
		return failure(ctx, start, err)
	}
	procs, err := p.tree()
	if err != nil {
		return failure(ctx, start, broken(fmt.Errorf("process tree: %w", err)))
	}
	var missing []string
	for _, name := range p.names {
		found := false
		for _, proc := range procs {
			if proc.matches(name) {
				found = true
				break
			}
		}
		if !found {
			missing = append(missing, name)
		}
	}
	if len(missing) == 0 {
		return success(start, strconv.Itoa(len(p.names))+" children present")
	}
	r := Result{
		Latency: time.Since(start),
		Detail:  clip("child missing: " + missing[0]),
		Err:     fmt.Errorf("%w: %s", ErrChildMissing, strings.Join(missing, ", ")),
		Missing: missing,
	}
	return r
}
