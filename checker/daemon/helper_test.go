package daemon

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
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

// The test binary re-executes itself in two roles (DAEMON_TEST_ROLE):
// "pcheck", a real pcheck process around Run, and "service", the monitored
// daemon, whose argv [binary, "service", tag] a process entry with
// args="tag" matches.
const roleEnv = "DAEMON_TEST_ROLE"

func TestMain(m *testing.M) {
	switch os.Getenv(roleEnv) {
	case "":
		os.Exit(m.Run())
	case "pcheck":
		os.Exit(pcheckMain(os.Args[1:]))
	case "service":
		syscall.Setsid()
		if f := os.Getenv("SERVICE_PIDFILE"); f != "" {
			os.WriteFile(f, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
		}
		idle()
	case "chatty":
		// A service that writes to its stdout, as daemons started
		// without redirection do, and records each write it survived.
		syscall.Setsid()
		for i := 0; ; i++ {
			fmt.Println("chatty service line", i)
			os.WriteFile(os.Getenv("CHATTY_COUNT"), []byte(strconv.Itoa(i)+"\n"), 0o644)
			time.Sleep(20 * time.Millisecond)
		}
	case "stubborn":
		// A service with a child in its process group that ignores
		// SIGTERM: killing what is left of it takes KillWait.
		syscall.Setsid()
		child := exec.Command(os.Args[0], "stubborn-child", os.Getenv("CHILD_TAG"))
		child.Env = append(os.Environ(), roleEnv+"=stubborn-child")
		if child.Start() != nil {
			os.Exit(1)
		}
		idle()
	case "stubborn-child":
		signal.Ignore(syscall.SIGTERM)
		idle()
	case "parent":
		// Starts the service and never reaps it: killed, it stays a
		// zombie.
		syscall.Setsid()
		child := exec.Command(os.Args[0], "service", os.Getenv("CHILD_TAG"))
		child.Env = append(os.Environ(), roleEnv+"=service")
		if child.Start() != nil {
			os.Exit(1)
		}
		idle()
	}
	os.Exit(0)
}

func idle() {
	for {
		time.Sleep(time.Hour)
	}
}

// failReloadEnv names the reload step at which the pcheck a test runs
// fails (failReload).
const failReloadEnv = "DAEMON_TEST_FAIL_RELOAD"

// pcheckMain is a minimal pcheck command line around Run (the real one is
// cmd/pcheck).
func pcheckMain(args []string) int {
	var o Options
	var syslogAddr string
	fs := flag.NewFlagSet("pcheck", flag.ContinueOnError)
	fs.BoolVar(&o.Daemonize, "D", false, "")
	fs.BoolVar(&o.Force, "force", false, "")
	fs.BoolVar(&o.Watch, "watch", false, "")
	fs.StringVar(&o.StateDir, "state-dir", "", "")
	fs.StringVar(&o.RunDir, "run-dir", "", "")
	fs.StringVar(&syslogAddr, "syslog", "", "")
	if err := fs.Parse(args); err != nil {
		return ExitInvalid
	}
	o.Pfiles = fs.Args()
	if syslogAddr != "" {
		o.SyslogNetwork, o.SyslogAddr, _ = strings.Cut(syslogAddr, ":")
	}
	if at := os.Getenv(failReloadEnv); at != "" {
		failReload = func(step string) error {
			if step == at {
				return fmt.Errorf("injected failure at %s", step)
			}
			return nil
		}
	}
	return Run(context.Background(), o)
}

// bin is the test binary: the target of every test entry.
var bin = func() string {
	p, err := os.Executable()
	if err != nil {
		panic(err)
	}
	p, _ = filepath.EvalSymlinks(p)
	return p
}()

func tagFor(t testing.TB, suffix string) string {
	name := regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "-")
	return fmt.Sprintf("pcheck-daemon-%d-%s-%s", os.Getpid(), name, suffix)
}

// killTagged kills the processes whose command line holds tag: those this
// test started, directly or through its restart scripts.
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

// service is one monitored service: a tag and a restart script.
type service struct {
	t      testing.TB
	tag    string
	script string
	calls  string
}

// startService is the restart script body that starts the service.
const startService = `DAEMON_TEST_ROLE=service "$BIN" service "$TAG" </dev/null >/dev/null 2>&1 &`

// newService writes a restart script into dir; body "" starts the service.
func newService(t testing.TB, dir, suffix, body string) *service {
	t.Helper()
	s := &service{t: t, tag: tagFor(t, suffix)}
	s.calls = filepath.Join(dir, suffix+".calls")
	s.script = filepath.Join(dir, suffix+".sh")
	if body == "" {
		body = startService
	}
	text := fmt.Sprintf("#!/bin/sh\nBIN='%s'\nTAG='%s'\necho \"$3\" >> '%s'\n%s\n", bin, s.tag, s.calls, body)
	writeExecutable(t, s.script, text)
	t.Cleanup(func() { killTagged(s.tag) })
	return s
}

// entry is the pfile line of the service.
func (s *service) entry(opts string) string {
	return fmt.Sprintf("%s %s args=\"%s\" %s\n", bin, s.script, s.tag, opts)
}

