package engine

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pcheck/pcheck/checker/message"
	"github.com/pcheck/pcheck/checker/proc"
	"github.com/pcheck/pcheck/checker/stall/stalltest"
	"github.com/pcheck/pcheck/pfile"
)

// The test binary re-executes itself as the monitored service:
// ENGINE_TEST_HELPER selects what it does. Its argv is
// [binary, "helper", tag] so that a Matcher with Args=tag finds it.
const helperEnv = "ENGINE_TEST_HELPER"

func TestMain(m *testing.M) {
	stalltest.Serve() // the web services of the stall tests
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "sleep":
		// A daemon: its own session (and so process group), a pid
		// file when asked, then idle until killed.
		syscall.Setsid()
		writePidFile()
		idle()
	case "leader":
		// A group leader with a child in its group; the child's pid
		// goes to CHILD_PIDFILE. CHILD_MODE=spin makes the child burn
		// CPU.
		syscall.Setsid()
		child := exec.Command(os.Args[0], "child", os.Getenv("CHILD_TAG"))
		child.Env = append(os.Environ(), helperEnv+"="+cmp.Or(os.Getenv("CHILD_MODE"), "child"))
		if err := child.Start(); err != nil {
			os.Exit(1)
		}
		os.WriteFile(os.Getenv("CHILD_PIDFILE"), []byte(strconv.Itoa(child.Process.Pid)), 0o644)
		idle()
	case "parent":
		// A parent that never reaps: its child, the watched process
		// (tag in CHILD_TAG), stays a zombie when killed.
		syscall.Setsid()
		child := exec.Command(os.Args[0], "helper", os.Getenv("CHILD_TAG"))
		child.Env = append(os.Environ(), helperEnv+"=child")
		if err := child.Start(); err != nil {
			os.Exit(1)
		}
		idle()
	case "child":
		idle()
	case "grow":
		// A daemon whose resident memory grows (resource_test.go).
		syscall.Setsid()
		grow()
	case "spin":
		//lint:ignore SA5002 the child burns CPU: TestUsage counts it
		for {
		}
	case "stamp":
		// The benchmark's restart script: report CLOCK_MONOTONIC at
		// exec to the socket in STAMP_SOCKET, then exit.
		stamp()
	}
	os.Exit(0)
}

func idle() {
	for {
		time.Sleep(time.Hour)
	}
}

func writePidFile() {
	if f := os.Getenv("HELPER_PIDFILE"); f != "" {
		os.WriteFile(f, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
	}
}

func stamp() {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	conn, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM, 0)
	if err != nil {
		os.Exit(1)
	}
	unix.Sendto(conn, []byte(strconv.FormatInt(ts.Nano(), 10)), 0, &unix.SockaddrUnix{Name: os.Getenv("STAMP_SOCKET")})
}

// bin is the test binary, the target of every test entry.
var bin = func() string {
	p, err := os.Executable()
	if err != nil {
		panic(err)
	}
	p, _ = filepath.EvalSymlinks(p)
	return p
}()

// tagFor returns a tag unique to the test and this run.
func tagFor(t testing.TB, suffix string) string {
	name := regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "-")
	return fmt.Sprintf("pcheck-engine-%d-%s-%s", os.Getpid(), name, suffix)
}

// killTagged kills every process whose command line holds tag: only the
// processes this test started, directly or through its scripts.
func killTagged(tag string) {
	all, err := proc.Scan()
	if err != nil {
		return
	}
	for _, p := range all {
		if strings.Contains(strings.Join(p.Argv, " "), tag) {
			proc.Signal(p.ID, unix.SIGKILL)
		}
	}
}

// fixture is a directory with a restart script for one tag.
type fixture struct {
	t      testing.TB
	dir    string
	tag    string
	script string // the restart script
	calls  string // where the script records its argv and environment
}

// newFixture writes a restart script that records its call and, unless
// body is given, starts the helper as a daemon. The script body may use
// $BIN, $TAG, $CALLS and $DIR.
func newFixture(t testing.TB, suffix, body string) *fixture {
	t.Helper()
	f := &fixture{t: t, dir: t.TempDir(), tag: tagFor(t, suffix)}
	f.calls = filepath.Join(f.dir, "calls")
	if body == "" {
		body = startHelper
	}
	f.script = writeScript(t, f.dir, "restart.sh", fmt.Sprintf(`BIN='%s'
TAG='%s'
CALLS='%s'
DIR='%s'
echo "$1|$2|$3|$PCHECK_PROCESS|$PCHECK_PID|$PCHECK_REASON|$PCHECK_ATTEMPT|$PCHECK_PFILE" >> "$CALLS"
%s
`, bin, f.tag, f.calls, f.dir, body))
	t.Cleanup(func() { killTagged(f.tag) })
	return f
}

