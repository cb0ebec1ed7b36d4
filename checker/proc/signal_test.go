package proc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// signalled returns the signal that ended a process, 0 when it exited.
func signalled(st *os.ProcessState) syscall.Signal {
	ws := st.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		return ws.Signal()
	}
	return 0
}

func TestSignalRefusesReusedPid(t *testing.T) {
	h, _ := startHelper(t, spec{mode: "sleep"})
	reused := ID{Pid: h.id.Pid, Start: h.id.Start + 1}
	if err := Signal(reused, unix.SIGKILL); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Signal(%+v): err = %v, want ErrNotFound", reused, err)
	}
	if _, ok := Current(h.id); !ok {
		t.Fatal("the helper did not survive a signal for another start time")
	}

	if err := Signal(h.id, unix.SIGTERM); err != nil {
		t.Fatalf("Signal(%v, SIGTERM): %v", h.id, err)
	}
	if sig := signalled(h.wait()); sig != syscall.SIGTERM {
		t.Errorf("helper ended by %v, want SIGTERM", sig)
	}
	if err := Signal(h.id, unix.SIGTERM); !errors.Is(err, ErrNotFound) {
		t.Errorf("Signal after exit: err = %v, want ErrNotFound", err)
	}
}

// A process of another user cannot be signalled: the error wraps EPERM.
func TestSignalPermission(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a helper as another user")
	}
	self := mustRead(t, os.Getpid())
	cmd := exec.Command(fakeSvc)
	cmd.Env = append(helperEnviron("sigperm"), fmt.Sprintf("%s=%d:%d", targetEnv, self.Pid, self.Start))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sigperm helper: %v", err)
	}
	if got := strings.TrimSpace(string(out)); got != "EPERM" {
		t.Errorf("Signal from nobody to the test: %s, want EPERM", got)
	}
}

func TestSignalGroup(t *testing.T) {
	for _, pgid := range []int{0, 1, -5} {
		if err := SignalGroup(pgid, 0); !errors.Is(err, ErrInvalidGroup) {
			t.Errorf("SignalGroup(%d): err = %v, want ErrInvalidGroup", pgid, err)
		}
	}
	h, _ := startHelper(t, spec{mode: "sleep", pgid: true})
	if info := mustRead(t, h.id.Pid); info.PGid != h.id.Pid {
		t.Fatalf("helper group %d, want its own %d", info.PGid, h.id.Pid)
	}
	if err := SignalGroup(h.id.Pid, unix.SIGKILL); err != nil {
		t.Fatalf("SignalGroup(%d): %v", h.id.Pid, err)
	}
	if sig := signalled(h.wait()); sig != syscall.SIGKILL {
		t.Errorf("helper ended by %v, want SIGKILL", sig)
	}
	if err := SignalGroup(h.id.Pid, unix.SIGKILL); !errors.Is(err, ErrNotFound) {
		t.Errorf("SignalGroup of an empty group: err = %v, want ErrNotFound", err)
	}
}

func TestTerminateIgnoringSIGTERM(t *testing.T) {
	h, _ := startHelper(t, spec{mode: "term-ignore"})
	if err := Terminate(context.Background(), h.id, 100*time.Millisecond); err != nil {
		t.Fatalf("Terminate: %v", err)
	}
	if sig := signalled(h.wait()); sig != syscall.SIGKILL {
		t.Errorf("helper ended by %v, want SIGKILL after killWait", sig)
	}
	if err := Terminate(context.Background(), h.id, time.Second); err != nil {
		t.Errorf("Terminate of a gone process: %v, want nil", err)
	}
}

func TestTerminateCleanExit(t *testing.T) {
	file := filepath.Join(t.TempDir(), "signal")
	h, _ := startHelper(t, spec{mode: "term-clean", env: []string{fileEnv + "=" + file}})
	// killWait is far longer than the test may take: the process must be
	// gone through SIGTERM alone.
	if err := Terminate(context.Background(), h.id, time.Hour); err != nil {
		t.Fatalf("Terminate: %v", err)
	}
	st := h.wait()
	if sig := signalled(st); sig != 0 || st.ExitCode() != 0 {
		t.Errorf("helper ended with %v (signal %v), want a clean exit", st, sig)
	}
	got, err := os.ReadFile(file)
	if err != nil || strings.TrimSpace(string(got)) != "terminated" {
		t.Errorf("helper recorded %q, %v; want terminated (SIGTERM)", got, err)
	}
}

func TestTerminateContext(t *testing.T) {
	h, _ := startHelper(t, spec{mode: "term-ignore"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Terminate(ctx, h.id, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Terminate with a cancelled context: err = %v, want context.Canceled", err)
	}
	if _, ok := Current(h.id); !ok {
		t.Error("helper killed although the context ended before killWait")
	}
}

func TestTerminateReusedPid(t *testing.T) {
	h, _ := startHelper(t, spec{mode: "sleep"})
	reused := ID{Pid: h.id.Pid, Start: h.id.Start + 1}
	if err := Terminate(context.Background(), reused, 0); err != nil {
		t.Fatalf("Terminate(%+v): %v, want nil (that process is gone)", reused, err)
	}
	if _, ok := Current(h.id); !ok {
		t.Error("Terminate hit the process that took over the pid")
	}
}

func TestPollTimeout(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want int
	}{
		{-time.Second, 0},
		{0, 0},
		{time.Microsecond, 1},
		{time.Second, 1000},
		{1000 * time.Hour, 1<<31 - 1},
	}
	for _, tt := range tests {
		if got := pollTimeout(tt.d); got != tt.want {
			t.Errorf("pollTimeout(%v) = %d, want %d", tt.d, got, tt.want)
		}
	}
}

// Without pidfds, Terminate waits by looking at /proc.
func TestWaitGoneWithoutPidfd(t *testing.T) {
	h, _ := startHelper(t, spec{mode: "sleep"})
	gone, err := waitGone(context.Background(), h.id, -1, 10*time.Millisecond)
	if gone || err != nil {
		t.Fatalf("waitGone of a live process = %v, %v; want false, nil", gone, err)
	}
	if err := Signal(h.id, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	gone, err = waitGone(context.Background(), h.id, -1, waitLimit)
	if !gone || err != nil {
		t.Errorf("waitGone of a killed process = %v, %v; want true, nil", gone, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	h2, _ := startHelper(t, spec{mode: "sleep"})
	if _, err := waitGone(ctx, h2.id, -1, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("waitGone with a cancelled context: err = %v, want context.Canceled", err)
	}
}
