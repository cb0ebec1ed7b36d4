package pfile

import (
	"fmt"
	"strings"
)

// BaseKey returns the stable key of a process entry: what it watches and
// how it restarts it. Entries keep their key (and so their retry counts,
// state files and stall monitors) when other entries are added or
// removed, or when their retry settings change.
func (p *Process) BaseKey() string {
	target := p.Name
	if p.ByName {
		target = `"` + p.Name + `"`
	}
	parts := []string{target, p.Script}
	if p.Args != "" {
		parts = append(parts, "args="+p.Args)
	}
	if p.User != "" {
		parts = append(parts, "user="+p.User)
	}
	if p.PidFile != "" {
		parts = append(parts, "pidfile="+p.PidFile)
	}
	return strings.Join(parts, " ")
}

// SetKeys gives every process entry of f its Key: BaseKey, made unique by
// order of appearance ("<key> #2" for the second identical line), so that
// two identical lines are two entries. Builder.File calls it; it is the one place
// entry keys are made (a File made by hand, in a test, calls it too).
func SetKeys(f *File) {
	seen := map[string]int{}
	for _, p := range f.Processes {
		key := p.BaseKey()
		if n := seen[key]; n > 0 {
			seen[key] = n + 1
			key = fmt.Sprintf("%s #%d", key, n+1)
		} else {
			seen[key] = 1
		}
		p.Key = key
	}
}

// SameProcess reports whether p and q look for the same process (target,
// by-name and args alike), whatever their script, user or pid file: a
// reload that changes only those carries the entry over.
func (p *Process) SameProcess(q *Process) bool {
	return p.Name == q.Name && p.ByName == q.ByName && p.Args == q.Args
}
