package cleanup

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pcheck/pcheck/checker/message"
	"golang.org/x/sys/unix"

	"github.com/pcheck/pcheck/checker/proc"
	"github.com/pcheck/pcheck/pfile"
)

// The test binary re-executes itself as a long-running process whose
// command line carries the test's pattern.
func TestMain(m *testing.M) {
	if os.Getenv("CLEANUP_TEST_SLEEPER") != "" {
		time.Sleep(time.Hour)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type logs struct {
	mu    sync.Mutex
	lines []string
}

func (l *logs) Log(m message.Message) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, m.Text)
}

func (l *logs) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

// sleeper starts a process whose argv contains tag and returns its info.
func sleeper(t *testing.T, tag string) (*exec.Cmd, proc.Info) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$", tag)
	cmd.Env = append(os.Environ(), "CLEANUP_TEST_SLEEPER=1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
	})
	info, err := proc.Read(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	return cmd, info
}

// waitGone waits until the child exited and was reaped.
func waitGone(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	done := make(chan struct{})
	go func() { _, _ = cmd.Process.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("pid %d still alive", cmd.Process.Pid)
	}
}

// A process that outlived its minutes is killed while a younger one with
// the same pattern survives; ages come from start times on the boot
// clock, whatever the wall clock says.
func TestOldKilledYoungSurvives(t *testing.T) {
	tag := fmt.Sprintf("pcheck-cleanup-%d", time.Now().UnixNano())
	oldCmd, old := sleeper(t, tag)
	var young proc.Info
	var youngCmd *exec.Cmd
	for deadline := time.Now().Add(5 * time.Second); ; {
		youngCmd, young = sleeper(t, tag)
		if young.StartTime > old.StartTime {
			break
		}
		// Same clock tick: try again, once this one is gone (reaped),
		// or the sweep could find it, as old as old, and kill it.
		_ = youngCmd.Process.Kill()
		_, _ = youngCmd.Process.Wait()
		if time.Now().After(deadline) {
			t.Fatal("could not start two processes with different start times")
		}
	}
	l := &logs{}
	rule := pfile.Cleanup{Pattern: tag, Age: 30 * time.Minute}
	s := &Sweeper{
		Rules: []pfile.Cleanup{rule}, KillWait: time.Second, Log: l,
		Self: 1 << 30, // not this test: its children are not pcheck's
		// The young one is exactly 30 minutes old: not older than the rule.
		Uptime: func() (time.Duration, error) { return young.StartTime + rule.Age, nil },
	}
	if err := s.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.Wait()
	waitGone(t, oldCmd)
	if _, ok := proc.Current(young.ID); !ok {
		t.Fatal("the younger process was killed")
	}
	want := fmt.Sprintf("Cleanup killed process: pid= %d : pattern = '%s'", old.Pid, tag)
	got := l.all()
	if len(got) != 1 || got[0] != want {
		t.Fatalf("messages %q, want [%q]", got, want)
	}
}

func TestProtected(t *testing.T) {
	tag := fmt.Sprintf("pcheck-cleanup-protected-%d", time.Now().UnixNano())
	_, a := sleeper(t, tag)
	_, b := sleeper(t, tag)
	rule := pfile.Cleanup{Pattern: tag, Age: time.Minute}
	all, err := proc.Scan()
	if err != nil {
		t.Fatal(err)
	}
	later := b.StartTime + time.Hour
	// pcheck's own descendants (here: this test's children) are spared.
	s := &Sweeper{Rules: []pfile.Cleanup{rule}}
	if v := s.Select(all, later); len(v) != 0 {
		t.Errorf("descendants of pcheck selected: %+v", v)
	}
	// Monitored processes are spared.
	s = &Sweeper{Rules: []pfile.Cleanup{rule}, Self: 1 << 30, Protected: func([]proc.Info) []int { return []int{a.Pid} }}
	v := s.Select(all, later)
	if len(v) != 1 || v[0].ID != b.ID {
		t.Errorf("selected %+v, want only pid %d", v, b.Pid)
	}
	// pid 1 and pcheck itself never, even when their command line matches.
	for _, p := range all {
		if p.Pid == 1 {
			s = &Sweeper{Rules: []pfile.Cleanup{{Pattern: strings.Join(p.Argv, " "), Age: 0}}, Self: os.Getpid()}
			for _, v := range s.Select(all, later) {
				if v.ID.Pid == 1 || v.ID.Pid == os.Getpid() {
					t.Errorf("selected protected pid %d", v.ID.Pid)
				}
			}
		}
	}
}

