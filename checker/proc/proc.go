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
	"strings"
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
	var r reader
	return r.readDir(pid, dir)
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
	var r reader // one set of buffers for the whole scan
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil || pid <= 0 {
			continue
		}
		info, err := r.readPidAt(rootFd, name, pid)
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

// reader reads processes with buffers it keeps from one process to the
// next: a scan of a thousand processes allocates them once, not for every
// file it reads.
type reader struct {
	buf  []byte // the file last read
	link []byte // the target of exe, unix.PathMax bytes
}

// readPidAt reads the process directory name under the open /proc root.
func (r *reader) readPidAt(root int, name string, pid int) (Info, error) {
	dir, err := unix.Openat(root, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return Info{}, readErr(pid, "", err)
	}
	defer unix.Close(dir)
	return r.readDir(pid, dir)
}

// readStatAt reads /proc/name/stat alone, under the open /proc root: one
// file needs no directory to bind it to the process.
func (r *reader) readStatAt(root int, name string, pid int) (Info, error) {
	info := Info{UID: -1}
	stat, err := r.read(root, name+"/stat")
	if err != nil {
		return Info{}, readErr(pid, "stat", err)
	}
	if _, err := parseStat(stat, &info); err != nil {
		return Info{}, fmt.Errorf("proc: /proc/%d/stat: %w", pid, err)
	}
	return info, nil
}

// pfKthread is PF_KTHREAD, the flag (field 9 of /proc/PID/stat) of a kernel
// thread.
const pfKthread = 0x00200000

