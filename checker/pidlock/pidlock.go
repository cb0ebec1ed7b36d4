// Package pidlock makes sure one pcheck watches a pfile: a pid file in the
// state directory, held with flock(2) for as long as pcheck runs.
//
// The lock, not the file's content, says whether a pcheck is alive: a file
// left by a pcheck that died holds no lock and is taken over. The pid in the
// file names the holder in the refusal message. Forcing never leaves two
// holders: the live one is stopped first, or the force is refused.
package pidlock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pcheck/pcheck/checker/proc"
	"github.com/pcheck/pcheck/checker/trust"
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

// ErrForceRefused is returned by a forced Acquire that could not stop the
// live holder, or would not signal it (not proved a pcheck).
var ErrForceRefused = errors.New("--force")

// Lock is a held pid file.
type Lock struct {
	path string
	dir  *trust.WriteDir
	name string
	f    *os.File
}

// Result tells how Acquire got the lock.
type Result struct {
	// StalePid is the pid found in a file that no live pcheck held (0 when
	// the file was new or empty).
	StalePid int
	// ForcedPid is the pid of the live pcheck that force stopped.
	ForcedPid int
	// Unrecorded, when not nil, says why the pid could not be written
	// into the file (a read-only or full file system): the lock is held
	// all the same, since the lock and not the content is what counts.
	Unrecorded error
}

// ForceWait bounds the wait for a pcheck that force asked to stop.
const ForceWait = 10 * time.Second

// forceWait is ForceWait, shortened by tests.
var forceWait = ForceWait

// Acquire takes the pid file at path and writes the calling process's pid
// into it. The file's directory must pass trust.OpenWriteDir, and a
// symbolic link at path is never followed. When a live pcheck holds it,
// Acquire returns a *HeldError naming that pcheck's pid, unless force is
// set: then the holder, after it is proved a pcheck (see stopHolder), is
// sent SIGTERM and waited for up to ForceWait, and its pid is reported in
// Result.ForcedPid. A holder that is not proved a pcheck is never
// signalled, and one that does not stop is left running; both are errors.
//
// A file that cannot be opened for writing (a read-only file system) is
// locked read-only when it exists: flock needs no write access, and the
// one-pcheck rule holds while the pid goes unrecorded.
func Acquire(path string, force bool) (*Lock, Result, error) {
	var res Result
	dir, err := trust.OpenWriteDir(filepath.Dir(path))
	if err != nil {
		return nil, res, fmt.Errorf("pid file %s: %w", path, err)
	}
	l, err := acquire(dir, path, force, &res)
	if err != nil {
		dir.Close()
		return nil, res, err
	}
	return l, res, nil
}

func acquire(dir *trust.WriteDir, path string, force bool, res *Result) (*Lock, error) {
	name := filepath.Base(path)
	for range 10 {
		f, writable, err := open(dir, name)
		if err != nil {
			return nil, fmt.Errorf("pid file %s: %w", path, err)
		}
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if errors.Is(err, unix.EWOULDBLOCK) {
			pid := readPid(f)
			if pid == 0 {
				// A holder that could not record its pid (full
				// file system) is still named.
				pid, _ = lockHolder(f)
			}
			if !force || res.ForcedPid != 0 {
				f.Close()
				return nil, &HeldError{Path: path, Pid: pid}
			}
			err := stopHolder(f, path, pid)
			f.Close()
			if err != nil {
				return nil, err
			}
			res.ForcedPid = pid
			continue
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("pid file %s: flock: %w", path, err)
		}
		// The holder that just released may have removed the file
		// between our open and our flock: then we lock a file nobody
		// sees, and must start again.
		if !samePath(dir, name, f) {
			f.Close()
			continue
		}
		if pid := readPid(f); pid != 0 && pid != os.Getpid() {
			res.StalePid = pid
		}
		if !writable {
			res.Unrecorded = fmt.Errorf("pid file %s: read-only", path)
		} else if err := writePid(f); err != nil {
			res.Unrecorded = fmt.Errorf("pid file %s: %w", path, err)
		}
		return &Lock{path: path, dir: dir, name: name, f: f}, nil
	}
	return nil, fmt.Errorf("pid file %s: replaced repeatedly while locking", path)
}

