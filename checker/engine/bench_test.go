package engine

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pcheck/pcheck/checker/proc"
	"github.com/pcheck/pcheck/pfile"
)

// BenchmarkDeathToRestart measures the time from SIGKILL of a process
// pcheck did not start to the exec of its restart script, with
// MonitorInterval 10 s: the death must be noticed by event, not by the
// re-check. Each iteration is one kill; p50, p99 and max are reported.
// Run it with -benchtime=100x for the 100 kills of the issue.
//
// "reaped": the dead process's parent reaps it at once, as systemd or init
// do (the benchmark makes itself a child subreaper and reaps the victim).
// "zombie": nobody reaps it for a while, so the leftover check must scan
// /proc for the rest of its process group; the cost of that scan grows with
// the number of processes on the host.
func BenchmarkDeathToRestart(b *testing.B) {
	b.Run("reaped", func(b *testing.B) { benchDeathToRestart(b, true) })
	b.Run("zombie", func(b *testing.B) { benchDeathToRestart(b, false) })
}

func benchDeathToRestart(b *testing.B, reap bool) {
	if reap {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			b.Fatal(err)
		}
		defer unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
	}
	f := newFixture(b, "a", "")
	pid := f.start()
	p := f.process()
	p.Retry = 1 << 30
	params := testParams()
	params.MonitorInterval = 10 * time.Second

	var mu sync.Mutex
	var execAt time.Time
	execC := make(chan struct{}, 1)
	states := make(chan stateChange, 16)
	log := newRecorder()
	w, err := proc.NewWatcher()
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	in, err := New(Options{
		File: testFile("bench.pf", params, p), Log: log, Watcher: w,
		onState: func(s stateChange) {
			if s.State == StateUp {
				states <- s
			}
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	in.onExec = func() {
		mu.Lock()
		execAt = time.Now()
		mu.Unlock()
		execC <- struct{}{}
	}
	r := startRunning(b, in)
	defer r.stop(b)
	waitUp := func(want int) int {
		for {
			select {
			case s := <-states:
				if want == 0 || s.Pids[0].Pid == want {
					return s.Pids[0].Pid
				}
			case <-time.After(30 * time.Second):
				b.Fatalf("process not Up; log:\n%v", log.texts())
			}
		}
	}
	waitUp(pid)

	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		killedAt := time.Now()
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			b.Fatal(err)
		}
		if reap {
			// The victim was orphaned by its restart script and
			// handed to us, the subreaper: reap it like init would.
			go unix.Wait4(pid, nil, 0, nil)
		}
		select {
		case <-execC:
		case <-time.After(30 * time.Second):
			b.Fatal("restart script not run")
		}
		mu.Lock()
		lat = append(lat, execAt.Sub(killedAt))
		mu.Unlock()
		b.StopTimer()
		pid = waitUp(0)
		b.StartTimer()
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	// The nearest-rank percentile: of 100 kills, the 99th smallest.
	p99 := (len(lat)*99+99)/100 - 1
	b.ReportMetric(float64(lat[p99].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkIdleEntryStack reports the goroutine stack an idle Up entry
// costs once the garbage collector has shrunk it (stack-B/entry): the
// entry goroutines' stacks are most of what 1,000 idle entries cost, and
// they shrink to 4 KiB only while the frames of run and of the step an
// entry is parked in stay small (entry.go). Each iteration starts 200
// entries, waits for them Up, collects and measures.
func BenchmarkIdleEntryStack(b *testing.B) {
	const n = 200
	var perEntry float64
	for range b.N {
		f := newFixture(b, "stack", "")
		procs := make([]*pfile.Process, n)
		for i := range procs {
			tag := fmt.Sprintf("%s-%d", f.tag, i)
			cmd := exec.Command(bin, "helper", tag)
			cmd.Env = append(os.Environ(), helperEnv+"=sleep")
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			go cmd.Wait()
			p := f.process()
			p.Args = tag
			procs[i] = p
		}
		before := stackBytes()
		up := make(chan struct{}, n)
		r := run(b, Options{File: testFile("stack.pf", testParams(), procs...), Log: newRecorder(),
			onState: func(s stateChange) {
				if s.State == StateUp {
					up <- struct{}{}
				}
			}})
		for range n {
			select {
			case <-up:
			case <-time.After(30 * time.Second):
				b.Fatal("entries not Up")
			}
		}
		for range 4 { // each collection halves a stack at most
			runtime.GC()
		}
		perEntry = float64(stackBytes()-before) / n
		r.stop(b)
		killTagged(f.tag)
	}
	b.ReportMetric(perEntry, "stack-B/entry")
}

// stackBytes is the memory of every goroutine stack of the process.
func stackBytes() int64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/stacks:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64())
}
