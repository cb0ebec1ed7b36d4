package main

// End-to-end tests of the core the One core issue asks for: a death seen
// by pidfd long before MonitorInterval, an HTTPS and a CMD stall taken
// through kill and restart, a required child named like its master, and
// pcheck -n's exit codes and --json shape. The real binary throughout.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pcheck/pcheck/checker/control"
	"github.com/pcheck/pcheck/checker/syslogtest"
)

// TestDeathLongBeforeMonitorInterval: with MonitorInterval 60 s, a killed
// service is Down, restarted and Up again within seconds (the restart
// script takes well under 1 s): the death came from its pidfd, not from
// the re-check, which would take up to a minute.
func TestDeathLongBeforeMonitorInterval(t *testing.T) {
	t.Parallel()
	e := setup(t, "start", 3, "continue")
	b, err := os.ReadFile(e.pfile)
	if err != nil {
		t.Fatal(err)
	}
	pf := strings.Replace(string(b), "MonitorInterval   10", "MonitorInterval   60", 1)
	if pf == string(b) {
		t.Fatal("the fixture's MonitorInterval line changed")
	}
	if err := os.WriteFile(e.pfile, []byte(pf), 0o644); err != nil {
		t.Fatal(err)
	}
	pid := e.startService()
	e.pcheck(e.pfile)
	e.wait(fmt.Sprintf("('%s' ,pid=%d) Up", self, pid))

	killed := time.Now()
	syscall.Kill(pid, syscall.SIGKILL)
	e.wait(fmt.Sprintf("Process ['%s',pid=%d] Down", self, pid))
	e.wait(fmt.Sprintf("('%s' ,pid=%d) Up", self, e.servicePid(pid)))
	took := time.Since(killed)
	t.Logf("killed to Up again: %v (MonitorInterval 60 s)", took.Round(time.Millisecond))
	if took > 30*time.Second {
		t.Fatalf("killed to Up again took %v: the death was not seen by its pidfd", took)
	}
}

// TestStallHTTPSKilledRestarted: a hung HTTPS server (SIGSTOP: the TCP
// handshake completes, TLS never answers) under _bi_webservs is found
// stalled, killed, restarted with reason stall, and serves again.
func TestStallHTTPSKilledRestarted(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := newWebService(t, dir, "tls", "https", 200)
	e := stallSetup(t, dir, "continue", s.entry("webservs.blk"))
	pid := s.start()
	e.pcheck(e.pfile)
	e.wait(fmt.Sprintf("('%s' ,pid=%d) Up", self, pid))
	s.waitRequests("HEAD /", 1)

	syscall.Kill(pid, syscall.SIGSTOP)
	e.wait(fmt.Sprintf("Find Web Server Stall: pid = %d : port = %d", pid, s.svc.Port))
	e.wait(fmt.Sprintf("Killed Process: pid= %d", pid))
	e.wait(fmt.Sprintf("Process ['%s',pid=%d] Down", self, pid))
	e.wait(fmt.Sprintf("Try to restart ('%s')", self))
	e.wait(fmt.Sprintf("('%s' ,pid=%d) Up", self, s.newPid(pid)))
	if b, _ := os.ReadFile(s.calls); string(b) != fmt.Sprintf("%s %d stall\n", self, pid) {
		t.Fatalf("restart script calls %q, want one with reason stall", b)
	}
	for deadline := time.Now().Add(30 * time.Second); !s.get(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the restarted server does not answer")
		}
	}
}

// TestStallCommandKilledRestarted: a CMD check that starts failing (its
// flag file appears) makes Find Command Stall, the kill and a restart;
// once the flag is gone the restarted process is watched Ok.
func TestStallCommandKilledRestarted(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := newWebService(t, dir, "cmd", "http", 200)
	flag := filepath.Join(dir, "failing")
	check := filepath.Join(dir, "check.sh")
	writeCheck(t, check, fmt.Sprintf("#!/bin/sh\n[ ! -e '%s' ]\n", flag))
	e := stallSetup(t, dir, "continue",
		fmt.Sprintf("%s %s args=\"%s\"\n_bi_check{\n    PS_EXEC CMD:%s:DIRECT:-:1:0:1:2\n}\n", self, s.script, s.tag, check))
	pid := s.start()
	e.pcheck(e.pfile)
	e.wait(fmt.Sprintf("('%s' ,pid=%d) Up", self, pid))

	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	find := e.log.Wait(t, func(l syslogtest.Line) bool {
		return strings.HasPrefix(l.Text, "Find ") && strings.Contains(l.Text, fmt.Sprintf("pid = %d ", pid)) && strings.Contains(l.Text, check)
	}, 30*time.Second)
	e.wait(fmt.Sprintf("Killed Process: pid= %d", pid))
	if err := os.Remove(flag); err != nil {
		t.Fatal(err)
	}
	e.wait(fmt.Sprintf("Process ['%s',pid=%d] Down", self, pid))
	e.wait(fmt.Sprintf("Try to restart ('%s')", self))
	e.wait(fmt.Sprintf("('%s' ,pid=%d) Up", self, s.newPid(pid)))
	if b, _ := os.ReadFile(s.calls); string(b) != fmt.Sprintf("%s %d stall\n", self, pid) {
		t.Fatalf("restart script calls %q after %q, want one with reason stall", b, find.Text)
	}
}

