package main

// End-to-end tests of the stall monitors: the pcheck binary on pfiles made
// from testdata/e2e/stall against real web services (this test binary in
// the role of checker/stall/stalltest, selected by its environment before
// TestMain runs) and a real syslog receiver. Intervals are 1 s, failovers
// 2 to 5 s.

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pcheck/pcheck/checker/proc"
	"github.com/pcheck/pcheck/checker/stall/stalltest"
	"github.com/pcheck/pcheck/checker/syslogtest"
)

func init() { stalltest.Serve() }

const stallFixtures = "../../testdata/e2e/stall/"

// webService is one monitored web service and its restart script.
type webService struct {
	t      *testing.T
	tag    string
	svc    stalltest.Service
	script string
	calls  string
}

// newWebService prepares a service of role (http, https) answering status,
// on a free port, with a restart script from the fixtures.
func newWebService(t *testing.T, dir, name, role string, status int) *webService {
	t.Helper()
	port, err := stalltest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	s := &webService{
		t:      t,
		tag:    fmt.Sprintf("pcheck-e2e-%d-%s-%s", os.Getpid(), t.Name(), name),
		script: filepath.Join(dir, name+"-restart.sh"),
		calls:  filepath.Join(dir, name+"-calls"),
	}
	s.svc = stalltest.Service{Role: role, Port: port, Status: status, Log: filepath.Join(dir, name+"-requests")}
	fill := strings.NewReplacer("@CALLS@", s.calls, "@START@", s.svc.Script(self, s.tag))
	copyFilled(t, stallFixtures+"restart.sh", s.script, fill, 0o755)
	t.Cleanup(func() { killTagged(s.tag) })
	return s
}

// start starts the service as an operator would before pcheck.
func (s *webService) start() int {
	s.t.Helper()
	cmd := exec.Command(self, "service", s.tag)
	cmd.Env = append(os.Environ(), s.svc.Env()...)
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	go cmd.Wait()
	return cmd.Process.Pid
}

// newPid waits for the service to run with a pid other than old.
func (s *webService) newPid(old int) int {
	s.t.Helper()
	m := proc.Matcher{Target: self, Args: s.tag, UID: -1}
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
	s.t.Fatalf("service %s not running", s.tag)
	return 0
}

// entry is the service's process entry with the monitor block of the
// fixture blk, its @PORT@ defaulting to the service's port.
func (s *webService) entry(blk string, fill ...string) string {
	s.t.Helper()
	b, err := os.ReadFile(stallFixtures + blk)
	if err != nil {
		s.t.Fatal(err)
	}
	fill = append(fill, "@PORT@", strconv.Itoa(s.svc.Port), "@ERROR@", "0", "@ACTION_ERROR@", "1", "@FAILOVER@", "2", "@PATH@", "/")
	return fmt.Sprintf("%s %s args=\"%s\"\n%s", self, s.script, s.tag, strings.NewReplacer(fill...).Replace(string(b)))
}

// requests counts the requests line the service answered.
func (s *webService) requests(line string) int { return stalltest.Count(s.svc.Log, line) }

