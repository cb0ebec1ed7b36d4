package main

// End-to-end tests of pcheck's own monitors (_bi_heartbeat, _bi_listen,
// _bi_children) and of the cleanup list: the pcheck binary on pfiles made
// from testdata/e2e/monitors, a real syslog receiver, and this test binary
// re-executed as the monitored daemons (the roles below, chosen by the
// environment before TestMain runs). MonitorInterval and every interval
// are 1 s, failovers 2 or 3 s. The states padmin shows are read from the
// control socket, as `padmin status --json` reads them.

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/pcheck/pcheck/checker/control"
	"github.com/pcheck/pcheck/checker/proc"
	"github.com/pcheck/pcheck/checker/stall/stalltest"
	"github.com/pcheck/pcheck/checker/syslogtest"
)

const monFixtures = "../../testdata/e2e/monitors/"

// The environment of a daemon role.
const (
	// monRoleEnv selects the role: heartbeat, listen, master, child,
	// idle. Empty, the binary is the test.
	monRoleEnv = "PCHECK_MONTEST_ROLE"
	// monFileEnv is the heartbeat file (heartbeat) or the accept log
	// (listen).
	monFileEnv = "PCHECK_MONTEST_FILE"
	// monAddrEnv is the host:port a listen daemon listens on.
	monAddrEnv = "PCHECK_MONTEST_ADDR"
	// monChildrenEnv is a master's child names, comma-separated, or a
	// child's own name.
	monChildrenEnv = "PCHECK_MONTEST_CHILDREN"
)

// Syslog severities of the messages checked here.
const (
	sevErr    = 3
	sevNotice = 5
)

// The roles run from init: on the main thread, so that a child's
// PR_SET_NAME renames the process (the thread group leader).
func init() {
	role := os.Getenv(monRoleEnv)
	if role == "" {
		return
	}
	err := runRole(role)
	fmt.Fprintf(os.Stderr, "monitor test daemon %s: %v\n", role, err)
	os.Exit(1)
}

// runRole is the daemon of role, with argv [self, role, tag] (a child:
// [self, child, name, tag]). It returns only on error.
//
//   - idle: does nothing.
//   - heartbeat: touches its file every 200 ms; SIGUSR1 stops the
//     touching, SIGUSR2 resumes it.
//   - listen: listens on its address, logging every connection it
//     accepts to its accept log; SIGUSR1 closes the listener and it goes
//     on running.
//   - master: starts one child per name; SIGUSR1 kills the last child
//     started (not replaced).
//   - child: takes its name as comm (prctl PR_SET_NAME).
func runRole(role string) error {
	if role != "child" {
		unix.Setsid() // a daemon of its own, as the engine expects
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, unix.SIGUSR1, unix.SIGUSR2)
	switch role {
	case "idle":
	case "heartbeat":
		return heartbeatRole(os.Getenv(monFileEnv), sigs)
	case "listen":
		return listenRole(os.Getenv(monAddrEnv), os.Getenv(monFileEnv), sigs)
	case "master":
		return masterRole(strings.Split(os.Getenv(monChildrenEnv), ","), sigs)
	case "child":
		name, err := unix.BytePtrFromString(os.Getenv(monChildrenEnv))
		if err != nil {
			return err
		}
		if err := unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(name)), 0, 0, 0); err != nil {
			return fmt.Errorf("prctl PR_SET_NAME: %w", err)
		}
	default:
		return errors.New("unknown role")
	}
	for {
		time.Sleep(time.Hour)
	}
}

func heartbeatRole(path string, sigs <-chan os.Signal) error {
	beat := func() error {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o644)
		if err != nil {
			return err
		}
		f.Close()
		now := time.Now()
		return os.Chtimes(path, now, now)
	}
	if err := beat(); err != nil {
		return err
	}
	tick := time.NewTicker(200 * time.Millisecond)
	beating := true
	for {
		select {
		case s := <-sigs:
			beating = s == unix.SIGUSR2
		case <-tick.C:
			if !beating {
				continue
			}
			if err := beat(); err != nil {
				return err
			}
		}
	}
}

