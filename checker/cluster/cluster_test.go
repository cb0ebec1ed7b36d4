package cluster

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pcheck/pcheck/checker/engine"
	"github.com/pcheck/pcheck/checker/message"
	"github.com/pcheck/pcheck/checker/state"
	"github.com/pcheck/pcheck/pfile"
)

type recLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *recLog) Log(m message.Message) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, m.Text)
}

func (l *recLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

// programs puts recording crm_resource and attrd_updater (mode perm) in a
// directory that becomes PATH; each run appends its argv to calls.
func programs(t *testing.T, perm os.FileMode) (calls string) {
	t.Helper()
	dir := t.TempDir()
	calls = filepath.Join(dir, "calls")
	for _, name := range []string{crmResource, attrdUpdater} {
		text := "#!/bin/sh\necho \"" + name + " $*\" >>" + calls + "\necho " + name + " said hello\n"
		syscall.ForkLock.Lock()
		err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o755)
		if err == nil {
			err = os.Chmod(filepath.Join(dir, name), perm)
		}
		syscall.ForkLock.Unlock()
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir)
	return calls
}

func newTest(p pfile.Params, env map[string]string, states func() []engine.State) (*Cluster, *recLog) {
	l := &recLog{}
	c := New(Options{
		Params: func() pfile.Params { return p },
		States: states,
		Log:    l,
		Getenv: func(k string) string { return env[k] },
	})
	return c, l
}