// readDir reads the process whose /proc directory is open as dir: the
// directory's owner, stat, and for a process with a memory map cmdline and
// exe. These are the cheapest sources /proc has; status, which the kernel
// formats in full for its Uid line, is not read.
func (r *reader) readDir(pid, dir int) (Info, error) {
	var info Info
	// The owner of /proc/PID is the effective uid of the process, dumpable
	// or not: the kernel (task_dump_owner) exempts the directory from the
	// root ownership it gives the files of a non-dumpable process, so that
	// stat(2) of it tells the euid, as ps has always used it. It comes
	// before stat: a process reaped in between shows root as the owner,
	// and then fails the read of stat instead of reporting uid 0.
	var st unix.Stat_t
	if err := unix.Fstat(dir, &st); err != nil {
		return Info{}, readErr(pid, "", err)
	}
	info.UID = int(st.Uid)
	stat, err := r.read(dir, "stat")
	if err != nil {
		return Info{}, readErr(pid, "stat", err)
	}
	flags, err := parseStat(stat, &info)
	if err != nil {
		return Info{}, fmt.Errorf("proc: /proc/%d/stat: %w", pid, err)
	}
	// A kernel thread, and a process that has exited, have no memory map:
	// their cmdline is empty and exe unreadable, so the reads are skipped.
	if flags&pfKthread != 0 || info.Dead() {
		return info, nil
	}
	cmdline, err := r.read(dir, "cmdline")
	if err != nil {
		return Info{}, readErr(pid, "cmdline", err)
	}
	info.Argv = splitCmdline(cmdline)
	info.Exe = r.readExe(dir)
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

// minRead is the initial size of reader.buf: a stat line and most command
// lines fit.
const minRead = 4096

// read reads the whole file name under the directory dir into r.buf and
// returns it; it is valid until the next read.
//
// A read that does not fill the buffer ends the file, as procps reads
// /proc: the kernel produces a proc file whole on the first read, so
// reading on until read(2) returns 0 would cost one more system call per
// file for nothing.
func (r *reader) read(dir int, name string) ([]byte, error) {
	fd, err := unix.Openat(dir, name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	if r.buf == nil {
		r.buf = make([]byte, minRead)
	}
	n := 0
	for {
		m, err := unix.Read(fd, r.buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		n += m
		if n < len(r.buf) {
			return r.buf[:n], nil
		}
		r.buf = append(r.buf, make([]byte, len(r.buf))...)
	}
}

// deletedSuffix is what the kernel appends to /proc/PID/exe when the
// executable was removed or replaced since the process started.
const deletedSuffix = " (deleted)"

// readExe returns the executable of the process, "" when unreadable.
func (r *reader) readExe(dir int) string {
	if r.link == nil {
		r.link = make([]byte, unix.PathMax)
	}
	n, err := unix.Readlinkat(dir, "exe", r.link)
	if err != nil || n <= 0 {
		return ""
	}
	return string(bytes.TrimSuffix(r.link[:n], []byte(deletedSuffix)))
}

// errStatFormat reports a /proc/PID/stat line pcheck cannot read.
var errStatFormat = errors.New("malformed stat line")

// parseStat fills the fields of info that /proc/PID/stat holds and returns
// the process's flags (PF_*):
//
//	pid (comm) state ppid pgrp session tty_nr tpgid flags minflt cminflt
//	majflt cmajflt utime stime cutime cstime priority nice num_threads
//	itrealvalue starttime ...
//
// comm may hold spaces and parentheses, so it ends at the last ')'.
func parseStat(line []byte, info *Info) (flags uint64, err error) {
	open := bytes.IndexByte(line, '(')
	closing := bytes.LastIndexByte(line, ')')
	if open < 1 || closing < open {
		return 0, errStatFormat
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(line[:open])))
	if err != nil {
		return 0, fmt.Errorf("%w: pid: %v", errStatFormat, err)
	}
	info.Pid = pid
	info.Comm = string(line[open+1 : closing])
	// f[0] is field 3 of proc(5), the state; the fields up to starttime
	// are cut without allocating.
	const flagsField, startField = 9 - 3, 22 - 3
	var f [startField + 1][]byte
	if splitFields(line[closing+1:], f[:]) < len(f) || len(f[0]) != 1 {
		return 0, errStatFormat
	}
	info.State = f[0][0]
	ints := []*int{&info.PPid, &info.PGid, &info.Sid}
	for i, p := range ints {
		if *p, err = strconv.Atoi(string(f[1+i])); err != nil {
			return 0, fmt.Errorf("%w: field %d: %v", errStatFormat, 4+i, err)
		}
	}
	if flags, err = strconv.ParseUint(string(f[flagsField]), 10, 64); err != nil {
		return 0, fmt.Errorf("%w: flags: %v", errStatFormat, err)
	}
	if info.Start, err = strconv.ParseUint(string(f[startField]), 10, 64); err != nil {
		return 0, fmt.Errorf("%w: starttime: %v", errStatFormat, err)
	}
	info.StartTime = ticksToDuration(info.Start)
	return flags, nil
}

// splitFields cuts b at runs of white space into the elements of out, as
// many as fit, and returns how many it filled.
func splitFields(b []byte, out [][]byte) int {
	n := 0
	for n < len(out) {
		b = bytes.TrimLeft(b, " \n")
		if len(b) == 0 {
			break
		}
		end := bytes.IndexAny(b, " \n")
		if end < 0 {
			end = len(b)
		}
		out[n], b = b[:end], b[end:]
		n++
	}
	return n
}

// splitCmdline splits /proc/PID/cmdline into its NUL-terminated arguments.
// The arguments share one string: a process costs two allocations, not one
// per argument.
func splitCmdline(b []byte) []string {
	s := strings.TrimSuffix(string(b), "\x00")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\x00")
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
	if _, err := parseStat(b, &info); err != nil {
		return 0, 0, fmt.Errorf("proc: /proc/%d/stat: %w", pid, err)
	}
	return info.Start, info.State, nil
}

// BootID returns the kernel's random id of this boot
// (/proc/sys/kernel/random/boot_id): pids and start times repeat from one
// boot to the next, so a pid recorded on disk is only meaningful with it.
func BootID() (string, error) {
	b, err := os.ReadFile(procRoot + "/sys/kernel/random/boot_id")
	if err != nil {
		return "", fmt.Errorf("proc: boot id: %w", err)
	}
	id := strings.TrimSpace(string(b))
	if id == "" {
		return "", errors.New("proc: boot id: empty")
	}
	return id, nil
}