// open opens or creates the pid file name in dir; writable is false when
// only an existing file could be opened read-only.
func open(dir *trust.WriteDir, name string) (f *os.File, writable bool, err error) {
	f, err = dir.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err == nil {
		return f, true, nil
	}
	if !errors.Is(err, unix.EROFS) && !errors.Is(err, unix.EACCES) {
		return nil, false, err
	}
	ro, rerr := dir.OpenFile(name, os.O_RDONLY, 0)
	if rerr != nil {
		return nil, false, err
	}
	return ro, false, nil
}

// stopHolder stops the live pcheck that holds f's lock, for force. It
// signals only a process proved to be that pcheck: the holder of the flock
// in /proc/locks, the pid its file names, with pcheck's own command name
// and effective uid. It sends SIGTERM, never SIGKILL (a pcheck killed
// mid-restart leaves its script orphaned and its files behind), and waits
// up to ForceWait for the process to be gone.
func stopHolder(f *os.File, path string, pid int) error {
	refuse := func(why string) error {
		return fmt.Errorf("pid file %s: %w: %s; not started", path, ErrForceRefused, why)
	}
	holder, err := lockHolder(f)
	if err != nil {
		return refuse(fmt.Sprintf("cannot tell which process holds the lock: %v", err))
	}
	if holder == os.Getpid() {
		return refuse("the lock is held by this very process")
	}
	if pid != holder {
		return refuse(fmt.Sprintf("the lock is held by pid %d but the file names pid %d; neither is signalled", holder, pid))
	}
	them, err := proc.Read(holder)
	if err != nil {
		return refuse(fmt.Sprintf("pid %d: %v", holder, err))
	}
	me, err := proc.Read(os.Getpid())
	if err != nil {
		return refuse(err.Error())
	}
	if them.Comm != me.Comm || them.UID != me.UID {
		return refuse(fmt.Sprintf("the lock holder pid %d (%s, uid %d) is not a pcheck; it is not signalled", holder, them.Comm, them.UID))
	}
	err = proc.Stop(context.Background(), them.ID, forceWait)
	if errors.Is(err, proc.ErrAlive) {
		return refuse(fmt.Sprintf("pcheck pid %d did not stop within %v of SIGTERM; stop it, then start again", holder, forceWait))
	}
	if err != nil {
		return refuse(fmt.Sprintf("stopping pcheck pid %d: %v", holder, err))
	}
	return nil
}

// lockHolder returns the pid that holds the flock of f, from /proc/locks.
func lockHolder(f *os.File) (int, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return 0, err
	}
	b, err := os.ReadFile("/proc/locks")
	if err != nil {
		return 0, err
	}
	return parseLocks(b, st.Dev, st.Ino)
}

// parseLocks finds the FLOCK held on dev:ino in the text of /proc/locks:
// "1: FLOCK  ADVISORY  WRITE 4242 fe:00:1234 0 EOF". Waiters ("1: ->
// FLOCK ...") are skipped.
func parseLocks(b []byte, dev, ino uint64) (int, error) {
	want := fmt.Sprintf("%02x:%02x:%d", unix.Major(dev), unix.Minor(dev), ino)
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) < 6 || f[1] != "FLOCK" || f[5] != want {
			continue
		}
		pid, err := strconv.Atoi(f[4])
		if err != nil || pid <= 0 {
			return 0, fmt.Errorf("/proc/locks names holder %q", f[4])
		}
		return pid, nil
	}
	return 0, errors.New("no holder in /proc/locks")
}

// Path returns the pid file's path.
func (l *Lock) Path() string { return l.path }

// Release removes the pid file and drops the lock. The file is removed
// while still locked, so a pcheck starting at that moment never takes a
// file that is about to disappear.
func (l *Lock) Release() error {
	var err error
	if samePath(l.dir, l.name, l.f) {
		if rerr := l.dir.Remove(l.name); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && !errors.Is(rerr, unix.EROFS) {
			err = fmt.Errorf("pid file %s: %w", l.path, rerr)
		}
	}
	if cerr := l.f.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("pid file %s: %w", l.path, cerr)
	}
	l.dir.Close()
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

// samePath reports whether name in dir still is the file f.
func samePath(dir *trust.WriteDir, name string, f *os.File) bool {
	var a unix.Stat_t
	if unix.Fstat(int(f.Fd()), &a) != nil {
		return false
	}
	b, err := dir.Lstat(name)
	return err == nil && a.Dev == b.Dev && a.Ino == b.Ino
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