func listenRole(addr, acceptLog string, sigs <-chan os.Signal) error {
	var l net.Listener
	var err error
	// A killed predecessor may still hold the port for a moment.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		l, err = net.Listen("tcp", addr)
		if err == nil || !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		return err
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
			if f, err := os.OpenFile(acceptLog, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err == nil {
				f.WriteString("accept\n")
				f.Close()
			}
		}
	}()
	for s := range sigs {
		if s == unix.SIGUSR1 {
			l.Close()
		}
	}
	return nil
}

func masterRole(names []string, sigs <-chan os.Signal) error {
	var kids []*exec.Cmd
	for _, name := range names {
		kid := exec.Command(self, "child", name, os.Args[2])
		kid.Env = append(os.Environ(), monRoleEnv+"=child", monChildrenEnv+"="+name)
		if err := kid.Start(); err != nil {
			return err
		}
		go kid.Wait()
		kids = append(kids, kid)
	}
	for s := range sigs {
		if s == unix.SIGUSR1 && len(kids) > 0 {
			kids[len(kids)-1].Process.Kill()
			kids = kids[:len(kids)-1]
		}
	}
	return nil
}

// monDaemon is one monitored daemon: this test binary in a role, with
// argv [self, role, tag], and its restart script (the stall tests'
// restart.sh: it records its call and starts the daemon again).
type monDaemon struct {
	t      *testing.T
	role   string
	tag    string
	env    []string
	script string
	calls  string
}

// newMonDaemon prepares the daemon name of role with its environment
// (NAME=value strings) and restart script in dir.
func newMonDaemon(t *testing.T, dir, name, role string, env ...string) *monDaemon {
	t.Helper()
	d := &monDaemon{
		t:      t,
		role:   role,
		tag:    fmt.Sprintf("pcheck-e2e-%d-%s-%s", os.Getpid(), t.Name(), name),
		env:    append([]string{monRoleEnv + "=" + role}, env...),
		script: filepath.Join(dir, name+"-restart.sh"),
		calls:  filepath.Join(dir, name+"-calls"),
	}
	var start strings.Builder
	for _, kv := range d.env {
		k, v, _ := strings.Cut(kv, "=")
		fmt.Fprintf(&start, "%s='%s' ", k, v)
	}
	fmt.Fprintf(&start, "'%s' %s '%s' </dev/null >/dev/null 2>&1 &", self, role, d.tag)
	copyFilled(t, stallFixtures+"restart.sh", d.script, strings.NewReplacer("@CALLS@", d.calls, "@START@", start.String()), 0o755)
	t.Cleanup(func() { killTagged(d.tag) })
	return d
}

// args is the process entry's args=: the role and the tag, which a
// master's children (argv [self, child, name, tag]) do not contain.
func (d *monDaemon) args() string { return d.role + " " + d.tag }

// key is the engine's key of the daemon's process entry.
func (d *monDaemon) key() string { return fmt.Sprintf("%s %s args=%s", self, d.script, d.args()) }

// start starts the daemon as an operator would before pcheck.
func (d *monDaemon) start() int {
	d.t.Helper()
	cmd := exec.Command(self, d.role, d.tag)
	cmd.Env = append(os.Environ(), d.env...)
	if err := cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	go cmd.Wait()
	return cmd.Process.Pid
}

// newPid waits for the daemon to run with a pid other than old.
func (d *monDaemon) newPid(old int) int {
	d.t.Helper()
	return (&e2e{t: d.t, tag: d.args()}).servicePid(old)
}

// entry is the daemon's process entry with the monitor block of the
// fixture blk, filled with fill (@ERROR@ defaults to 0, @FAILOVER@ to 2).
func (d *monDaemon) entry(blk string, fill ...string) string {
	d.t.Helper()
	b, err := os.ReadFile(monFixtures + blk)
	if err != nil {
		d.t.Fatal(err)
	}
	fill = append(fill, "@ERROR@", "0", "@FAILOVER@", "2")
	return fmt.Sprintf("%s %s args=\"%s\"\n%s", self, d.script, d.args(), strings.NewReplacer(fill...).Replace(string(b)))
}

// wantCalls checks the restart script's calls: one per old pid, each
// with reason stall.
func (d *monDaemon) wantCalls(old ...int) {
	d.t.Helper()
	want := ""
	for _, pid := range old {
		want += fmt.Sprintf("%s %d stall\n", self, pid)
	}
	if b, _ := os.ReadFile(d.calls); string(b) != want {
		d.t.Fatalf("%s: restart script calls %q, want %q", d.tag, b, want)
	}
}

