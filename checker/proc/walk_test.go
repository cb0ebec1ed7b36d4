package proc

import (
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// walkFind walks and returns the process pid, false when not listed.
func walkFind(t *testing.T, w *StatWalker, fresh func(int) bool, pid int) (Info, bool) {
	t.Helper()
	all, err := w.Scan(fresh)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.IsSortedFunc(all, func(a, b Info) int { return a.Pid - b.Pid }) {
		t.Error("walk is not ordered by pid")
	}
	if len(w.seen) != len(all) {
		t.Errorf("walker keeps %d processes, the walk lists %d", len(w.seen), len(all))
	}
	i := slices.IndexFunc(all, func(p Info) bool { return p.Pid == pid })
	if i < 0 {
		return Info{}, false
	}
	return all[i], true
}

// A walk sees a process started since the last, and not one that exited;
// it forgets the dead; what it lists is what Read gives of stat.
func TestStatWalkerStartsAndExits(t *testing.T) {
	w := NewStatWalker()
	a, _ := startHelper(t, spec{mode: "sleep"})
	if _, ok := walkFind(t, w, nil, a.cmd.Process.Pid); !ok {
		t.Fatalf("first walk does not list %d", a.cmd.Process.Pid)
	}
	b, _ := startHelper(t, spec{mode: "sleep"})
	got, ok := walkFind(t, w, nil, b.cmd.Process.Pid)
	if !ok {
		t.Fatalf("walk does not list %d, started since the last", b.cmd.Process.Pid)
	}
	want := mustRead(t, b.cmd.Process.Pid)
	want.UID, want.Exe, want.Argv = -1, "", nil
	got.State = want.State
	if !reflect.DeepEqual(got, want) {
		t.Errorf("walk lists %+v, want %+v", got, want)
	}
	a.stop()
	if _, ok := walkFind(t, w, nil, a.cmd.Process.Pid); ok {
		t.Errorf("walk lists %d after its exit", a.cmd.Process.Pid)
	}
	if _, ok := w.seen[a.cmd.Process.Pid]; ok {
		t.Errorf("walker still keeps %d after its exit", a.cmd.Process.Pid)
	}
}

// waitState waits for pid to show state in /proc/PID/stat.
func waitState(t *testing.T, pid int, state byte) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if _, s, err := startOf(pid); err == nil && s == state {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d never in state %c", pid, state)
		}
		time.Sleep(time.Millisecond)
	}
}

// A zombie among the fresh pids shows Z; elsewhere the walk reuses what it
// read (a process without children, seen before, on the same inode).
func TestStatWalkerFreshZombie(t *testing.T) {
	c := exec.Command("sleep", "3600")
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Process.Kill(); c.Wait() })
	pid := c.Process.Pid
	w := NewStatWalker()
	if p, ok := walkFind(t, w, nil, pid); !ok || p.Dead() {
		t.Fatalf("first walk: %+v %v, want %d alive", p, ok, pid)
	}
	c.Process.Kill() // not waited for: a zombie
	waitState(t, pid, 'Z')
	if p, ok := walkFind(t, w, nil, pid); !ok || p.Dead() {
		t.Errorf("walk without fresh pids: %+v %v, want %d reused as read alive", p, ok, pid)
	}
	fresh := func(p int) bool { return p == pid }
	if p, ok := walkFind(t, w, fresh, pid); !ok || p.State != 'Z' {
		t.Errorf("walk with %d fresh: %+v %v, want state Z", pid, p, ok)
	}
}

// The child of a parent that dies is listed with its new parent, the
// parent a zombie or gone.
func TestStatWalkerReparent(t *testing.T) {
	c := exec.Command("sh", "-c", `sleep 3600 & echo $!; exec sleep 3600 >/dev/null`)
	out, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Process.Kill(); c.Wait() })
	var child int
	if _, err := fmt.Fscan(out, &child); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Kill(child, unix.SIGKILL) })
	parent := c.Process.Pid
	w := NewStatWalker()
	if p, ok := walkFind(t, w, nil, child); !ok || p.PPid != parent {
		t.Fatalf("child %d: %+v %v, want parent %d", child, p, ok, parent)
	}
	c.Process.Kill() // the parent is a zombie, its child reparented
	waitState(t, parent, 'Z')
	if p, ok := walkFind(t, w, nil, child); !ok || p.PPid == parent {
		t.Errorf("child %d after its parent's death: %+v %v, want another parent than %d", child, p, ok, parent)
	}
	c.Wait()
	if p, ok := walkFind(t, w, nil, child); !ok || p.PPid == parent {
		t.Errorf("child %d after its parent was reaped: %+v %v, want another parent than %d", child, p, ok, parent)
	}
}

// A pid given to a new process is read again: run in a pid namespace of
// its own, where the helper gives pid 100 to sleep, then to cat.
func TestStatWalkerPidReuse(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("a pid namespace needs root")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	c := exec.Command(self)
	c.Env = helperEnviron("pidreuse")
	c.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWPID | unix.CLONE_NEWNS, Pdeathsig: syscall.SIGKILL}
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v: %s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "ok" {
		t.Error(got)
	}
}

