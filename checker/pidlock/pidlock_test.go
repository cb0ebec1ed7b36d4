package pidlock

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestAcquireHeldAndRelease(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.pid")
	first, res, err := Acquire(path)
	if err != nil {
		t.Fatal(err)
	}
	if res.StalePid != 0 {
		t.Fatalf("fresh lock reports %+v", res)
	}
	if pid, _ := ReadPid(path); pid != os.Getpid() {
		t.Fatalf("pid file holds %d, want %d", pid, os.Getpid())
	}

	// flock locks belong to the open file, so a second Acquire in the
	// same process is refused like another pcheck would be.
	_, _, err = Acquire(path)
	var held *HeldError
	if !errors.As(err, &held) || !errors.Is(err, ErrHeld) {
		t.Fatalf("second Acquire: err = %v, want HeldError", err)
	}
	if held.Pid != os.Getpid() || held.Path != path {
		t.Fatalf("HeldError = %+v", held)
	}
	if want := "(pid " + strconv.Itoa(os.Getpid()) + ")"; !strings.Contains(err.Error(), want) {
		t.Fatalf("message %q does not name the holder %s", err, want)
	}

	if err := first.Release(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("pid file left after Release: %v", err)
	}
	again, _, err := Acquire(path)
	if err != nil {
		t.Fatalf("Acquire after Release: %v", err)
	}
	again.Release()
}

func TestAcquireStale(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.pid")
	if err := os.WriteFile(path, []byte("424242\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, res, err := Acquire(path)
	if err != nil {
		t.Fatalf("stale file not taken over: %v", err)
	}
	defer l.Release()
	if res.StalePid != 424242 {
		t.Fatalf("StalePid = %d, want 424242", res.StalePid)
	}
	if pid, _ := ReadPid(path); pid != os.Getpid() {
		t.Fatalf("pid file holds %d after takeover", pid)
	}
}

// The test binary re-executes itself as a lock holder (PIDLOCK_HOLD=path,
// or several paths separated by ':', as a pcheck watching several pfiles):
// it takes the locks, prints "locked", and releases them on SIGTERM, or
// ignores SIGTERM with PIDLOCK_DEAF=1.
func TestMain(m *testing.M) {
	paths := filepath.SplitList(os.Getenv("PIDLOCK_HOLD"))
	if len(paths) == 0 {
		os.Exit(m.Run())
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	var locks []*Lock
	for _, path := range paths {
		l, _, err := Acquire(path)
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		locks = append(locks, l)
	}
	fmt.Println("locked")
	for {
		<-sigs
		if os.Getenv("PIDLOCK_DEAF") == "" {
			for _, l := range locks {
				l.Release()
			}
			os.Exit(0)
		}
	}
}

// proc is a child process and, once it has exited, its status.
type child struct {
	cmd   *exec.Cmd
	done  chan struct{}
	state *os.ProcessState
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// start starts cmd, waits for its first line "locked" and kills it at the
// end of the test.
func start(t *testing.T, cmd *exec.Cmd) *child {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, done: make(chan struct{})}
	line, err := bufio.NewReader(out).ReadString('\n')
	go func() { c.state, _ = cmd.Process.Wait(); close(c.done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-c.done })
	if line != "locked\n" {
		t.Fatalf("%v: %q, %v", cmd.Args, line, err)
	}
	return c
}

// holder starts a lock holder on path (paths separated by ':') and waits
// until it holds the lock.
func holder(t *testing.T, path string, env ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), "PIDLOCK_HOLD="+path), env...)
	return start(t, cmd)
}

// force is Force of paths with the directories of the paths as the ones
// to look for other pid files in.
func force(paths ...string) (map[string]int, error) {
	var dirs []string
	for _, p := range paths {
		if d := filepath.Dir(p); !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	return Force(paths, dirs)
}

// exitsWithin reports whether c exits within d.
func (c *child) exitsWithin(d time.Duration) bool {
	select {
	case <-c.done:
		return true
	case <-time.After(d):
		return false
	}
}

// TestAcquireForceStopsHolder: force stops the live holder (SIGTERM, wait)
// before it takes the lock, so there is one holder at any time.
func TestAcquireForceStopsHolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.pid")
	old := holder(t, path)
	stopped, err := force(path)
	if err != nil {
		t.Fatalf("Force: %v", err)
	}
	if stopped[path] != old.pid() {
		t.Fatalf("stopped %v, want %s: %d", stopped, path, old.pid())
	}
	l, _, err := Acquire(path)
	if err != nil {
		t.Fatalf("Acquire after Force: %v", err)
	}
	defer l.Release()
	// Force returns once the holder is gone; its reaping may lag.
	select {
	case <-old.done:
	case <-time.After(time.Second):
		t.Fatal("the old holder is still running after a forced Acquire")
	}
	if old.state.ExitCode() != 0 {
		t.Fatalf("old holder did not stop cleanly: %v", old.state)
	}
	if pid, _ := ReadPid(path); pid != os.Getpid() {
		t.Fatalf("pid file holds %d", pid)
	}
}

