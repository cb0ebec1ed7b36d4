package main

// End-to-end tests of a pcheck that is not scheduled for a while (a VM
// pause, CPU steal, a debugger; here SIGSTOP of the pcheck process): the
// time it did not run never counts toward a failover.

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
)

// freeze is how long the tests stop pcheck: three times the failover of
// 5 s, five times the attempt timeout of 3 s.
const freeze = 15 * time.Second

// slowPcheck starts a service that answers in 300 ms, watched by _bi_webserv
// (interval 1 s, attempt timeout 3 s, failover 5 s), and pcheck; it
// returns once pcheck made two attempts.
func slowPcheck(t *testing.T, name string) (*webService, *e2e, *running, int) {
	t.Helper()
	dir := t.TempDir()
	s := newWebService(t, dir, name, "http", 200)
	s.svc.Delay = 300 * time.Millisecond
	fill := strings.NewReplacer("@START@", s.svc.Script(self, s.tag), "@CALLS@", s.calls)
	copyFilled(t, stallFixtures+"restart.sh", s.script, fill, 0o755)
	e := stallSetup(t, dir, "continue", s.entry("webserv.blk", "@FAILOVER@", "5"))
	pid := s.start()
	r := e.pcheck(e.pfile)
	e.wait(fmt.Sprintf("('%s' ,pid=%d) Up", self, pid))
	s.waitRequests("HEAD /", 2)
	return s, e, r, pid
}

// nextAttempt waits for s to log a new request: an attempt is in flight
// for the service's delay.
func nextAttempt(t *testing.T, s *webService) {
	t.Helper()
	n := s.requests("HEAD /")
	deadline := time.Now().Add(30 * time.Second)
	for s.requests("HEAD /") == n {
		if time.Now().After(deadline) {
			t.Fatal("no attempt within 30 s")
		}
		time.Sleep(time.Millisecond)
	}
}

// freezePcheck stops pcheck (r) for freeze and returns once it runs again.
func freezePcheck(t *testing.T, r *running) {
	t.Helper()
	if err := r.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(freeze) // the stimulus: pcheck is not scheduled for this long
	if err := r.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
}

// TestFreezeKeepsHealthyServer: pcheck stopped for 15 s while an attempt
// against a server that answers in 300 ms is in flight (failover 5 s) does
// not find it stalled when it resumes: the attempt ran past its deadline
// because pcheck was not scheduled, which is no failure. Monitoring goes
// on: the attempts after the resume succeed for more than the failover.
func TestFreezeKeepsHealthyServer(t *testing.T) {
	t.Parallel()
	s, e, r, pid := slowPcheck(t, "slow")
	// Twice: before the fix, whether the deadline or the answer came
	// first at the resume was a race the deadline won 3 times in 4.
	for range 2 {
		nextAttempt(t, s)
		freezePcheck(t, r)
		// 7 attempts after the resume: more than the failover time.
		s.waitRequests("HEAD /", s.requests("HEAD /")+7)
		noFind(t, e, pid)
	}
	for _, l := range e.log.Lines() {
		if strings.Contains(l.Text, "Killed Process") {
			t.Fatalf("a healthy server was killed: %q", l.Text)
		}
	}
}

// TestFreezeStillFindsHungServer: a server that really hangs (SIGSTOP)
// while pcheck is stopped for 15 s is still found stalled after pcheck
// resumes, within failover + interval + attempt timeout (5 + 1 + 3 s; a
// generous bound of 15 s is asserted, the figure is logged).
func TestFreezeStillFindsHungServer(t *testing.T) {
	t.Parallel()
	s, e, r, pid := slowPcheck(t, "hung")
	nextAttempt(t, s)
	// The attempt in flight never gets its answer.
	syscall.Kill(pid, syscall.SIGSTOP)
	freezePcheck(t, r)
	resumed := time.Now()
	e.wait(fmt.Sprintf("Find Web Server Stall: pid = %d : port = %d", pid, s.svc.Port))
	took := time.Since(resumed)
	t.Logf("stall found %v after pcheck resumed", took.Round(time.Millisecond))
	if took > 15*time.Second {
		t.Fatalf("stall found %v after pcheck resumed, want within 15 s", took)
	}
	e.wait(fmt.Sprintf("Killed Process: pid= %d", pid))
	e.wait(fmt.Sprintf("('%s' ,pid=%d) Up", self, s.newPid(pid)))
}