// reusedPid is the pid the pidreuse helper gives to two processes.
const reusedPid = 100

// pidReuse is the pidreuse helper, pid 1 of a new pid namespace: it mounts
// the namespace's /proc, starts sleep on reusedPid, walks, replaces it by
// cat on the same pid and walks again. It returns "ok" or what went wrong.
func pidReuse() string {
	if err := unix.Mount("none", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return "mount private: " + err.Error()
	}
	if err := unix.Mount("proc", procRoot, "proc", 0, ""); err != nil {
		return "mount proc: " + err.Error()
	}
	w := NewStatWalker()
	var inos []uint64
	for _, prog := range []string{"sleep", "cat"} {
		c, err := startOnPid(reusedPid, prog)
		if err != nil {
			return err.Error()
		}
		all, err := w.Scan(nil)
		c.Process.Kill()
		c.Wait()
		if err != nil {
			return err.Error()
		}
		i := slices.IndexFunc(all, func(p Info) bool { return p.Pid == reusedPid })
		if i < 0 || all[i].Comm != prog {
			return fmt.Sprintf("walk with %s on pid %d: %+v", prog, reusedPid, all)
		}
		inos = append(inos, w.seen[reusedPid].ino)
	}
	if inos[0] == inos[1] {
		return fmt.Sprintf("both processes on pid %d had inode %d", reusedPid, inos[0])
	}
	return "ok"
}

// startOnPid starts prog (sleep 3600, or cat reading a pipe) on pid, by
// setting the namespace's last pid before each try: a thread of the
// runtime may take it first.
func startOnPid(pid int, prog string) (*exec.Cmd, error) {
	for range 50 {
		if err := os.WriteFile(procRoot+"/sys/kernel/ns_last_pid", []byte(strconv.Itoa(pid-1)), 0); err != nil {
			return nil, err
		}
		c := exec.Command(prog)
		if prog == "sleep" {
			c.Args = append(c.Args, "3600")
		} else if _, err := c.StdinPipe(); err != nil {
			return nil, err
		}
		if err := c.Start(); err != nil {
			return nil, err
		}
		if c.Process.Pid == pid {
			return c, nil
		}
		c.Process.Kill()
		c.Wait()
	}
	return nil, fmt.Errorf("%s never got pid %d", prog, pid)
}

// A parent whose read fails in a walk (it exited between the listing and
// the read of its stat, or hidepid) is forgotten with no trace of its
// death: its child, kept as read, must still be read again once it is
// reparented. The state such a walk leaves is set up by hand: the parent
// dropped from what the walker keeps, the child kept with the parent's pid.
func TestStatWalkerParentLostInWalk(t *testing.T) {
	c := exec.Command("sh", "-c", `sleep 3600 & echo $!; exec sleep 3600 >/dev/null`)
	out, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Process.Kill(); c.Wait() })
	var child int
	if _, err := fmt.Fscan(out, &child); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Kill(child, unix.SIGKILL) })
	parent := c.Process.Pid
	w := NewStatWalker()
	if p, ok := walkFind(t, w, nil, child); !ok || p.PPid != parent {
		t.Fatalf("child %d: %+v %v, want parent %d", child, p, ok, parent)
	}
	c.Process.Kill()
	c.Wait() // reaped: the child has another parent
	delete(w.seen, parent)
	for i := range 2 {
		if p, ok := walkFind(t, w, nil, child); !ok || p.PPid == parent {
			t.Errorf("walk %d: child %d: listed %v, parent %d, want another than %d, reaped", i, child, ok, p.PPid, parent)
		}
	}
}

// A walk cut short by an error (here EMFILE, a pcheck holding a pidfd per
// process near its limit) leaves nothing half learnt: the next walk reads
// every process, a zombie among them, as a first walk does.
func TestStatWalkerErrorForgets(t *testing.T) {
	c := exec.Command("sleep", "3600")
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Process.Kill(); c.Wait() })
	pid := c.Process.Pid
	w := NewStatWalker()
	if p, ok := walkFind(t, w, nil, pid); !ok || p.Dead() {
		t.Fatalf("first walk: %+v %v, want %d alive", p, ok, pid)
	}
	c.Process.Kill() // not waited for: a zombie
	waitState(t, pid, 'Z')
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Dup(0) // the lowest free descriptor: /proc's, in the walk
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	low := lim
	low.Cur = uint64(fd) + 1
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	_, err = w.Scan(nil)
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if err == nil {
		t.Fatal("walk with no descriptor to spare: no error")
	}
	if p, ok := walkFind(t, w, nil, pid); !ok || p.State != 'Z' {
		t.Errorf("walk after a failed one: %d listed %v in state %c, want Z", pid, ok, p.State)
	}
}