// startHelper is the usual restart script body: start the helper daemon.
const startHelper = `ENGINE_TEST_HELPER=sleep "$BIN" helper "$TAG" </dev/null >/dev/null 2>&1 &`

func writeScript(t testing.TB, dir, name, body string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// process returns a process entry watching this fixture's helper.
func (f *fixture) process() *pfile.Process {
	return &pfile.Process{
		Name:    bin,
		Script:  f.script,
		Args:    f.tag,
		Count:   1,
		Retry:   3,
		Grace:   time.Hour,
		Action:  pfile.ActionContinue,
		Timeout: 5 * time.Second,
	}
}

// start runs the restart script by hand, as an operator would have
// started the service before pcheck, and returns the helper's pid.
func (f *fixture) start() int {
	f.t.Helper()
	cmd := exec.Command(f.script, "setup", "0", "setup")
	if out, err := cmd.CombinedOutput(); err != nil {
		f.t.Fatalf("starting %s: %v\n%s", f.tag, err, out)
	}
	return f.waitPid(0)
}

// waitPid waits for a helper with this tag whose pid is not old.
func (f *fixture) waitPid(old int) int {
	f.t.Helper()
	m := proc.Matcher{Target: bin, Args: f.tag, UID: -1}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		all, err := proc.Scan()
		if err != nil {
			f.t.Fatal(err)
		}
		for _, p := range m.Match(all) {
			if p.Pid != old {
				return p.Pid
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	f.t.Fatalf("no process with tag %s", f.tag)
	return 0
}

// readCalls returns the script's recorded calls, one per line.
func (f *fixture) readCalls() []string {
	b, _ := os.ReadFile(f.calls)
	s := strings.TrimSpace(string(b))
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// testParams are fast global parameters for tests.
func testParams() pfile.Params {
	p := pfile.DefaultParams()
	p.MonitorInterval = 10 * time.Second
	p.StartWait = 2 * time.Second
	p.KillWait = time.Second
	p.RestartTimeout = 5 * time.Second
	return p
}

func testFile(path string, params pfile.Params, procs ...*pfile.Process) *pfile.File {
	f := &pfile.File{Path: path, Params: params, Processes: procs}
	pfile.SetKeys(f)
	return f
}

// recorder is a Logger that keeps every message and lets tests wait for
// one.
type recorder struct {
	mu      sync.Mutex
	msgs    []message.Message
	changed chan struct{}
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{})} }

func (r *recorder) Log(m message.Message) {
	r.mu.Lock()
	r.msgs = append(r.msgs, m)
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

func (r *recorder) texts() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, len(r.msgs))
	for i, m := range r.msgs {
		out[i] = m.Text
	}
	return out
}

func (r *recorder) count(text string) int {
	n := 0
	for _, s := range r.texts() {
		if s == text {
			n++
		}
	}
	return n
}

// wait waits until text has been logged n times.
func (r *recorder) wait(t testing.TB, text string, n int) {
	t.Helper()
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		ch := r.changed
		r.mu.Unlock()
		if r.count(text) >= n {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %q (x%d); log:\n%s", text, n, strings.Join(r.texts(), "\n"))
		}
	}
}

// waitFor waits until pred holds, re-checked on every message and every
// 20 ms.
func waitFor(t testing.TB, what string, pred func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !pred() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// indexOf returns the position of text in the log, -1 when absent.
func (r *recorder) indexOf(text string) int {
	for i, s := range r.texts() {
		if s == text {
			return i
		}
	}
	return -1
}

// running is an Instance running in the background.
type running struct {
	*Instance
	cancel context.CancelFunc
	done   chan Result
}

// run starts an Instance for f and stops it at the end of the test.
func run(t testing.TB, o Options) *running {
	t.Helper()
	if o.Watcher == nil {
		w, err := proc.NewWatcher()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { w.Close() })
		o.Watcher = w
	}
	in, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return startRunning(t, in)
}

// startRunning runs in in the background until the end of the test.
func startRunning(t testing.TB, in *Instance) *running {
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Instance: in, cancel: cancel, done: make(chan Result, 1)}
	go func() { r.done <- in.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels the Instance and returns its result.
func (r *running) stop(t testing.TB) Result {
	r.cancel()
	return r.result(t)
}

func (r *running) result(t testing.TB) Result {
	t.Helper()
	select {
	case res := <-r.done:
		r.done <- res
		return res
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return")
		return 0
	}
}

// state returns the state of the first entry named like f's.
func (r *running) state(key string) ProcessStatus {
	for _, p := range r.Snapshot().Processes {
		if p.Key == key || p.Name == key {
			return p
		}
	}
	return ProcessStatus{}
}

func kill(t testing.TB, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill %d: %v", pid, err)
	}
}

// fakeClock is a Clock the test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
