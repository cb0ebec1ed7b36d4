package engine

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pcheck/pcheck/checker/message"
	"github.com/pcheck/pcheck/checker/proc"
	"github.com/pcheck/pcheck/checker/stall"
	"github.com/pcheck/pcheck/checker/stall/stalltest"
	"github.com/pcheck/pcheck/checker/trust"
	"github.com/pcheck/pcheck/parser"
	"github.com/pcheck/pcheck/pfile"
)

// The tests below run the real engine and its stall monitors against real web
// services (the test binary as stalltest), started by real restart
// scripts. Intervals are 1 s and failovers 2 s.

// webservBlock is a _bi_webserv block on the service's port: interval 1 s,
// failover 2 s.
func (s *service) webservBlock(execErr int) string {
	return block("webserv", fmt.Sprintf("-:1:%d:3:2:%d:127.0.0.1", execErr, s.svc.Port), 1)
}

// get answers whether the service answers a GET with 200.
func (s *service) get() bool {
	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(s.svc.Port) + "/")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// TestHungServerKilledAndRestarted: a web server stopped with SIGSTOP (the
// kernel still accepts connections, nothing answers) is found stalled
// after the failover time, killed, restarted with reason stall, and serves
// again; its monitor starts afresh. The lines come in this order: find,
// Killed Process, Down, Try to restart, Up.
func TestHungServerKilledAndRestarted(t *testing.T) {
	t.Parallel()
	s := newService(t, "http", 200, 0)
	pid := s.start()
	s.run(s.pfile(s.webservBlock(0)))
	s.log.wait(t, message.Up(bin, pid).Text, 1)
	waitFor(t, "an answered attempt", func() bool { return s.requests("HEAD /") >= 1 })

	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	find := message.WebServerStall(pid, s.svc.Port).Text
	s.log.wait(t, find, 1)
	s.log.wait(t, message.Killed(pid).Text, 1)
	s.log.wait(t, message.Down(bin, pid).Text, 1)
	s.log.wait(t, message.TryRestart(bin).Text, 1)
	newPid := waitPidTag(t, s.tag, pid)
	s.log.wait(t, message.Up(bin, newPid).Text, 1)
	order := []string{find, message.Killed(pid).Text, message.Down(bin, pid).Text, message.TryRestart(bin).Text, message.Up(bin, newPid).Text}
	for i := 1; i < len(order); i++ {
		if s.log.indexOf(order[i-1]) > s.log.indexOf(order[i]) {
			t.Fatalf("%q logged after %q: %q", order[i-1], order[i], s.log.texts())
		}
	}
	waitFor(t, "the restarted server to answer", s.get)
	if calls := readFile(s.calls); calls != fmt.Sprintf("%s %d stall\n", bin, pid) {
		t.Fatalf("restart script calls %q, want one with reason stall", calls)
	}
	waitFor(t, "the monitor to run afresh", func() bool {
		st := s.monitor(t)
		return st.State == stall.StateOk && st.Pid == newPid
	})
	if st := s.monitor(t); st.Stalls != 1 || st.Failures < 2 {
		t.Fatalf("status %+v: want 1 stall after at least 2 failures", st)
	}
}

// TestNoStallWhileRestarting: a restart script slower than the failover
// time keeps the port closed for longer than it, and no stall is found:
// the monitor is paused while the process is down and restarting.
func TestNoStallWhileRestarting(t *testing.T) {
	t.Parallel()
	s := newService(t, "http", 200, 4)
	pid := s.start()
	s.run(s.pfile(s.webservBlock(0)))
	s.log.wait(t, message.Up(bin, pid).Text, 1)
	waitFor(t, "an answered attempt", func() bool { return s.requests("HEAD /") >= 1 })

	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	s.log.wait(t, message.TryRestart(bin).Text, 1)
	waitFor(t, "Paused while restarting", func() bool { return s.monitor(t).State == stall.StatePaused })
	newPid := waitPidTag(t, s.tag, pid)
	s.log.wait(t, message.Up(bin, newPid).Text, 1)
	before := s.requests("HEAD /")
	waitFor(t, "two attempts on the restarted server", func() bool { return s.requests("HEAD /") >= before+2 })
	for _, line := range s.log.texts() {
		if strings.HasPrefix(line, "Find ") {
			t.Fatalf("stall found around a slow restart: %q", s.log.texts())
		}
	}
}

