package stall

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pcheck/pcheck/checker/message"
	"github.com/pcheck/pcheck/checker/states"
	"github.com/pcheck/pcheck/parser"
	"github.com/pcheck/pcheck/pfile"
)

// testProc is the process entry of the fake-target tests: its pid is
// never signalled (the target is fake).
const testProc = "/usr/local/bin/stall-test-server"

// socketFile is a pfile with one _bi_socket block on port: interval 1 s,
// failover 3 s, PS_EXEC error execErr, PS_ACTION error actionErr.
func socketFile(t *testing.T, port, execErr, actionErr int) *pfile.File {
	return loadPfile(t, fmt.Sprintf("%s /bin/true\n%s", testProc,
		block("socket", fmt.Sprintf("-:1:%d:2:3:%d", execErr, port), actionErr)))
}

// TestStepWall checks the test clock's wall step itself.
func TestStepWall(t *testing.T) {
	now := time.Now()
	stepped := stepWall(now, time.Hour)
	if d := stepped.Sub(now); d != 0 {
		t.Fatalf("monotonic difference %v after a wall step, want 0", d)
	}
	if d := stepped.Round(0).Sub(now.Round(0)); d != time.Hour {
		t.Fatalf("wall difference %v, want 1h", d)
	}
	if back := stepWall(stepped, -2*time.Hour); back.Round(0).Sub(now.Round(0)) != -time.Hour || back.Sub(now) != 0 {
		t.Fatal("a step back does not move the wall reading alone")
	}
}

// TestWallClockStep: the date moving an hour forward does not cause a
// stall, moving two hours back does not delay it: the failover time is
// monotonic. The stall comes at the attempt that ends 3 s (failover) after
// the first failure began, not one earlier or later.
func TestWallClockStep(t *testing.T) {
	clk := newFakeClock()
	target := &fakeTarget{pids: []int{4242}}
	port := closedPort(t)
	f := socketFile(t, port, 0, 1)
	s, log := newTestScheduler(t, f, clk, target)
	if st := status(t, s); st.State != StatePaused {
		t.Fatalf("state before Up = %v, want Paused", st.State)
	}
	up(s, f, 4242)
	waitFor(t, "first attempt", func() bool { return status(t, s).Attempts == 1 && clk.armed() == 1 })
	st := status(t, s)
	if st.State != StateInDoubt || st.Failures != 1 || !strings.Contains(st.LastError, "connection refused") {
		t.Fatalf("after a refused attempt: %+v", st)
	}

	clk.StepWall(time.Hour)
	st = attempt(t, s, clk, time.Second, 2)
	if st.State != StateInDoubt {
		t.Fatalf("after a wall step forward: %v, want In doubt", st.State)
	}
	st = attempt(t, s, clk, time.Second, 3)
	if st.State != StateInDoubt || st.FailingFor != 2*time.Second || st.SinceSuccess != 2*time.Second {
		t.Fatalf("2 s into the failures: %+v", st)
	}
	clk.StepWall(-2 * time.Hour)
	st = attempt(t, s, clk, time.Second, 4)
	waitFor(t, "the kill", func() bool { k, _ := target.counts(); return k == 1 })
	log.wait(t, message.Killed(4242).Text, 1)

	find := message.SocketStall(4242, port).Text
	if log.index(find) < 0 || log.index(find) > log.index(message.Killed(4242).Text) {
		t.Fatalf("messages %q: want the find message, then Killed", log.texts())
	}
	if target.kills[0] != f.Processes[0].Key+" "+"stall" {
		t.Fatalf("kill asked as %q", target.kills[0])
	}
	if st = status(t, s); st.State != StateStalled || st.Stalls != 1 {
		t.Fatalf("after the stall: %+v", st)
	}
	// The process goes down (killed): paused; back Up: afresh.
	down(s, f, states.Restarting)
	if st = status(t, s); st.State != StatePaused || st.FailingFor != 0 {
		t.Fatalf("while restarting: %+v", st)
	}
}

