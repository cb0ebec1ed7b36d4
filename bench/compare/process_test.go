package compare

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func testCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// gone reports whether pid no longer exists at all: not even a zombie.
func gone(pid int) bool {
	_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	return errors.Is(err, os.ErrNotExist)
}

func TestReaperExitStatuses(t *testing.T) {
	h := newTestHarness(t)
	ctx := testCtx(t, 30*time.Second)
	out, err := h.r.Output(ctx, "sh", "-c", "echo hello; echo oops >&2")
	if err != nil || string(out) != "hello\n" {
		t.Errorf("output = %q, %v; want \"hello\\n\", nil", out, err)
	}
	_, err = h.r.Output(ctx, "sh", "-c", "echo why >&2; exit 3")
	if !errors.Is(err, ErrExited) || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "why") {
		t.Errorf("failing command: err = %v, want ErrExited with status 3 and its stderr", err)
	}
	c, err := h.r.Spawn(exec.Command("sleep", "60"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(10 * time.Second); !errors.Is(err, ErrExited) || !strings.Contains(err.Error(), "terminated") {
		t.Errorf("stopped child: err = %v, want killed by SIGTERM", err)
	}
	if _, err := h.r.Spawn(&exec.Cmd{Path: "/bin/true", Stdout: new(strings.Builder)}); err == nil {
		t.Error("spawn accepted a non-file stdout")
	}
}

// The restart script starts the real target detached; the target answers
// with its pid, stamps its exec, and once killed is reaped by the harness
// (its subreaper), not left a zombie.
func TestRestartScriptStartsTarget(t *testing.T) {
	h := newTestHarness(t)
	ctx := testCtx(t, 60*time.Second)
	tg, err := h.l.NewTarget("t-0001", freePort(t))
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	pid, err := h.runScript(ctx, tg)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := readPid(tg.PidFile); err != nil || p != pid {
		t.Errorf("pid file = %d, %v; want %d", p, err, pid)
	}
	scripts, _ := readScriptStamps(tg.ScriptStamp)
	execs, _ := readExecStamps(tg.Stamp)
	if len(scripts) != 1 || len(execs) != 1 || execs[0].pid != pid {
		t.Fatalf("stamps: scripts %v, execs %v; want one of each for pid %d", scripts, execs, pid)
	}
	slack := 50 * time.Millisecond // the script's clock has microseconds
	if scripts[0].Before(before.Add(-slack)) || execs[0].at.Before(scripts[0].Add(-slack)) || execs[0].at.After(time.Now()) {
		t.Errorf("times out of order: harness %v, script %v, exec %v", before, scripts[0], execs[0].at)
	}
	if !ours(pid, h.l.Dir) {
		t.Errorf("the target's command line does not name the work directory %s", h.l.Dir)
	}

	if err := SignalOurs(pid, h.l.Dir, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := pollUntil(ctx, 5*time.Millisecond, func() (bool, error) { return gone(pid), nil }); err != nil {
		t.Errorf("killed target pid %d was not reaped: %v", pid, err)
	}
	if _, err := AskPid(tg.Port); err == nil {
		t.Error("the port still answers after the kill")
	}
}

func TestSignalOursRefusesOthers(t *testing.T) {
	h := newTestHarness(t)
	c, err := h.r.Spawn(exec.Command("sleep", "60"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop(time.Second)
	// sleep's command line does not name the work directory.
	if err := SignalOurs(c.Pid, h.l.Dir, unix.SIGKILL); !errors.Is(err, ErrNotOurs) {
		t.Errorf("signalOurs(sleep) = %v, want ErrNotOurs", err)
	}
	select {
	case <-c.Done():
		t.Error("the refused signal was sent")
	default:
	}
}

// monit's stop program kills a hung (SIGSTOPped) target as pcheck would.
func TestStopScriptKillsHungTarget(t *testing.T) {
	h := newTestHarness(t)
	ctx := testCtx(t, 60*time.Second)
	tg, err := h.l.NewTarget("t-0002", freePort(t))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := h.runScript(ctx, tg)
	if err != nil {
		t.Fatal(err)
	}
	w, err := watchExit(pid)
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	if err := SignalOurs(pid, h.l.Dir, unix.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// Another target's id must not match.
	if _, err := h.r.Output(ctx, h.l.StopBin, tg.PidFile, "t-000", "1"); err != nil {
		t.Fatal(err)
	}
	if gone(pid) {
		t.Fatal("the stop script killed a process whose id did not match")
	}
	if _, err := h.r.Output(ctx, h.l.StopBin, tg.PidFile, tg.ID, "1"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.wait(ctx); err != nil {
		t.Errorf("hung target still alive after the stop script: %v", err)
	}
}

func TestStartTargetsAndWaitServing(t *testing.T) {
	h := newTestHarness(t)
	ctx := testCtx(t, 60*time.Second)
	var targets []*Target
	for i := range 3 {
		tg, err := h.l.NewTarget(fmt.Sprintf("t-%04d", 10+i), freePort(t))
		if err != nil {
			t.Fatal(err)
		}
		targets = append(targets, tg)
	}
	kids, err := h.startTargets(ctx, targets)
	if err != nil {
		t.Fatal(err)
	}
	for i, tg := range targets {
		pid, _, err := waitServing(ctx, tg.Port, 0)
		if err != nil || pid != kids[i].Pid {
			t.Errorf("%s answers pid %d, %v; want %d", tg.ID, pid, err, kids[i].Pid)
		}
	}
	// The target counts the connections it accepts: a TCP check (connect,
	// close) and the asking connection itself.
	c1, err := askConns(targets[0].Port)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", targets[0].Port))
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	c2, err := askConns(targets[0].Port)
	if err != nil || c2 != c1+2 {
		t.Errorf("connections accepted: %d, then %d, %v; want %d", c1, c2, err, c1+2)
	}
	h.killTargets(kids)
	for _, c := range kids {
		if err := c.Err(); !errors.Is(err, ErrExited) || !strings.Contains(err.Error(), "killed") {
			t.Errorf("target after killTargets: %v, want killed", err)
		}
	}
	// A port nobody serves times out with a cause.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, _, err := waitServing(short, targets[0].Port, 0); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waitServing on a dead port = %v, want DeadlineExceeded", err)
	}
	// A target whose port is taken exits, and startTargets says which.
	busy, err := h.l.NewTarget("t-0099", targets[0].Port)
	if err != nil {
		t.Fatal(err)
	}
	holder, err := h.startTargets(ctx, targets[:1])
	if err != nil {
		t.Fatal(err)
	}
	defer h.killTargets(holder)
	if _, err := h.startTargets(ctx, []*Target{busy}); err == nil || !strings.Contains(err.Error(), "t-0099") {
		t.Errorf("startTargets on a taken port = %v, want an error naming t-0099", err)
	}
}

func TestLineLog(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	l := NewLineLog()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	go l.readLines(r, nil)
	fmt.Fprintln(w, "a Up")
	fmt.Fprintln(w, "b Down")
	fmt.Fprintln(w, "c Up")
	ln, next, err := l.WaitFor(ctx, 0, func(s string) bool { return strings.HasSuffix(s, "Down") })
	if err != nil || ln.Text != "b Down" || next != 2 {
		t.Errorf("waitFor Down = %q, %d, %v", ln.Text, next, err)
	}
	if _, _, err := l.WaitFor(ctx, 0, func(s string) bool { return s == "c Up" }); err != nil {
		t.Fatal(err)
	}
	if n := l.Count(0, func(s string) bool { return strings.HasSuffix(s, "Up") }); n != 2 {
		t.Errorf("count Up = %d, want 2", n)
	}
	w.Close()
	if _, _, err := l.WaitFor(ctx, 0, func(string) bool { return false }); !errors.Is(err, errLogEnded) {
		t.Errorf("waitFor after the end = %v, want errLogEnded", err)
	}
}

func TestLineLogTail(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	path := t.TempDir() + "/x.log"
	l := NewLineLog()
	tctx, stop := context.WithCancel(ctx)
	defer stop()
	go l.Tail(tctx, path) // the file does not exist yet
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fmt.Fprint(f, "first\nsec")
	if _, _, err := l.WaitFor(ctx, 0, func(s string) bool { return s == "first" }); err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(f, "ond\n")
	if _, _, err := l.WaitFor(ctx, 0, func(s string) bool { return s == "second" }); err != nil {
		t.Fatalf("a line written in two pieces: %v", err)
	}
}

func TestChildErrNamesSignal(t *testing.T) {
	h := newTestHarness(t)
	c, err := h.r.Spawn(exec.Command("sleep", "60"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := c.wait(testCtx(t, 30*time.Second)); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("wait = %v, want killed", err)
	}
	if err := c.Signal(syscall.SIGKILL); err == nil {
		t.Error("signalling a reaped child succeeded")
	}
}

// The floor checks every target, TCP connects and HTTP HEAD requests
// alike, until SIGTERM; it then exits 0 and says how many checks it did
// and how many failed. A check of a port nobody serves fails, and says why.
func TestFloorChecksTargets(t *testing.T) {
	h := newTestHarness(t)
	ctx := testCtx(t, 60*time.Second)
	first := freePorts(t, 3)
	var targets []*Target
	for i := range 3 {
		tg, err := h.l.NewTarget(fmt.Sprintf("t-%04d", 20+i), first+i)
		if err != nil {
			t.Fatal(err)
		}
		targets = append(targets, tg)
	}
	kids, err := h.startTargets(ctx, targets)
	if err != nil {
		t.Fatal(err)
	}
	defer h.killTargets(kids)
	for _, c := range []Check{CheckTCP, CheckHTTP} {
		before := make([]int, len(targets))
		for i, tg := range targets {
			if before[i], err = askConns(tg.Port); err != nil {
				t.Fatal(err)
			}
		}
		m := &floorMon{h: h}
		if err := m.start(ctx, targets, c); err != nil {
			t.Fatal(err)
		}
		// Two checks of every target, beyond the asking connections.
		for i, tg := range targets {
			asked := 1
			err := pollUntil(ctx, 20*time.Millisecond, func() (bool, error) {
				n, err := askConns(tg.Port)
				asked++
				return n-before[i]-asked >= 2, err
			})
			if err != nil {
				t.Fatalf("%s floor: %s saw no checks: %v", c, tg.ID, err)
			}
		}
		if err := m.p.stop(); err != nil {
			t.Fatalf("%s floor at SIGTERM: %v, want exit status 0", c, err)
		}
		want := fmt.Sprintf("floor: %s to 3 targets: ", c)
		ln, _, err := m.p.log.WaitFor(ctx, 0, func(s string) bool { return strings.HasPrefix(s, want) })
		if err != nil {
			t.Fatalf("%s floor: no summary line: %v (%q)", c, err, m.p.log.Since(0))
		}
		if !strings.Contains(ln.Text, " 0 failed ") || strings.Contains(ln.Text, ": 0 checks") {
			t.Errorf("%s floor: summary %q, want checks and none failed", c, ln.Text)
		}
	}

	// A target that is gone: its checks fail, with the reason.
	dead := []*Target{{ID: "t-dead", Port: freePort(t)}}
	m := &floorMon{h: h}
	if err := m.start(ctx, dead, CheckTCP); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("floor: port %d: connect: connection refused", dead[0].Port)
	if _, _, err := m.p.log.WaitFor(ctx, 0, func(s string) bool { return s == want }); err != nil {
		t.Errorf("floor on a dead port: %v; want %q in %q", err, want, m.p.log.Since(0))
	}
	if err := m.p.stop(); err != nil {
		t.Errorf("floor at SIGTERM: %v", err)
	}
}