// TestServerErrorIsNotStall: a server answering 500 answered: no stall
// after many times the failover time's worth of attempts.
func TestServerErrorIsNotStall(t *testing.T) {
	t.Parallel()
	s := newService(t, "http", 500, 0)
	pid := s.start()
	s.run(s.pfile(s.webservBlock(0)))
	s.log.wait(t, message.Up(bin, pid).Text, 1)
	waitFor(t, "5 answered attempts", func() bool { return s.requests("HEAD /") >= 5 })
	st := s.monitor(t)
	if st.State != stall.StateOk || st.Failures != 0 || st.Stalls != 0 || !strings.Contains(st.LastDetail, "500") {
		t.Fatalf("status %+v: want Ok, the 500 status line as detail", st)
	}
	if s.log.count(message.WebServerStall(pid, s.svc.Port).Text) != 0 {
		t.Fatal("a server answering 500 was stalled")
	}
}

// TestTLSPath: a TLS server with a self-signed certificate under
// _bi_webservs with a path receives HEAD on that path and is Ok.
func TestTLSPath(t *testing.T) {
	t.Parallel()
	s := newService(t, "https", 200, 0)
	pid := s.start()
	s.run(s.pfile(block("webservs", fmt.Sprintf("-:1:-:5:2:%d:127.0.0.1:1:/health/check", s.svc.Port), 1)))
	s.log.wait(t, message.Up(bin, pid).Text, 1)
	waitFor(t, "3 HEAD /health/check", func() bool { return s.requests("HEAD /health/check") >= 3 })
	if st := s.monitor(t); st.State != stall.StateOk || st.Failures != 0 || st.Target != fmt.Sprintf("https://127.0.0.1:%d/health/check", s.svc.Port) {
		t.Fatalf("status %+v", st)
	}
}

// TestTwoMonitorsStallOneKill: two monitors of one entry that stall
// together (a web server stopped with SIGSTOP, watched by two _bi_webserv
// blocks) each log their find message, and the server is killed, and
// logged killed, once. Without pidfds the death is seen only by the
// re-check (MonitorInterval 60 s), so the entry is still Up when the
// second stall comes: the case where a second kill was tried.
func TestTwoMonitorsStallOneKill(t *testing.T) {
	t.Parallel()
	s := newService(t, "http", 200, 0)
	pid := s.start()
	f := s.pfileParams("MonitorInterval 60\nStartWait 10\nKillWait 1\nRestartTimeout 20\n", s.webservBlock(0), s.webservBlock(0))
	s.runWith(f, nil)
	s.log.wait(t, message.Up(bin, pid).Text, 1)
	waitFor(t, "both monitors attempted", func() bool {
		ms := s.inst.Monitors()
		return len(ms) == 2 && ms[0].Attempts > 0 && ms[1].Attempts > 0
	})
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	s.log.wait(t, message.WebServerStall(pid, s.svc.Port).Text, 2)
	// The entry takes the ping once it has acted on both stalls.
	if err := s.inst.Alive(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := s.log.count(message.Killed(pid).Text); n != 1 {
		t.Fatalf("%q logged %d times, want once: %q", message.Killed(pid).Text, n, s.log.texts())
	}
	if n := s.log.count(message.CannotKill(pid).Text); n != 0 {
		t.Fatalf("%q logged %d times", message.CannotKill(pid).Text, n)
	}
}

// service is a web service run by a restart script, and an engine
// Instance with its stall monitors watching it.
type service struct {
	t      *testing.T
	tag    string
	dir    string
	script string
	calls  string
	svc    stalltest.Service
	log    *recorder
	inst   *Instance
}

// newService writes a restart script that starts the service (after
// sleeping delay seconds, when not zero) and records its calls.
func newService(t *testing.T, role string, status int, delay int) *service {
	t.Helper()
	port, err := stalltest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	s := &service{t: t, tag: tagFor(t, "svc"), dir: t.TempDir(), log: newRecorder()}
	s.calls = filepath.Join(s.dir, "calls")
	s.svc = stalltest.Service{Role: role, Port: port, Status: status, Log: filepath.Join(s.dir, "requests")}
	s.script = writeScript(t, s.dir, "restart.sh", fmt.Sprintf("echo \"$1 $2 $3\" >> '%s'\nsleep %d\n%s\n", s.calls, delay, s.svc.Script(bin, s.tag)))
	t.Cleanup(func() { killTagged(s.tag) })
	return s
}

// start starts the service as an operator would and returns its pid.
func (s *service) start() int {
	s.t.Helper()
	cmd := exec.Command(bin, "service", s.tag)
	cmd.Env = append(os.Environ(), s.svc.Env()...)
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	go cmd.Wait()
	return cmd.Process.Pid
}

// pfile returns a pfile watching the service with the given blocks.
func (s *service) pfile(blocks ...string) *pfile.File {
	return s.pfileParams("MonitorInterval 10\nStartWait 10\nKillWait 1\nRestartTimeout 20\n", blocks...)
}

// pfileParams is pfile with the given global parameters.
func (s *service) pfileParams(params string, blocks ...string) *pfile.File {
	s.t.Helper()
	text := fmt.Sprintf("%s%s %s args=\"%s\"\n%s", params, bin, s.script, s.tag, strings.Join(blocks, ""))
	path := filepath.Join(s.t.TempDir(), "test.pf")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		s.t.Fatal(err)
	}
	f, diags := parser.Load(path)
	if err := diags.Err(); err != nil {
		s.t.Fatalf("pfile:\n%s\n%v", text, err)
	}
	return f
}

