package engine

import (
	"context"
	"sync"
	"time"

	"github.com/pcheck/pcheck/checker/proc"
)

// Scans are the /proc scans of a pcheck process, shared by every Instance
// (every pfile) given them: the entries looking for their processes, the
// MonitorInterval re-checks, the stall monitors' listen and children
// probes and the cleanup list. Callers asking at once are served by one
// walk of /proc.
type Scans struct {
	full scanner // proc.Scan: argv and exe, for matching
	// stat is a proc.StatWalker's walk: the re-checks of processes found
	// already and the stall diagnostics. Its consumers read Start, State
	// and PPid (checkPids, recheckIdle, descendants, the diagnostics'
	// tree), never PGid, Sid or Comm, which a walker keeps as first read:
	//   - Start is the process's own (same /proc/PID inode).
	//   - PPid is fresh: the walker reads again the children of a parent
	//     that died.
	//   - State of a watched process is read fresh when no pidfd tells its
	//     death (fresh); one with a pidfd may show alive after its exit,
	//     as if it had died just after the walk: its pidfd event, sent at
	//     the exit, is what reports it. The state of a descendant only
	//     decides whether the diagnostics list its /proc files or "gone".
	stat scanner

	mu    sync.Mutex
	fresh map[int]int // pids watched without a pidfd, with their watchers
}

// NewScans returns the scans of a pcheck process.
func NewScans() *Scans {
	s := &Scans{full: scanner{scan: proc.Scan}, fresh: make(map[int]int)}
	w := proc.NewStatWalker()
	s.stat.scan = func() ([]proc.Info, error) { return w.Scan(s.isFresh) }
	return s
}

// watchFresh asks the stat walks to read pid every time: an entry watches
// it without a pidfd, the walk is what tells its death. Every call is
// undone by one of unwatchFresh.
func (s *Scans) watchFresh(pid int) {
	s.mu.Lock()
	s.fresh[pid]++
	s.mu.Unlock()
}

// unwatchFresh undoes one watchFresh.
func (s *Scans) unwatchFresh(pid int) {
	s.mu.Lock()
	if s.fresh[pid]--; s.fresh[pid] <= 0 {
		delete(s.fresh, pid)
	}
	s.mu.Unlock()
}

func (s *Scans) isFresh(pid int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fresh[pid] > 0
}

// probeScanAge is how old a scan the listen and children probes take: the
// attempts of one scheduler batch, and of every pfile, share one.
const probeScanAge = 250 * time.Millisecond

// scanner shares /proc scans among its callers: any number asking at once
// are served by one scan, so a thousand entries looking for their
// processes cost one walk of /proc, not a thousand.
type scanner struct {
	scan func() ([]proc.Info, error)

	mu   sync.Mutex
	cur  *scanRun // the running or last finished scan
	next *scanRun // queued behind a running one
}

type scanRun struct {
	start time.Time
	done  chan struct{}
	snap  *snapshot
	err   error
}

// get returns a scan that started no earlier than after.
func (s *scanner) get(ctx context.Context, after time.Time) (*snapshot, error) {
	s.mu.Lock()
	r := s.cur
	switch {
	case r != nil && !r.start.Before(after):
		// The current scan (running or finished) is fresh enough.
	case r == nil || r.finished():
		r = s.launch()
	default:
		// A stale scan is running: wait for the one queued behind it.
		if s.next == nil {
			s.next = &scanRun{done: make(chan struct{})}
		}
		r = s.next
	}
	s.mu.Unlock()
	select {
	case <-r.done:
		return r.snap, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// launch starts a scan as the current one; s.mu is held.
func (s *scanner) launch() *scanRun {
	r := s.next
	s.next = nil
	if r == nil {
		r = &scanRun{done: make(chan struct{})}
	}
	r.start = time.Now()
	s.cur = r
	go func() {
		var all []proc.Info
		all, r.err = s.scan()
		if r.err == nil {
			r.snap = newSnapshot(all)
			r.snap.taken = r.start
		}
		s.mu.Lock()
		close(r.done)
		if s.next != nil {
			s.launch()
		}
		s.mu.Unlock()
	}()
	return r
}

func (r *scanRun) finished() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// snapshot is one scan of /proc with its indexes, built once and shared
// read-only by every entry: a re-check of a thousand entries costs a
// thousand map lookups, not a thousand walks of the process table.
type snapshot struct {
	taken    time.Time // when the scan started
	all      []proc.Info
	byPid    map[int]int   // pid -> index in all
	children map[int][]int // ppid -> indexes in all
}

func newSnapshot(all []proc.Info) *snapshot {
	s := &snapshot{all: all, byPid: make(map[int]int, len(all)), children: make(map[int][]int)}
	for i := range all {
		s.byPid[all[i].Pid] = i
		s.children[all[i].PPid] = append(s.children[all[i].PPid], i)
	}
	return s
}

// get returns the process with pid.
func (s *snapshot) get(pid int) (*proc.Info, bool) {
	i, ok := s.byPid[pid]
	if !ok {
		return nil, false
	}
	return &s.all[i], true
}

// descendants returns every descendant of pid, parents first.
func (s *snapshot) descendants(pid int) []proc.ID {
	var out []proc.ID
	queue := s.children[pid]
	for len(queue) > 0 {
		i := queue[0]
		queue = queue[1:]
		if s.all[i].Pid == pid {
			continue // pid 0's "parent" is itself
		}
		out = append(out, s.all[i].ID)
		queue = append(queue[:len(queue):len(queue)], s.children[s.all[i].Pid]...)
	}
	return out
}
