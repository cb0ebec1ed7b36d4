package engine

import (
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/pcheck/pcheck/checker/proc"
)

// Usage is what an Up entry's processes and their descendants (its tree)
// use of the machine, read from /proc at each Snapshot: /proc/PID/stat
// and /proc/PID/fd of the watched processes and of their descendants,
// found through the kernel's children files, never a walk of /proc.
type Usage struct {
	// Started is when the oldest watched process started.
	Started time.Time `json:"started"`
	// CPUSeconds is the CPU time of the tree: user and system time of
	// each process in it, and of the children each has waited for (the
	// time of a worker that exited and was reaped stays counted).
	CPUSeconds float64 `json:"cpu_seconds"`
	// CPUPercent is the tree's CPU use over the interval between the
	// last two reads at least cpuInterval apart (a padmin status, a
	// scrape, a status page), in percent of one CPU; the first read of a
	// tree gives its average since Started.
	CPUPercent float64 `json:"cpu_percent"`
	// RSSBytes sums the resident set sizes (pages shared by two
	// processes count twice, as in monit's total memory).
	RSSBytes int64 `json:"rss_bytes"`
	Threads  int   `json:"threads"`
	// FDs counts the open file descriptors; -1 when a process's
	// /proc/PID/fd cannot be read.
	FDs int `json:"fds"`
	// Children counts the descendants of the watched processes.
	Children int `json:"children"`
}

// cpuInterval is the shortest interval CPUPercent is measured over: two
// reads closer than this (padmin status and a scrape at once) share one
// figure instead of dividing by a few microseconds.
const cpuInterval = time.Second

// cpuSample is an entry's last CPU reading, for CPUPercent.
type cpuSample struct {
	mu    sync.Mutex
	roots []proc.ID // the watched processes it was taken of
	at    time.Time
	cpu   time.Duration
	pct   float64
}

// percent returns the CPU percent of roots whose tree used cpu by now,
// and takes the reading as the next one to measure from once it is
// cpuInterval old. A change of the watched processes starts afresh from
// the average since started.
func (c *cpuSample) percent(roots []proc.ID, cpu time.Duration, now, started time.Time) float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !slices.Equal(c.roots, roots) {
		c.roots, c.at, c.cpu = slices.Clone(roots), now, cpu
		c.pct = 0
		if age := now.Sub(started); age > 0 {
			c.pct = 100 * cpu.Seconds() / age.Seconds()
		}
		return c.pct
	}
	if now.Sub(c.at) < cpuInterval {
		return c.pct
	}
	// A descendant that exited unreaped by the tree takes its time with
	// it: the tree then used nothing, not less than nothing.
	c.pct = max(0, 100*(cpu-c.cpu).Seconds()/now.Sub(c.at).Seconds())
	c.at, c.cpu = now, cpu
	return c.pct
}

// usage reads the figures of the processes roots (an Up entry's) and
// their descendants; nil when none of them is there any more.
func (in *Instance) usage(e *entry, roots []proc.ID) *Usage {
	if len(roots) == 0 {
		return nil
	}
	boot, err := proc.SinceBoot()
	if err != nil {
		return nil
	}
	now := time.Now()
	u := &Usage{}
	var cpu time.Duration
	var oldest time.Duration = -1
	seen := map[int]bool{}
	var fallback *snapshot // the latest shared scan, on a kernel without children files
	add := func(p proc.Usage) {
		cpu += p.CPU + p.ChildCPU
		u.RSSBytes += p.RSS
		u.Threads += p.Threads
		if p.FDs < 0 || u.FDs < 0 {
			u.FDs = -1
		} else {
			u.FDs += p.FDs
		}
	}
	var found []proc.ID
	for _, id := range roots {
		p, err := proc.ReadUsage(id.Pid)
		if err != nil || p.Start != id.Start || seen[id.Pid] {
			continue // gone since: the entry hears of it at once
		}
		seen[id.Pid] = true
		found = append(found, id)
		add(p)
		if oldest < 0 || p.StartTime < oldest {
			oldest = p.StartTime
		}
		queue := []proc.Usage{p}
		for len(queue) > 0 {
			parent := queue[0]
			queue = queue[1:]
			kids, err := proc.Children(parent.Pid)
			if errors.Is(err, proc.ErrNoChildren) {
				if fallback == nil {
					fallback = in.scans.latest()
				}
				kids = fallback.childPids(parent.Pid)
			}
			for _, k := range kids {
				c, err := proc.ReadUsage(k)
				// A child started after its parent; a pid reused since
				// the children file was read is not the child.
				if err != nil || seen[k] || c.PPid != parent.Pid || c.StartTime < parent.StartTime {
					continue
				}
				seen[k] = true
				u.Children++
				add(c)
				queue = append(queue, c)
			}
		}
	}
	if len(found) == 0 {
		return nil
	}
	u.Started = now.Add(oldest - boot).Round(10 * time.Millisecond)
	u.CPUSeconds = cpu.Seconds()
	u.CPUPercent = e.cpu.percent(found, cpu, now, u.Started)
	return u
}

// latest returns the newest finished scan, full or stat-only; nil before
// any.
func (s *Scans) latest() *snapshot {
	var out *snapshot
	for _, sc := range []*scanner{&s.full, &s.stat} {
		sc.mu.Lock()
		r := sc.cur
		sc.mu.Unlock()
		if r == nil || !r.finished() || r.snap == nil {
			continue
		}
		if out == nil || r.snap.taken.After(out.taken) {
			out = r.snap
		}
	}
	return out
}

// childPids returns the pids of the children of pid in the scan; none
// for a nil scan.
func (s *snapshot) childPids(pid int) []int {
	if s == nil {
		return nil
	}
	var out []int
	for _, i := range s.children[pid] {
		if s.all[i].Pid != pid {
			out = append(out, s.all[i].Pid)
		}
	}
	return out
}
