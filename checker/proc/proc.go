// Package proc finds processes in /proc, identifies them across pid reuse,
// delivers their deaths through pidfds and signals them without ever hitting
// a pid that has been given to another process.
//
// A process is identified by an ID, its pid plus its start time: a pid alone
// may belong to another program by the time pcheck looks again.
package proc

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// ErrNotFound reports a process that does not exist any more, or whose pid
// now belongs to another process (a different start time).
var ErrNotFound = errors.New("process not found")

// ID identifies a process across pid reuse: pid plus start time (field 22 of
// /proc/PID/stat, clock ticks since boot).
type ID struct {
	Pid   int
	Start uint64
}

// String returns the pid alone, as messages print it.
func (id ID) String() string { return strconv.Itoa(id.Pid) }

// Info is what pcheck knows of one process.
type Info struct {
	ID
	PPid, PGid, Sid int
	// UID is the effective user id.
	UID int
	// State is the state letter of /proc/PID/stat: 'R', 'S', 'Z', ...
	State byte
	Comm  string
	// Exe is the target of /proc/PID/exe without a " (deleted)" suffix;
	// "" when unreadable (kernel threads, zombies, permission).
	Exe string
	// Argv is /proc/PID/cmdline split on NUL; empty for kernel threads
	// and zombies.
	Argv []string
	// StartTime is the start time since boot.
	StartTime time.Duration
}

// Dead reports whether the process has exited: a zombie waiting for its
// parent, or a task being torn down.
func (i Info) Dead() bool { return i.State == 'Z' || i.State == 'X' }

// procRoot is where the proc file system is mounted.
const procRoot = "/proc"

// atClkTck is AT_CLKTCK, the auxiliary vector entry holding sysconf(_SC_CLK_TCK).
const atClkTck = 17

// clockTicks is the number of clock ticks per second that /proc/PID/stat
// counts in: the kernel's USER_HZ as the auxiliary vector gives it, 100 when
// it does not.
var clockTicks = func() uint64 {
	vec, err := unix.Auxv()
	if err == nil {
		for _, kv := range vec {
			if kv[0] == atClkTck && kv[1] > 0 {
				return uint64(kv[1])
			}
		}
	}
	return 100
}()

// ticksToDuration converts clock ticks to a duration.
func ticksToDuration(ticks uint64) time.Duration {
	sec := ticks / clockTicks
	rest := ticks % clockTicks
	return time.Duration(sec)*time.Second + time.Duration(rest)*time.Second/time.Duration(clockTicks)
}

// Read returns the process with the given pid. Its error is ErrNotFound
// (errors.Is) when the process does not exist.
//
// Every file is read through one open /proc/PID directory, which stays bound
// to the process it was opened for: a process that exits half way is
// reported as not found rather than mixed with a successor on the same pid.
func Read(pid int) (Info, error) {
	if pid <= 0 {
		return Info{}, fmt.Errorf("proc: pid %d: %w", pid, ErrNotFound)
	}
	dir, err := unix.Open(procRoot+"/"+strconv.Itoa(pid), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return Info{}, readErr(pid, "", err)
	}
	defer unix.Close(dir)
	return readDir(pid, dir)
}

// readDir reads the process whose /proc directory is open as dir.
func readDir(pid, dir int) (Info, error) {
	var info Info
	stat, err := readAt(dir, "stat")
	if err != nil {
		return Info{}, readErr(pid, "stat", err)
	}
	if err := parseStat(stat, &info); err != nil {
		return Info{}, fmt.Errorf("proc: /proc/%d/stat: %w", pid, err)
	}
	status, err := readAt(dir, "status")
	if err != nil {
		return Info{}, readErr(pid, "status", err)
	}
	if info.UID, err = parseUID(status); err != nil {
		return Info{}, fmt.Errorf("proc: /proc/%d/status: %w", pid, err)
	}
	cmdline, err := readAt(dir, "cmdline")
	if err != nil {
		return Info{}, readErr(pid, "cmdline", err)
	}
	info.Argv = splitCmdline(cmdline)
	info.Exe = readExe(dir)
	return info, nil
}

// readErr wraps an error of reading /proc/PID/name; a missing process
// becomes ErrNotFound.
func readErr(pid int, name string, err error) error {
	path := procRoot + "/" + strconv.Itoa(pid)
	if name != "" {
		path += "/" + name
	}
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("proc: %s: %w", path, ErrNotFound)
	}
	return fmt.Errorf("proc: %s: %w", path, err)
}

