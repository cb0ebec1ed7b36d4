package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/pcheck/pcheck/checker/message"
	"github.com/pcheck/pcheck/checker/proc"
)

// TestUsage: an Up entry's Snapshot carries the figures of its process
// and its tree, read from /proc: the child a watched leader started is
// counted, and so is the CPU it burns (the leader itself idles); the CPU
// percent is measured over the interval between reads, and two reads
// closer than cpuInterval share one figure. An entry not Up has none.
func TestUsage(t *testing.T) {
	f := newFixture(t, "a", "")
	childPidFile := filepath.Join(f.dir, "child.pid")
	writeScript(t, f.dir, "leader.sh", fmt.Sprintf(`ENGINE_TEST_HELPER=leader CHILD_MODE=spin CHILD_TAG='%s-child' CHILD_PIDFILE='%s' '%s' helper '%s' </dev/null >/dev/null 2>&1 &`, f.tag, childPidFile, bin, f.tag))
	if out, err := execScript(filepath.Join(f.dir, "leader.sh")); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	pid := f.waitPid(0)
	var child int
	waitFor(t, "the child's pid file", func() bool {
		b, err := os.ReadFile(childPidFile)
		child, _ = strconv.Atoi(string(b))
		return err == nil && child > 0
	})
	log := newRecorder()
	r := run(t, Options{File: testFile("x.pf", testParams(), f.process()), Log: log})
	log.wait(t, message.Up(bin, pid).Text, 1)
	key := f.process().BaseKey()

	leader, err := proc.ReadUsage(pid)
	if err != nil {
		t.Fatal(err)
	}
	first := r.state(key).Usage
	if first == nil {
		t.Fatalf("no usage for the Up entry: %+v", r.state(key))
	}
	boot, _ := proc.SinceBoot()
	started := time.Now().Add(leader.StartTime - boot)
	if first.Children != 1 || first.Threads < 2 || first.RSSBytes < leader.RSS || first.FDs < leader.FDs ||
		first.Started.Sub(started).Abs() > 50*time.Millisecond {
		t.Fatalf("usage %+v; the leader alone: %+v, started %v", first, leader, started)
	}
	// Within cpuInterval of the first read the figure stays.
	if again := r.state(key).Usage; again.CPUPercent != first.CPUPercent {
		t.Fatalf("two reads at once: CPU %v%% then %v%%", first.CPUPercent, again.CPUPercent)
	}
	// The spinning child keeps about one CPU busy (on a loaded machine
	// less: a quarter is the bound), and its time is the tree's.
	var second *Usage
	waitFor(t, "a CPU figure over an interval", func() bool {
		second = r.state(key).Usage
		return second.CPUPercent != first.CPUPercent
	})
	if second.CPUSeconds <= first.CPUSeconds || second.CPUPercent < 25 {
		t.Fatalf("cpu %vs (was %vs), %v%% (was %v%%)", second.CPUSeconds, first.CPUSeconds, second.CPUPercent, first.CPUPercent)
	}
	if lead, _ := proc.ReadUsage(pid); lead.CPU+lead.ChildCPU >= time.Duration(second.CPUSeconds*float64(time.Second))/2 {
		t.Fatalf("the leader used %v of the tree's %vs: the child's time is not counted", lead.CPU, second.CPUSeconds)
	}

	if err := r.Pause(key); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "paused", func() bool { return r.state(key).State == StatePaused })
	if u := r.state(key).Usage; u != nil {
		t.Fatalf("a Paused entry has usage %+v", u)
	}
}