// run starts the engine on f, with pidfds, until the test ends.
func (s *service) run(f *pfile.File) {
	s.t.Helper()
	w, err := proc.NewWatcher()
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { w.Close() })
	s.runWith(f, w)
}

// runWith starts the engine on f with watcher w (nil: deaths are seen by
// the re-check only) until the test ends.
func (s *service) runWith(f *pfile.File, w Watcher) {
	s.t.Helper()
	inst, err := New(Options{File: f, Log: s.log, Watcher: w})
	if err != nil {
		s.t.Fatal(err)
	}
	s.inst = inst
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); inst.Run(ctx) }()
	s.t.Cleanup(func() { cancel(); <-done })
}

// monitor returns the one stall monitor's status.
func (s *service) monitor(t testing.TB) stall.MonitorStatus {
	t.Helper()
	ms := s.inst.Monitors()
	if len(ms) != 1 {
		t.Fatalf("%d monitors, want 1", len(ms))
	}
	return ms[0]
}

// requests counts the requests line the service answered.
func (s *service) requests(line string) int { return stalltest.Count(s.svc.Log, line) }

// waitPidTag waits for a process of bin with tag in its argv, other than
// old.
func waitPidTag(t testing.TB, tag string, old int) int {
	t.Helper()
	m := proc.Matcher{Target: bin, Args: tag, UID: -1}
	pid := 0
	waitFor(t, "process "+tag, func() bool {
		all, _ := proc.Scan()
		for _, p := range m.Match(all) {
			if p.Pid != old {
				pid = p.Pid
				return true
			}
		}
		return false
	})
	return pid
}