// waitRequests waits for the service to have answered n requests line.
func (s *webService) waitRequests(line string, n int) {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for s.requests(line) < n {
		if time.Now().After(deadline) {
			s.t.Fatalf("%s: %d %q requests after 30 s, want %d", s.tag, s.requests(line), line, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// get answers whether the service answers a GET with 200.
func (s *webService) get() bool {
	scheme := "http"
	client := &http.Client{Timeout: 5 * time.Second}
	if s.svc.Role == "https" {
		scheme = "https"
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	}
	resp, err := client.Get(scheme + "://127.0.0.1:" + strconv.Itoa(s.svc.Port) + "/")
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// stallSetup writes the pfile of entries with retry_over_action action.
func stallSetup(t *testing.T, dir, action string, entries ...string) *e2e {
	t.Helper()
	e := &e2e{t: t, dir: dir, log: syslogtest.Listen(t), pfile: filepath.Join(dir, "stall.pf")}
	copyFilled(t, stallFixtures+"stall.pf", e.pfile,
		strings.NewReplacer("@ACTION@", action, "@ENTRIES@", strings.Join(entries, "\n")), 0o644)
	return e
}

// noFind fails the test when a find message was logged about pid.
func noFind(t *testing.T, e *e2e, pid int) {
	t.Helper()
	for _, l := range e.log.Lines() {
		if strings.HasPrefix(l.Text, "Find ") && strings.Contains(l.Text, fmt.Sprintf("pid = %d ", pid)) {
			t.Fatalf("unexpected stall: %q", l.Text)
		}
	}
}

// TestStallHungWebServer: a web server hung by SIGSTOP (connections are
// accepted, nothing answers) is found stalled, killed and restarted with
// reason stall, and serves again.
func TestStallHungWebServer(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := newWebService(t, dir, "web", "http", 200)
	e := stallSetup(t, dir, "continue", s.entry("webserv.blk"))
	pid := s.start()
	e.pcheck(e.pfile)
	e.wait(fmt.Sprintf("('%s' ,pid=%d) Up", self, pid))
	s.waitRequests("HEAD /", 1)

	syscall.Kill(pid, syscall.SIGSTOP)
	find := e.wait(fmt.Sprintf("Find Web Server Stall: pid = %d : port = %d", pid, s.svc.Port))
	killed := e.wait(fmt.Sprintf("Killed Process: pid= %d", pid))
	e.wait(fmt.Sprintf("Process ['%s',pid=%d] Down", self, pid))
	e.wait(fmt.Sprintf("Try to restart ('%s')", self))
	newPid := s.newPid(pid)
	e.wait(fmt.Sprintf("('%s' ,pid=%d) Up", self, newPid))
	if find.Severity != 3 || find.Ident != "pcheck" || killed.Severity != 5 {
		t.Fatalf("priorities: find %d (want err 3), killed %d (want notice 5)", find.Severity, killed.Severity)
	}
	if b, _ := os.ReadFile(s.calls); string(b) != fmt.Sprintf("%s %d stall\n", self, pid) {
		t.Fatalf("restart script calls %q, want one with reason stall", b)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !s.get() {
		if time.Now().After(deadline) {
			t.Fatal("the restarted server does not answer")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestStallServerErrorTLSPath: a server answering 500 answered, so it is
// not stalled; a TLS server with a self-signed certificate under
// _bi_webservs gets HEAD on the block's path and is not stalled either.
func TestStallServerErrorTLSPath(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	plain := newWebService(t, dir, "err500", "http", 500)
	secure := newWebService(t, dir, "tls", "https", 200)
	e := stallSetup(t, dir, "continue", plain.entry("webserv.blk"), secure.entry("webservs.blk", "@PATH@", "/status/ping"))
	pids := []int{plain.start(), secure.start()}
	e.pcheck(e.pfile)
	// 6 attempts of each: three times the failover time.
	plain.waitRequests("HEAD /", 6)
	secure.waitRequests("HEAD /status/ping", 6)
	if n := len(stalltest.Requests(secure.svc.Log)); n != secure.requests("HEAD /status/ping") {
		t.Fatalf("the TLS server got requests other than HEAD /status/ping: %q", stalltest.Requests(secure.svc.Log))
	}
	for _, pid := range pids {
		noFind(t, e, pid)
	}
}

// TestStallClosedPort: a _bi_socket block whose port is closed finds a
// socket stall, kills and restarts the process.
func TestStallClosedPort(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := newWebService(t, dir, "sock", "http", 200)
	closed, err := stalltest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	e := stallSetup(t, dir, "continue", s.entry("socket.blk", "@PORT@", strconv.Itoa(closed)))
	pid := s.start()
	e.pcheck(e.pfile)
	e.wait(fmt.Sprintf("Find Socket Service Stall: pid = %d : port = %d", pid, closed))
	e.wait(fmt.Sprintf("Killed Process: pid= %d", pid))
	e.wait(fmt.Sprintf("Try to restart ('%s')", self))
	e.wait(fmt.Sprintf("('%s' ,pid=%d) Up", self, s.newPid(pid)))
}

// TestStallStopAfterFirst: with PS_EXEC error=1 the first stall is acted
// upon and the next hang is not (death monitoring goes on). A second
// service, hung after it with a longer failover and error=0, shows that
// the first would have had the time to stall again.
func TestStallStopAfterFirst(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	once := newWebService(t, dir, "once", "http", 200)
	witness := newWebService(t, dir, "witness", "http", 200)
	e := stallSetup(t, dir, "continue",
		once.entry("webserv.blk", "@ERROR@", "1"),
		witness.entry("webserv.blk", "@FAILOVER@", "5"))
	pid := once.start()
	wpid := witness.start()
	e.pcheck(e.pfile)
	e.wait(fmt.Sprintf("('%s' ,pid=%d) Up", self, pid))
	e.wait(fmt.Sprintf("('%s' ,pid=%d) Up", self, wpid))

	syscall.Kill(pid, syscall.SIGSTOP)
	e.wait(fmt.Sprintf("Find Web Server Stall: pid = %d : port = %d", pid, once.svc.Port))
	e.wait(fmt.Sprintf("Killed Process: pid= %d", pid))
	pid2 := once.newPid(pid)
	e.wait(fmt.Sprintf("('%s' ,pid=%d) Up", self, pid2))

	// Hang it again, then the witness: once the witness (failover 5 s)
	// is found stalled, more than 2 s + 2 intervals have passed.
	syscall.Kill(pid2, syscall.SIGSTOP)
	syscall.Kill(wpid, syscall.SIGSTOP)
	e.wait(fmt.Sprintf("Find Web Server Stall: pid = %d : port = %d", wpid, witness.svc.Port))
	noFind(t, e, pid2)
	// Death monitoring goes on.
	syscall.Kill(pid2, syscall.SIGKILL)
	e.wait(fmt.Sprintf("Process ['%s',pid=%d] Down", self, pid2))
}

// TestStallCannotKill: pcheck running as an unprivileged user cannot kill
// a stalled root-owned process: Can not killed Process, then, with
// PS_ACTION error 1, retry_over_action exit: pcheck exits 3.
func TestStallCannotKill(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run pcheck as another user")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("setpriv not installed")
	}
	const nobody = 65534
	dir := t.TempDir()
	s := newWebService(t, dir, "root", "http", 200)
	closed, err := stalltest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	e := stallSetup(t, dir, "exit", s.entry("socket.blk", "@PORT@", strconv.Itoa(closed)))

	// What the unprivileged pcheck needs: its binary, the pfile, the
	// syslog socket, and state and run directories of its own.
	bin := filepath.Join(dir, "pcheck")
	copyFilled(t, pcheckBin, bin, strings.NewReplacer(), 0o755)
	sock := e.log.Addr()
	for _, p := range []string{filepath.Dir(dir), dir, filepath.Dir(filepath.Dir(sock)), filepath.Dir(sock)} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}
	state, run := filepath.Join(dir, "state"), filepath.Join(dir, "run")
	for _, d := range []string{state, run} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d, nobody, nobody); err != nil {
			t.Fatal(err)
		}
	}

	pid := s.start()
	cmd := exec.Command(setpriv, "--reuid="+strconv.Itoa(nobody), "--regid="+strconv.Itoa(nobody), "--clear-groups",
		bin, "--state-dir", state, "--run-dir", run, "--syslog", "unixgram:"+sock, e.pfile)
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })

	up := e.wait(fmt.Sprintf("('%s' ,pid=%d) Up", self, pid))
	if st, err := proc.Read(up.Pid); err != nil || st.UID != nobody {
		t.Fatalf("pcheck pid %d does not run as uid %d: %+v, %v", up.Pid, nobody, st, err)
	}
	e.wait(fmt.Sprintf("Find Socket Service Stall: pid = %d : port = %d", pid, closed))
	e.wait(fmt.Sprintf("Can not killed Process: pid= %d", pid))
	e.wait(fmt.Sprintf("Retry over ('%s') action=exit", self))
	select {
	case <-exited:
	case <-time.After(60 * time.Second):
		t.Fatalf("pcheck did not exit; stderr:\n%s", stderr)
	}
	if st := cmd.ProcessState.ExitCode(); st != 3 {
		t.Fatalf("exit status %d, want 3; stderr:\n%s", st, stderr)
	}
	if syscall.Kill(pid, 0) != nil {
		t.Fatal("the root-owned service is gone")
	}
	for _, l := range e.log.Lines() {
		if strings.HasPrefix(l.Text, "Killed Process") {
			t.Fatalf("%q logged for a process pcheck could not kill", l.Text)
		}
	}
}