// writeCheck writes an executable check script under syscall.ForkLock,
// so that no child forked meanwhile holds it open for writing (ETXTBSY).
func writeCheck(t *testing.T, path, text string) {
	t.Helper()
	syscall.ForkLock.Lock()
	defer syscall.ForkLock.Unlock()
	if err := os.WriteFile(path, []byte(text), 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestMonitorChildrenOwnName: _bi_children requiring a child named like
// its master (apache2's workers are apache2): the worker killed, the
// master alone is not taken for it: Find Child Process Stall, the kill and
// a restart with a new worker.
func TestMonitorChildrenOwnName(t *testing.T) {
	t.Parallel()
	dir := monDir(t)
	name := filepath.Base(self)
	if len(name) > 15 {
		name = name[:15] // the comm the kernel keeps, which the worker takes
	}
	master := newMonDaemon(t, dir, "master", "master", monChildrenEnv+"="+name)
	e := monSetup(t, dir, nil, master.entry("children.blk", "@ARGC@", "2", "@CHILDREN@", name, "@FAILOVER@", "3"))
	pid := master.start()
	waitChildren(t, pid, []string{name})
	e.pcheck(e.pfile)
	e.wait(fmt.Sprintf("('%s' ,pid=%d) Up", self, pid))
	e.waitMonitor(master, "Ok", func(m control.MonitorStatus) bool {
		return m.State == control.MonitorOk && m.Attempts >= 2 && m.Failures == 0
	})

	syscall.Kill(pid, syscall.SIGUSR1) // the master kills its worker
	newPid := e.stallSeen(master, pid, fmt.Sprintf("Find Child Process Stall: pid = %d : child = %s", pid, name))
	master.wantCalls(pid)
	waitChildren(t, newPid, []string{name})
}

// TestCheckExitAndJSON: pcheck -n exits 0 for a valid pfile and 2 for an
// invalid one, and --json gives one object per pfile with path, valid,
// errors (file:line:col: text), warnings and, when valid, the rules.
func TestCheckExitAndJSON(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	script := filepath.Join(dir, "restart.sh")
	writeCheck(t, script, "#!/bin/sh\nexit 0\n")
	good := filepath.Join(dir, "good.pf")
	bad := filepath.Join(dir, "bad.pf")
	if err := os.WriteFile(good, []byte("MonitorInterval 5\n/usr/sbin/sshd "+script+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("MonitorInterval 0\n/usr/sbin/sshd "+script+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		code int
	}{
		{[]string{"-n", good}, 0},
		{[]string{"-n", bad}, 2},
		{[]string{"-n", good, bad}, 2},
		{[]string{"-n", "--json", good}, 0},
		{[]string{"-n", "--json", bad}, 2},
		{[]string{"-n"}, 2},
		{[]string{"-n", filepath.Join(dir, "missing.pf")}, 2},
	} {
		out, err := exec.Command(pcheckBin, tt.args...).Output()
		if code := exitCode(err); code != tt.code {
			t.Errorf("pcheck %s: status %d, want %d", strings.Join(tt.args, " "), code, tt.code)
		}
		if len(tt.args) > 1 && tt.args[1] == "--json" {
			var res []map[string]json.RawMessage
			if err := json.Unmarshal(out, &res); err != nil || len(res) != 1 {
				t.Fatalf("pcheck %s: %v, output\n%s", strings.Join(tt.args, " "), err, out)
			}
			r := res[0]
			for _, k := range []string{"path", "valid", "errors", "warnings"} {
				if _, ok := r[k]; !ok {
					t.Errorf("--json lacks %q: %s", k, out)
				}
			}
			var valid bool
			var errs []string
			json.Unmarshal(r["valid"], &valid)
			json.Unmarshal(r["errors"], &errs)
			_, hasRules := r["rules"]
			if valid != (tt.code == 0) || hasRules != valid || (len(errs) == 0) == (tt.code != 0) {
				t.Errorf("pcheck %s: valid %v, rules %v, errors %q", strings.Join(tt.args, " "), valid, hasRules, errs)
			}
			if !valid && !strings.HasPrefix(errs[0], bad+":1:17: ") {
				t.Errorf("error %q, want it at %s:1:17", errs[0], bad)
			}
		}
	}
}