// TestPausedWhileNotUp: a process that is not Up (restarting, paused) is
// not probed and never stalled however long it stays so; back Up, its
// failover time starts again.
func TestPausedWhileNotUp(t *testing.T) {
	clk := newFakeClock()
	target := &fakeTarget{pids: []int{4242}}
	f := socketFile(t, closedPort(t), 0, 1)
	s, log := newTestScheduler(t, f, clk, target)
	up(s, f, 4242)
	waitFor(t, "first attempt", func() bool { return status(t, s).Attempts == 1 && clk.armed() == 1 })
	attempt(t, s, clk, time.Second, 2)

	for _, st := range []states.Process{states.Down, states.Restarting, states.Paused, states.RetryOver} {
		down(s, f, st)
		waitFor(t, "the run to end", func() bool { return clk.armed() == 0 })
		clk.Advance(time.Minute)
		if got := status(t, s); got.State != StatePaused || got.Attempts != 2 {
			t.Fatalf("engine state %v: %+v, want Paused with no new attempt", st, got)
		}
		if k, _ := target.counts(); k != 0 {
			t.Fatalf("engine state %v: a kill was asked", st)
		}
	}

	// Back Up: attempts 3..5 at 0, 1, 2 s of the new run are In doubt
	// (the 2 failures before the pause do not count), the one at 3 s
	// stalls.
	up(s, f, 4343)
	waitFor(t, "attempt 3", func() bool { return status(t, s).Attempts == 3 && clk.armed() == 1 })
	attempt(t, s, clk, time.Second, 4)
	if st := attempt(t, s, clk, time.Second, 5); st.State != StateInDoubt {
		t.Fatalf("2 s after coming back Up: %v", st.State)
	}
	attempt(t, s, clk, time.Second, 6)
	log.wait(t, message.SocketStall(4343, f.Processes[0].Blocks[0].Monitor.Port).Text, 1)
}

// TestStopAfterStall: PS_EXEC error=1 stops stall monitoring after the
// first stall; the process coming back Up does not restart it.
func TestStopAfterStall(t *testing.T) {
	clk := newFakeClock()
	target := &fakeTarget{pids: []int{4242}}
	f := socketFile(t, closedPort(t), 1, 1)
	s, log := newTestScheduler(t, f, clk, target)
	up(s, f, 4242)
	waitFor(t, "first attempt", func() bool { return status(t, s).Attempts == 1 })
	for n := 2; n <= 4; n++ {
		attempt(t, s, clk, time.Second, n)
	}
	log.wait(t, message.Killed(4242).Text, 1)
	waitFor(t, "Stopped", func() bool { return status(t, s).State == StateStopped })
	down(s, f, states.Restarting)
	up(s, f, 4343)
	clk.Advance(time.Minute)
	if st := status(t, s); st.State != StateStopped || st.Attempts != 4 || clk.armed() != 0 {
		t.Fatalf("after the restart: %+v, %d timers; want Stopped, no attempt", st, clk.armed())
	}
	if k, r := target.counts(); k != 1 || r != 0 {
		t.Fatalf("%d kills, %d retry overs; want 1, 0", k, r)
	}
}

// TestKillFailure: a kill that fails logs Can not killed Process, stops
// the block, and runs retry_over_action only with PS_ACTION error 1.
func TestKillFailure(t *testing.T) {
	for _, actionErr := range []int{0, 1} {
		t.Run(fmt.Sprintf("error=%d", actionErr), func(t *testing.T) {
			clk := newFakeClock()
			target := &fakeTarget{pids: []int{4242}, killErr: fmt.Errorf("signal: %w", unix.EPERM)}
			f := socketFile(t, closedPort(t), 0, actionErr)
			s, log := newTestScheduler(t, f, clk, target)
			up(s, f, 4242)
			waitFor(t, "first attempt", func() bool { return status(t, s).Attempts == 1 })
			for n := 2; n <= 4; n++ {
				attempt(t, s, clk, time.Second, n)
			}
			log.wait(t, message.CannotKill(4242).Text, 1)
			waitFor(t, "Stopped", func() bool { return status(t, s).State == StateStopped })
			if log.count(message.Killed(4242).Text) != 0 {
				t.Fatal("Killed Process logged for a failed kill")
			}
			_, r := target.counts()
			if r != actionErr {
				t.Fatalf("%d retry overs, want %d", r, actionErr)
			}
			if actionErr == 1 && target.retryOvers[0] != f.Processes[0].Key {
				t.Fatalf("retry over of %q", target.retryOvers[0])
			}
			if !strings.Contains(strings.Join(log.texts(), "\n"), "operation not permitted") {
				t.Fatalf("the cause of the failed kill is not logged: %q", log.texts())
			}
			up(s, f, 4242)
			if st := status(t, s); st.State != StateStopped || clk.armed() != 0 {
				t.Fatalf("a stopped block started again: %+v", st)
			}
		})
	}
}

