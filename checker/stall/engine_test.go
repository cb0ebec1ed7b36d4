package stall

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/pcheck/pcheck/checker/engine"
	"github.com/pcheck/pcheck/checker/message"
	"github.com/pcheck/pcheck/checker/state"
)

// The tests below run the real engine and scheduler against real web
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
	newPid := waitPid(t, s.tag, pid)
	s.log.wait(t, message.Up(bin, newPid).Text, 1)
	order := []string{find, message.Killed(pid).Text, message.Down(bin, pid).Text, message.TryRestart(bin).Text, message.Up(bin, newPid).Text}
	for i := 1; i < len(order); i++ {
		if s.log.index(order[i-1]) > s.log.index(order[i]) {
			t.Fatalf("%q logged after %q: %q", order[i-1], order[i], s.log.texts())
		}
	}
	waitFor(t, "the restarted server to answer", s.get)
	if calls := readFile(s.calls); calls != fmt.Sprintf("%s %d stall\n", bin, pid) {
		t.Fatalf("restart script calls %q, want one with reason stall", calls)
	}
	waitFor(t, "the monitor to run afresh", func() bool {
		st := status(t, s.sched)
		return st.State == StateOk && st.Pid == newPid
	})
	if st := status(t, s.sched); st.Stalls != 1 || st.Failures < 2 {
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
	waitFor(t, "Paused while restarting", func() bool { return status(t, s.sched).State == StatePaused })
	newPid := waitPid(t, s.tag, pid)
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
	st := status(t, s.sched)
	if st.State != StateOk || st.Failures != 0 || st.Stalls != 0 || !strings.Contains(st.LastDetail, "500") {
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
	if st := status(t, s.sched); st.State != StateOk || st.Failures != 0 || st.Target != fmt.Sprintf("https://127.0.0.1:%d/health/check", s.svc.Port) {
		t.Fatalf("status %+v", st)
	}
}

// TestEngineKillAndRetryOver: the engine methods the scheduler acts
// through: KillStalledEach reports each pid killed; RetryOver carries out
// retry_over_action (continue: RetryOver state) and refuses an entry that
// is not Up.
func TestEngineKillAndRetryOver(t *testing.T) {
	t.Parallel()
	s := newService(t, "http", 200, 0)
	pid := s.start()
	f := s.pfile()
	s.run(f)
	s.log.wait(t, message.Up(bin, pid).Text, 1)
	key := state.Keys(f)[0]

	res, err := s.inst.KillStalledEach(key, engine.ReasonStall)
	if err != nil || len(res) != 1 || res[0].Pid != pid || res[0].Err != nil {
		t.Fatalf("KillStalledEach = %+v, %v", res, err)
	}
	newPid := waitPid(t, s.tag, pid)
	s.log.wait(t, message.Up(bin, newPid).Text, 1)

	if err := s.inst.RetryOver(key); err != nil {
		t.Fatal(err)
	}
	s.log.wait(t, message.RetryOver(bin, "continue").Text, 1)
	waitFor(t, "RetryOver state", func() bool { return s.inst.Snapshot().Processes[0].State == engine.StateRetryOver })
	if err := s.inst.RetryOver(key); !errors.Is(err, engine.ErrNotUp) {
		t.Fatalf("RetryOver of an entry in RetryOver: %v, want ErrNotUp", err)
	}
	if _, err := s.inst.KillStalledEach(key, engine.ReasonStall); !errors.Is(err, engine.ErrNotUp) {
		t.Fatalf("KillStalledEach of an entry not Up: %v, want ErrNotUp", err)
	}
	if syscall.Kill(newPid, 0) != nil {
		t.Fatal("the retry over killed the process")
	}
}
