// Package pidlock makes sure one pcheck watches a pfile: a pid file in the
// state directory, held with flock(2) for as long as pcheck runs.
//
// The lock, not the file's content, says whether a pcheck is alive: a file
// left by a pcheck that died holds no lock and is taken over. The pid in the
// file names the holder in the refusal message.
package pidlock

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// HeldError is returned by Acquire when a live pcheck holds the lock.
type HeldError struct {
	Path string
	// Pid is the pid recorded by the holder; 0 when the file holds none.
	Pid int
}

func (e *HeldError) Error() string {
	if e.Pid == 0 {
		return fmt.Sprintf("pid file %s is locked by another pcheck", e.Path)
	}
	return fmt.Sprintf("pid file %s is locked by another pcheck (pid %d)", e.Path, e.Pid)
}

// Is makes errors.Is(err, ErrHeld) true for a HeldError.
func (e *HeldError) Is(target error) bool { return target == ErrHeld }

// ErrHeld matches any HeldError with errors.Is.
var ErrHeld = errors.New("pid file is locked by another pcheck")

// Lock is a held pid file.
type Lock struct {
	path string
	f    *os.File
}

// Result tells how Acquire got the lock.
type Result struct {
	// StalePid is the pid found in a file that no live pcheck held (0 when
	// the file was new or empty).
	StalePid int
	// ForcedPid is the pid of a live holder that force pushed aside.
	ForcedPid int
}

// Acquire takes the pid file at path and writes the calling process's pid
// into it. When a live pcheck holds it, Acquire returns a *HeldError naming
// that pcheck's pid, unless force is set: then the file is replaced by a new
// one (the old holder keeps a lock on a file nobody sees) and the old pid is
// reported in Result.ForcedPid.
func Acquire(path string, force bool) (*Lock, Result, error) {
	var res Result
	for range 10 {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o644)
		if err != nil {
			return nil, res, fmt.Errorf("pid file %s: %w", path, err)
		}
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if errors.Is(err, unix.EWOULDBLOCK) {
			pid := readPid(f)
			f.Close()
			if !force {
				return nil, res, &HeldError{Path: path, Pid: pid}
			}
			res.ForcedPid = pid
			if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, res, fmt.Errorf("pid file %s: forced removal: %w", path, err)
			}
			continue
		}
		if err != nil {
			f.Close()
			return nil, res, fmt.Errorf("pid file %s: flock: %w", path, err)
		}
		// The holder that just released may have removed the file
		// between our open and our flock: then we lock a file nobody
		// sees, and must start again.
		if !samePath(f, path) {
			f.Close()
			continue
		}
		if pid := readPid(f); pid != 0 && pid != os.Getpid() {
			res.StalePid = pid
		}
		if err := writePid(f); err != nil {
			f.Close()
			return nil, res, fmt.Errorf("pid file %s: %w", path, err)
		}
		return &Lock{path: path, f: f}, res, nil
	}
	return nil, res, fmt.Errorf("pid file %s: replaced repeatedly while locking", path)
}

// Path returns the pid file's path.
func (l *Lock) Path() string { return l.path }

// Release removes the pid file and drops the lock. The file is removed
// while still locked, so a pcheck starting at that moment never takes a
// file that is about to disappear.
func (l *Lock) Release() error {
	var err error
	if samePath(l.f, l.path) {
		if rerr := os.Remove(l.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = fmt.Errorf("pid file %s: %w", l.path, rerr)
		}
	}
	if cerr := l.f.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("pid file %s: %w", l.path, cerr)
	}
	return err
}

// ReadPid returns the pid recorded in the pid file at path, 0 when it
// holds none.
func ReadPid(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("pid file %s: %w", path, err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid, nil
}

func samePath(f *os.File, path string) bool {
	var a, b unix.Stat_t
	if unix.Fstat(int(f.Fd()), &a) != nil || unix.Stat(path, &b) != nil {
		return false
	}
	return a.Dev == b.Dev && a.Ino == b.Ino
}

func readPid(f *os.File) int {
	buf := make([]byte, 32)
	n, _ := f.ReadAt(buf, 0)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(buf[:n])))
	return pid
}

func writePid(f *os.File) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	if _, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0); err != nil {
		return err
	}
	return f.Sync()
}
