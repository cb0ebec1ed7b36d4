package main

// End-to-end tests of Unknown stall monitors: the pcheck binary, a healthy
// web service and a real syslog receiver; the probe's own file (a CMD
// check, a TLSCAFile) breaks after pcheck has started. Interval 1 s,
// failover 2 s.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pcheck/pcheck/checker/control"
)

// unknownFailover is the failover time of the blocks of these tests.
const unknownFailover = 2 * time.Second

// monitorOf returns the status of the one stall monitor of the process
// entry key; false while pcheck does not answer.
func (e *e2e) monitorOf(key string) (control.MonitorStatus, bool) {
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
		if m.Key == key {
			return m, true
		}
	}
	e.t.Fatalf("no monitor of %s in %+v", key, st.Monitors)
	return control.MonitorStatus{}, false
}

// waitState polls key's monitor until cond holds, failing at once when a
// stall is found or a process killed: the service is healthy throughout.
func (e *e2e) waitState(key, what string, cond func(control.MonitorStatus) bool) control.MonitorStatus {
	e.t.Helper()
	var last control.MonitorStatus
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		e.noStall()
		if m, ok := e.monitorOf(key); ok {
			if cond(m) {
				return m
			}
			last = m
		}
	}
	e.t.Fatalf("monitor not %s within 30 s; last status %+v", what, last)
	return last
}

// noStall fails the test if a stall was found or a process killed.
func (e *e2e) noStall() {
	e.t.Helper()
	for _, l := range e.log.Lines() {
		if strings.HasPrefix(l.Text, "Find ") || strings.HasPrefix(l.Text, "Killed Process") || strings.HasPrefix(l.Text, "Can not killed") {
			e.t.Fatalf("a healthy server was stalled: %q", l.Text)
		}
	}
}

// count is how many lines have text.
func (e *e2e) count(text string) int {
	n := 0
	for _, l := range e.log.Lines() {
		if l.Text == text {
			n++
		}
	}
	return n
}

// unknownFor checks that key's monitor stays Unknown with reason, logged
// once at warning, and the service pid alive, for attempts spanning three
// failover times; it returns the last status.
func (e *e2e) unknownFor(key, block, reason string, pid int) control.MonitorStatus {
	e.t.Helper()
	line := fmt.Sprintf("Monitor unknown ('%s') %s: %s", self, block, reason)
	first := e.waitState(key, "Unknown", func(m control.MonitorStatus) bool { return m.State == control.MonitorUnknown })
	if first.LastError != reason {
		e.t.Fatalf("Unknown with %q, want %q", first.LastError, reason)
	}
	// Attempts are 1 s apart: 3 failover times and one more attempt.
	n := first.Attempts + int64(3*unknownFailover/time.Second) + 1
	m := e.waitState(key, "Unknown for 3 failover times", func(m control.MonitorStatus) bool {
		if m.State != control.MonitorUnknown {
			e.t.Fatalf("left Unknown while the probe was still broken: %+v", m)
		}
		return m.Attempts >= n
	})
	if m.Failures != first.Failures || m.Stalls != 0 {
		e.t.Fatalf("Unknown attempts counted as failures or stalls: first %+v, last %+v", first, m)
	}
	l := e.wait(line)
	if l.Ident != "pcheck" || l.Severity != 4 {
		e.t.Fatalf("%q from %s at severity %d, want pcheck at warning (4)", l.Text, l.Ident, l.Severity)
	}
	if c := e.count(line); c != 1 {
		e.t.Fatalf("%q logged %d times, want once", line, c)
	}
	if err := syscall.Kill(pid, 0); err != nil {
		e.t.Fatalf("the service (pid %d) is gone: %v", pid, err)
	}
	e.noStall()
	return m
}