// TestAcquireForceRefused: force never signals a process not proved to be
// a pcheck, nor waits forever for one that does not stop; each refusal
// leaves the holder running and the lock with it.
func TestAcquireForceRefused(t *testing.T) {
	forceWait = 300 * time.Millisecond
	defer func() { forceWait = ForceWait }()

	t.Run("deaf holder", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "x.pid")
		h := holder(t, path, "PIDLOCK_DEAF=1")
		_, err := force(path)
		want := fmt.Sprintf("--force: pcheck pid %d did not stop within 300ms of SIGTERM", h.pid())
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("err = %v, want %q", err, want)
		}
		if h.exitsWithin(200 * time.Millisecond) {
			t.Fatal("holder gone")
		}
	})
	t.Run("pid file names another pid", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "x.pid")
		h := holder(t, path)
		// The file says pid 1: it must never be signalled.
		if err := os.WriteFile(path, []byte("1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := force(path)
		want := fmt.Sprintf("the lock is held by pid %d but the file names pid 1; neither is signalled", h.pid())
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("err = %v, want %q", err, want)
		}
		if h.exitsWithin(200 * time.Millisecond) {
			t.Fatal("holder gone")
		}
	})
	t.Run("holder is not a pcheck", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "x.pid")
		if err := os.WriteFile(path, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		// flock(1) holds the lock while its child sleeps.
		c := start(t, exec.Command("flock", "-x", path, "sh", "-c", "echo locked; exec sleep 60"))
		if err := os.WriteFile(path, []byte(strconv.Itoa(c.pid())+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := force(path)
		want := fmt.Sprintf("the lock holder pid %d (flock, uid 0) is not a pcheck; it is not signalled", c.pid())
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("err = %v, want %q", err, want)
		}
		if c.exitsWithin(200 * time.Millisecond) {
			t.Fatal("flock was signalled")
		}
	})
	t.Run("holder is this process", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "x.pid")
		l, _, err := Acquire(path)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Release()
		if _, err := force(path); err == nil || !strings.Contains(err.Error(), "held by this very process") {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestAcquireNoSymlink: a link planted at the pid file's path is not
// followed: its target is never written.
func TestAcquireNoSymlink(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("precious\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "x.pid")
	if err := os.Symlink(victim, path); err != nil {
		t.Fatal(err)
	}
	l, _, err := Acquire(path)
	if err == nil {
		l.Release()
	}
	if b, _ := os.ReadFile(victim); string(b) != "precious\n" {
		t.Fatalf("the link's target was written: %q", b)
	}
	if !errors.Is(err, syscall.ELOOP) {
		t.Fatalf("err = %v, want ELOOP", err)
	}
}

// TestAcquireUnsafeDir: a pid file in a world-writable directory is
// refused.
func TestAcquireUnsafeDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Acquire(filepath.Join(dir, "x.pid")); err == nil || !strings.Contains(err.Error(), "is writable by group or other") {
		t.Fatalf("err = %v", err)
	}
}

// TestAcquireReadOnly: on a read-only file system an existing pid file is
// locked read-only: the pid goes unrecorded, the lock still excludes.
func TestAcquireReadOnly(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.pid")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount(dir, dir, "", syscall.MS_BIND, ""); err != nil {
		t.Skipf("bind mount: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	if err := syscall.Mount("", dir, "", syscall.MS_BIND|syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
		t.Fatal(err)
	}
	l, res, err := Acquire(path)
	if err != nil {
		t.Fatalf("read-only pid file: %v", err)
	}
	if res.Unrecorded == nil {
		t.Fatal("Unrecorded not set")
	}
	if _, _, err := Acquire(path); !errors.Is(err, ErrHeld) {
		t.Fatalf("second Acquire: %v", err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
}

func TestAcquireMissingDir(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no", "x.pid")
	if _, _, err := Acquire(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want ErrNotExist", err)
	}
}

// TestForceOtherLocks: a holder that also holds a pid lock that is not
// being forced is not signalled, and the refusal names that lock: in a
// directory looked in, by its path; elsewhere, by its device and inode.
// With every lock it holds forced, it is stopped once and each path
// reports it.
func TestForceOtherLocks(t *testing.T) {
	stateDir, runDir := t.TempDir(), t.TempDir()
	x := filepath.Join(stateDir, "x.pid")
	y := filepath.Join(runDir, "y.pid")
	h := holder(t, x+":"+y)

	_, err := Force([]string{x}, []string{stateDir, runDir})
	want := fmt.Sprintf("pid file %s: --force: pcheck pid %d also holds the pid lock %s, of a pfile not on this command line; stopping it would leave that pfile unwatched: name it too, or stop that pcheck first; not started", x, h.pid(), y)
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
	if !errors.Is(err, ErrForceRefused) {
		t.Fatalf("err %v is not ErrForceRefused", err)
	}

	var st unix.Stat_t
	if err := unix.Stat(y, &st); err != nil {
		t.Fatal(err)
	}
	_, err = Force([]string{x}, []string{stateDir})
	want = fmt.Sprintf("pid file %s: --force: pcheck pid %d also holds the pid lock device:inode %02x:%02x:%d (not a *.pid file in %s), of a pfile not on this command line;",
		x, h.pid(), unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino, stateDir)
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("err = %v\nwant %s...", err, want)
	}
	if h.exitsWithin(200 * time.Millisecond) {
		t.Fatal("the holder was stopped although the force was refused")
	}

	stopped, err := Force([]string{x, y}, []string{stateDir, runDir})
	if err != nil {
		t.Fatalf("Force of every lock: %v", err)
	}
	if len(stopped) != 2 || stopped[x] != h.pid() || stopped[y] != h.pid() {
		t.Fatalf("stopped %v, want both paths: %d", stopped, h.pid())
	}
	if !h.exitsWithin(time.Second) || h.state.ExitCode() != 0 {
		t.Fatalf("holder not stopped cleanly: %v", h.state)
	}
}

// TestForceProvesEveryHolderFirst: of two holders, one not a pcheck, none
// is signalled: the pcheck keeps its lock.
func TestForceProvesEveryHolderFirst(t *testing.T) {
	dir := t.TempDir()
	x, y := filepath.Join(dir, "x.pid"), filepath.Join(dir, "y.pid")
	h := holder(t, x)
	if err := os.WriteFile(y, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	c := start(t, exec.Command("flock", "-x", y, "sh", "-c", "echo locked; exec sleep 60"))
	if err := os.WriteFile(y, []byte(strconv.Itoa(c.pid())+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	stopped, err := force(x, y)
	want := fmt.Sprintf("pid file %s: --force: the lock holder pid %d (flock, uid 0) is not a pcheck; it is not signalled; not started", y, c.pid())
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
	if len(stopped) != 0 {
		t.Fatalf("stopped %v", stopped)
	}
	if h.exitsWithin(200 * time.Millisecond) {
		t.Fatal("the pcheck holder was stopped although the force was refused")
	}
}

// TestForceOneDoesNotStop: holders are signalled together; one that does
// not stop is refused, and those that stopped are reported all the same.
func TestForceOneDoesNotStop(t *testing.T) {
	// Long enough for the holder that heeds SIGTERM to exit on a loaded
	// machine.
	forceWait = 3 * time.Second
	defer func() { forceWait = ForceWait }()
	dir := t.TempDir()
	x, y := filepath.Join(dir, "x.pid"), filepath.Join(dir, "y.pid")
	good := holder(t, x)
	deaf := holder(t, y, "PIDLOCK_DEAF=1")
	stopped, err := force(x, y)
	want := fmt.Sprintf("pid file %s: --force: pcheck pid %d did not stop within 3s of SIGTERM; stop it, then start again; not started", y, deaf.pid())
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
	if len(stopped) != 1 || stopped[x] != good.pid() {
		t.Fatalf("stopped %v, want %s: %d", stopped, x, good.pid())
	}
	if !good.exitsWithin(time.Second) {
		t.Fatal("the holder that heeds SIGTERM still runs")
	}
	if deaf.exitsWithin(200 * time.Millisecond) {
		t.Fatal("the deaf holder is gone")
	}
}
