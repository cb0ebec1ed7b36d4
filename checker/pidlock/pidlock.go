// Package pidlock makes sure one pcheck watches a pfile: a pid file in the
// state directory, held with flock(2) for as long as pcheck runs.
//
// The lock, not the file's content, says whether a pcheck is alive: a file
// left by a pcheck that died holds no lock and is taken over. The pid in the
// file names the holder in the refusal message. Forcing (Force, then
// Acquire) never leaves two holders: the live ones are stopped first, or
// the force is refused.
package pidlock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
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

// ErrForceRefused matches any RefusedError with errors.Is.
var ErrForceRefused = errors.New("--force")

// RefusedError is a force that Force refused: the holder of the pid file
// at Path was not signalled (not proved a pcheck, or a pcheck that also
// holds other pid locks), or did not stop.
type RefusedError struct {
	Path string
	// Why says what was found and what to do.
	Why string
	// Err is the error behind Why, if any: the pid file could not be
	// opened or checked.
	Err error
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("pid file %s: --force: %s; not started", e.Path, e.Why)
}

// Is makes errors.Is(err, ErrForceRefused) true for a RefusedError.
func (e *RefusedError) Is(target error) bool { return target == ErrForceRefused }

// Unwrap returns Err.
func (e *RefusedError) Unwrap() error { return e.Err }

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
// Acquire returns a *HeldError naming that pcheck's pid (Force stops it
// first, for --force).
//
// A file that cannot be opened for writing (a read-only file system) is
// locked read-only when it exists: flock needs no write access, and the
// one-pcheck rule holds while the pid goes unrecorded.
func Acquire(path string) (*Lock, Result, error) {
	var res Result
	dir, err := trust.OpenWriteDir(filepath.Dir(path))
	if err != nil {
		return nil, res, fmt.Errorf("pid file %s: %w", path, err)
	}
	l, err := acquire(dir, path, &res)
	if err != nil {
		dir.Close()
		return nil, res, err
	}
	return l, res, nil
}

func acquire(dir *trust.WriteDir, path string, res *Result) (*Lock, error) {
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
			f.Close()
			return nil, &HeldError{Path: path, Pid: pid}
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

// target is a live pcheck that Force found holding some of its paths.
type target struct {
	proc.Info
	paths []string
}

// Force stops, for --force, the live pchecks that hold the pid files at
// paths, so that Acquire can take them next. It returns, for each path that
// was held, the pid of the pcheck it stopped. A path that does not exist,
// or that no process holds, is left alone; its directory must pass
// trust.OpenWriteDir and a symbolic link at it is refused, as in Acquire
// (a RefusedError that wraps the cause).
//
// Nothing is signalled before every holder has passed two checks:
//
//   - It is proved a pcheck: the holder of the flock in /proc/locks, the
//     pid its file names (a file left empty by a full disk names nobody),
//     not this process, with this process's command name and effective
//     uid. Anything else is never signalled.
//   - It holds no pid lock but those at paths: its other flocks in
//     /proc/locks are matched by device and inode to the *.pid files in
//     dirs (the state and run directories) and refused, named, when they
//     are not at paths. Stopping a pcheck that also watches a pfile not
//     taken over would leave that pfile watched by nobody.
//
// Then each holder, once however many of the paths it holds, is sent
// SIGTERM, never SIGKILL (a pcheck killed mid-restart leaves its script
// orphaned and its files behind), all at the same time, and waited for up
// to ForceWait. A refusal is a *RefusedError; when a holder does not stop
// in time, the ones that did are in the returned map all the same.
func Force(paths, dirs []string) (map[string]int, error) {
	var (
		locks   []flock             // /proc/locks, read at the first file found
		read    bool                // whether locks is read
		mine    = map[string]bool{} // the files at paths, by device:inode
		holders []*target
		byPid   = map[int]*target{}
	)
	for _, path := range paths {
		key, filePid, err := pidFile(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, &RefusedError{Path: path, Why: err.Error(), Err: err}
		}
		mine[key] = true
		if !read {
			b, err := os.ReadFile("/proc/locks")
			if err != nil {
				return nil, &RefusedError{Path: path, Why: fmt.Sprintf("cannot tell which process holds the lock: %v", err)}
			}
			locks, read = parseLocks(b), true
		}
		pid, err := holderOf(locks, key)
		if errors.Is(err, errNoHolder) {
			continue // stale: Acquire takes it over
		}
		if err != nil {
			return nil, &RefusedError{Path: path, Why: fmt.Sprintf("cannot tell which process holds the lock: %v", err)}
		}
		info, why := prove(pid, filePid)
		if why != "" {
			return nil, &RefusedError{Path: path, Why: why}
		}
		if h := byPid[pid]; h != nil {
			h.paths = append(h.paths, path)
			continue
		}
		h := &target{Info: info, paths: []string{path}}
		byPid[pid] = h
		holders = append(holders, h)
	}
	if len(holders) == 0 {
		return nil, nil
	}
	named := pidFiles(dirs)
	for _, h := range holders {
		if others := otherLocks(h, locks, mine, named, dirs); len(others) > 0 {
			return nil, &RefusedError{Path: h.paths[0], Why: othersWhy(h.Pid, others)}
		}
	}
	return stopAll(holders)
}

// pidFile opens the pid file at path, as Acquire does but read-only, and
// returns its device:inode (as /proc/locks writes it) and the pid it
// records.
func pidFile(path string) (key string, pid int, err error) {
	dir, err := trust.OpenWriteDir(filepath.Dir(path))
	if err != nil {
		return "", 0, err
	}
	defer dir.Close()
	f, err := dir.OpenFile(filepath.Base(path), os.O_RDONLY, 0)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return "", 0, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	return fileKey(&st), readPid(f), nil
}

// prove checks that the holder pid of a lock whose file records filePid
// (0: none) is a pcheck Force may signal; why is "" when it is, and says
// otherwise why it is not signalled.
func prove(pid, filePid int) (info proc.Info, why string) {
	if pid == os.Getpid() {
		return info, "the lock is held by this very process"
	}
	if filePid != 0 && filePid != pid {
		return info, fmt.Sprintf("the lock is held by pid %d but the file names pid %d; neither is signalled", pid, filePid)
	}
	them, err := proc.Read(pid)
	if err != nil {
		return info, fmt.Sprintf("pid %d: %v", pid, err)
	}
	me, err := proc.Read(os.Getpid())
	if err != nil {
		return info, err.Error()
	}
	if them.Comm != me.Comm || them.UID != me.UID {
		return info, fmt.Sprintf("the lock holder pid %d (%s, uid %d) is not a pcheck; it is not signalled", pid, them.Comm, them.UID)
	}
	return them, ""
}

// pidFiles returns the *.pid files in dirs by device:inode. A directory
// that cannot be read names nothing: a lock on a file in it is then one
// Force cannot name, and refuses.
func pidFiles(dirs []string) map[string]string {
	named := map[string]string{}
	for _, dir := range dirs {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if !strings.HasSuffix(e.Name(), ".pid") || !e.Type().IsRegular() {
				continue
			}
			path := filepath.Join(dir, e.Name())
			var st unix.Stat_t
			if unix.Lstat(path, &st) == nil {
				named[fileKey(&st)] = path
			}
		}
	}
	return named
}

