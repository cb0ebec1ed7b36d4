package proc

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// Usage is what one process uses of the machine, from /proc/PID/stat,
// statm and fd: the figures padmin status, the status page, the metrics
// and the _bi_resource monitors show.
type Usage struct {
	ID
	PPid int
	// CPU is the user and system time the process used; ChildCPU that of
	// its children it has waited for (cutime and cstime), which is where
	// the time of a child that exited goes.
	CPU, ChildCPU time.Duration
	// RSS is the resident set in bytes, shared pages included: the
	// resident field of statm, which the kernel sums exactly where the rss
	// field of stat is an estimate that may be hundreds of KiB off.
	RSS     int64
	Threads int
	// FDs counts the open file descriptors; -1 when /proc/PID/fd cannot
	// be read (a process of another user, when pcheck is not root).
	FDs int
	// StartTime is the start time since boot.
	StartTime time.Duration
}

// pageSize is the size of the pages statm counts in.
var pageSize = int64(os.Getpagesize())

// ReadUsage returns the usage of pid: one read each of /proc/PID/stat and
// statm and a listing of /proc/PID/fd, through one open /proc/PID
// directory so that all are of the same process. Its error is ErrNotFound (errors.Is) when
// the process does not exist.
func ReadUsage(pid int) (Usage, error) {
	if pid <= 0 {
		return Usage{}, fmt.Errorf("proc: pid %d: %w", pid, ErrNotFound)
	}
	dir, err := unix.Open(procRoot+"/"+strconv.Itoa(pid), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return Usage{}, readErr(pid, "", err)
	}
	defer unix.Close(dir)
	var r reader
	stat, err := r.read(dir, "stat")
	if err != nil {
		return Usage{}, readErr(pid, "stat", err)
	}
	u, err := parseUsage(stat)
	if err != nil {
		return Usage{}, fmt.Errorf("proc: /proc/%d/stat: %w", pid, err)
	}
	statm, err := r.read(dir, "statm")
	if err != nil {
		return Usage{}, readErr(pid, "statm", err)
	}
	if u.RSS, err = parseResident(statm); err != nil {
		return Usage{}, fmt.Errorf("proc: /proc/%d/statm: %w", pid, err)
	}
	u.FDs = countFDs(dir)
	return u, nil
}

// errStatmFormat reports a /proc/PID/statm line pcheck cannot read.
var errStatmFormat = errors.New("malformed statm line")

// parseResident returns the resident set in bytes of a statm line:
// "size resident shared text lib data dt", in pages.
func parseResident(line []byte) (int64, error) {
	var f [2][]byte
	if splitFields(line, f[:]) < len(f) {
		return 0, errStatmFormat
	}
	pages, err := strconv.ParseInt(string(f[1]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: resident: %v", errStatmFormat, err)
	}
	return pages * pageSize, nil
}

// parseUsage reads the fields of a /proc/PID/stat line that Usage holds:
// those parseStat reads, and utime (14), stime (15), cutime (16), cstime
// (17) and num_threads (20). (rss, field 24, is an estimate: ReadUsage
// takes statm's.)
func parseUsage(line []byte) (Usage, error) {
	var info Info
	if _, err := parseStat(line, &info); err != nil {
		return Usage{}, err
	}
	u := Usage{ID: info.ID, PPid: info.PPid, StartTime: info.StartTime}
	// f[0] is field 3 of proc(5); parseStat has checked the line's shape.
	const utime, threads = 14 - 3, 20 - 3
	var f [threads + 1][]byte
	if splitFields(line[lastParen(line)+1:], f[:]) < len(f) {
		return Usage{}, errStatFormat
	}
	var ticks [4]uint64 // utime, stime, cutime, cstime
	for i := range ticks {
		v, err := strconv.ParseUint(string(f[utime+i]), 10, 64)
		if err != nil {
			return Usage{}, fmt.Errorf("%w: field %d: %v", errStatFormat, 14+i, err)
		}
		ticks[i] = v
	}
	u.CPU = ticksToDuration(ticks[0] + ticks[1])
	u.ChildCPU = ticksToDuration(ticks[2] + ticks[3])
	n, err := strconv.Atoi(string(f[threads]))
	if err != nil {
		return Usage{}, fmt.Errorf("%w: num_threads: %v", errStatFormat, err)
	}
	u.Threads = n
	return u, nil
}

// lastParen is the end of comm in a stat line.
func lastParen(line []byte) int {
	for i := len(line) - 1; i >= 0; i-- {
		if line[i] == ')' {
			return i
		}
	}
	return -1
}

// countFDs counts the entries of fd under the open /proc/PID directory
// dir, -1 when it cannot be read.
func countFDs(dir int) int {
	fd, err := unix.Openat(dir, "fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1
	}
	defer unix.Close(fd)
	buf := make([]byte, 8192)
	n := 0
	for {
		m, err := unix.Getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1
		}
		if m == 0 {
			return n - 2 // . and ..
		}
		_, count, _ := unix.ParseDirent(buf[:m], -1, nil)
		n += count + 2 // ParseDirent leaves out . and ..
	}
}

// ErrNoChildren reports a kernel without /proc/PID/task/TID/children
// (CONFIG_PROC_CHILDREN off): Children cannot tell.
var ErrNoChildren = errors.New("proc: /proc/PID/task/TID/children not available")

// Children returns the pids of the children of pid, read from the
// children file of each of its threads (a child belongs to the thread
// that forked it). It reads no other process: the descendants of a
// watched process cost a few small reads, not a walk of /proc. Its error
// is ErrNotFound when pid does not exist, ErrNoChildren when the kernel
// has no children files.
func Children(pid int) ([]int, error) {
	task := procRoot + "/" + strconv.Itoa(pid) + "/task"
	d, err := os.Open(task)
	if err != nil {
		return nil, readErr(pid, "task", err)
	}
	defer d.Close()
	tids, err := d.Readdirnames(-1)
	if err != nil {
		return nil, readErr(pid, "task", err)
	}
	var out []int
	var r reader
	found := false
	for _, tid := range tids {
		b, err := r.read(int(d.Fd()), tid+"/children")
		if err != nil {
			continue // the thread ended meanwhile, or no children files
		}
		found = true
		out = appendPids(out, b)
	}
	if !found {
		if _, err := os.Stat(task); err != nil {
			return nil, readErr(pid, "task", err)
		}
		return nil, ErrNoChildren
	}
	return out, nil
}

// appendPids appends the pids of a children file ("12 34 ") to out.
func appendPids(out []int, b []byte) []int {
	pid, digits := 0, false
	for _, c := range b {
		if c >= '0' && c <= '9' {
			pid, digits = pid*10+int(c-'0'), true
			continue
		}
		if digits {
			out = append(out, pid)
		}
		pid, digits = 0, false
	}
	if digits {
		out = append(out, pid)
	}
	return out
}

// SinceBoot returns the time since boot on CLOCK_BOOTTIME, the clock
// process start times in /proc are measured on.
func SinceBoot() (time.Duration, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0, err
	}
	return time.Duration(ts.Nano()), nil
}