// monDir is a test directory short enough for the control socket's path
// (pfile name included) to fit sun_path.
func monDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// monSetup writes the pfile of entries and cleanup lines in dir.
func monSetup(t *testing.T, dir string, cleanup []string, entries ...string) *e2e {
	t.Helper()
	e := &e2e{t: t, dir: dir, log: syslogtest.Listen(t), pfile: filepath.Join(dir, "monitors.pf")}
	copyFilled(t, monFixtures+"monitors.pf", e.pfile,
		strings.NewReplacer("@CLEANUP@", strings.Join(cleanup, "\n"), "@ENTRIES@", strings.Join(entries, "\n")), 0o644)
	return e
}

// control opens the control socket of the pcheck serving e.pfile.
func (e *e2e) control() (*control.Client, error) {
	return control.Dial(control.SocketPath(filepath.Join(e.dir, "run"), e.pfile), 5*time.Second)
}

// monitor returns the status of d's stall monitor as padmin status shows
// it; false while pcheck does not answer.
func (e *e2e) monitor(d *monDaemon) (control.MonitorStatus, bool) {
	c, err := e.control()
	if err != nil {
		return control.MonitorStatus{}, false
	}
	defer c.Close()
	var st control.StatusResult
	if _, err := c.Call(control.Request{Command: control.CmdStatus}, &st); err != nil {
		return control.MonitorStatus{}, false
	}
	for _, m := range st.Monitors {
		if m.Key == d.key() {
			return m, true
		}
	}
	e.t.Fatalf("no monitor of %s in %+v", d.key(), st.Monitors)
	return control.MonitorStatus{}, false
}

// waitMonitor polls the status of d's monitor until cond holds.
func (e *e2e) waitMonitor(d *monDaemon, what string, cond func(control.MonitorStatus) bool) control.MonitorStatus {
	e.t.Helper()
	var last control.MonitorStatus
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		m, ok := e.monitor(d)
		if ok && cond(m) {
			return m
		}
		if ok {
			last = m
		}
	}
	e.t.Fatalf("%s: monitor not %s within 30 s; last status %+v", d.tag, what, last)
	return last
}

// stallSeen waits for the find message of a stall of pid, then Killed
// Process, in that order and at priorities err and notice, then the
// death, Try to restart and the new pid Up; it returns the new pid.
func (e *e2e) stallSeen(d *monDaemon, pid int, find string) int {
	e.t.Helper()
	f := e.wait(find)
	killed := e.wait(fmt.Sprintf("Killed Process: pid= %d", pid))
	for _, l := range []struct {
		line syslogtest.Line
		sev  int
	}{{f, sevErr}, {killed, sevNotice}} {
		if l.line.Ident != "pcheck" || l.line.Severity != l.sev {
			e.t.Fatalf("%q from %s at severity %d, want pcheck at %d", l.line.Text, l.line.Ident, l.line.Severity, l.sev)
		}
	}
	if i, j := e.index(f.Text), e.index(killed.Text); i > j {
		e.t.Fatalf("%q logged after %q", f.Text, killed.Text)
	}
	e.wait(fmt.Sprintf("Process ['%s',pid=%d] Down", self, pid))
	e.wait(fmt.Sprintf("Try to restart ('%s')", self))
	newPid := d.newPid(pid)
	e.wait(fmt.Sprintf("('%s' ,pid=%d) Up", self, newPid))
	return newPid
}

// index is the position of the first line whose text is text, -1 if none.
func (e *e2e) index(text string) int {
	for i, l := range e.log.Lines() {
		if l.Text == text {
			return i
		}
	}
	return -1
}