// TestProtectedTree: a monitored process is spared with its descendants:
// the worker of a watched master (here a shell running a sleeper) that
// matches a pattern is not selected.
func TestProtectedTree(t *testing.T) {
	tag := fmt.Sprintf("pcheck-cleanup-tree-%d", time.Now().UnixNano())
	master := exec.Command("/bin/sh", "-c", fmt.Sprintf("'%s' -test.run=^$ %s & wait", os.Args[0], tag))
	master.Env = append(os.Environ(), "CLEANUP_TEST_SLEEPER=1")
	if err := master.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		all, _ := proc.Scan()
		for _, d := range proc.Descendants(all, master.Process.Pid) {
			proc.Signal(d, unix.SIGKILL)
		}
		_ = master.Process.Kill()
		_, _ = master.Process.Wait()
	})
	var all []proc.Info
	var worker proc.Info
	deadline := time.Now().Add(30 * time.Second)
	for worker.Pid == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the worker did not start")
		}
		var err error
		if all, err = proc.Scan(); err != nil {
			t.Fatal(err)
		}
		for _, d := range proc.Descendants(all, master.Process.Pid) {
			if p, err := proc.Read(d.Pid); err == nil && strings.Contains(strings.Join(p.Argv, " "), tag) {
				worker = p
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	s := &Sweeper{Rules: []pfile.Cleanup{{Pattern: tag, Age: time.Minute}}, Self: 1 << 30,
		Protected: func([]proc.Info) []int { return []int{master.Process.Pid} }}
	for _, v := range s.Select(all, worker.StartTime+time.Hour) {
		t.Errorf("selected pid %d of the watched master's tree (worker %d)", v.ID.Pid, worker.Pid)
	}
}

func TestBootTime(t *testing.T) {
	a, err := proc.SinceBoot()
	if err != nil {
		t.Fatal(err)
	}
	self, err := proc.Read(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if a <= 0 || self.StartTime > a {
		t.Errorf("boot time %v, this process started at %v", a, self.StartTime)
	}
}

// TestSweepWhileRulesChange: the daemon sets Rules and KillWait before each
// sweep while kills of the previous one may still run; the kills must not
// read those fields (go test -race finds it if they do).
func TestSweepWhileRulesChange(t *testing.T) {
	tag := fmt.Sprintf("pcheck-cleanup-race-%d", time.Now().UnixNano())
	_, victim := sleeper(t, tag)
	release := make(chan struct{})
	started := make(chan struct{})
	s := &Sweeper{
		Rules: []pfile.Cleanup{{Pattern: tag, Age: time.Minute}}, KillWait: time.Second, Log: &logs{},
		Self:   1 << 30,
		Uptime: func() (time.Duration, error) { return victim.StartTime + time.Hour, nil },
		Terminate: func(ctx context.Context, id proc.ID, killWait time.Duration) error {
			close(started)
			<-release
			return proc.Terminate(ctx, id, killWait)
		},
	}
	if err := s.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-started
	s.Rules, s.KillWait = nil, 2*time.Second // what daemon/cleanup.go does between sweeps
	close(release)
	s.Wait()
	if _, ok := proc.Current(victim.ID); ok {
		t.Fatal("the victim survived")
	}
}