func readCalls(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// TestRetryOverFailsTheResource: with ClusterNotify pacemaker and the
// agent's environment, a retry over sets the health attribute red and
// runs crm_resource --fail for the resource on the node; what they print
// is logged.
func TestRetryOverFailsTheResource(t *testing.T) {
	calls := programs(t, 0o755)
	p := pfile.DefaultParams()
	p.ClusterNotify, p.ClusterHealthAttribute = pfile.ClusterPacemaker, "#health-pcheck"
	c, l := newTest(p, map[string]string{EnvResource: "pc1", EnvNode: "node1"}, nil)
	if !c.FromAgent() {
		t.Fatal("FromAgent false with OCF_RESOURCE_INSTANCE set")
	}
	c.RetryOver(context.Background(), "/usr/sbin/web")
	want := []string{
		"attrd_updater --name #health-pcheck --update red --node node1",
		"crm_resource --fail --resource pc1 --node node1",
	}
	if got := readCalls(t, calls); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("commands run:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	logged := strings.Join(l.all(), "\n")
	for _, s := range []string{"crm_resource: crm_resource said hello", "cluster: resource pc1 failed on node node1 for the retry over of '/usr/sbin/web'"} {
		if !strings.Contains(logged, s) {
			t.Errorf("log lacks %q:\n%s", s, logged)
		}
	}
}

// TestWithoutAgentWarnsOnce: pcheck not started by the agent (no
// OCF_RESOURCE_INSTANCE) warns once that ClusterNotify cannot work, and a
// retry over runs nothing.
func TestWithoutAgentWarnsOnce(t *testing.T) {
	calls := programs(t, 0o755)
	p := pfile.DefaultParams()
	p.ClusterNotify = pfile.ClusterPacemaker
	c, l := newTest(p, nil, nil)
	c.RetryOver(context.Background(), "web")
	c.RetryOver(context.Background(), "web")
	if got := readCalls(t, calls); len(got) != 0 {
		t.Errorf("commands run without the agent's environment: %q", got)
	}
	want := "ClusterNotify pacemaker: OCF_RESOURCE_INSTANCE or PCHECK_CLUSTER_NODE is not set (pcheck was not started by the ocf:pcheck:pcheck agent): a retry over will not fail a cluster resource"
	if got := l.all(); len(got) != 1 || got[0] != want {
		t.Errorf("log %q, want the one warning %q", got, want)
	}
}

// TestUntrustedProgramRefused: a crm_resource that others can write is
// not run (pcheck runs it as root); the warning names it and the fix.
func TestUntrustedProgramRefused(t *testing.T) {
	calls := programs(t, 0o777)
	p := pfile.DefaultParams()
	p.ClusterNotify, p.ClusterHealthAttribute = pfile.ClusterPacemaker, "#health-pcheck"
	c, l := newTest(p, map[string]string{EnvResource: "pc1", EnvNode: "node1"}, nil)
	c.RetryOver(context.Background(), "web")
	if got := readCalls(t, calls); len(got) != 0 {
		t.Errorf("untrusted programs run: %q", got)
	}
	logged := strings.Join(l.all(), "\n")
	dir := os.Getenv("PATH")
	for _, s := range []string{
		"ClusterNotify pacemaker: cluster program " + dir + "/crm_resource is writable by group and other (mode 0777): chmod go-w " + dir + "/crm_resource",
		"ClusterHealthAttribute #health-pcheck: cluster program " + dir + "/attrd_updater is writable by group and other (mode 0777)",
	} {
		if strings.Count(logged, s) != 1 {
			t.Errorf("log does not hold %q once:\n%s", s, logged)
		}
	}
}

// TestNoClusterInstalled: without the programs, a clear warning once.
func TestNoClusterInstalled(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	p := pfile.DefaultParams()
	p.ClusterHealthAttribute = "#health-pcheck"
	c, l := newTest(p, nil, nil)
	c.RetryOver(context.Background(), "web")
	want := "ClusterHealthAttribute #health-pcheck: cluster program attrd_updater is not found in PATH " + os.Getenv("PATH") + ": the node's health is not set"
	if got := l.all(); len(got) != 1 || got[0] != want {
		t.Errorf("log %q, want %q", got, want)
	}
}

// TestHealthFollowsStates: Run sets green when every entry is Up, red
// while one is in RetryOver, leaves it while one is being restarted, and
// runs attrd_updater only when the value changes.
func TestHealthFollowsStates(t *testing.T) {
	calls := programs(t, 0o755)
	p := pfile.DefaultParams()
	p.ClusterHealthAttribute = "#health-pcheck"
	var mu sync.Mutex
	states := []engine.State{engine.StateDown, engine.StateUp}
	c, _ := newTest(p, nil, func() []engine.State {
		mu.Lock()
		defer mu.Unlock()
		return append([]engine.State(nil), states...)
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	defer func() { cancel(); <-done }()

	step := func(s []engine.State, want ...string) {
		t.Helper()
		mu.Lock()
		states = s
		mu.Unlock()
		c.Event(engine.Event{})
		deadline := time.Now().Add(10 * time.Second)
		for {
			got := readCalls(t, calls)
			if strings.Join(got, "\n") == strings.Join(want, "\n") {
				return
			}
			if time.Now().After(deadline) || len(got) > len(want) {
				t.Fatalf("after %v: commands %q, want %q", s, got, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	green := "attrd_updater --name #health-pcheck --update green"
	red := "attrd_updater --name #health-pcheck --update red"
	step([]engine.State{engine.StateDown, engine.StateUp})
	step([]engine.State{engine.StateUp, engine.StateUp}, green)
	step([]engine.State{engine.StateUp, engine.StateUp}, green)
	step([]engine.State{engine.StateRestarting, engine.StateUp}, green)
	step([]engine.State{engine.StateRetryOver, engine.StateUp}, green, red)
	step([]engine.State{engine.StateUp, engine.StateUp}, green, red, green)
}

// TestExitRecord: the record the agent reads names the pfile by its
// absolute path, the status and the process.
func TestExitRecord(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 12, 1, 23, 40, 0, 0, time.UTC)
	if err := WriteExitRecord(dir, "/etc/pcheck/web.pfile", "/usr/sbin/apache2", 3, now); err != nil {
		t.Fatal(err)
	}
	recs, _ := filepath.Glob(filepath.Join(dir, "*"+ExitSuffix))
	if len(recs) != 1 {
		t.Fatalf("records %v", recs)
	}
	b, _ := os.ReadFile(recs[0])
	want := "pfile /etc/pcheck/web.pfile\nstatus 3\nprocess '/usr/sbin/apache2'\ntime 2026-12-01T23:40:00Z\n"
	if string(b) != want {
		t.Errorf("record:\n%s\nwant:\n%s", b, want)
	}
	if filepath.Base(recs[0]) != state.Name("/etc/pcheck/web.pfile")+ExitSuffix {
		t.Errorf("record name %s, want the state name of the pfile", recs[0])
	}
}