// block returns a _bi_<kind> block with one PS_EXEC entry of the given
// fields after DIRECT (timeout:interval:error:argc:argv...) and a PS_ACTION
// with actionError.
func block(kind, exec string, actionError int) string {
	lib := "/opt/HA/PSWE/lib/lib_bi_" + kind + ".so"
	return fmt.Sprintf("_bi_%s{\n  PS_INIT DLL:%s:DIRECT:-::-:0\n  PS_EXEC DLL:%s:DIRECT:%s\n  PS_ACTION DLL:%s:DIRECT:-::-:%d:0\n  PS_QUIT DLL:%s:DIRECT:-::-:0\n}\n",
		kind, lib, lib, exec, lib, actionError, lib)
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// TestReloadKeepsMonitors: a reload is one switch of entries and
// monitors. An unchanged block keeps its monitor, running, with its
// counts, even when the entry is carried over under a new key (user=
// added); a changed block gets a new monitor, started at once since the
// process is Up; a removed block's monitor stops.
func TestReloadKeepsMonitors(t *testing.T) {
	t.Parallel()
	s := newService(t, "http", 200, 0)
	pid := s.start()
	sock := block("socket", fmt.Sprintf("-:1:0:2:2:%d", s.svc.Port), 1)
	web := func(failover int) string {
		return block("webserv", fmt.Sprintf("-:1:0:3:%d:%d:127.0.0.1", failover, s.svc.Port), 1)
	}
	s.run(s.pfile(sock, web(2)))
	s.log.wait(t, message.Up(bin, pid).Text, 1)
	waitFor(t, "both monitors attempted", func() bool {
		ms := s.inst.Monitors()
		return len(ms) == 2 && ms[0].Attempts > 0 && ms[1].Attempts > 0
	})
	old := s.inst.entries[0].getMonitors()

	f2 := s.pfile(sock, web(4))
	f2.Processes[0].User = "root"
	pfile.SetKeys(f2) // as the Builder would have made it
	if err := s.inst.Apply(f2); err != nil {
		t.Fatal(err)
	}
	now := s.inst.entries[0].getMonitors()
	if len(now) != 2 || now[0] != old[0] || now[1] == old[1] {
		t.Fatal("the reload did not keep the unchanged monitor and rebuild the changed one")
	}
	before := s.inst.Monitors()[0].Attempts
	waitFor(t, "the kept and the new monitor to run", func() bool {
		ms := s.inst.Monitors()
		return ms[0].Attempts > before && ms[1].Attempts > 0 && ms[1].State == stall.StateOk
	})
	if ms := s.inst.Monitors(); ms[0].Key != s.inst.entries[0].getKey() || ms[1].Failover != 4*time.Second || !strings.Contains(ms[0].Key, "root") {
		t.Fatalf("after the reload: %+v", ms)
	}
	if st := old[1].Status(time.Now()); st.State != stall.StatePaused {
		t.Fatalf("the replaced monitor is %v, want Paused (stopped)", st.State)
	}

	if err := s.inst.Apply(s.pfile(web(4))); err != nil {
		t.Fatal(err)
	}
	if ms := s.inst.Monitors(); len(ms) != 1 || ms[0].Kind != pfile.KindWebserv {
		t.Fatalf("after removing a block: %+v", ms)
	}
	if st := old[0].Status(time.Now()); st.State != stall.StatePaused {
		t.Fatalf("the removed monitor is %v, want Paused (stopped)", st.State)
	}
}

// TestTLSExpiryWarning: a _bi_webservs monitor with TLSExpiryWarn 5 on a
// server whose certificate expires in 3 days warns once (not at every
// attempt), shows the end of validity in its status, and is not stalled;
// with TLSExpiryFail 5 the same server is a failure, and stalls.
func TestTLSExpiryWarning(t *testing.T) {
	t.Parallel()
	s := newService(t, "https", 200, 0)
	s.svc.ValidFor = 3*24*time.Hour + time.Hour
	s.script = writeScript(t, s.dir, "restart2.sh", fmt.Sprintf("echo \"$1 $2 $3\" >> '%s'\n%s\n", s.calls, s.svc.Script(bin, s.tag)))
	pid := s.start()
	blk := func(option string) string {
		b := block("webservs", fmt.Sprintf("-:1:0:5:2:%d:127.0.0.1:1:/", s.svc.Port), 1)
		return strings.Replace(b, "}\n", "  "+option+"\n}\n", 1)
	}
	s.run(s.pfile(blk("TLSExpiryWarn 5")))
	s.log.wait(t, message.Up(bin, pid).Text, 1)
	warn := message.TLSExpiresSoon(s.svc.Port, 3).Text
	s.log.wait(t, warn, 1)
	waitFor(t, "three more attempts", func() bool { return s.requests("HEAD /") >= 4 })
	if n := s.log.count(warn); n != 1 {
		t.Fatalf("%q logged %d times, want once a day", warn, n)
	}
	st := s.monitor(t)
	if left := time.Until(st.TLSNotAfter); st.State != stall.StateOk || left < 3*24*time.Hour || left > 3*24*time.Hour+time.Hour {
		t.Fatalf("status %+v: want Ok with the certificate's end of validity", st)
	}

	if err := s.inst.Apply(s.pfile(blk("TLSExpiryFail 5"))); err != nil {
		t.Fatal(err)
	}
	s.log.wait(t, message.WebServerStall(pid, s.svc.Port).Text, 1)
}

// TestStallDiagnosticsBeforeKill: with StallDiagnostics on, StallSignal
// QUIT and StallSignalWait 1, a web server stopped with SIGSTOP is sent
// SIGQUIT (left pending: the server is stopped), and a second later,
// before the kill, its /proc state is saved to <state-dir>/diag: the file
// the syslog line and the event name holds its stack or wchan (stopped in
// do_signal_stop) and the pending QUIT. Then the kill and the restart as
// without diagnostics.
func TestStallDiagnosticsBeforeKill(t *testing.T) {
	t.Parallel()
	s := newService(t, "http", 200, 0)
	pid := s.start()
	opts := "  StallDiagnostics on\n  StallSignal QUIT\n  StallSignalWait 1\n}\n"
	blk := strings.Replace(s.webservBlock(0), "}\n", opts, 1)
	stateDir := t.TempDir()
	ev := &events{}
	r := run(t, Options{File: s.pfile(blk), Log: s.log, ScriptOutputDir: stateDir, OnEvent: ev.add})
	s.inst = r.Instance
	s.log.wait(t, message.Up(bin, pid).Text, 1)
	waitFor(t, "an answered attempt", func() bool { return s.requests("HEAD /") >= 1 })

	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	find := message.WebServerStall(pid, s.svc.Port).Text
	s.log.wait(t, message.Killed(pid).Text, 1)
	var saved string
	for _, line := range s.log.texts() {
		if rest, ok := strings.CutPrefix(line, fmt.Sprintf("Stall diagnostics saved ('%s'): ", bin)); ok {
			saved = rest
		}
	}
	if saved == "" || filepath.Dir(saved) != filepath.Join(stateDir, "diag") {
		t.Fatalf("no Stall diagnostics saved line naming a file in %s/diag: %q", stateDir, s.log.texts())
	}
	if i, j, k := s.log.indexOf(find), s.log.indexOf(message.StallDiagnostics(bin, saved).Text), s.log.indexOf(message.Killed(pid).Text); !(i < j && j < k) {
		t.Fatalf("want find, diagnostics, kill in that order: %q", s.log.texts())
	}
	evs := ev.wait(t, "stall-diagnostics", 1)
	if len(evs) != 1 || !strings.Contains(evs[0].Text, saved) {
		t.Fatalf("stall-diagnostics events %+v, want one naming %s", evs, saved)
	}
	if finds := ev.of("webserver-stall"); len(finds) != 1 || evs[0].Time.Sub(finds[0].Time) < 950*time.Millisecond {
		t.Fatalf("diagnostics saved %v after the find, want StallSignalWait 1 s", evs[0].Time.Sub(finds[0].Time))
	}
	st, err := os.Lstat(saved)
	if err != nil || !st.Mode().IsRegular() || st.Mode().Perm() != 0o600 || st.Size() > 256<<10 {
		t.Fatalf("diagnostics file %s: %v %v", saved, st, err)
	}
	text := readFile(saved)
	for _, want := range []string{
		fmt.Sprintf("== pid %d (watched) ==", pid),
		fmt.Sprintf("-- /proc/%d/stack --", pid),
		fmt.Sprintf("-- /proc/%d/wchan --", pid),
		fmt.Sprintf("-- /proc/%d/syscall --", pid),
		"State:\tT (stopped)",
		"stall: " + find,
	} {
		if !strings.Contains(text, want) {
			t.Fatalf("diagnostics lack %q:\n%s", want, text)
		}
	}
	if !strings.Contains(text, "do_signal_stop") {
		t.Fatalf("diagnostics hold neither the stack nor the wchan of the stopped server:\n%s", text)
	}
	// SIGQUIT is bit 3 of the pending set: sent before the file was made.
	if !regexp.MustCompile(`(?m)^(Shd|Sig)Pnd:\s*[0-9a-f]*[4-7cdef]$`).MatchString(text) {
		t.Fatalf("no pending SIGQUIT in the saved status:\n%s", text)
	}
	s.log.wait(t, message.Down(bin, pid).Text, 1)
	newPid := waitPidTag(t, s.tag, pid)
	s.log.wait(t, message.Up(bin, newPid).Text, 1)
}

// TestPruneDiagnostics: an entry keeps its newest diagnostics files; the
// files of other entries and other names are left alone.
func TestPruneDiagnostics(t *testing.T) {
	dir := t.TempDir()
	prefix := diagPrefix("/etc/pcheck/web.pf", "/usr/sbin/httpd")
	other := diagPrefix("/etc/pcheck/web.pf", "/usr/sbin/sshd")
	for i := range 25 {
		for _, p := range []string{prefix, other} {
			name := fmt.Sprintf("%s2026010%dT0000%02d.000000Z.txt", p, i/10, i)
			if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	os.WriteFile(filepath.Join(dir, prefix+"notes"), nil, 0o600)
	d, err := trust.OpenWriteDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	pruneDiagnostics(d, prefix, 20)
	mine, _ := filepath.Glob(filepath.Join(dir, prefix+"*.txt"))
	theirs, _ := filepath.Glob(filepath.Join(dir, other+"*.txt"))
	if len(mine) != 20 || len(theirs) != 25 {
		t.Fatalf("kept %d of the entry's files and %d of another's, want 20 and 25", len(mine), len(theirs))
	}
	if _, err := os.Stat(filepath.Join(dir, prefix+"20260100T000004.000000Z.txt")); err == nil {
		t.Fatal("an old file was kept")
	}
	if _, err := os.Stat(filepath.Join(dir, prefix+"20260102T000024.000000Z.txt")); err != nil {
		t.Fatal("the newest file was removed")
	}
	if _, err := os.Stat(filepath.Join(dir, prefix+"notes")); err != nil {
		t.Fatal("a file not named like a diagnostics file was removed")
	}
}

// TestTLSExpiryFailRestartsOnce: TLSExpiryFail stalls a server whose
// certificate expires too soon, and the restart follows; a restarted
// server that brings back a certificate not renewed is not killed again
// (it used to be, at every failover, until retry over: an outage of
// pcheck's making over a certificate still valid). The monitor is Unknown
// instead, saying to renew it, once.
func TestTLSExpiryFailRestartsOnce(t *testing.T) {
	t.Parallel()
	s := newService(t, "https", 200, 0)
	s.svc.ValidFor = 3*24*time.Hour + time.Hour
	s.script = writeScript(t, s.dir, "restart2.sh", fmt.Sprintf("echo \"$1 $2 $3\" >> '%s'\n%s\n", s.calls, s.svc.Script(bin, s.tag)))
	pid := s.start()
	blk := strings.Replace(block("webservs", fmt.Sprintf("-:1:0:5:2:%d:127.0.0.1:1:/", s.svc.Port), 1), "}\n", "  TLSExpiryFail 5\n}\n", 1)
	s.run(s.pfile(blk))
	s.log.wait(t, message.Up(bin, pid).Text, 1)
	s.log.wait(t, message.WebServerStall(pid, s.svc.Port).Text, 1)
	newPid := waitPidTag(t, s.tag, pid)
	s.log.wait(t, message.Up(bin, newPid).Text, 1)
	var st stall.MonitorStatus
	waitFor(t, "the monitor Unknown on the restarted server", func() bool {
		st = s.monitor(t)
		return st.Pid == newPid && st.State == stall.StateUnknown
	})
	if !strings.Contains(st.LastError, "renew the certificate") {
		t.Fatalf("status %+v: want the reason to renew the certificate", st)
	}
	before := st.Attempts
	waitFor(t, "three more attempts", func() bool { return s.monitor(t).Attempts >= before+3 })
	if n := s.log.count(message.WebServerStall(newPid, s.svc.Port).Text); n != 0 {
		t.Fatalf("the restarted server was stalled again for the same certificate: %q", s.log.texts())
	}
	unknown := 0
	for _, l := range s.log.texts() {
		if strings.HasPrefix(l, "Monitor unknown") {
			unknown++
		}
	}
	if unknown != 1 {
		t.Fatalf("Monitor unknown logged %d times, want once: %q", unknown, s.log.texts())
	}
	if calls := readFile(s.calls); strings.Count(calls, "\n") != 1 {
		t.Fatalf("restart script calls %q, want one", calls)
	}
}

// diagBlock is a _bi_webserv block on port (interval 1 s, failover 2 s)
// with StallDiagnostics on and the given StallSignal and StallSignalWait.
func diagBlock(port int, signal string, wait int) string {
	opts := fmt.Sprintf("  StallDiagnostics on\n  StallSignal %s\n  StallSignalWait %d\n}\n", signal, wait)
	return strings.Replace(block("webserv", fmt.Sprintf("-:1:0:3:2:%d:127.0.0.1", port), 1), "}\n", opts, 1)
}

// TestStallSignalDeathEndsWait: a StallSignal whose default action kills
// (HUP: the service does not catch it) ends StallSignalWait 10 at once:
// the Down comes a second or two after the find, not after the wait; no
// Killed Process is logged for the dead server and no diagnostics file is
// written (nothing is left to save); the restart has reason stall. The
// block probes a port nobody listens on, so the server stalls while it
// runs (not stopped: the signal acts at once).
func TestStallSignalDeathEndsWait(t *testing.T) {
	t.Parallel()
	s := newService(t, "http", 200, 0)
	pid := s.start()
	closed, err := stalltest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	ev := &events{}
	r := run(t, Options{File: s.pfile(diagBlock(closed, "HUP", 10)), Log: s.log, ScriptOutputDir: t.TempDir(), OnEvent: ev.add})
	s.inst = r.Instance
	s.log.wait(t, message.Up(bin, pid).Text, 1)
	find := ev.wait(t, "webserver-stall", 1)[0]
	down := ev.wait(t, "down", 1)[0]
	if gap := down.Time.Sub(find.Time); gap > 4*time.Second {
		t.Fatalf("the Down came %s after the find, want at once (StallSignalWait is 10 s): %q", gap, s.log.texts())
	}
	newPid := waitPidTag(t, s.tag, pid)
	s.log.wait(t, message.Up(bin, newPid).Text, 1)
	if calls := readFile(s.calls); !strings.HasPrefix(calls, fmt.Sprintf("%s %d stall\n", bin, pid)) {
		t.Fatalf("restart script calls %q, want the first with reason stall", calls)
	}
	for _, line := range s.log.texts() {
		if line == message.Killed(pid).Text || line == message.CannotKill(pid).Text || strings.HasPrefix(line, "Stall diagnostics saved") {
			t.Fatalf("%q logged for a server dead of its StallSignal: %q", line, s.log.texts())
		}
	}
}

// TestReloadDuringStallSignalWait: a reload that removes the stalled
// monitor during StallSignalWait voids its stall: the diagnostics file is
// still written (the signal was sent), but nothing is killed and the
// entry stays Up.
func TestReloadDuringStallSignalWait(t *testing.T) {
	t.Parallel()
	s := newService(t, "http", 200, 0)
	pid := s.start()
	ev := &events{}
	r := run(t, Options{File: s.pfile(diagBlock(s.svc.Port, "QUIT", 3)), Log: s.log, ScriptOutputDir: t.TempDir(), OnEvent: ev.add})
	s.inst = r.Instance
	s.log.wait(t, message.Up(bin, pid).Text, 1)
	waitFor(t, "an answered attempt", func() bool { return s.requests("HEAD /") >= 1 })
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	ev.wait(t, "webserver-stall", 1)
	if err := s.inst.Apply(s.pfile()); err != nil {
		t.Fatal(err)
	}
	ev.wait(t, "stall-diagnostics", 1)
	// The entry takes the ping once it is done with the stall.
	if err := s.inst.Alive(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := s.log.count(message.Killed(pid).Text); n != 0 {
		t.Fatalf("killed after a reload removed the stalled monitor: %q", s.log.texts())
	}
	if st := r.state(bin); st.State != StateUp || len(st.Pids) != 1 || st.Pids[0] != pid {
		t.Fatalf("status %+v, want Up with pid %d", st, pid)
	}
}

// TestStallDiagnosticsWithoutStateDir: without a state directory nothing
// can be saved, so StallSignal is not sent and StallSignalWait not waited:
// the kill follows the find at once, and a warning naming the fix comes
// once per entry, not at every stall.
func TestStallDiagnosticsWithoutStateDir(t *testing.T) {
	t.Parallel()
	s := newService(t, "http", 200, 0)
	pid := s.start()
	ev := &events{}
	r := run(t, Options{File: s.pfile(diagBlock(s.svc.Port, "QUIT", 10)), Log: s.log, OnEvent: ev.add})
	s.inst = r.Instance
	warned := func() int {
		n := 0
		for _, line := range s.log.texts() {
			if strings.Contains(line, "no state directory") && strings.Contains(line, "--state-dir") {
				n++
			}
		}
		return n
	}
	for round := 1; round <= 2; round++ {
		s.log.wait(t, message.Up(bin, pid).Text, 1)
		before := s.requests("HEAD /")
		waitFor(t, "an answered attempt", func() bool { return s.requests("HEAD /") > before })
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		find := ev.wait(t, "webserver-stall", round)[round-1]
		s.log.wait(t, message.Killed(pid).Text, 1)
		if gap := time.Since(find.Time); gap > 6*time.Second {
			t.Fatalf("round %d: killed %s after the find, want no StallSignalWait (10 s)", round, gap)
		}
		if n := warned(); n != 1 {
			t.Fatalf("round %d: %d warnings naming --state-dir, want 1: %q", round, n, s.log.texts())
		}
		pid = waitPidTag(t, s.tag, pid)
	}
}

// TestDiagOutputBounds: the last output of the diagnostics is bounded as
// the crash output is: in the file the entry's mark names, only what was
// written past the mark; in another file, nothing when it was last
// written before the watched process started. The mark is left as it is.
func TestDiagOutputBounds(t *testing.T) {
	f := newFixture(t, "diagout", ":")
	in, err := New(Options{File: testFile("x.pf", testParams(), f.process()), Log: newRecorder(), ScriptOutputDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	e := in.entries[0]
	out := e.scriptOutput()
	if err := os.WriteFile(out, []byte("logged 1\nlogged 2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fh, err := os.OpenFile(out, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	e.outMark = fileMark(fh, int64(len("logged 1\nlogged 2\n")))
	fh.WriteString("new 1\nnew 2\n")
	id := proc.ID{Pid: os.Getpid()}
	e.watching[id.Pid] = &watched{id: id, started: bootClock()}
	mark := e.outMark
	if got := e.diagOutput(out, id); strings.Join(got, "|") != "new 1|new 2" || e.outMark != mark {
		t.Fatalf("last output %q (mark %+v, was %+v): want the lines past the mark, the mark unchanged", got, e.outMark, mark)
	}
	// Another file, last written an hour before the process started.
	if err := os.Rename(out, out+".old"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, []byte("before 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hour := time.Now().Add(-time.Hour)
	if err := os.Chtimes(out, hour, hour); err != nil {
		t.Fatal(err)
	}
	if got := e.diagOutput(out, id); len(got) != 0 {
		t.Fatalf("last output %q of a file written before the process started", got)
	}
}
