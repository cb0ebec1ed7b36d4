// Package cleanup kills hung processes, the IEPM-BW cleanup list: every
// MonitorInterval, a process whose command line contains a pattern of the
// pfile's Cleanup lines and that has run longer than its minutes is
// terminated (SIGTERM, KillWait, SIGKILL).
//
// A process's age is measured from its start time on the boot clock
// (/proc/PID/stat against CLOCK_BOOTTIME), never from the wall clock, so
// setting the date neither spares nor condemns anything. pid 1, pcheck
// itself with its ancestors and descendants (restart scripts, checks in
// flight), and every monitored process are never touched.
package cleanup

import (
	"context"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/pcheck/pcheck/checker/message"
	"github.com/pcheck/pcheck/checker/proc"
	"github.com/pcheck/pcheck/pfile"
)

// Logger receives the Cleanup killed process messages.
type Logger interface {
	Log(message.Message)
}

// Sweeper applies one pfile's cleanup list.
type Sweeper struct {
	Rules    []pfile.Cleanup
	KillWait time.Duration
	Log      Logger
	// Protected returns the pids of all (the sweep's /proc snapshot)
	// that must never be killed: the processes of the pfile's entries.
	// They are spared with their descendants (the workers of a watched
	// master). pid 1 and pcheck's own family are always protected.
	Protected func(all []proc.Info) []int
	// Self is pcheck's pid (os.Getpid() when zero); tests set it.
	Self int
	// Uptime tells the time since boot; nil is CLOCK_BOOTTIME.
	Uptime func() (time.Duration, error)
	// Scan reads /proc; nil is proc.Scan. pcheck passes the engine's
	// shared scan (engine.Instance.Procs). The result is read only.
	Scan func() ([]proc.Info, error)
	// Terminate kills one process; nil is proc.Terminate.
	Terminate func(ctx context.Context, id proc.ID, killWait time.Duration) error

	mu      sync.Mutex
	pending map[proc.ID]bool // kills in flight, not started twice
	wg      sync.WaitGroup
}

// Victim is a process the cleanup list condemns.
type Victim struct {
	ID      proc.ID
	Pattern string
	Age     time.Duration
}

// Select returns the processes of all that match a rule and are older
// than its age, leaving out the protected ones. It only reads.
func (s *Sweeper) Select(all []proc.Info, now time.Duration) []Victim {
	if len(s.Rules) == 0 {
		return nil
	}
	protected := s.protected(all)
	var out []Victim
	for _, p := range all {
		if protected[p.Pid] || p.Dead() || len(p.Argv) == 0 {
			continue
		}
		cmdline := strings.Join(p.Argv, " ")
		age := now - p.StartTime
		for _, r := range s.Rules {
			if strings.Contains(cmdline, r.Pattern) && age > r.Age {
				out = append(out, Victim{ID: p.ID, Pattern: r.Pattern, Age: age})
				break
			}
		}
	}
	return out
}

// protected is pid 1, pcheck, its ancestors and descendants, and the
// monitored processes with their descendants.
func (s *Sweeper) protected(all []proc.Info) map[int]bool {
	self := s.Self
	if self == 0 {
		self = os.Getpid()
	}
	out := map[int]bool{1: true, self: true}
	parent := make(map[int]int, len(all))
	for _, p := range all {
		parent[p.Pid] = p.PPid
	}
	for pid := parent[self]; pid > 1 && !out[pid]; pid = parent[pid] {
		out[pid] = true
	}
	for _, d := range proc.Descendants(all, self) {
		out[d.Pid] = true
	}
	if s.Protected != nil {
		for _, pid := range s.Protected(all) {
			out[pid] = true
			for _, d := range proc.Descendants(all, pid) {
				out[d.Pid] = true
			}
		}
	}
	return out
}

// Sweep scans /proc, selects the victims and terminates each in its own
// goroutine, logging `Cleanup killed process` for each that died. It
// returns at once; a victim whose kill is still in flight is not taken
// again.
func (s *Sweeper) Sweep(ctx context.Context) error {
	if len(s.Rules) == 0 {
		return nil
	}
	scan := s.Scan
	if scan == nil {
		scan = proc.Scan
	}
	all, err := scan()
	if err != nil {
		return err
	}
	now, err := s.uptime()
	if err != nil {
		return err
	}
	terminate := s.Terminate
	if terminate == nil {
		terminate = proc.Terminate
	}
	// Read here, not in the kills: the caller may change the fields
	// before the next Sweep while kills are in flight.
	killWait, log := s.KillWait, s.Log
	for _, v := range s.Select(all, now) {
		s.mu.Lock()
		if s.pending == nil {
			s.pending = map[proc.ID]bool{}
		}
		busy := s.pending[v.ID]
		s.pending[v.ID] = true
		s.mu.Unlock()
		if busy {
			continue
		}
		s.wg.Add(1)
		go func(v Victim) {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.pending, v.ID)
				s.mu.Unlock()
			}()
			if err := terminate(ctx, v.ID, killWait); err != nil {
				log.Log(message.Warning("Cleanup could not kill process: pid= " + v.ID.String() + " : " + err.Error()))
				return
			}
			log.Log(message.CleanupKilled(v.ID.Pid, v.Pattern))
		}(v)
	}
	return nil
}

// Wait blocks until no kill is in flight (for tests and shutdown).
func (s *Sweeper) Wait() { s.wg.Wait() }

func (s *Sweeper) uptime() (time.Duration, error) {
	if s.Uptime != nil {
		return s.Uptime()
	}
	return proc.SinceBoot()
}