// TestMonitorHeartbeat: _bi_heartbeat on keep-alive files touched every
// 200 ms. A daemon hung by SIGSTOP stops touching its file: Find Heartbeat
// Stall, Killed Process, restart with reason stall, Ok again. A file that
// never exists is no heartbeat: a stall too (PS_EXEC error=1: only once).
// A daemon that stops touching under a 30 s failover is In doubt, with
// the seconds since its last heartbeat, and Ok again when it resumes.
func TestMonitorHeartbeat(t *testing.T) {
	t.Parallel()
	dir := monDir(t)
	hungFile, doubtFile, never := filepath.Join(dir, "hung.alive"), filepath.Join(dir, "doubt.alive"), filepath.Join(dir, "never.alive")
	hung := newMonDaemon(t, dir, "hung", "heartbeat", monFileEnv+"="+hungFile)
	doubt := newMonDaemon(t, dir, "doubt", "heartbeat", monFileEnv+"="+doubtFile)
	silent := newMonDaemon(t, dir, "silent", "idle")
	e := monSetup(t, dir, nil,
		hung.entry("heartbeat.blk", "@FILE@", hungFile, "@FAILOVER@", "3"),
		doubt.entry("heartbeat.blk", "@FILE@", doubtFile, "@FAILOVER@", "30"),
		silent.entry("heartbeat.blk", "@FILE@", never, "@ERROR@", "1"))
	pid, doubtPid, silentPid := hung.start(), doubt.start(), silent.start()
	e.pcheck(e.pfile)
	for _, p := range []int{pid, doubtPid, silentPid} {
		e.wait(fmt.Sprintf("('%s' ,pid=%d) Up", self, p))
	}

	// No file at all: stalled after the failover, once.
	silentPid2 := e.stallSeen(silent, silentPid, fmt.Sprintf("Find Heartbeat Stall: pid = %d : file = %s", silentPid, never))

	// In doubt while the heartbeats stop, Ok when they resume.
	e.waitMonitor(doubt, "Ok", func(m control.MonitorStatus) bool { return m.State == control.MonitorOk && m.Attempts >= 2 })
	syscall.Kill(doubtPid, syscall.SIGUSR1)
	m := e.waitMonitor(doubt, "In doubt for a second", func(m control.MonitorStatus) bool {
		return m.State == control.MonitorInDoubt && m.SinceSuccessSeconds >= 1
	})
	if !strings.Contains(m.LastError, "not modified") || m.Failures == 0 {
		t.Fatalf("In doubt without an unchanged heartbeat: %+v", m)
	}
	syscall.Kill(doubtPid, syscall.SIGUSR2)
	e.waitMonitor(doubt, "Ok again", func(m control.MonitorStatus) bool { return m.State == control.MonitorOk })

	// Hung: stalled, killed, restarted, beating again.
	e.waitMonitor(hung, "Ok", func(m control.MonitorStatus) bool { return m.State == control.MonitorOk && m.Attempts >= 2 })
	syscall.Kill(pid, syscall.SIGSTOP)
	e.stallSeen(hung, pid, fmt.Sprintf("Find Heartbeat Stall: pid = %d : file = %s", pid, hungFile))
	e.waitMonitor(hung, "Ok after the restart", func(m control.MonitorStatus) bool {
		return m.State == control.MonitorOk && m.Stalls == 1
	})

	hung.wantCalls(pid)
	silent.wantCalls(silentPid)
	doubt.wantCalls()
	noFind(t, e, silentPid2)
	noFind(t, e, doubtPid)
}

