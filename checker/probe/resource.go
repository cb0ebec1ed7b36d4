package probe

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/pcheck/pcheck/checker/proc"
	"github.com/pcheck/pcheck/pfile"
)

// resourceProber measures what a process tree uses against a limit.
type resourceProber struct {
	metric pfile.Metric
	limit  pfile.Limit
	tree   TreeFunc

	mu   sync.Mutex
	last cpuSample // cpu: the previous attempt's sample
}

// cpuSample is the processor time each process of a tree had used at a
// moment (utime+stime, by pid and start time), and whose tree it was (the
// identity of its main process).
type cpuSample struct {
	pid   int
	start uint64
	procs map[proc.ID]time.Duration
	at    time.Time
}

// Resource returns the _bi_resource probe: the metric summed over tree()
// (the monitored process first, then its descendants; for children, the
// descendants alone follow the first) must not be above limit. rss, cpu,
// threads and fds come from /proc/PID/stat, statm and fd
// (proc.ReadUsage), children from the tree itself. cpu is
// the processor time the tree used since the previous attempt, in percent
// of one core: the first attempt on a tree (a new main process) only
// takes a sample and succeeds. It is counted per process, over the
// processes seen at both attempts, from each one's own time (utime and
// stime): the time of a reaped child, which the kernel adds to its
// parent's cutime at once, would otherwise count twice, a spike of
// several cores on a server recycling its workers. A process born
// between two attempts is counted from the next. Result.Usage carries the
// measure.
//
// A measure above the limit is a failure (ErrOverLimit). A process that
// exits while it is read is left out; any other /proc error, and a tree
// that cannot be listed, make the attempt Unknown. A tree without its main
// process (it has just died; the engine reports it) uses nothing.
func Resource(metric pfile.Metric, limit pfile.Limit, tree TreeFunc) Prober {
	return &resourceProber{metric: metric, limit: limit, tree: tree}
}

// Run performs one attempt.
func (p *resourceProber) Run(ctx context.Context) Result {
	start := time.Now()
	if err := ctx.Err(); err != nil {
		return failure(ctx, start, err)
	}
	procs, err := p.tree()
	if err != nil {
		return failure(ctx, start, broken(fmt.Errorf("process tree: %w", err)))
	}
	if len(procs) == 0 {
		return success(start, "no process to measure")
	}
	var value int64
	var over bool
	switch p.metric {
	case pfile.MetricChildren:
		value = int64(len(procs) - 1)
	default:
		var sum proc.Usage
		cpu := map[proc.ID]time.Duration{}
		at := time.Now()
		for _, pr := range procs {
			u, err := proc.ReadUsage(pr.Pid)
			if errors.Is(err, proc.ErrNotFound) || (err == nil && pr.Start != 0 && u.Start != pr.Start) {
				continue // gone since the tree was read
			}
			if err != nil {
				return failure(ctx, start, broken(err))
			}
			if p.metric == pfile.MetricFDs && u.FDs < 0 {
				return failure(ctx, start, broken(fmt.Errorf("proc: /proc/%d/fd cannot be read", pr.Pid)))
			}
			cpu[u.ID] = u.CPU
			sum.Threads += u.Threads
			sum.RSS += u.RSS
			sum.FDs += u.FDs
		}
		switch p.metric {
		case pfile.MetricFDs:
			value = int64(sum.FDs)
		case pfile.MetricRSS:
			value = sum.RSS
		case pfile.MetricThreads:
			value = int64(sum.Threads)
		case pfile.MetricCPU:
			pct, first := p.cpu(procs[0], cpu, at)
			if first {
				return success(start, "cpu: first sample taken")
			}
			value, over = int64(math.Ceil(pct)), pct > float64(p.limit.Value)
		}
	}
	if p.metric != pfile.MetricCPU {
		over = value > p.limit.Value
	}
	shown := fmt.Sprintf("%s = %s : limit = %s", p.metric, p.limit.Format(value), p.limit)
	if !over {
		r := success(start, shown)
		r.Usage = value
		return r
	}
	return Result{Latency: time.Since(start), Detail: clip(shown), Err: fmt.Errorf("%w: %s", ErrOverLimit, shown), Usage: value}
}

// cpu returns the processor use of the tree of main in percent of one core
// since the previous sample, from the processes' times cpu at at, which it
// takes as the next sample; first is true when there is no previous sample
// of this tree.
func (p *resourceProber) cpu(main ProcName, cpu map[proc.ID]time.Duration, at time.Time) (pct float64, first bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	last := p.last
	p.last = cpuSample{pid: main.Pid, start: main.Start, procs: cpu, at: at}
	elapsed := at.Sub(last.at)
	if last.at.IsZero() || last.pid != main.Pid || last.start != main.Start || elapsed <= 0 {
		return 0, true
	}
	var used time.Duration
	for id, t := range cpu {
		if before, ok := last.procs[id]; ok && t > before {
			used += t - before
		}
	}
	return float64(used) / float64(elapsed) * 100, false
}