// TestFindMessages: each kind's find message, byte for byte, with the
// main pid and the block's port, file, child or command, logged before the
// kill; and the event hook sees it.
func TestFindMessages(t *testing.T) {
	dir := t.TempDir()
	port := closedPort(t)
	hb := filepath.Join(dir, "heartbeat")
	pid := os.Getpid() // listen and children look at this process's tree
	cmdBlock := "_bi_check{\n  PS_EXEC CMD:/bin/false:DIRECT:-:1:0:1:3\n}\n"
	tests := []struct {
		name, block string
		want        message.Message
	}{
		{"webserv", block("webserv", fmt.Sprintf("-:1:0:3:3:%d:127.0.0.1", port), 1), message.WebServerStall(pid, port)},
		{"webservs", block("webservs", fmt.Sprintf("-:1:-:5:3:%d:127.0.0.1:1:/x", port), 1), message.WebServerStall(pid, port)},
		{"socket", block("socket", fmt.Sprintf("-:1:0:2:3:%d", port), 1), message.SocketStall(pid, port)},
		{"heartbeat", block("heartbeat", "-:1:0:2:3:"+hb, 1), message.HeartbeatStall(pid, hb)},
		{"listen", block("listen", fmt.Sprintf("-:1:0:2:3:%d", port), 1), message.ListenStall(pid, port)},
		{"children", block("children", "-:1:0:3:3:present-child:no-such-child", 1), message.ChildStall(pid, "no-such-child")},
		{"cmd", cmdBlock, message.CommandStall(pid, "/bin/false")},
	}
	// A child named present-child, so that the first name is found.
	child := exec.Command(bin)
	child.Args = []string{"present-child"}
	child.Env = append(os.Environ(), "STALL_TEST_ROLE=idle")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { child.Process.Kill(); child.Wait() })
	waitFor(t, "the child's exec", func() bool {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", child.Process.Pid))
		return strings.HasPrefix(string(b), "present-child\x00")
	})

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock()
			target := &fakeTarget{pids: []int{pid}}
			f := loadPfile(t, fmt.Sprintf("%s /bin/true\n%s", testProc, tc.block))
			events := make(chan event, 10)
			log := newRecorder()
			target.log = log
			s, err := newHarness(harnessOptions{File: f, Log: log, Clock: clk, OnEvent: func(e event) { events <- e }})
			if err != nil {
				t.Fatal(err)
			}
			s.rt.stagger = func(time.Duration) time.Duration { return 0 }
			done := make(chan struct{})
			ctx, cancel := context.WithCancel(context.Background())
			go func() { defer close(done); s.Run(ctx, target) }()
			defer func() { cancel(); <-done }()
			up(s, f, pid)
			waitFor(t, "first attempt", func() bool { return status(t, s).Attempts == 1 })
			for n := 2; n <= 4; n++ {
				attempt(t, s, clk, time.Second, n)
			}
			log.wait(t, message.Killed(pid).Text, 1)
			if got := log.texts()[0]; got != tc.want.Text {
				t.Fatalf("find message %q, want %q", got, tc.want.Text)
			}
			if e := <-events; e.Kind != string(tc.want.ID) || e.Text != tc.want.Text || e.Process != testProc || e.Pfile != f.Path {
				t.Fatalf("event %+v, want %s %q", e, tc.want.ID, tc.want.Text)
			}
		})
	}
}