// TestMonitorListen: _bi_listen finds the LISTEN socket in /proc and
// never connects. A server that closes its listener and keeps running is
// stalled, killed and restarted; an IPv6 listener on [::1] is Ok under a
// block asking for [::1]; an IPv4 listener on 127.0.0.1 under such a
// block is stalled. No server ever accepts a connection from pcheck.
func TestMonitorListen(t *testing.T) {
	t.Parallel()
	dir := monDir(t)
	port := func() int {
		p, err := stalltest.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	listenDaemon := func(name, addr string) (*monDaemon, string) {
		accepts := filepath.Join(dir, name+"-accepts")
		return newMonDaemon(t, dir, name, "listen", monAddrEnv+"="+addr, monFileEnv+"="+accepts), accepts
	}
	closerPort, v4Port := port(), port()
	closer, closerAccepts := listenDaemon("closer", net.JoinHostPort("127.0.0.1", strconv.Itoa(closerPort)))
	v4, v4Accepts := listenDaemon("v4", net.JoinHostPort("127.0.0.1", strconv.Itoa(v4Port)))
	entries := []string{
		closer.entry("listen.blk", "@ARGC@", "2", "@PORT@", strconv.Itoa(closerPort), "@ADDRESS@", ""),
		v4.entry("listen.blk", "@ARGC@", "3", "@PORT@", strconv.Itoa(v4Port), "@ADDRESS@", ":[::1]", "@ERROR@", "1"),
	}
	var v6 *monDaemon
	var v6Port int
	var v6Accepts string
	if l, err := net.Listen("tcp6", "[::1]:0"); err != nil {
		t.Logf("no IPv6 loopback (%v): the [::1] listener is not tried", err)
	} else {
		v6Port = l.Addr().(*net.TCPAddr).Port
		l.Close()
		v6, v6Accepts = listenDaemon("v6", net.JoinHostPort("::1", strconv.Itoa(v6Port)))
		entries = append(entries, v6.entry("listen.blk", "@ARGC@", "3", "@PORT@", strconv.Itoa(v6Port), "@ADDRESS@", ":[::1]"))
	}
	e := monSetup(t, dir, nil, entries...)
	pid, v4Pid := closer.start(), v4.start()
	v6Pid := 0
	if v6 != nil {
		v6Pid = v6.start()
	}
	e.pcheck(e.pfile)
	e.wait(fmt.Sprintf("('%s' ,pid=%d) Up", self, pid))
	e.wait(fmt.Sprintf("('%s' ,pid=%d) Up", self, v4Pid))

	// 127.0.0.1 is not [::1].
	e.stallSeen(v4, v4Pid, fmt.Sprintf("Find Listen Port Stall: pid = %d : port = %d", v4Pid, v4Port))

	// The listener closed, the server running: stalled.
	e.waitMonitor(closer, "Ok", func(m control.MonitorStatus) bool { return m.State == control.MonitorOk && m.Attempts >= 2 })
	syscall.Kill(pid, syscall.SIGUSR1)
	e.stallSeen(closer, pid, fmt.Sprintf("Find Listen Port Stall: pid = %d : port = %d", pid, closerPort))
	e.waitMonitor(closer, "Ok after the restart", func(m control.MonitorStatus) bool {
		return m.State == control.MonitorOk && m.Stalls == 1
	})
	closer.wantCalls(pid)
	v4.wantCalls(v4Pid)

	if v6 != nil {
		// Three times the failover time without a failure.
		e.waitMonitor(v6, "Ok for 6 attempts", func(m control.MonitorStatus) bool {
			return m.State == control.MonitorOk && m.Attempts >= 6
		})
		if m, _ := e.monitor(v6); m.Failures != 0 || m.Stalls != 0 {
			t.Fatalf("the [::1] listener failed: %+v", m)
		}
		noFind(t, e, v6Pid)
	}
	// pcheck never connected; the accept logs work (a connection of
	// ours is counted).
	for _, log := range []string{closerAccepts, v4Accepts, v6Accepts} {
		if log == "" {
			continue // no IPv6
		}
		if b, err := os.ReadFile(log); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s: accepted connections %q (%v)", log, b, err)
		}
	}
	// A monitor shows Ok from its start, before its first attempt: the
	// restarted server may not listen yet, so the dial is retried.
	var c net.Conn
	var err error
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if c, err = net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(closerPort))); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the restarted server does not listen: %v", err)
		}
	}
	c.Close()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if b, _ := os.ReadFile(closerAccepts); string(b) == "accept\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the restarted server did not log the test's connection")
		}
	}
}

// TestMonitorChildren: _bi_children on a master whose children are named
// by comm (PR_SET_NAME). A child killed: Find Child Process Stall naming
// it, Killed Process for the master, the master restarted with new
// children; the old master's other child goes with it.
func TestMonitorChildren(t *testing.T) {
	t.Parallel()
	dir := monDir(t)
	names := []string{"mon-kid-alpha", "mon-kid-beta"}
	master := newMonDaemon(t, dir, "master", "master", monChildrenEnv+"="+strings.Join(names, ","))
	e := monSetup(t, dir, nil, master.entry("children.blk",
		"@ARGC@", strconv.Itoa(1+len(names)), "@CHILDREN@", strings.Join(names, ":"), "@FAILOVER@", "3"))
	pid := master.start()
	kids := waitChildren(t, pid, names)
	e.pcheck(e.pfile)
	e.wait(fmt.Sprintf("('%s' ,pid=%d) Up", self, pid))
	e.waitMonitor(master, "Ok", func(m control.MonitorStatus) bool {
		return m.State == control.MonitorOk && m.Attempts >= 2 && m.Failures == 0
	})

	syscall.Kill(pid, syscall.SIGUSR1) // the master kills mon-kid-beta
	newPid := e.stallSeen(master, pid, fmt.Sprintf("Find Child Process Stall: pid = %d : child = %s", pid, names[1]))
	master.wantCalls(pid)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, alive := proc.Current(kids[names[0]]); !alive {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s of the killed master still runs", names[0])
		}
	}
	waitChildren(t, newPid, names)
	e.waitMonitor(master, "Ok after the restart", func(m control.MonitorStatus) bool {
		return m.State == control.MonitorOk && m.Stalls == 1
	})
}