// otherLocks returns the flocks of h on other files than mine: a pid
// file's path, or the device:inode of a file that is none in dirs.
func otherLocks(h *target, locks []flock, mine map[string]bool, named map[string]string, dirs []string) []string {
	var others []string
	for _, l := range locks {
		if l.pid != h.Pid || mine[l.file] {
			continue
		}
		if path, ok := named[l.file]; ok {
			others = append(others, path)
		} else {
			others = append(others, fmt.Sprintf("device:inode %s (not a *.pid file in %s)", l.file, strings.Join(dirs, " or ")))
		}
	}
	return others
}

// othersWhy is the refusal of a pcheck pid that also holds the locks
// others.
func othersWhy(pid int, others []string) string {
	if len(others) == 1 {
		return fmt.Sprintf("pcheck pid %d also holds the pid lock %s, of a pfile not on this command line; stopping it would leave that pfile unwatched: name it too, or stop that pcheck first", pid, others[0])
	}
	return fmt.Sprintf("pcheck pid %d also holds the pid locks %s, of pfiles not on this command line; stopping it would leave those pfiles unwatched: name them too, or stop that pcheck first", pid, strings.Join(others, ", "))
}

// stopAll sends SIGTERM to every holder at once and waits for them up to
// forceWait; it returns the holder of each path of those that stopped, and
// the refusal of the first that did not.
func stopAll(holders []*target) (map[string]int, error) {
	errs := make([]error, len(holders))
	var wg sync.WaitGroup
	for i, h := range holders {
		wg.Go(func() { errs[i] = proc.Stop(context.Background(), h.ID, forceWait) })
	}
	wg.Wait()
	stopped := map[string]int{}
	var refused error
	for i, h := range holders {
		switch {
		case errs[i] == nil:
			for _, p := range h.paths {
				stopped[p] = h.Pid
			}
		case refused != nil:
		case errors.Is(errs[i], proc.ErrAlive):
			refused = &RefusedError{Path: h.paths[0], Why: fmt.Sprintf("pcheck pid %d did not stop within %v of SIGTERM; stop it, then start again", h.Pid, forceWait)}
		default:
			refused = &RefusedError{Path: h.paths[0], Why: fmt.Sprintf("stopping pcheck pid %d: %v", h.Pid, errs[i])}
		}
	}
	return stopped, refused
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
	return holderOf(parseLocks(b), fileKey(&st))
}

// flock is one FLOCK entry of /proc/locks: the file, as "major:minor:inode"
// with the device numbers in hex, and the pid that holds it, or the text
// /proc/locks gives instead of a usable pid.
type flock struct {
	file string
	pid  int
	bad  string
}

// fileKey is the file of st as /proc/locks names it.
func fileKey(st *unix.Stat_t) string {
	return fmt.Sprintf("%02x:%02x:%d", unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino)
}

// parseLocks returns the FLOCK entries of the text of /proc/locks:
// "1: FLOCK  ADVISORY  WRITE 4242 fe:00:1234 0 EOF". Waiters ("1: ->
// FLOCK ...") are skipped.
func parseLocks(b []byte) []flock {
	var locks []flock
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) < 6 || f[1] != "FLOCK" {
			continue
		}
		l := flock{file: f[5]}
		if pid, err := strconv.Atoi(f[4]); err == nil && pid > 0 {
			l.pid = pid
		} else {
			l.bad = f[4]
		}
		locks = append(locks, l)
	}
	return locks
}

// errNoHolder is a file no FLOCK entry names.
var errNoHolder = errors.New("no holder in /proc/locks")

// holderOf returns the pid that holds the flock of file.
func holderOf(locks []flock, file string) (int, error) {
	for _, l := range locks {
		if l.file != file {
			continue
		}
		if l.bad != "" {
			return 0, fmt.Errorf("/proc/locks names holder %q", l.bad)
		}
		return l.pid, nil
	}
	return 0, errNoHolder
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
