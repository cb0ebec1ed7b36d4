package main

// End-to-end tests of padmin against a running pcheck: TestMain builds
// both binaries; each test runs pcheck on its own pfile, run directory
// and syslog receiver, with the test binary itself playing the monitored
// services (E2E_ROLE=service), and runs padmin as an operator would.

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"golang.org/x/sys/unix"

	"github.com/pcheck/pcheck/checker/control"
	"github.com/pcheck/pcheck/checker/engine"
	"github.com/pcheck/pcheck/checker/proc"
	"github.com/pcheck/pcheck/checker/syslogtest"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// The binaries under test, built by TestMain.
var pcheckBin, padminBin string

func TestMain(m *testing.M) {
	switch os.Getenv("E2E_ROLE") {
	case "service":
		syscall.Setsid()
		for {
			time.Sleep(time.Hour)
		}
	case "fatal":
		fatalService()
	}
	flag.Parse()
	dir, err := os.MkdirTemp("", "padmin-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// padmin runs as nobody in one test: it must be able to run it.
	os.Chmod(dir, 0o755)
	pcheckBin = filepath.Join(dir, "pcheck")
	padminBin = filepath.Join(dir, "padmin")
	for _, b := range []struct{ out, pkg string }{{pcheckBin, "../pcheck"}, {padminBin, "."}} {
		if out, err := exec.Command("go", "build", "-o", b.out, b.pkg).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n%s", b.pkg, err, out)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// self is the test binary: the monitored services.
var self = func() string {
	p, _ := os.Executable()
	p, _ = filepath.EvalSymlinks(p)
	return p
}()

// env is one test's directory, run directory, syslog receiver and pfile.
type env struct {
	t     *testing.T
	dir   string
	run   string
	log   *syslogtest.Receiver
	pfile string
	id    string
	// tags are the services' tags, killed again once everything else
	// has been cleaned up (pcheck stopped): a restart script that a
	// service's own cleanup set off may start it once more.
	tags []string
}

// newEnv makes a directory short enough for socket paths.
func newEnv(t *testing.T) *env {
	t.Helper()
	dir, err := os.MkdirTemp("", "pa")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	t.Cleanup(func() { os.RemoveAll(dir) })
	name := regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "-")
	e := &env{
		t:     t,
		dir:   dir,
		run:   filepath.Join(dir, "run"),
		log:   syslogtest.Listen(t),
		pfile: filepath.Join(dir, "svc.pf"),
		id:    fmt.Sprintf("padmin-e2e-%d-%s", os.Getpid(), name),
	}
	t.Cleanup(func() { // registered first: runs last
		for _, tag := range e.tags {
			killTagged(tag)
		}
	})
	return e
}

// service is one monitored service: its tag and restart script.
type service struct {
	tag, script string
	block       string // a monitor block after the entry
}

// service writes the restart script of a service; body "" starts it.
func (e *env) service(suffix, body string) service {
	e.t.Helper()
	s := service{tag: e.id + "-" + suffix, script: filepath.Join(e.dir, suffix+".sh")}
	start := fmt.Sprintf(`E2E_ROLE=service '%s' service '%s' </dev/null >/dev/null 2>&1 &`, self, s.tag)
	if body == "" {
		body = start
	}
	body = strings.ReplaceAll(body, "@START@", start)
	if err := os.WriteFile(s.script, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { killTagged(s.tag) })
	e.tags = append(e.tags, s.tag)
	return s
}

// entry is the service's pfile line.
func (s service) entry() string {
	return fmt.Sprintf("%s %s args=\"%s\"\n%s", self, s.script, s.tag, s.block)
}

// key is the service's process entry key (as padmin status shows it).
func (s service) key() string { return fmt.Sprintf("%s %s args=%s", self, s.script, s.tag) }

// start starts the service as an operator would before pcheck.
func (e *env) start(s service) int {
	e.t.Helper()
	cmd := exec.Command(self, "service", s.tag)
	cmd.Env = append(os.Environ(), "E2E_ROLE=service")
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go cmd.Wait()
	return cmd.Process.Pid
}

func killTagged(tag string) {
	all, _ := proc.Scan()
	for _, p := range all {
		if slices.Contains(p.Argv, tag) {
			proc.Signal(p.ID, unix.SIGKILL)
		}
	}
}

// params is the PARAM section of the tests' pfiles.
const params = `##### PARAM #####
MonitorInterval 10
RetryCount      3
Grace           3600
RestartTimeout  20
StartWait       2
KillWait        1
`

// writePfile writes the pfile with the services' entries, as an editor
// saves: a temporary file renamed over the old one.
func (e *env) writePfile(extra string, svcs ...service) {
	e.t.Helper()
	text := params + "DumpFileName " + filepath.Join(e.dir, "dump.json") + "\n" + extra + "\n##### PROCESS #####\n"
	for _, s := range svcs {
		text += s.entry()
	}
	tmp := e.pfile + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Rename(tmp, e.pfile); err != nil {
		e.t.Fatal(err)
	}
}

// lockedBuffer is a bytes.Buffer safe for concurrent use.
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

// pcheck starts pcheck on the env's pfile and waits for its socket.
func (e *env) pcheck(args ...string) *exec.Cmd {
	e.t.Helper()
	full := append([]string{"--state-dir", filepath.Join(e.dir, "state"), "--run-dir", e.run,
		"--syslog", "unixgram:" + e.log.Addr()}, args...)
	full = append(full, e.pfile)
	cmd := exec.Command(pcheckBin, full...)
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	e.t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := control.Lookup(e.run, e.pfile, 5*time.Second); err == nil {
			return cmd
		}
		select {
		case <-done:
			e.t.Fatalf("pcheck exited; stderr:\n%s", stderr)
		default:
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("pcheck's control socket never answered; stderr:\n%s", stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// result is one padmin run.
type result struct {
	stdout, stderr string
	code           int
	pid            int
}

// padmin runs padmin with the env's run directory and syslog.
func (e *env) padmin(args ...string) result {
	e.t.Helper()
	return e.padminAs(nil, args...)
}

// padminAs runs padmin behind the prefix command (setpriv ...).
func (e *env) padminAs(prefix []string, args ...string) result {
	e.t.Helper()
	argv := append(append(slices.Clone(prefix), padminBin, "--run-dir", e.run, "--syslog", "unixgram:"+e.log.Addr()), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		e.t.Fatalf("padmin %v: %v", args, err)
	}
	return result{stdout.String(), stderr.String(), cmd.ProcessState.ExitCode(), cmd.Process.Pid}
}

// ok runs padmin and fails the test unless it exits 0.
func (e *env) ok(args ...string) result {
	e.t.Helper()
	r := e.padmin(args...)
	if r.code != 0 {
		e.t.Fatalf("padmin %v: exit %d\nstdout:\n%s\nstderr:\n%s", args, r.code, r.stdout, r.stderr)
	}
	return r
}

// status asks for the pfile's status through the socket.
func (e *env) status() control.StatusResult {
	e.t.Helper()
	sv, err := control.Lookup(e.run, e.pfile, 10*time.Second)
	if err != nil {
		e.t.Fatal(err)
	}
	c, err := control.Dial(sv.Socket, 10*time.Second)
	if err != nil {
		e.t.Fatal(err)
	}
	defer c.Close()
	var st control.StatusResult
	if _, err := c.Call(control.Request{Command: control.CmdStatus}, &st); err != nil {
		e.t.Fatal(err)
	}
	return st
}

// process returns the status of the entry with key, ok false when there
// is none.
func process(st control.StatusResult, key string) (control.ProcessStatus, bool) {
	for _, p := range st.ProcessList {
		if p.Key == key {
			return p, true
		}
	}
	return control.ProcessStatus{}, false
}

// waitProcess polls the status until the entry with key satisfies pred.
func (e *env) waitProcess(key, what string, pred func(control.ProcessStatus) bool) control.ProcessStatus {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := e.status()
		if p, ok := process(st, key); ok && pred(p) {
			return p
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s of %s; status: %+v", what, key, st.ProcessList)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func isUp(p control.ProcessStatus) bool { return p.State == "Up" && len(p.Pids) > 0 }

// waitCommandLine waits for padmin's syslog line for command, sent by the
// padmin process pid.
func (e *env) waitCommandLine(command string, pid int) {
	e.t.Helper()
	want := fmt.Sprintf("Command execute. [%s] pfile='%s'", command, e.pfile)
	l := e.log.WaitText(e.t, want, 30*time.Second)
	if l.Ident != "padmin" || l.Pid != pid {
		e.t.Fatalf("%q logged as %s[%d], want padmin[%d]", want, l.Ident, l.Pid, pid)
	}
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Fatalf("output differs from %s:\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// TestUsage: help is golden; usage errors exit 2; a pfile nobody serves
// exits 3.
func TestUsage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.ok("help")
	golden(t, "help.golden", r.stdout)
	if r := e.ok("--help"); r.stdout != usage {
		t.Fatalf("--help printed %q", r.stdout)
	}
	for _, args := range [][]string{{}, {"frobnicate"}, {"restart", "x.pf"}, {"status", "--force"},
		{"rule"}, {"events", "-n", "-1"}, {"list", "extra"}, {"--syslog", "nocolon", "list"}} {
		if r := e.padmin(args...); r.code != 2 || !strings.Contains(r.stderr, "usage: padmin") {
			t.Errorf("padmin %v: exit %d, want 2 with the usage; stderr:\n%s", args, r.code, r.stderr)
		}
	}
	for _, args := range [][]string{{"status", "nosuch.pf"}, {"status"}, {"stop", "nosuch.pf"}, {"events"}} {
		if r := e.padmin(args...); r.code != 3 || !strings.Contains(r.stderr, "no pcheck") {
			t.Errorf("padmin %v: exit %d, want 3; stderr:\n%s", args, r.code, r.stderr)
		}
	}
	// An empty run directory: nothing runs (a missing one: TestShell).
	if err := os.Mkdir(e.run, 0o755); err != nil {
		t.Fatal(err)
	}
	if r := e.ok("list"); r.stdout != "PFILE  PID  UPTIME  PROCESSES  STATE  REBOOTS\n" {
		t.Errorf("list with nothing running printed %q", r.stdout)
	}
	if r := e.ok("list", "--json"); strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("list --json with nothing running printed %q", r.stdout)
	}
}

// TestCommands runs every command against one pcheck: output, state
// changes and the padmin syslog lines.
func TestCommands(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.service("web", "")
	pid := e.start(s)
	e.writePfile("", s)
	pc := e.pcheck()
	p := e.waitProcess(s.key(), "Up", isUp)
	if p.Pids[0] != pid {
		t.Fatalf("watching pid %v, want %d", p.Pids, pid)
	}

	// list
	r := e.ok("list")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "PFILE") ||
		!regexp.MustCompile(fmt.Sprintf(`^%s +%d +\S+ +1 +1 Up +-$`, regexp.QuoteMeta(e.pfile), pc.Process.Pid)).MatchString(lines[1]) {
		t.Fatalf("list:\n%s", r.stdout)
	}
	var infos []control.InfoResult
	if err := json.Unmarshal([]byte(e.ok("--json", "list").stdout), &infos); err != nil || len(infos) != 1 ||
		infos[0].Pid != pc.Process.Pid || infos[0].Pfile != e.pfile || infos[0].States["Up"] != 1 {
		t.Fatalf("list --json: %+v %v", infos, err)
	}

	// status, human and JSON
	r = e.ok("status", e.pfile)
	if !strings.HasPrefix(r.stdout, fmt.Sprintf("pfile %s: pcheck pid %d, up ", e.pfile, pc.Process.Pid)) ||
		!regexp.MustCompile(`(?m)^PROCESS +STATE +PID +UPTIME +CPU +RSS +RESTARTS +RETRIES$`).MatchString(r.stdout) ||
		!regexp.MustCompile(fmt.Sprintf(`(?m)^%s +Up +%d +\d+[smhd]\S* +\d+\.\d%% +[0-9.]+[KMG] +0 +0/3$`, regexp.QuoteMeta(self), pid)).MatchString(r.stdout) {
		t.Fatalf("status:\n%s", r.stdout)
	}
	// -l: every column, the resource figures among them.
	r = e.ok("status", e.pfile, "-l")
	if !regexp.MustCompile(`(?m)^PROCESS +STATE +PID +UPTIME +STARTED +CPU +CPU TIME +RSS +THREADS +FDS +CHILDREN +RESTARTS +RETRIES +GRACE +ACTION +LAST REASON$`).MatchString(r.stdout) ||
		!regexp.MustCompile(fmt.Sprintf(`(?m)^%s +Up +%d +\S+ +\d{4}-\d\d-\d\dT\S+ +\d+\.\d%% +\S+ +[0-9.]+[KMG] +\d+ +\d+ +\d+ +0 +0/3 +1h0m0s +continue +-$`, regexp.QuoteMeta(self), pid)).MatchString(r.stdout) {
		t.Fatalf("status -l:\n%s", r.stdout)
	}
	var st control.StatusResult
	if err := json.Unmarshal([]byte(e.ok("status", e.pfile, "--json").stdout), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.ProcessList) != 1 || st.ProcessList[0].Key != s.key() || st.ProcessList[0].RetriesAllowed != 3 ||
		st.ProcessList[0].GraceSeconds != 3600 || st.Monitors == nil {
		t.Fatalf("status --json: %+v", st)
	}
	if u := st.ProcessList[0].Usage; u == nil || u.RSSBytes <= 0 || u.Threads < 1 || u.FDs < 0 ||
		time.Since(u.Started) < 0 || time.Since(u.Started) > time.Hour {
		t.Fatalf("status --json usage %+v", u)
	}
	// status of every pfile is a list.
	var all []control.StatusResult
	if err := json.Unmarshal([]byte(e.ok("status", "--json").stdout), &all); err != nil || len(all) != 1 {
		t.Fatalf("status --json of all: %v %+v", err, all)
	}

	// rule: the effective rules, golden with the paths replaced.
	r = e.ok("rule", e.pfile)
	golden(t, "rule.golden", strings.NewReplacer(self, "@BIN@", e.dir, "@DIR@", e.id, "@ID@").Replace(r.stdout))
	var rules map[string]any
	if err := json.Unmarshal([]byte(e.ok("rule", "--json", e.pfile).stdout), &rules); err != nil || rules["path"] != e.pfile {
		t.Fatalf("rule --json: %v %v", rules, err)
	}

	// stop and start: the process is left alone, then watched again.
	r = e.ok("stop", e.pfile)
	if r.stdout != e.pfile+": monitoring of every process paused\n" {
		t.Fatalf("stop printed %q", r.stdout)
	}
	e.waitCommandLine("stop", r.pid)
	e.waitProcess(s.key(), "Paused", func(p control.ProcessStatus) bool { return p.State == "Paused" })
	r = e.ok("start", e.pfile, self)
	e.waitCommandLine("start", r.pid)
	e.waitProcess(s.key(), "Up", isUp)

	// restart: refused while healthy, done with --force.
	r = e.padmin("restart", e.pfile, self)
	if r.code != 1 || !strings.Contains(r.stderr, "process is up") {
		t.Fatalf("restart of a healthy process: exit %d, stderr %q", r.code, r.stderr)
	}
	r = e.ok("restart", e.pfile, s.key(), "--force")
	e.waitCommandLine("restart", r.pid)
	p = e.waitProcess(s.key(), "a new pid", func(p control.ProcessStatus) bool { return isUp(p) && p.Pids[0] != pid })
	if p.Restarts != 1 || p.RetriesUsed != 0 || p.LastReason != "manual" {
		t.Fatalf("after a manual restart: %+v", p)
	}

	// events, newest first
	var evs []control.Event
	if err := json.Unmarshal([]byte(e.ok("events", e.pfile, "-n", "4", "--json").stdout), &evs); err != nil {
		t.Fatal(err)
	}
	if len(evs) != 4 {
		t.Fatalf("events -n 4 gave %d", len(evs))
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].Seq >= evs[i-1].Seq {
			t.Fatalf("events not newest first: %+v", evs)
		}
	}
	r = e.ok("events")
	if !strings.HasPrefix(r.stdout, "TIME ") || !strings.Contains(r.stdout, fmt.Sprintf("Try to restart ('%s')", self)) ||
		!strings.Contains(r.stdout, "pcheck start. pfile=") {
		t.Fatalf("events:\n%s", r.stdout)
	}

	// stats
	var stats struct {
		Pfile string `json:"pfile"`
		control.StatsResult
	}
	if err := json.Unmarshal([]byte(e.ok("stats", e.pfile, "--json").stdout), &stats); err != nil {
		t.Fatal(err)
	}
	if stats.Pfile != e.pfile || stats.Total.Restarts != 1 || stats.Total.Checks < 2 || stats.BucketSeconds != 60 {
		t.Fatalf("stats: %+v", stats)
	}
	if r = e.ok("stats"); !strings.Contains(r.stdout, "BUCKET START") || !strings.Contains(r.stdout, "1 restarts") {
		t.Fatalf("stats:\n%s", r.stdout)
	}

	// reset zeroes the counts and the statistics.
	r = e.ok("reset", e.pfile)
	e.waitCommandLine("reset", r.pid)
	if p, _ := process(e.status(), s.key()); p.Restarts != 0 {
		t.Fatalf("restarts %d after reset", p.Restarts)
	}
	if err := json.Unmarshal([]byte(e.ok("stats", e.pfile, "--json").stdout), &stats); err != nil || stats.Total.Restarts != 0 {
		t.Fatalf("stats after reset: %+v %v", stats, err)
	}

	// dump: the state with the usage of the Up entry.
	e.waitProcess(s.key(), "Up", isUp)
	r = e.ok("dump", e.pfile)
	dump := filepath.Join(e.dir, "dump.json")
	if r.stdout != fmt.Sprintf("%s: state dump written to %s\n", e.pfile, dump) {
		t.Fatalf("dump printed %q", r.stdout)
	}
	b, err := os.ReadFile(dump)
	if err != nil || !bytes.Contains(b, []byte(`"pfile": "`+e.pfile+`"`)) {
		t.Fatalf("dump file: %v\n%s", err, b)
	}
	var dumped struct {
		Processes []struct{ Usage *engine.Usage }
	}
	if err := json.Unmarshal(b, &dumped); err != nil || len(dumped.Processes) != 1 || dumped.Processes[0].Usage == nil ||
		dumped.Processes[0].Usage.RSSBytes <= 0 {
		t.Fatalf("dump without the usage of the Up entry: %v\n%s", err, b)
	}

	// reload of an unchanged pfile
	r = e.ok("reload", e.pfile)
	e.waitCommandLine("reload", r.pid)
	e.log.WaitText(t, fmt.Sprintf("pfile '%s' reloaded", e.pfile), 30*time.Second)

	// config
	if r = e.ok("config", e.pfile, "--events", "50", "--buckets", "12", "--bucket-seconds", "5"); r.stdout != e.pfile+": events 50, buckets 12 of 5s\n" {
		t.Fatalf("config printed %q", r.stdout)
	}
	e.waitCommandLine("config", r.pid)

	// refusals
	if r = e.padmin("stop", e.pfile, "/no/such/process"); r.code != 1 || !strings.Contains(r.stderr, "no such process") {
		t.Fatalf("stop of an unknown process: exit %d, %q", r.code, r.stderr)
	}
	// The pfile as given relative to the run directory's parent.
	cmd := exec.Command(padminBin, "--run-dir", e.run, "status", "svc.pf")
	cmd.Dir = e.dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("status with a relative pfile: %v\n%s", err, out)
	}
}

// TestNonRootRefused: a peer other than root and pcheck's user is
// refused, by the socket's mode and, past it, by SO_PEERCRED.
func TestNonRootRefused(t *testing.T) {
	t.Parallel()
	if os.Getuid() != 0 {
		t.Skip("needs root to run padmin as another user")
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("no setpriv")
	}
	e := newEnv(t)
	s := e.service("web", "")
	e.start(s)
	e.writePfile("", s)
	e.pcheck()
	nobody := []string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"}
	r := e.padminAs(nobody, "status", e.pfile)
	if r.code != 1 || !strings.Contains(r.stderr, "permission denied") {
		t.Fatalf("nobody through a 0600 socket: exit %d, stderr %q", r.code, r.stderr)
	}
	sock := control.SocketPath(e.run, e.pfile)
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}
	r = e.padminAs(nobody, "stop", e.pfile)
	if r.code != 1 || !strings.Contains(r.stderr, "uid 65534 may not control pcheck") {
		t.Fatalf("nobody through an open socket: exit %d, stderr %q", r.code, r.stderr)
	}
	if p, _ := process(e.status(), s.key()); p.State != "Up" {
		t.Fatalf("a refused stop changed the state to %s", p.State)
	}
}

// TestReloadBroken: a bad pfile is refused with its errors; the old rules
// and the process stay.
func TestReloadBroken(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.service("web", "")
	pid := e.start(s)
	e.writePfile("", s)
	e.pcheck()
	e.waitProcess(s.key(), "Up", isUp)
	before := e.ok("rule", e.pfile).stdout

	if err := os.WriteFile(e.pfile, []byte("##### PARAM #####\nMonitorInterval 0\n##### PROCESS #####\n"+s.entry()), 0o644); err != nil {
		t.Fatal(err)
	}
	r := e.padmin("reload", e.pfile)
	want := e.pfile + ":2:17: MonitorInterval must be at least 1, not 0"
	if r.code != 1 || !strings.Contains(r.stderr, "the old rules stay") || !strings.Contains(r.stderr, want) {
		t.Fatalf("reload of a bad pfile: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	e.log.WaitText(t, "pfile error: "+want, 30*time.Second)
	if after := e.ok("rule", e.pfile).stdout; after != before {
		t.Fatalf("rules changed by a refused reload:\n%s", after)
	}
	if p, _ := process(e.status(), s.key()); !isUp(p) || p.Pids[0] != pid {
		t.Fatalf("process after a refused reload: %+v", p)
	}
	// Nothing was logged as executed: the next line padmin logs is stop's.
	r = e.ok("stop", e.pfile)
	e.waitCommandLine("stop", r.pid)
	for _, l := range e.log.Lines() {
		if strings.Contains(l.Text, "[reload]") {
			t.Fatalf("a refused reload was logged: %s", l.Raw)
		}
	}
}

// TestReloadKeepsOthers: a reload that changes one entry, removes one and
// adds one leaves the untouched entry's pid and counts as they were.
func TestReloadKeepsOthers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a, b, d := e.service("a", ""), e.service("b", ""), e.service("d", "")
	e.start(a)
	e.start(b)
	dPid := e.start(d)
	e.writePfile("", a, b, d)
	e.pcheck()
	for _, s := range []service{a, b, d} {
		e.waitProcess(s.key(), "Up", isUp)
	}
	e.ok("restart", e.pfile, b.key(), "--force")
	bBefore := e.waitProcess(b.key(), "Up after restart", func(p control.ProcessStatus) bool { return isUp(p) && p.Restarts == 1 })

	// a gets another restart script (a changed entry), d goes, c comes.
	a2 := service{tag: a.tag, script: filepath.Join(e.dir, "a2.sh")}
	if err := os.Rename(a.script, a2.script); err != nil {
		t.Fatal(err)
	}
	c := e.service("c", "")
	e.start(c)
	e.writePfile("", a2, b, c)
	e.ok("reload", e.pfile)

	st := e.status()
	bAfter, ok := process(st, b.key())
	if !ok || !slices.Equal(bAfter.Pids, bBefore.Pids) || bAfter.Restarts != 1 || !bAfter.Since.Equal(bBefore.Since) {
		t.Fatalf("b changed by the reload: before %+v, after %+v", bBefore, bAfter)
	}
	if _, ok := process(st, d.key()); ok {
		t.Fatal("d is still watched after its removal")
	}
	if _, ok := process(st, a.key()); ok {
		t.Fatal("a is still watched under its old script")
	}
	e.waitProcess(a2.key(), "Up", isUp)
	e.waitProcess(c.key(), "Up", isUp)
	if i, err := proc.Read(dPid); err != nil || i.Dead() {
		t.Fatal("the removed entry's process was touched")
	}
}

// TestWatchEditorSave: with --watch, a pfile saved the way editors save
// (a temporary file renamed over it) is reloaded.
func TestWatchEditorSave(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a, c := e.service("a", ""), e.service("c", "")
	e.start(a)
	e.start(c)
	e.writePfile("", a)
	e.pcheck("--watch")
	aUp := e.waitProcess(a.key(), "Up", isUp)
	e.writePfile("", a, c)
	e.waitProcess(c.key(), "Up after the save", isUp)
	e.log.WaitText(t, fmt.Sprintf("pfile '%s' reloaded", e.pfile), 30*time.Second)
	if p, _ := process(e.status(), a.key()); !slices.Equal(p.Pids, aUp.Pids) {
		t.Fatalf("a's pids changed: %v, were %v", p.Pids, aUp.Pids)
	}
}

// TestConcurrentStatus: 100 status requests at once while pcheck is
// restarting a process all get their answer.
func TestConcurrentStatus(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	gate := filepath.Join(e.dir, "gate")
	s := e.service("web", fmt.Sprintf("while [ ! -e '%s' ]; do sleep 0.05; done\n@START@", gate))
	e.start(s)
	e.writePfile("", s)
	e.pcheck()
	e.waitProcess(s.key(), "Up", isUp)
	e.ok("restart", e.pfile, s.key(), "--force")
	e.waitProcess(s.key(), "Restarting", func(p control.ProcessStatus) bool { return p.State == "Restarting" })

	sv, err := control.Lookup(e.run, e.pfile, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	const n = 100
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := control.Dial(sv.Socket, 30*time.Second)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			var st control.StatusResult
			if _, err := c.Call(control.Request{Command: control.CmdStatus}, &st); err != nil {
				errs <- err
				return
			}
			if p, _ := process(st, s.key()); p.State != "Restarting" {
				errs <- fmt.Errorf("state %q while the restart script waits", p.State)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	e.waitProcess(s.key(), "Up after the restart", isUp)
}

// TestMetrics: the Prometheus endpoint is scraped and parsed.
func TestMetrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.service("web", "")
	e.start(s)
	e.writePfile("", s)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	e.pcheck("--metrics", addr)
	e.waitProcess(s.key(), "Up", isUp)

	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parsing the scrape: %v\n%s", err, body)
	}
	find := func(name string) float64 {
		t.Helper()
		f := fams[name]
		if f == nil {
			t.Fatalf("no %s in:\n%s", name, body)
		}
		for _, m := range f.Metric {
			for _, lp := range m.Label {
				if lp.GetName() == "pfile" && lp.GetValue() == e.pfile {
					if m.Gauge != nil {
						return m.Gauge.GetValue()
					}
					return m.Counter.GetValue()
				}
			}
		}
		t.Fatalf("no %s for %s", name, e.pfile)
		return 0
	}
	if v := find("pcheck_process_up"); v != 1 {
		t.Errorf("pcheck_process_up %v", v)
	}
	if v := find("pcheck_process_retries_allowed"); v != 3 {
		t.Errorf("pcheck_process_retries_allowed %v", v)
	}
	if v := find("pcheck_process_restarts_total"); v != 0 {
		t.Errorf("pcheck_process_restarts_total %v", v)
	}
	if v := find("pcheck_reboots"); v != 0 {
		t.Errorf("pcheck_reboots %v", v)
	}
}

// socketBlock is a _bi_socket monitor of port: an attempt a second,
// stalled after a minute of failures.
const socketBlock = `_bi_socket{
    PS_INIT     DLL:/opt/HA/PSWE/lib/lib_bi_socket.so:DIRECT:-:--:0
    PS_EXEC     DLL:/opt/HA/PSWE/lib/lib_bi_socket.so:DIRECT:-:1:0:2:60:%d
    PS_ACTION   DLL:/opt/HA/PSWE/lib/lib_bi_socket.so:DIRECT:-:--:0:0
    PS_QUIT     DLL:/opt/HA/PSWE/lib/lib_bi_socket.so:DIRECT:-:--:0
}
`

// TestStatusMonitors: status shows a stall monitor Ok while its port
// answers, then In doubt with the seconds since its last success.
func TestStatusMonitors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	port := l.Addr().(*net.TCPAddr).Port
	s := e.service("web", "")
	s.block = fmt.Sprintf(socketBlock, port)
	e.start(s)
	e.writePfile("", s)
	e.pcheck()
	e.waitProcess(s.key(), "Up", isUp)

	waitMonitor := func(what string, pred func(control.MonitorStatus) bool) control.MonitorStatus {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			st := e.status()
			if len(st.Monitors) == 1 && pred(st.Monitors[0]) {
				return st.Monitors[0]
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for the monitor %s: %+v", what, st.Monitors)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	m := waitMonitor("to succeed", func(m control.MonitorStatus) bool { return m.State == "Ok" && m.Attempts > 0 })
	if m.Process != self || !strings.Contains(m.Monitor, fmt.Sprint(port)) || m.Failures != 0 {
		t.Fatalf("monitor %+v", m)
	}
	l.Close()
	m = waitMonitor("to fail", func(m control.MonitorStatus) bool { return m.State == "In doubt" && m.SinceSuccessSeconds >= 1 })
	if m.Failures == 0 || !strings.Contains(m.LastError, "refused") {
		t.Fatalf("failing monitor %+v", m)
	}
	// The monitor's attempts are counted in the statistics, failures too.
	var stats struct {
		Total struct{ Checks, Failures int64 }
	}
	if err := json.Unmarshal([]byte(e.ok("stats", e.pfile, "--json").stdout), &stats); err != nil {
		t.Fatal(err)
	}
	if stats.Total.Checks < m.Attempts || stats.Total.Failures < m.Failures {
		t.Fatalf("stats count %d checks, %d failures; the monitor alone made %d attempts, %d failed", stats.Total.Checks, stats.Total.Failures, m.Attempts, m.Failures)
	}
	r := e.ok("status", e.pfile, "-l")
	row := regexp.MustCompile(fmt.Sprintf(`(?m)^%s +socket \S*%d +In doubt +\d+s ago +\d+ +\d+ +\S+ +.*refused`, regexp.QuoteMeta(self), port))
	if !regexp.MustCompile(`(?m)^PROCESS +MONITOR +STATE +LAST OK +ATTEMPTS +FAILURES +LATENCY +LAST ERROR$`).MatchString(r.stdout) || !row.MatchString(r.stdout) {
		t.Fatalf("status:\n%s", r.stdout)
	}
}

// TestStatusUnknown: a CMD check whose file is deleted once pcheck runs is
// Unknown with its reason in padmin status (the table and --json) and in
// the state dump, and its attempts are no failures.
func TestStatusUnknown(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	check := filepath.Join(e.dir, "check_web")
	if err := os.WriteFile(check, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	s := e.service("web", "")
	s.block = fmt.Sprintf("_bi_check{\n    PS_EXEC CMD:%s:DIRECT:-:1:0:1:60\n}\n", check)
	e.start(s)
	e.writePfile("", s)
	e.pcheck()
	e.waitProcess(s.key(), "Up", isUp)
	waitMonitor := func(what string, pred func(control.MonitorStatus) bool) control.MonitorStatus {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			st := e.status()
			if len(st.Monitors) == 1 && pred(st.Monitors[0]) {
				return st.Monitors[0]
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for the monitor %s: %+v", what, st.Monitors)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitMonitor("to succeed", func(m control.MonitorStatus) bool { return m.State == "Ok" && m.Attempts > 0 })
	if err := os.Remove(check); err != nil {
		t.Fatal(err)
	}
	reason := fmt.Sprintf("check command %s: fork/exec %s: no such file or directory", check, check)
	m := waitMonitor("to be Unknown", func(m control.MonitorStatus) bool { return m.State == "Unknown" && m.Attempts >= 3 })
	if m.LastError != reason || m.Failures != 0 {
		t.Fatalf("Unknown monitor %+v, want reason %q and no failures", m, reason)
	}

	// An Unknown monitor makes status exit 4, naming it.
	r := e.padmin("status", e.pfile, "-l")
	if r.code != 4 || !strings.Contains(r.stderr, fmt.Sprintf("monitor cmd %s of '%s' is Unknown", check, self)) {
		t.Fatalf("status with a monitor Unknown: exit %d, want 4; stderr %q", r.code, r.stderr)
	}
	row := regexp.MustCompile(fmt.Sprintf(`(?m)^%s +cmd %s +Unknown +\d+s ago +\d+ +0 +\S+ +%s$`,
		regexp.QuoteMeta(self), regexp.QuoteMeta(check), regexp.QuoteMeta(reason)))
	if !row.MatchString(r.stdout) {
		t.Fatalf("status:\n%s", r.stdout)
	}
	var st control.StatusResult
	if r = e.padmin("status", e.pfile, "--json"); r.code != 4 {
		t.Fatalf("status --json with a monitor Unknown: exit %d, want 4", r.code)
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Monitors) != 1 || st.Monitors[0].State != "Unknown" || st.Monitors[0].LastError != reason {
		t.Fatalf("status --json monitors %+v", st.Monitors)
	}

	e.ok("dump", e.pfile)
	b, err := os.ReadFile(filepath.Join(e.dir, "dump.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dump struct {
		Processes []struct{ Key string }
		Monitors  []control.MonitorStatus
	}
	if err := json.Unmarshal(b, &dump); err != nil {
		t.Fatalf("dump: %v\n%s", err, b)
	}
	if len(dump.Processes) != 1 || len(dump.Monitors) != 1 || dump.Monitors[0].State != "Unknown" || dump.Monitors[0].LastError != reason {
		t.Fatalf("dump without the Unknown monitor:\n%s", b)
	}
}

// TestRebootCount: with AutoReboot on, list and status show the reboot
// count and reset of the whole pfile clears it.
func TestRebootCount(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.service("web", "")
	e.start(s)
	rebootFile := filepath.Join(e.dir, "reboots.json")
	record := fmt.Sprintf(`{"reboots":[%q]}`, time.Now().Add(-time.Minute).Format(time.RFC3339Nano))
	if err := os.WriteFile(rebootFile, []byte(record+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.writePfile("AutoReboot on\nRebootCommand /bin/true\nRebootStateFile "+rebootFile, s)
	e.pcheck()
	e.waitProcess(s.key(), "Up", isUp)
	if r := e.ok("list"); !regexp.MustCompile(`(?m) 1 Up +1$`).MatchString(r.stdout) {
		t.Fatalf("list does not show 1 reboot:\n%s", r.stdout)
	}
	if st := e.status(); st.Reboots == nil || *st.Reboots != 1 {
		t.Fatalf("status reboots %v", st.Reboots)
	}
	// Resetting one process leaves the reboot count alone.
	e.ok("reset", e.pfile, s.key())
	if st := e.status(); st.Reboots == nil || *st.Reboots != 1 {
		t.Fatalf("reboots %v after a reset of one process", st.Reboots)
	}
	e.ok("reset", e.pfile)
	if st := e.status(); st.Reboots == nil || *st.Reboots != 0 {
		t.Fatalf("reboots %v after reset", st.Reboots)
	}
	if r := e.ok("status", e.pfile); !strings.Contains(r.stdout, ", reboots 0\n") {
		t.Fatalf("status:\n%s", r.stdout)
	}
}

// TestReloadUntrustedPfile: padmin reload of a pfile made world-writable
// and repointed by user nobody to another restart script is refused with
// the pfile's error; the old rules stay, so when the process dies its OLD
// script runs. Today the reload is accepted and nobody's choice of script
// runs as root.
func TestReloadUntrustedPfile(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	oldCalls, newCalls := filepath.Join(e.dir, "old.calls"), filepath.Join(e.dir, "new.calls")
	s := e.service("web", fmt.Sprintf("echo \"$3\" >> '%s'\n@START@", oldCalls))
	other := e.service("other", fmt.Sprintf("echo \"$3\" >> '%s'\n@START@", newCalls))
	pid := e.start(s)
	e.writePfile("", s)
	e.pcheck()
	e.waitProcess(s.key(), "Up", isUp)

	if err := os.Chmod(e.pfile, 0o666); err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(e.pfile)
	if err != nil {
		t.Fatal(err)
	}
	nobody := exec.Command("/bin/sh", "-c", `cat > "$1"`, "sh", e.pfile)
	nobody.Stdin = strings.NewReader(strings.ReplaceAll(string(text), s.script, other.script))
	nobody.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	if out, err := nobody.CombinedOutput(); err != nil {
		t.Fatalf("nobody could not write the pfile: %v\n%s", err, out)
	}

	r := e.padmin("reload", e.pfile)
	if r.code == 0 {
		syscall.Kill(pid, syscall.SIGKILL)
		deadline := time.Now().Add(30 * time.Second)
		for b, _ := os.ReadFile(newCalls); len(b) == 0 && time.Now().Before(deadline); b, _ = os.ReadFile(newCalls) {
			time.Sleep(20 * time.Millisecond)
		}
		b, _ := os.ReadFile(newCalls)
		t.Fatalf("the reload was accepted, and on the death nobody's script ran as root: %q", b)
	}
	want := fmt.Sprintf("%s:0:0: pfile %s is writable by group and other (mode 0666): chmod go-w %s", e.pfile, e.pfile, e.pfile)
	if r.code != 1 || !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, "the old rules stay") {
		t.Fatalf("reload: exit %d, stderr:\n%s\nwant exit 1 and %q", r.code, r.stderr, want)
	}
	e.log.WaitText(t, "pfile error: "+want, 30*time.Second)

	syscall.Kill(pid, syscall.SIGKILL)
	e.waitProcess(s.key(), "Up again", func(p control.ProcessStatus) bool { return isUp(p) && p.Pids[0] != pid })
	if b, _ := os.ReadFile(oldCalls); string(b) != "down\n" {
		t.Fatalf("old script calls %q, want \"down\\n\"", b)
	}
	if b, err := os.ReadFile(newCalls); !os.IsNotExist(err) {
		t.Fatalf("nobody's script ran: %q", b)
	}
}
