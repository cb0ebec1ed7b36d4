package probe

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pcheck/pcheck/checker/proc"
	"github.com/pcheck/pcheck/pfile"
)

// startProc starts argv with extra descriptors on /dev/null and returns it
// as a tree member once it has exec'd (and, for sleep(1), sleeps: the
// kernel names the process before it closes the descriptors marked
// close-on-exec); it is killed and reaped when the test ends.
func startProc(t *testing.T, extra int, argv ...string) ProcName {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	for range extra {
		f, err := os.Open(os.DevNull)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		cmd.ExtraFiles = append(cmd.ExtraFiles, f)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		info, err := proc.Read(cmd.Process.Pid)
		if err == nil && info.Comm == argv[0] && (argv[0] != "sleep" || info.State == 'S') {
			return ProcName{Pid: info.Pid, Comm: info.Comm, Start: info.Start}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not start: %+v %v", argv[0], info, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// treeOf is a TreeFunc of fixed processes.
func treeOf(procs ...ProcName) TreeFunc {
	return func() ([]ProcName, error) { return procs, nil }
}

// resource runs one attempt of a resource probe.
func resource(t *testing.T, p Prober) Result {
	t.Helper()
	return p.Run(withTimeout(t, 30*time.Second))
}

// wantOver checks a failed attempt over the limit with its detail.
func wantOver(t *testing.T, r Result, detail string) {
	t.Helper()
	if r.OK || r.Unknown || !errors.Is(r.Err, ErrOverLimit) || r.Detail != detail {
		t.Errorf("got OK=%v Unknown=%v Err=%v Detail=%q, want over the limit with %q", r.OK, r.Unknown, r.Err, r.Detail, detail)
	}
}

// wantOK checks a successful attempt with its measure.
func wantOK(t *testing.T, r Result, usage int64, detail string) {
	t.Helper()
	if !r.OK || r.Usage != usage || r.Detail != detail {
		t.Errorf("got OK=%v Usage=%d Detail=%q Err=%v, want OK with %d, %q", r.OK, r.Usage, r.Detail, r.Err, usage, detail)
	}
}

// TestResourceFDsThreadsChildren: the descriptors, threads and children
// of a tree of real sleep(1) processes are summed over it; a measure equal
// to the limit is within it, one above is not.
func TestResourceFDsThreadsChildren(t *testing.T) {
	t.Parallel()
	a, b, c := startProc(t, 5, "sleep", "3600"), startProc(t, 0, "sleep", "3600"), startProc(t, 0, "sleep", "3600")
	u, err := proc.ReadUsage(b.Pid)
	if err != nil {
		t.Fatal(err)
	}
	tree := treeOf(a, b, c)
	fds := int64(3*u.FDs + 5)
	n := strconv.FormatInt(fds, 10)
	count := func(v int64) pfile.Limit { return pfile.Limit{Value: v} }
	wantOK(t, resource(t, Resource(pfile.MetricFDs, count(fds), tree)), fds, "fds = "+n+" : limit = "+n)
	wantOver(t, resource(t, Resource(pfile.MetricFDs, count(fds-1), tree)), "fds = "+n+" : limit = "+strconv.FormatInt(fds-1, 10))
	wantOK(t, resource(t, Resource(pfile.MetricThreads, count(3), tree)), 3, "threads = 3 : limit = 3")
	wantOver(t, resource(t, Resource(pfile.MetricThreads, count(2), tree)), "threads = 3 : limit = 2")
	wantOK(t, resource(t, Resource(pfile.MetricChildren, count(2), tree)), 2, "children = 2 : limit = 2")
	wantOver(t, resource(t, Resource(pfile.MetricChildren, count(0), tree)), "children = 2 : limit = 0")
}

// TestResourceRSS: the resident memory of a tree is the sum of its
// processes' statm resident sets, shown in the unit of the limit, rounded
// up.
func TestResourceRSS(t *testing.T) {
	t.Parallel()
	a, b := startProc(t, 0, "sleep", "3600"), startProc(t, 0, "sleep", "3600")
	sum := func() int64 {
		var n int64
		for _, p := range []ProcName{a, b} {
			u, err := proc.ReadUsage(p.Pid)
			if err != nil {
				t.Fatal(err)
			}
			n += int64(u.RSS)
		}
		return n
	}
	// A sleep(1) just started may still be faulting pages in: wait for
	// its resident set to hold still.
	want := sum()
	deadline := time.Now().Add(30 * time.Second)
	for {
		time.Sleep(20 * time.Millisecond)
		if n := sum(); n == want {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("resident set still moving: %d, %d", want, n)
		} else {
			want = n
		}
	}
	tree := treeOf(a, b)
	kib := (want + 1023) / 1024
	r := resource(t, Resource(pfile.MetricRSS, pfile.Limit{Value: 1 << 30, Suffix: "G"}, tree))
	wantOK(t, r, want, "rss = 1G : limit = 1G")
	r = resource(t, Resource(pfile.MetricRSS, pfile.Limit{Value: 1 << 10, Suffix: "K"}, tree))
	wantOver(t, r, "rss = "+strconv.FormatInt(kib, 10)+"K : limit = 1K")
	if r.Usage != want {
		t.Errorf("Usage %d, want %d", r.Usage, want)
	}
	r = resource(t, Resource(pfile.MetricRSS, pfile.Limit{Value: 4096}, tree))
	wantOver(t, r, "rss = "+strconv.FormatInt(want, 10)+" : limit = 4096")
}

// TestResourceCPU: the first attempt on a tree only takes a sample; then a
// spinning process is over 1% of a core and an idle one is not. A new
// main process (a restart) starts with a sample again.
func TestResourceCPU(t *testing.T) {
	t.Parallel()
	spin, idle := startProc(t, 0, "sh", "-c", "while :; do :; done"), startProc(t, 0, "sleep", "3600")
	limit := pfile.Limit{Value: 1, Suffix: "%"}
	busy, calm := Resource(pfile.MetricCPU, limit, treeOf(spin)), Resource(pfile.MetricCPU, limit, treeOf(idle))
	wantOK(t, resource(t, busy), 0, "cpu: first sample taken")
	wantOK(t, resource(t, calm), 0, "cpu: first sample taken")
	// Spin for at least five clock ticks of processor time.
	deadline := time.Now().Add(30 * time.Second)
	for {
		u, err := proc.ReadUsage(spin.Pid)
		if err != nil {
			t.Fatal(err)
		}
		if u.CPU >= 50*time.Millisecond {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the spinning process got no processor time")
		}
		time.Sleep(10 * time.Millisecond)
	}
	r := resource(t, busy)
	if r.OK || !errors.Is(r.Err, ErrOverLimit) || r.Usage < 2 || !strings.HasPrefix(r.Detail, "cpu = ") || !strings.HasSuffix(r.Detail, "% : limit = 1%") {
		t.Errorf("spinning: OK=%v Usage=%d Detail=%q Err=%v, want over 1%%", r.OK, r.Usage, r.Detail, r.Err)
	}
	wantOK(t, resource(t, calm), 0, "cpu = 0% : limit = 1%")

	restarted := startProc(t, 0, "sleep", "3600")
	p := busy.(*resourceProber)
	p.tree = treeOf(restarted, spin)
	wantOK(t, resource(t, busy), 0, "cpu: first sample taken")
}

// TestResourceGoneAndUnknown: a process of the tree that has exited, or
// whose pid has another start time, is left out; a tree that cannot be
// read makes the attempt Unknown, and so does no main process nothing.
func TestResourceGoneAndUnknown(t *testing.T) {
	t.Parallel()
	live := startProc(t, 0, "sleep", "3600")
	done := exec.Command("true")
	if err := done.Run(); err != nil {
		t.Fatal(err)
	}
	reused := live
	reused.Start++
	for _, m := range []pfile.Metric{pfile.MetricThreads, pfile.MetricFDs} {
		r := resource(t, Resource(m, pfile.Limit{Value: 1 << 20}, treeOf(live, ProcName{Pid: done.Process.Pid})))
		if !r.OK || r.Unknown || r.Usage == 0 {
			t.Errorf("%s with a gone pid: %+v, want OK, the live one measured", m, r)
		}
	}
	if r := resource(t, Resource(pfile.MetricThreads, pfile.Limit{Value: 1}, treeOf(live, reused))); !r.OK || r.Usage != 1 {
		t.Errorf("threads with a reused pid: %+v, want 1 thread", r)
	}
	broken := func() ([]ProcName, error) { return nil, errors.New("scan failed") }
	if r := resource(t, Resource(pfile.MetricRSS, pfile.Limit{Value: 1}, broken)); !r.Unknown || r.OK {
		t.Errorf("unreadable tree: %+v, want Unknown", r)
	}
	if r := resource(t, Resource(pfile.MetricRSS, pfile.Limit{Value: 1}, treeOf())); !r.OK || r.Unknown {
		t.Errorf("empty tree: %+v, want OK (nothing to measure)", r)
	}
}

// TestResourceCPUReapedChild: a child that burned processor time, died
// and was reaped by its parent (a prefork server recycling a worker) is
// not counted twice: once while it ran, again when the kernel adds its
// time to the parent's cutime. It used to read as a spike of the child's
// whole time over one interval, a stall of a healthy server.
func TestResourceCPUReapedChild(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// The parent starts a spinning child, then waits on the fifo before
	// it reaps the child: the test decides when the time moves.
	parent := startProc(t, 0, "sh", "-c", fmt.Sprintf(`while :; do :; done & echo $! > '%s/child'; read x < '%s'; wait; sleep 3600`, dir, fifo))
	var child ProcName
	waitUntil(t, "the child's pid", func() bool {
		b, err := os.ReadFile(filepath.Join(dir, "child"))
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid == 0 {
			return false
		}
		u, err := proc.ReadUsage(pid)
		child = ProcName{Pid: pid, Start: u.Start}
		return err == nil
	})
	t.Cleanup(func() { syscall.Kill(child.Pid, syscall.SIGKILL) })
	waitUntil(t, "the child to burn 300 ms", func() bool {
		u, err := proc.ReadUsage(child.Pid)
		return err == nil && u.CPU >= 300*time.Millisecond
	})
	p := Resource(pfile.MetricCPU, pfile.Limit{Value: 150, Suffix: "%"}, treeOf(parent, child)).(*resourceProber)
	wantOK(t, resource(t, p), 0, "cpu: first sample taken")

	// The child dies: a zombie, out of the tree (as the stall monitor's
	// tree leaves out the dead), its time not yet the parent's.
	if err := syscall.Kill(child.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the child a zombie", func() bool {
		i, err := proc.Read(child.Pid)
		return err == nil && i.Dead()
	})
	p.tree = treeOf(parent)
	if r := resource(t, p); !r.OK {
		t.Fatalf("with the child dead: %+v", r)
	}
	// The parent reaps it: its cutime takes the child's time at once.
	f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("go\n")
	f.Close()
	waitUntil(t, "the parent to reap the child", func() bool {
		u, err := proc.ReadUsage(parent.Pid)
		return err == nil && u.ChildCPU >= 300*time.Millisecond
	})
	if r := resource(t, p); !r.OK || r.Usage > 150 {
		t.Fatalf("after the reap: OK=%v Usage=%d Detail=%q, want the parent's own use, not the child's time again", r.OK, r.Usage, r.Detail)
	}
}

// waitUntil polls cond until it holds, failing the test after 30 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
