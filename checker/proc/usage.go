package proc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// Usage is what one process uses at the moment it is read, from its
// /proc/PID/stat and statm: the figures of a _bi_resource monitor.
type Usage struct {
	// ID is the process read: a caller compares its start time to the
	// one it knows, as the pid may have been reused.
	ID
	// CPU is the processor time of the process (utime+stime) and of the
	// children it has waited for (cutime+cstime): a child reaped by a
	// process of a tree keeps its time in the tree.
	CPU time.Duration
	// Threads is num_threads.
	Threads int
	// RSS is the resident set in bytes, shared pages included: the
	// resident field of statm, which the kernel sums exactly where the rss
	// field of stat is an estimate that may be hundreds of KiB off.
	RSS uint64
}

// pageSize is the size of the pages /proc/PID/stat counts rss in.
var pageSize = uint64(os.Getpagesize())

// ReadUsage reads the usage of pid. Its error is ErrNotFound (errors.Is)
// when the process does not exist; any other error is of the reader's
// side (permission, descriptors).
func ReadUsage(pid int) (Usage, error) {
	dir := procRoot + "/" + strconv.Itoa(pid)
	b, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return Usage{}, readErr(pid, "stat", err)
	}
	u, err := parseUsage(b)
	if err != nil {
		return Usage{}, fmt.Errorf("proc: %s/stat: %w", dir, err)
	}
	if b, err = os.ReadFile(dir + "/statm"); err != nil {
		return Usage{}, readErr(pid, "statm", err)
	}
	if u.RSS, err = parseResident(b); err != nil {
		return Usage{}, fmt.Errorf("proc: %s/statm: %w", dir, err)
	}
	return u, nil
}

// errStatmFormat reports a /proc/PID/statm line pcheck cannot read.
var errStatmFormat = errors.New("malformed statm line")

// parseResident returns the resident set in bytes of a statm line:
// "size resident shared text lib data dt", in pages.
func parseResident(line []byte) (uint64, error) {
	var f [2][]byte
	if splitFields(line, f[:]) < len(f) {
		return 0, errStatmFormat
	}
	pages, err := strconv.ParseUint(string(f[1]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: resident: %v", errStatmFormat, err)
	}
	return pages * pageSize, nil
}

// parseUsage reads the usage fields of a /proc/PID/stat line (proc(5)):
// utime 14, stime 15, cutime 16, cstime 17, num_threads 20 and starttime
// 22. parseStat reads the identity and state fields of the same line.
func parseUsage(line []byte) (Usage, error) {
	var u Usage
	open := bytes.IndexByte(line, '(')
	closing := bytes.LastIndexByte(line, ')')
	if open < 1 || closing < open {
		return u, errStatFormat
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(line[:open])))
	if err != nil {
		return u, fmt.Errorf("%w: pid: %v", errStatFormat, err)
	}
	u.Pid = pid
	// f[0] is field 3, the state.
	const first = 3
	var f [22 - first + 1][]byte
	if splitFields(line[closing+1:], f[:]) < len(f) {
		return u, errStatFormat
	}
	field := func(n int) (uint64, error) {
		v, err := strconv.ParseUint(string(f[n-first]), 10, 64)
		if err != nil {
			// cutime and cstime are signed in the kernel: never negative
			// in practice, refused rather than wrapped.
			return 0, fmt.Errorf("%w: field %d: %v", errStatFormat, n, err)
		}
		return v, nil
	}
	var ticks uint64
	for n := 14; n <= 17; n++ {
		v, err := field(n)
		if err != nil {
			return u, err
		}
		ticks += v
	}
	u.CPU = ticksToDuration(ticks)
	threads, err := field(20)
	if err != nil {
		return u, err
	}
	u.Threads = int(threads)
	if u.Start, err = field(22); err != nil {
		return u, err
	}
	return u, nil
}

// CountFDs returns how many descriptors pid has open (the entries of
// /proc/PID/fd). Its error is ErrNotFound (errors.Is) when the process
// does not exist.
func CountFDs(pid int) (int, error) {
	fd, err := unix.Open(procRoot+"/"+strconv.Itoa(pid)+"/fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, readErr(pid, "fd", err)
	}
	dir := os.NewFile(uintptr(fd), procRoot+"/"+strconv.Itoa(pid)+"/fd")
	defer dir.Close()
	n := 0
	for {
		names, err := dir.Readdirnames(1024)
		n += len(names)
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return 0, readErr(pid, "fd", err)
		}
	}
}