// replace writes text to path by rename, as an operator's tool would.
func replace(t *testing.T, path, text string, mode os.FileMode) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(text), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestUnknownCheckVanished: a healthy server with a CMD check whose file
// is deleted once pcheck runs: the monitor is Unknown with the reason,
// `Monitor unknown` is logged once, the server is never killed (here for
// more than three failover times); the file restored, the monitor is Ok.
// Before, the missing file counted as a failed check: Find Check Command
// Stall and Killed Process after the failover time.
func TestUnknownCheckVanished(t *testing.T) {
	t.Parallel()
	dir := monDir(t)
	s := newWebService(t, dir, "web", "http", 200)
	check := filepath.Join(dir, "check_web")
	replace(t, check, "#!/bin/sh\nexit 0\n", 0o755)
	entry := fmt.Sprintf("%s %s args=\"%s\"\n_bi_check{\n    PS_EXEC CMD:%s:DIRECT:-:1:0:1:%d\n}\n",
		self, s.script, s.tag, check, int(unknownFailover/time.Second))
	e := stallSetup(t, dir, "continue", entry)
	key := fmt.Sprintf("%s %s args=%s", self, s.script, s.tag)
	pid := s.start()
	e.pcheck(e.pfile)
	e.wait(fmt.Sprintf("('%s' ,pid=%d) Up", self, pid))
	e.waitState(key, "Ok", func(m control.MonitorStatus) bool { return m.State == control.MonitorOk && m.Attempts >= 2 })

	if err := os.Remove(check); err != nil {
		t.Fatal(err)
	}
	e.unknownFor(key, "_bi_check", fmt.Sprintf("check command %s: fork/exec %s: no such file or directory", check, check), pid)

	replace(t, check, "#!/bin/sh\nexit 0\n", 0o755)
	e.waitState(key, "Ok again", func(m control.MonitorStatus) bool { return m.State == control.MonitorOk && m.LastError == "" })
	e.noStall()
}

// TestUnknownCAFileGarbage: a healthy TLS server under _bi_webservs with
// TLSVerify and a TLSCAFile that is replaced by garbage once pcheck runs.
// The file is read at each attempt, so the garbage is seen at once: the
// monitor is Unknown (pcheck cannot verify; the server is not to blame),
// logged once, and the server is never killed; the CA restored, the
// monitor is Ok again. Before, the attempts failed: a stall and a kill.
func TestUnknownCAFileGarbage(t *testing.T) {
	t.Parallel()
	dir := monDir(t)
	s := newWebService(t, dir, "tls", "https", 200)
	ca := filepath.Join(dir, "ca.pem")
	s.svc.Cert = ca
	entry := s.entry("webservs.blk", "@FAILOVER@", fmt.Sprint(int(unknownFailover/time.Second)))
	i := strings.LastIndex(entry, "}")
	entry = entry[:i] + "    TLSVerify   on\n    TLSCAFile   " + ca + "\n" + entry[i:]
	pid := s.start()
	// The service writes its certificate once it listens: the pfile's
	// TLSCAFile exists before pcheck starts.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(ca); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the service wrote no certificate")
		}
	}
	good, err := os.ReadFile(ca)
	if err != nil {
		t.Fatal(err)
	}
	e := stallSetup(t, dir, "continue", entry)
	key := fmt.Sprintf("%s %s args=%s", self, s.script, s.tag)
	e.pcheck(e.pfile)
	e.wait(fmt.Sprintf("('%s' ,pid=%d) Up", self, pid))
	e.waitState(key, "Ok, verified", func(m control.MonitorStatus) bool { return m.State == control.MonitorOk && m.Attempts >= 2 })

	replace(t, ca, "-----BEGIN GARBAGE-----\nnot a certificate\n", 0o644)
	before := s.requests("HEAD /")
	e.unknownFor(key, "_bi_webservs", fmt.Sprintf("TLSCAFile %s: no PEM certificate found", ca), pid)
	// Unknown attempts do not reach the server (at most the one in
	// flight when the file changed).
	if n := s.requests("HEAD /"); n > before+1 {
		t.Fatalf("%d requests reached the server while the CA file was garbage", n-before)
	}

	replace(t, ca, string(good), 0o644)
	e.waitState(key, "Ok again", func(m control.MonitorStatus) bool { return m.State == control.MonitorOk && m.LastError == "" })
	e.noStall()
}