// readAt reads the whole file name under the directory dir.
func readAt(dir int, name string) ([]byte, error) {
	fd, err := unix.Openat(dir, name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	buf := make([]byte, 0, 1024)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
}

// deletedSuffix is what the kernel appends to /proc/PID/exe when the
// executable was removed or replaced since the process started.
const deletedSuffix = " (deleted)"

// readExe returns the executable of the process, "" when unreadable.
func readExe(dir int) string {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(dir, "exe", buf)
	if err != nil || n <= 0 {
		return ""
	}
	exe := string(buf[:n])
	if len(exe) > len(deletedSuffix) && exe[len(exe)-len(deletedSuffix):] == deletedSuffix {
		exe = exe[:len(exe)-len(deletedSuffix)]
	}
	return exe
}

// errStatFormat reports a /proc/PID/stat line pcheck cannot read.
var errStatFormat = errors.New("malformed stat line")

// parseStat fills the fields of info that /proc/PID/stat holds:
//
//	pid (comm) state ppid pgrp session tty_nr tpgid flags minflt cminflt
//	majflt cmajflt utime stime cutime cstime priority nice num_threads
//	itrealvalue starttime ...
//
// comm may hold spaces and parentheses, so it ends at the last ')'.
func parseStat(line []byte, info *Info) error {
	open := bytes.IndexByte(line, '(')
	closing := bytes.LastIndexByte(line, ')')
	if open < 1 || closing < open {
		return errStatFormat
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(line[:open])))
	if err != nil {
		return fmt.Errorf("%w: pid: %v", errStatFormat, err)
	}
	info.Pid = pid
	info.Comm = string(line[open+1 : closing])
	// fields[0] is field 3 of proc(5), the state.
	fields := bytes.Fields(line[closing+1:])
	const startField = 22 - 3
	if len(fields) <= startField || len(fields[0]) != 1 {
		return errStatFormat
	}
	info.State = fields[0][0]
	ints := []*int{&info.PPid, &info.PGid, &info.Sid}
	for i, p := range ints {
		if *p, err = strconv.Atoi(string(fields[1+i])); err != nil {
			return fmt.Errorf("%w: field %d: %v", errStatFormat, 4+i, err)
		}
	}
	if info.Start, err = strconv.ParseUint(string(fields[startField]), 10, 64); err != nil {
		return fmt.Errorf("%w: starttime: %v", errStatFormat, err)
	}
	info.StartTime = ticksToDuration(info.Start)
	return nil
}

// errNoUID reports a /proc/PID/status without a readable Uid line.
var errNoUID = errors.New("no Uid line")

// parseUID returns the effective uid of a /proc/PID/status file, the second
// number of its "Uid:" line (real, effective, saved, file system).
func parseUID(status []byte) (int, error) {
	for line := range bytes.Lines(status) {
		rest, ok := bytes.CutPrefix(line, []byte("Uid:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) < 2 {
			return 0, errNoUID
		}
		uid, err := strconv.Atoi(string(f[1]))
		if err != nil {
			return 0, fmt.Errorf("%w: %v", errNoUID, err)
		}
		return uid, nil
	}
	return 0, errNoUID
}

// splitCmdline splits /proc/PID/cmdline into its NUL-terminated arguments.
func splitCmdline(b []byte) []string {
	b = bytes.TrimSuffix(b, []byte{0})
	if len(b) == 0 {
		return nil
	}
	parts := bytes.Split(b, []byte{0})
	argv := make([]string, len(parts))
	for i, p := range parts {
		argv[i] = string(p)
	}
	return argv
}

// Scan returns every process, ordered by pid. Processes that exit during the
// scan are left out, and so are those /proc does not let pcheck read (hidepid).
func Scan() ([]Info, error) {
	root, err := os.Open(procRoot)
	if err != nil {
		return nil, fmt.Errorf("proc: scan: %w", err)
	}
	defer root.Close()
	names, err := root.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("proc: scan %s: %w", procRoot, err)
	}
	rootFd := int(root.Fd())
	all := make([]Info, 0, len(names))
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil || pid <= 0 {
			continue
		}
		info, err := readPidAt(rootFd, name, pid)
		if errors.Is(err, ErrNotFound) || errors.Is(err, fs.ErrPermission) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("proc: scan: %w", err)
		}
		all = append(all, info)
	}
	sortByPid(all)
	return all, nil
}

// readPidAt reads the process directory name under the open /proc root.
func readPidAt(root int, name string, pid int) (Info, error) {
	dir, err := unix.Openat(root, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return Info{}, readErr(pid, "", err)
	}
	defer unix.Close(dir)
	return readDir(pid, dir)
}

// Current returns the process id names if its pid still has id's start time
// and it has not exited (a zombie is not current).
func Current(id ID) (Info, bool) {
	info, err := Read(id.Pid)
	if err != nil || info.Start != id.Start || info.Dead() {
		return Info{}, false
	}
	return info, true
}

// startOf returns the start time and state of pid from /proc/PID/stat.
func startOf(pid int) (uint64, byte, error) {
	b, err := os.ReadFile(procRoot + "/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, readErr(pid, "stat", err)
	}
	var info Info
	if err := parseStat(b, &info); err != nil {
		return 0, 0, fmt.Errorf("proc: /proc/%d/stat: %w", pid, err)
	}
	return info.Start, info.State, nil
}