// TestHeartbeat: a heartbeat file that changes is Ok; one that stops
// changing stalls after the failover time; a stepped-back mtime is a
// change like any other.
func TestHeartbeat(t *testing.T) {
	clk := newFakeClock()
	target := &fakeTarget{pids: []int{4242}}
	hb := filepath.Join(t.TempDir(), "alive")
	touch := func(mtime time.Time) {
		if err := os.WriteFile(hb, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(hb, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	f := loadPfile(t, fmt.Sprintf("%s /bin/true\n%s", testProc, block("heartbeat", "-:1:0:2:2:"+hb, 1)))
	s, log := newTestScheduler(t, f, clk, target)
	up(s, f, 4242)
	waitFor(t, "first attempt", func() bool { return status(t, s).Attempts == 1 && clk.armed() == 1 })
	if st := status(t, s); st.State != StateInDoubt || !errors.Is(fsErr(st), os.ErrNotExist) {
		t.Fatalf("no heartbeat file: %+v", st)
	}
	base := time.Now().Add(-time.Hour)
	n := 1
	for i := range 4 {
		touch(base.Add(time.Duration(i*(1-2*(i%2))) * time.Minute)) // back and forth
		n++
		if st := attempt(t, s, clk, time.Second, n); st.State != StateOk {
			t.Fatalf("heartbeat %d: %+v, want Ok", i, st)
		}
	}
	// No more touches: the next attempt fails, and 2 s later it stalls.
	n++
	if st := attempt(t, s, clk, time.Second, n); st.State != StateInDoubt || !strings.Contains(st.LastError, "not modified") {
		t.Fatalf("unchanged heartbeat: %+v", st)
	}
	n++
	attempt(t, s, clk, time.Second, n)
	n++
	attempt(t, s, clk, time.Second, n)
	log.wait(t, message.HeartbeatStall(4242, hb).Text, 1)
}

// fsErr turns a status's error text back into what it reports, for the
// missing-file check.
func fsErr(st MonitorStatus) error {
	if strings.Contains(st.LastError, "no such file or directory") {
		return os.ErrNotExist
	}
	return errors.New(st.LastError)
}

// TestGuideSamples: the guide's samples give their monitors the parsed
// values: interval 60 s, failover 600 s, the port, and the attempt
// timeout (the webservs argv timeout, else the smaller of interval and
// 10 s).
func TestGuideSamples(t *testing.T) {
	tests := []struct {
		file   string
		kind   pfile.Kind
		target string
		port   int
		tmo    time.Duration
	}{
		{"guide_webserv.pfile", pfile.KindWebserv, "http://localhost:8080/", 8080, 10 * time.Second},
		{"guide_webservs.pfile", pfile.KindWebservs, "https://localhost:433/", 433, 5 * time.Second},
		{"guide_socket.pfile", pfile.KindSocket, "localhost:8080", 8080, 10 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			f, diags := parser.Load(filepath.Join("../../testdata/valid", tc.file))
			if err := diags.Err(); err != nil {
				t.Fatal(err)
			}
			s, err := newHarness(harnessOptions{File: f, Log: newRecorder()})
			if err != nil {
				t.Fatal(err)
			}
			st := status(t, s)
			if st.Kind != tc.kind || st.Target != tc.target || st.Interval != 60*time.Second ||
				st.Failover != 600*time.Second || st.Timeout != tc.tmo || st.State != StatePaused ||
				st.Process != f.Processes[0].Name || st.Block != f.Processes[0].Blocks[0].Name {
				t.Fatalf("status %+v", st)
			}
			m := s.ms[0]
			if m.cfg.Port != tc.port || m.cfg.StopAfterStall || !m.cfg.RetryOverOnKillFailure {
				t.Fatalf("monitor settings %+v", m.cfg)
			}
		})
	}
}

// TestSequentialAttempts: attempts of a check command that takes longer
// than the interval never overlap, and neither do those of a run started
// afresh while the previous run's attempt is still going.
func TestSequentialAttempts(t *testing.T) {
	dir := t.TempDir()
	check := filepath.Join(dir, "check.sh")
	// flock -n fails when another attempt holds the lock.
	script := fmt.Sprintf("#!/bin/sh\nexec 9>'%s/lock'\nflock -n 9 || { echo overlap >> '%s/overlap'; exit 2; }\necho run >> '%s/runs'\nsleep 1.5\n",
		dir, dir, dir)
	if err := os.WriteFile(check, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	f := loadPfile(t, fmt.Sprintf("%s /bin/true\n_bi_check{\n  PS_EXEC CMD:%s:DIRECT:3:1:0:1:30\n}\n", testProc, check))
	log := newRecorder()
	s, err := newHarness(harnessOptions{File: f, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { defer close(done); s.Run(ctx, &fakeTarget{}) }()
	defer func() { cancel(); <-done }()
	runs := func() int { return strings.Count(readFile(dir+"/runs"), "run") }
	up(s, f, 4242)
	waitFor(t, "a first attempt", func() bool { return runs() >= 1 })
	up(s, f, 4242) // afresh, while the attempt is running
	waitFor(t, "three more attempts", func() bool { return runs() >= 4 })
	if o := readFile(dir + "/overlap"); o != "" {
		t.Fatalf("attempts overlapped:\n%s", o)
	}
	if st := status(t, s); st.State != StateOk || st.LastLatency < time.Second {
		t.Fatalf("status %+v, want Ok with a latency over 1 s", st)
	}
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// TestTargetText: what status shows as each kind's target.
func TestTargetText(t *testing.T) {
	tests := []struct {
		m    pfile.Monitor
		want string
	}{
		{pfile.Monitor{Kind: pfile.KindWebserv, Host: "localhost", Port: 80}, "http://localhost:80/"}, // the host pfile.Builder fills in
		{pfile.Monitor{Kind: pfile.KindWebservs, Host: "::1", Port: 443, Path: "/a b"}, "https://[::1]:443/a b"},
		{pfile.Monitor{Kind: pfile.KindSocket, Host: "10.0.0.1", Port: 5432}, "10.0.0.1:5432"},
		{pfile.Monitor{Kind: pfile.KindListen, Port: 22}, "LISTEN *:22"},
		{pfile.Monitor{Kind: pfile.KindListen, Port: 22, Address: "127.0.0.1"}, "LISTEN 127.0.0.1:22"},
		{pfile.Monitor{Kind: pfile.KindChildren, Children: []string{"a", "b"}}, "children a b"},
		{pfile.Monitor{Kind: pfile.KindHeartbeat, File: "/run/hb"}, "/run/hb"},
		{pfile.Monitor{Kind: pfile.KindCommand, File: "/bin/check", Args: []string{"-H", "x"}}, "/bin/check -H x"},
	}
	for _, tc := range tests {
		if got := targetText(tc.m); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.m.Kind, got, tc.want)
		}
	}
}

// TestListenTree: the listen probe sees the sockets of the main pid's
// tree: this process listening is Ok.
func TestListenTree(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	clk := newFakeClock()
	f := loadPfile(t, fmt.Sprintf("%s /bin/true\n%s", testProc, block("listen", fmt.Sprintf("-:1:0:2:3:%d", port), 1)))
	s, _ := newTestScheduler(t, f, clk, &fakeTarget{})
	up(s, f, os.Getpid())
	waitFor(t, "first attempt", func() bool { return status(t, s).Attempts == 1 })
	if st := status(t, s); st.State != StateOk {
		t.Fatalf("listening: %+v", st)
	}
}

// TestListenAcceptQueue: a listen monitor's status carries the accept
// queue it saw (two connections nobody accepted); a monitor of another
// kind has none.
func TestListenAcceptQueue(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for range 2 {
		c, err := net.Dial("tcp4", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	port := l.Addr().(*net.TCPAddr).Port
	clk := newFakeClock()
	f := loadPfile(t, fmt.Sprintf("%s /bin/true\n%s", testProc, block("listen", fmt.Sprintf("-:1:0:2:3:%d", port), 1)))
	s, _ := newTestScheduler(t, f, clk, &fakeTarget{})
	up(s, f, os.Getpid())
	waitFor(t, "first attempt", func() bool { return status(t, s).Attempts == 1 })
	st := status(t, s)
	if st.State != StateOk || st.AcceptQueue == nil || *st.AcceptQueue != 2 || (st.Backlog != nil && *st.Backlog < 2) {
		t.Fatalf("status %+v (queue %v, backlog %v), want an accept queue of 2", st, ptr(st.AcceptQueue), ptr(st.Backlog))
	}
	l.Close()
	clk.Advance(time.Second)
	waitFor(t, "second attempt", func() bool { return status(t, s).Attempts == 2 })
	if st := status(t, s); st.AcceptQueue != nil {
		t.Fatalf("a failed attempt keeps accept queue %d", *st.AcceptQueue)
	}
}

func ptr(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}
