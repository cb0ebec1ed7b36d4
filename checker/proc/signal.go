package proc

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// ErrStillAlive reports a process that survived SIGKILL for killTimeout,
// typically one stuck in uninterruptible sleep (state D).
var ErrStillAlive = errors.New("process still alive after SIGKILL")

// ErrAlive reports a process that outlived SIGTERM and its wait in Stop.
var ErrAlive = errors.New("process still alive after SIGTERM")

// ErrInvalidGroup reports a process group that must never be signalled:
// kill(-0) and kill(-1) would hit pcheck's own group or every process.
var ErrInvalidGroup = errors.New("invalid process group")

// killTimeout bounds the wait after SIGKILL in Terminate.
const killTimeout = 5 * time.Second

// pidfdOK caches whether the kernel has pidfd_open and pollable pidfds
// (Linux 5.3).
var pidfdOK = sync.OnceValue(func() bool {
	fd, err := unix.PidfdOpen(unix.Getpid(), 0)
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
})

// PidfdSupported reports whether pidfds work here. When false, Watcher is
// unavailable and the engine polls every MonitorInterval instead; Signal and
// Terminate still work, with a narrower guard against pid reuse.
func PidfdSupported() bool { return pidfdOK() }

// openPidfd opens a pidfd on id.Pid and checks, after opening, that the pid
// still has id's start time: from then on the pidfd names that process and
// no other, whatever happens to the pid.
func openPidfd(id ID) (int, error) {
	fd, err := unix.PidfdOpen(id.Pid, 0)
	if err != nil {
		if err == unix.ESRCH {
			return -1, fmt.Errorf("proc: pid %d: %w", id.Pid, ErrNotFound)
		}
		return -1, fmt.Errorf("proc: pidfd_open pid %d: %w", id.Pid, err)
	}
	if err := checkStart(id); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// checkStart returns ErrNotFound unless id.Pid exists with id's start time.
func checkStart(id ID) error {
	start, _, err := startOf(id.Pid)
	if err != nil {
		return err
	}
	if start != id.Start {
		return fmt.Errorf("proc: pid %d now belongs to another process (start %d, want %d): %w",
			id.Pid, start, id.Start, ErrNotFound)
	}
	return nil
}

// Signal sends sig to the process id, never to a process that took over its
// pid. The error is ErrNotFound (errors.Is) when the process is gone or its
// pid reused; a permission failure wraps unix.EPERM.
func Signal(id ID, sig unix.Signal) error {
	if !PidfdSupported() {
		if err := checkStart(id); err != nil {
			return err
		}
		return signalErr(id, sig, unix.Kill(id.Pid, sig))
	}
	fd, err := openPidfd(id)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return signalErr(id, sig, unix.PidfdSendSignal(fd, sig, nil, 0))
}

// signalErr wraps the error of sending sig to id.
func signalErr(id ID, sig unix.Signal, err error) error {
	switch {
	case err == nil:
		return nil
	case err == unix.ESRCH:
		return fmt.Errorf("proc: signal %s to pid %d: %w", unix.SignalName(sig), id.Pid, ErrNotFound)
	default:
		return fmt.Errorf("proc: signal %s to pid %d: %w", unix.SignalName(sig), id.Pid, err)
	}
}

// SignalGroup sends sig to every process of the process group pgid. The
// error is ErrNotFound when the group has no process left, ErrInvalidGroup
// for pgid 0 or 1.
func SignalGroup(pgid int, sig unix.Signal) error {
	if pgid <= 1 {
		return fmt.Errorf("proc: signal %s to group %d: %w", unix.SignalName(sig), pgid, ErrInvalidGroup)
	}
	err := unix.Kill(-pgid, sig)
	switch {
	case err == nil:
		return nil
	case err == unix.ESRCH:
		return fmt.Errorf("proc: signal %s to group %d: %w", unix.SignalName(sig), pgid, ErrNotFound)
	default:
		return fmt.Errorf("proc: signal %s to group %d: %w", unix.SignalName(sig), pgid, err)
	}
}

// Terminate stops the process id: SIGTERM (and SIGCONT, so that a stopped
// process handles it), a wait of up to killWait for the process to be gone
// or a zombie, then SIGKILL and another wait of up to 5 s. It returns nil
// when the process is gone, including when it was gone before the call;
// ErrStillAlive when it survived SIGKILL; ctx.Err() when ctx ends first.
// The waits are on the process's pidfd, not on a clock.
func Terminate(ctx context.Context, id ID, killWait time.Duration) error {
	return terminate(ctx, id, killWait, true)
}

// Stop is Terminate without SIGKILL: SIGTERM (and SIGCONT), then a wait of
// up to wait for the process to be gone. It returns ErrStillAlive when the
// process outlived wait, and leaves it running.
func Stop(ctx context.Context, id ID, wait time.Duration) error {
	return terminate(ctx, id, wait, false)
}

func terminate(ctx context.Context, id ID, killWait time.Duration, kill bool) error {
	var (
		fd  = -1
		err error
	)
	if PidfdSupported() {
		fd, err = openPidfd(id)
	} else {
		err = checkStart(id)
	}
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if fd >= 0 {
		defer unix.Close(fd)
	}
	send := func(sig unix.Signal) error {
		if fd >= 0 {
			return signalErr(id, sig, unix.PidfdSendSignal(fd, sig, nil, 0))
		}
		return signalErr(id, sig, unix.Kill(id.Pid, sig))
	}

	if err := send(unix.SIGTERM); err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		return err
	}
	_ = send(unix.SIGCONT) // best effort: only a stopped process needs it
	gone, err := waitGone(ctx, id, fd, killWait)
	if gone || err != nil {
		return err
	}
	if !kill {
		return fmt.Errorf("proc: pid %d: %w", id.Pid, ErrAlive)
	}
	if err := send(unix.SIGKILL); err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		return err
	}
	gone, err = waitGone(ctx, id, fd, killTimeout)
	if gone || err != nil {
		return err
	}
	return fmt.Errorf("proc: pid %d: %w", id.Pid, ErrStillAlive)
}