// waitChildren waits for the children of parent named names (by comm) and
// returns them by name.
func waitChildren(t *testing.T, parent int, names []string) map[string]proc.ID {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		found := map[string]proc.ID{}
		all, _ := proc.Scan()
		for _, p := range all {
			if p.PPid == parent && !p.Dead() {
				found[p.Comm] = p.ID
			}
		}
		n := 0
		for _, name := range names {
			if _, ok := found[name]; ok {
				n++
			}
		}
		if n == len(names) {
			return found
		}
		if time.Now().After(deadline) {
			t.Fatalf("children of %d: %v, want %q", parent, found, names)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestMonitorCleanupYoung: a process matching a Cleanup pattern that is
// younger than its minutes is left alone over several MonitorIntervals,
// and so is a monitored process matching one (a cleanup list read in
// seconds, or ages taken from the wrong clock, would kill both). The kill
// of an old process, which needs a process older than a minute, is
// checker/cleanup's TestOldKilledYoungSurvives, on the boot clock.
func TestMonitorCleanupYoung(t *testing.T) {
	t.Parallel()
	dir := monDir(t)
	beat := filepath.Join(dir, "witness.alive")
	young := newMonDaemon(t, dir, "young", "idle")
	witness := newMonDaemon(t, dir, "witness", "heartbeat", monFileEnv+"="+beat)
	e := monSetup(t, dir,
		[]string{fmt.Sprintf("Cleanup %q 1", young.tag), fmt.Sprintf("Cleanup %q 1", witness.tag)},
		witness.entry("heartbeat.blk", "@FILE@", beat))
	youngPid := young.start()
	youngInfo, err := proc.Read(youngPid)
	if err != nil {
		t.Fatal(err)
	}
	pid := witness.start()
	witnessInfo, err := proc.Read(pid)
	if err != nil {
		t.Fatal(err)
	}
	p := e.pcheck(e.pfile)
	e.wait(fmt.Sprintf("('%s' ,pid=%d) Up", self, pid))

	c, err := e.waitControl()
	if err != nil {
		t.Fatal(err)
	}
	var rules control.RulesResult
	_, err = c.Call(control.Request{Command: control.CmdRules}, &rules)
	c.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range []string{young.tag, witness.tag} {
		if want := fmt.Sprintf("%q after 1 min", tag); !strings.Contains(rules.Text, want) {
			t.Fatalf("effective rules lack Cleanup %s:\n%s", want, rules.Text)
		}
	}

	// The witness's heartbeat attempts, one per second at most, measure
	// the time: five more make four seconds, four MonitorIntervals.
	m := e.waitMonitor(witness, "Ok", func(m control.MonitorStatus) bool { return m.State == control.MonitorOk })
	e.waitMonitor(witness, "5 more attempts", func(n control.MonitorStatus) bool { return n.Attempts >= m.Attempts+5 })
	select {
	case <-p.done:
		t.Fatalf("pcheck exited; stderr:\n%s", p.stderr)
	default:
	}
	if _, ok := proc.Current(youngInfo.ID); !ok {
		t.Fatal("the young process was killed")
	}
	if _, ok := proc.Current(witnessInfo.ID); !ok {
		t.Fatal("the monitored process was killed")
	}
	for _, l := range e.log.Lines() {
		if strings.HasPrefix(l.Text, "Cleanup ") || strings.Contains(l.Text, "Down") {
			t.Fatalf("unexpected %q", l.Text)
		}
	}
}

// waitControl waits for the control socket to answer.
func (e *e2e) waitControl() (*control.Client, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := e.control()
		if err == nil || time.Now().After(deadline) {
			return c, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}
