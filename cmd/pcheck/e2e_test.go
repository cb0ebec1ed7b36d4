package main

// End-to-end tests of the pcheck binary: TestMain builds it, each test runs
// it on a pfile from testdata/e2e against a real syslog receiver, with the
// test binary itself playing the monitored service (E2E_ROLE=service). The
// finer scenarios run in-process-tree in checker/daemon; these check that
// the command line is wired to them.

import (
	"bytes"
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

	"github.com/pcheck/pcheck/checker/proc"
	"github.com/pcheck/pcheck/checker/syslogtest"
)

// pcheckBin is the binary under test, built by TestMain.
var pcheckBin string

func TestMain(m *testing.M) {
	if os.Getenv("E2E_ROLE") == "service" {
		syscall.Setsid()
		for {
			time.Sleep(time.Hour)
		}
	}
	dir, err := os.MkdirTemp("", "pcheck-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	pcheckBin = filepath.Join(dir, "pcheck")
	if out, err := exec.Command("go", "build", "-o", pcheckBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building pcheck: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// self is the test binary, the monitored service.
var self = func() string {
	p, _ := os.Executable()
	p, _ = filepath.EvalSymlinks(p)
	return p
}()

// e2e is one test's directory, syslog receiver and service.
type e2e struct {
	t     *testing.T
	dir   string
	log   *syslogtest.Receiver
	tag   string
	pfile string
	calls string
}

// setup copies testdata/e2e/service.pf and restart.sh for one service.
// mode is the restart script's MODE (start, nothing).
func setup(t *testing.T, mode string, retry int, action string) *e2e {
	t.Helper()
	dir := t.TempDir()
	name := regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "-")
	e := &e2e{
		t:     t,
		dir:   dir,
		log:   syslogtest.Listen(t),
		tag:   fmt.Sprintf("pcheck-e2e-%d-%s", os.Getpid(), name),
		pfile: filepath.Join(dir, "service.pf"),
		calls: filepath.Join(dir, "calls"),
	}
	script := filepath.Join(dir, "restart.sh")
	fill := strings.NewReplacer("@BIN@", self, "@TAG@", e.tag, "@CALLS@", e.calls, "@MODE@", mode,
		"@SCRIPT@", script, "@RETRY@", strconv.Itoa(retry), "@ACTION@", action)
	copyFilled(t, "../../testdata/e2e/restart.sh", script, fill, 0o755)
	copyFilled(t, "../../testdata/e2e/service.pf", e.pfile, fill, 0o644)
	t.Cleanup(func() { killTagged(e.tag) })
	return e
}

func copyFilled(t *testing.T, from, to string, r *strings.Replacer, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, []byte(r.Replace(string(b))), mode); err != nil {
		t.Fatal(err)
	}
}

// killTagged kills the processes this test started (their argv holds tag).
func killTagged(tag string) {
	all, _ := proc.Scan()
	for _, p := range all {
		if strings.Contains(strings.Join(p.Argv, " "), tag) {
			proc.Signal(p.ID, unix.SIGKILL)
		}
	}
}

// startService starts the service as an operator would before pcheck.
func (e *e2e) startService() int {
	e.t.Helper()
	cmd := exec.Command(self, "service", e.tag)
	cmd.Env = append(os.Environ(), "E2E_ROLE=service")
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go cmd.Wait()
	return cmd.Process.Pid
}

// servicePid waits for a service process other than old.
func (e *e2e) servicePid(old int) int {
	e.t.Helper()
	m := proc.Matcher{Target: self, Args: e.tag, UID: -1}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		all, _ := proc.Scan()
		for _, p := range m.Match(all) {
			if p.Pid != old {
				return p.Pid
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.t.Fatal("service not running")
	return 0
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// running is a pcheck process.
type running struct {
	cmd    *exec.Cmd
	stderr *lockedBuffer
	done   chan struct{}
}

// pcheck starts the binary with the test's state directory and syslog.
func (e *e2e) pcheck(args ...string) *running {
	e.t.Helper()
	full := append([]string{"--state-dir", filepath.Join(e.dir, "state"), "--run-dir", filepath.Join(e.dir, "run"),
		"--syslog", "unixgram:" + e.log.Addr()}, args...)
	r := &running{cmd: exec.Command(pcheckBin, full...), stderr: &lockedBuffer{}, done: make(chan struct{})}
	r.cmd.Stderr = r.stderr
	if err := r.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() { r.cmd.Wait(); close(r.done) }()
	e.t.Cleanup(func() {
		r.cmd.Process.Kill()
		<-r.done
	})
	return r
}

// status waits for the exit status.
func (r *running) status(t *testing.T) int {
	t.Helper()
	select {
	case <-r.done:
		return r.cmd.ProcessState.ExitCode()
	case <-time.After(60 * time.Second):
		t.Fatalf("pcheck did not exit; stderr:\n%s", r.stderr)
		return 0
	}
}

func (e *e2e) wait(text string) syslogtest.Line {
	e.t.Helper()
	return e.log.WaitText(e.t, text, 30*time.Second)
}

// TestKillRestartStop: the exact lines of an adoption, a death and a
// restart; SIGTERM exits 0 and leaves the service running.
func TestKillRestartStop(t *testing.T) {
	t.Parallel()
	e := setup(t, "start", 3, "continue")
	pid := e.startService()
	p := e.pcheck(e.pfile)

	l := e.wait("pcheck start. pfile='" + e.pfile + "'")
	if l.Ident != "pcheck" || l.Pid != p.cmd.Process.Pid {
		t.Fatalf("start line from %s[%d], want pcheck[%d]", l.Ident, l.Pid, p.cmd.Process.Pid)
	}
	e.wait(fmt.Sprintf("('%s' ,pid=%d) Up", self, pid))
	syscall.Kill(pid, syscall.SIGKILL)
	e.wait(fmt.Sprintf("Process ['%s',pid=%d] Down", self, pid))
	e.wait(fmt.Sprintf("Try to restart ('%s')", self))
	e.wait(fmt.Sprintf("restart script ('%s'): restarting %s (old pid %d, down)", self, self, pid))
	newPid := e.servicePid(pid)
	e.wait(fmt.Sprintf("('%s' ,pid=%d) Up", self, newPid))

	p.cmd.Process.Signal(syscall.SIGTERM)
	if st := p.status(t); st != 0 {
		t.Fatalf("exit status %d after SIGTERM; stderr:\n%s", st, p.stderr)
	}
	e.wait("pcheck stop. pfile='" + e.pfile + "'")
	if i, err := proc.Read(newPid); err != nil || i.Dead() {
		t.Fatal("SIGTERM took the service down")
	}
	b, _ := os.ReadFile(e.calls)
	if want := fmt.Sprintf("%s %d down attempt=1\n", self, pid); string(b) != want {
		t.Fatalf("restart script calls %q, want %q", b, want)
	}
}

// TestRetryOverExit: a service that never comes up ends in a retry over
// and, with action exit, exit status 3.
func TestRetryOverExit(t *testing.T) {
	t.Parallel()
	e := setup(t, "nothing", 1, "exit")
	p := e.pcheck(e.pfile)
	if st := p.status(t); st != 3 {
		t.Fatalf("exit status %d, want 3; stderr:\n%s", st, p.stderr)
	}
	e.wait(fmt.Sprintf("Set pid fail ('%s')", self))
	e.wait(fmt.Sprintf("Retry over ('%s') action=exit", self))
}

// TestBadPfile: an invalid pfile exits 2 with its error, starting nothing.
func TestBadPfile(t *testing.T) {
	t.Parallel()
	e := setup(t, "start", 3, "continue")
	bad, _ := filepath.Abs("../../testdata/e2e/bad.pf")
	p := e.pcheck(bad)
	if st := p.status(t); st != 2 {
		t.Fatalf("exit status %d, want 2", st)
	}
	want := bad + ":4:17: MonitorInterval must be at least 1, not 0"
	if !strings.Contains(p.stderr.String(), want) {
		t.Fatalf("stderr lacks %q:\n%s", want, p.stderr)
	}
	e.wait("pfile error: " + want)
	if _, err := os.Stat(filepath.Join(e.dir, "state")); !os.IsNotExist(err) {
		t.Fatal("the state directory was created")
	}
}

// TestSecondInstance: a second pcheck on the same pfile is refused with
// the pid of the first.
func TestSecondInstance(t *testing.T) {
	t.Parallel()
	e := setup(t, "start", 3, "continue")
	pid := e.startService()
	first := e.pcheck(e.pfile)
	e.wait(fmt.Sprintf("('%s' ,pid=%d) Up", self, pid))
	second := e.pcheck(e.pfile)
	if st := second.status(t); st != 1 {
		t.Fatalf("second pcheck exit status %d, want 1", st)
	}
	if want := fmt.Sprintf("pcheck pid %d", first.cmd.Process.Pid); !strings.Contains(second.stderr.String(), want) {
		t.Fatalf("refusal lacks %q:\n%s", want, second.stderr)
	}
}

// TestDaemon: -D exits 0 once the detached pcheck runs; it monitors.
func TestDaemon(t *testing.T) {
	t.Parallel()
	e := setup(t, "start", 3, "continue")
	pid := e.startService()
	p := e.pcheck("-D", e.pfile)
	if st := p.status(t); st != 0 {
		t.Fatalf("-D exit status %d; stderr:\n%s", st, p.stderr)
	}
	l := e.wait(fmt.Sprintf("('%s' ,pid=%d) Up", self, pid))
	if l.Pid == p.cmd.Process.Pid || l.Pid == 0 {
		t.Fatalf("Up logged by pid %d, want the detached pcheck", l.Pid)
	}
	t.Cleanup(func() { syscall.Kill(l.Pid, syscall.SIGKILL) })
	syscall.Kill(l.Pid, syscall.SIGTERM)
	e.wait("pcheck stop. pfile='" + e.pfile + "'")
}