// waitGone waits up to d for the process to exit (become a zombie or
// vanish). It reports whether it did, or ctx's error when ctx ends first.
// With a pidfd (fd >= 0) it polls the pidfd; without, it checks /proc at a
// short interval, the best that kernels without pidfd allow.
func waitGone(ctx context.Context, id ID, fd int, d time.Duration) (bool, error) {
	if fd < 0 {
		return pollGone(ctx, id, d)
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		return false, fmt.Errorf("proc: wait for pid %d: eventfd: %w", id.Pid, err)
	}
	woken := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(woken)
		unix.Write(wake, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	})
	defer func() {
		if !stop() {
			<-woken // the write must finish before the eventfd is closed
		}
		unix.Close(wake)
	}()

	deadline := time.Now().Add(d)
	for {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}, {Fd: int32(wake), Events: unix.POLLIN}}
		_, err := unix.Poll(fds, pollTimeout(time.Until(deadline)))
		if err != nil && err != unix.EINTR {
			return false, fmt.Errorf("proc: wait for pid %d: poll: %w", id.Pid, err)
		}
		if fds[0].Revents != 0 {
			return true, nil
		}
		if fds[1].Revents != 0 {
			return false, ctx.Err()
		}
		if !time.Now().Before(deadline) {
			return false, nil
		}
	}
}

// pollTimeout converts d to a poll(2) timeout in milliseconds, rounded up.
func pollTimeout(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	ms := (d + time.Millisecond - 1) / time.Millisecond
	if ms > math.MaxInt32 {
		return math.MaxInt32
	}
	return int(ms)
}

// noPidfdInterval is how often pollGone looks at /proc.
const noPidfdInterval = 20 * time.Millisecond

// pollGone is waitGone for kernels without pidfds.
func pollGone(ctx context.Context, id ID, d time.Duration) (bool, error) {
	timeout := time.NewTimer(d)
	defer timeout.Stop()
	tick := time.NewTicker(noPidfdInterval)
	defer tick.Stop()
	for {
		if _, ok := Current(id); !ok {
			return true, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-timeout.C:
			_, ok := Current(id)
			return !ok, nil
		case <-tick.C:
		}
	}
}