// start runs the restart script by hand and returns the service's pid.
func (s *service) start() int {
	s.t.Helper()
	if out, err := exec.Command(s.script, "x", "0", "setup").CombinedOutput(); err != nil {
		s.t.Fatalf("%v\n%s", err, out)
	}
	return s.waitPid(0)
}

// waitPid waits for a live service process other than old.
func (s *service) waitPid(old int) int {
	s.t.Helper()
	m := proc.Matcher{Target: bin, Args: s.tag, UID: -1}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		all, err := proc.Scan()
		if err != nil {
			s.t.Fatal(err)
		}
		for _, p := range m.Match(all) {
			if p.Pid != old {
				return p.Pid
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.t.Fatalf("service %s did not start", s.tag)
	return 0
}

// calls returns the reasons the script was called with, one per run.
func (s *service) callReasons() []string {
	b, _ := os.ReadFile(s.calls)
	return strings.Fields(string(b))
}

// pfileHead are fast global parameters for tests.
const pfileHead = `MonitorInterval 10
StartWait 1
KillWait 1
RestartTimeout 3
`

func writeFile(t testing.TB, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// pcheck is a pcheck process under test.
type pcheck struct {
	t      testing.TB
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan struct{}
	status int
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// env is a test's pcheck environment: state directory and syslog.
type env struct {
	t     testing.TB
	dir   string
	state string
	log   *syslogtest.Receiver
}

func newEnv(t testing.TB) *env {
	dir := t.TempDir()
	return &env{t: t, dir: dir, state: filepath.Join(dir, "state"), log: syslogtest.Listen(t)}
}

// start starts pcheck with the env's state directory and syslog.
func (e *env) start(extraEnv []string, args ...string) *pcheck {
	e.t.Helper()
	full := append([]string{"--state-dir", e.state, "--syslog", "unixgram:" + e.log.Addr()}, args...)
	cmd := exec.Command(bin, full...)
	cmd.Env = append(append(os.Environ(), roleEnv+"=pcheck"), extraEnv...)
	p := &pcheck{t: e.t, cmd: cmd, stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() {
		err := cmd.Wait()
		p.status = cmd.ProcessState.ExitCode()
		if err != nil && p.status == 0 {
			p.status = -1
		}
		close(p.done)
	}()
	e.t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// wait returns pcheck's exit status.
func (p *pcheck) wait() int {
	p.t.Helper()
	select {
	case <-p.done:
		return p.status
	case <-time.After(60 * time.Second):
		p.t.Fatalf("pcheck did not exit; stderr:\n%s", p.stderr)
		return 0
	}
}

func (p *pcheck) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
}

func (p *pcheck) pid() int { return p.cmd.Process.Pid }

// stop sends sig (SIGTERM, SIGINT) and wants pcheck to exit 0.
func (p *pcheck) stop(t testing.TB, sig syscall.Signal) {
	t.Helper()
	p.signal(sig)
	if st := p.wait(); st != 0 {
		t.Fatalf("exit status after %v = %d, want 0; stderr:\n%s", sig, st, p.stderr)
	}
}

// wait waits for a syslog line with exactly text.
func (e *env) wait(text string) syslogtest.Line {
	e.t.Helper()
	return e.log.WaitText(e.t, text, 30*time.Second)
}

// count returns how many lines have exactly text.
func (e *env) count(text string) int {
	n := 0
	for _, l := range e.log.Lines() {
		if l.Text == text {
			n++
		}
	}
	return n
}

func alive(pid int) bool {
	i, err := proc.Read(pid)
	return err == nil && !i.Dead()
}

func execOut(path string) ([]byte, error) { return exec.Command(path).CombinedOutput() }

func unixGetsid(pid int) (int, error) { return unix.Getsid(pid) }

// newPcheckCmd is a pcheck command without the env's syslog receiver.
func newPcheckCmd(args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), roleEnv+"=pcheck")
	return cmd
}

// waitFor polls pred until it holds, failing the test after a deadline.
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

// writeExecutable writes a script the test will run itself. It holds
// syscall.ForkLock while the file is open for writing: a process forked
// meanwhile by a parallel test would hold the descriptor until its exec,
// and running the script then fails with "text file busy" (ETXTBSY).
func writeExecutable(t testing.TB, path, text string) {
	t.Helper()
	syscall.ForkLock.Lock()
	err := os.WriteFile(path, []byte(text), 0o755)
	syscall.ForkLock.Unlock()
	if err != nil {
		t.Fatal(err)
	}
}

// notifySocket binds an abstract unixgram socket for pcheck's sd_notify
// messages (NOTIFY_SOCKET=sock) and returns it with a function that reads
// the next message, failing the test when none comes within 30 s.
func notifySocket(t testing.TB, name string) (sock string, read func() string) {
	t.Helper()
	sock = fmt.Sprintf("@pcheck-daemon-test-%d-%s", os.Getpid(), name)
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return sock, func() string {
		t.Helper()
		buf := make([]byte, 256)
		conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("no notification: %v", err)
		}
		return string(buf[:n])
	}
}
