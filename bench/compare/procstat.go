package compare

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// clockTicks is USER_HZ, the unit of the times in /proc/PID/stat. Linux
// fixes it at 100 on every architecture this runs on.
const clockTicks = 100

// ErrNotOurs reports a pid that is not, or is no longer, a process this
// harness started: it is never signalled.
var ErrNotOurs = errors.New("not a process of this run")

// CPUTime is the CPU a process used, its waited-for children included:
// utime+stime+cutime+cstime of /proc/PID/stat.
func CPUTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("cpu time of pid %d: %w", pid, err)
	}
	return parseStatCPU(b)
}

// parseStatCPU reads utime, stime, cutime and cstime (fields 14 to 17) of a
// /proc/PID/stat line. The command name in parentheses may hold spaces and
// parentheses, so fields are counted from the last ')'.
func parseStatCPU(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc stat line %q: no command name", trimOutput(b))
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state): field n is f[n-3].
	if len(f) < 15 {
		return 0, fmt.Errorf("/proc stat line %q: %d fields after the name", trimOutput(b), len(f))
	}
	var ticks int64
	for n := 14; n <= 17; n++ {
		v, err := strconv.ParseInt(f[n-3], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc stat field %d: %w", n, err)
		}
		ticks += v
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// PeakRSS is a process's peak resident set (VmHWM), in bytes.
func PeakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("peak RSS of pid %d: %w", pid, err)
	}
	return parseStatusKB(b, "VmHWM")
}

// SplitRSS is a process's resident set now, split into anonymous memory
// (RssAnon) and file-backed pages (RssFile), in bytes.
func SplitRSS(pid int) (anon, file int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("RSS of pid %d: %w", pid, err)
	}
	if anon, err = parseStatusKB(b, "RssAnon"); err != nil {
		return 0, 0, err
	}
	file, err = parseStatusKB(b, "RssFile")
	return anon, file, err
}

// parseStatusKB returns the "Key: N kB" value of a /proc/PID/status text in
// bytes.
func parseStatusKB(b []byte, key string) (int64, error) {
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || k != key {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("/proc status %s: %q is not \"N kB\"", key, v)
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc status %s: %w", key, err)
		}
		return n * 1024, nil
	}
	return 0, fmt.Errorf("/proc status: no %s line", key)
}

// ours reports whether pid is alive and runs with token (the run's work
// directory) on its command line: only such processes are signalled.
func ours(pid int, token string) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && bytes.Contains(b, []byte(token))
}

// SignalOurs sends sig to pid after checking that it is a process of this
// run; between the check and the signal the pidfd pins the process, so a
// reused pid is never hit.
func SignalOurs(pid int, token string, sig unix.Signal) error {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return fmt.Errorf("signal pid %d: %w", pid, err)
	}
	defer unix.Close(fd)
	if !ours(pid, token) {
		return fmt.Errorf("signal pid %d: %w", pid, ErrNotOurs)
	}
	if err := unix.PidfdSendSignal(fd, sig, nil, 0); err != nil {
		return fmt.Errorf("signal pid %d with %v: %w", pid, sig, err)
	}
	return nil
}

// exitWatch reports the exit of a process this harness did not start.
type exitWatch struct {
	fd int
}

// watchExit opens a pidfd on pid, so its exit can be awaited.
func watchExit(pid int) (*exitWatch, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, fmt.Errorf("watch pid %d: %w", pid, err)
	}
	return &exitWatch{fd: fd}, nil
}

// wait returns the time the process was seen to exit (become a zombie or
// vanish), polling its pidfd in short slices so ctx is honoured.
func (w *exitWatch) wait(ctx context.Context) (time.Time, error) {
	fds := []unix.PollFd{{Fd: int32(w.fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, 20)
		if n > 0 {
			return time.Now(), nil
		}
		if err != nil && !errors.Is(err, unix.EINTR) {
			return time.Time{}, fmt.Errorf("poll pidfd: %w", err)
		}
		if ctx.Err() != nil {
			return time.Time{}, ctx.Err()
		}
	}
}

func (w *exitWatch) close() { unix.Close(w.fd) }
