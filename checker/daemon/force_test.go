package daemon

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pcheck/pcheck/checker/control"
	"github.com/pcheck/pcheck/checker/state"
)

// Tests of --force over pchecks that watch several pfiles, and over a set
// of holders of which one may not be stopped: --force never leaves a pfile
// that was watched with no pcheck.

// twoServices starts two services with a pfile each, in e.dir.
func twoServices(t *testing.T, e *env) (pfa, pfb string, pa, pb int) {
	t.Helper()
	sa := newService(t, e.dir, "a", "")
	sb := newService(t, e.dir, "b", "")
	pa, pb = sa.start(), sb.start()
	pfa, pfb = filepath.Join(e.dir, "a.pf"), filepath.Join(e.dir, "b.pf")
	writeFile(t, pfa, pfileHead+sa.entry(""))
	writeFile(t, pfb, pfileHead+sb.entry(""))
	return pfa, pfb, pa, pb
}

// servedBy waits until pfile's control socket in run is served by pid.
func servedBy(t *testing.T, run, pfile string, pid int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("pid %d serving %s", pid, pfile), func() bool {
		sv, err := control.Query(control.SocketPath(run, pfile), time.Second)
		return err == nil && sv.Info.Pid == pid
	})
}

// waitFirstExit waits until one of ps has exited.
func waitFirstExit(t *testing.T, ps ...*pcheck) {
	t.Helper()
	waitFor(t, "a pcheck to exit", func() bool {
		for _, p := range ps {
			if p.hasExited() {
				return true
			}
		}
		return false
	})
}

// TestForceHolderOfOtherPfiles: `--force b.pf` over a pcheck that watches
// a.pf and b.pf is refused, naming a.pf's pid file, and the holder goes
// on watching both: stopping it would leave a.pf watched by nobody.
// Given both pfiles, --force stops the holder once and takes both over.
func TestForceHolderOfOtherPfiles(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pfa, pfb, pa, pb := twoServices(t, e)
	run := shortRunDir(t)
	a := e.start(nil, "--run-dir", run, pfa, pfb)
	e.wait(upLine(pa))
	e.wait(upLine(pb))
	servedBy(t, run, pfa, a.pid())

	b := e.start(nil, "--run-dir", run, "--force", pfb)
	waitFirstExit(t, a, b)
	if a.hasExited() {
		t.Fatalf("pcheck A (watching %s and %s) was stopped by --force %s: %s is watched by nobody; B's stderr:\n%s", pfa, pfb, pfb, pfa, b.stderr)
	}
	if st := b.wait(); st != ExitFailure {
		t.Fatalf("pcheck B status %d, want %d; stderr:\n%s", st, ExitFailure, b.stderr)
	}
	lockA := filepath.Join(e.state, state.Name(pfa)+".pid")
	lockB := filepath.Join(e.state, state.Name(pfb)+".pid")
	want := fmt.Sprintf("pcheck: pfile '%s': pid file %s: --force: pcheck pid %d also holds the pid lock %s, of a pfile not on this command line; stopping it would leave that pfile unwatched: name it too, or stop that pcheck first; not started\n",
		pfb, lockB, a.pid(), lockA)
	if got := refusal(b); got != want {
		t.Fatalf("stderr\n%s\nwant\n%s", b.stderr, want)
	}
	// A was not signalled: it still serves both pfiles.
	servedBy(t, run, pfa, a.pid())
	servedBy(t, run, pfb, a.pid())
	if a.hasExited() {
		t.Fatalf("pcheck A exited, status %d", a.status)
	}

	// Both pfiles named: A is stopped once, C watches both.
	c := e.start(nil, "--run-dir", run, "--force", pfa, pfb)
	for _, pf := range []string{pfa, pfb} {
		e.wait(fmt.Sprintf("pfile '%s': --force: pcheck pid %d stopped, its lock taken over", pf, a.pid()))
	}
	if st := a.wait(); st != 0 {
		t.Fatalf("pcheck A status %d", st)
	}
	servedBy(t, run, pfa, c.pid())
	servedBy(t, run, pfb, c.pid())
	waitFor(t, "pcheck C's Up lines", func() bool { return e.count(upLine(pa)) == 2 && e.count(upLine(pb)) == 2 })
	c.signal(syscall.SIGTERM)
	if st := c.wait(); st != 0 {
		t.Fatalf("pcheck C status %d; stderr:\n%s", st, c.stderr)
	}
}

// lockWithFlock holds the lock of path with flock(1), not a pcheck, its
// pid written in the file as a pcheck's would be, until the test ends.
func lockWithFlock(t *testing.T, path string) int {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, "")
	cmd := exec.Command("flock", "-x", path, "sh", "-c", "echo locked; exec sleep 300")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	})
	if line, err := bufio.NewReader(out).ReadString('\n'); line != "locked\n" {
		t.Fatalf("flock: %q, %v", line, err)
	}
	writeFile(t, path, strconv.Itoa(cmd.Process.Pid)+"\n")
	return cmd.Process.Pid
}

// TestForceProvesAllHolders: `--force a.pf b.pf`, where a.pf's holder is
// a pcheck and b.pf's lock is held by a process that is not one, is
// refused before anything is signalled: a.pf's pcheck goes on watching.
// Today it is stopped first, and the new pcheck, refused on b.pf, exits:
// a.pf is watched by nobody.
func TestForceProvesAllHolders(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pfa, pfb, pa, _ := twoServices(t, e)
	run := shortRunDir(t)
	a := e.start(nil, "--run-dir", run, pfa)
	e.wait(upLine(pa))
	servedBy(t, run, pfa, a.pid())
	lockB := filepath.Join(e.state, state.Name(pfb)+".pid")
	other := lockWithFlock(t, lockB)

	b := e.start(nil, "--run-dir", run, "--force", pfa, pfb)
	waitFirstExit(t, a, b)
	if st := b.wait(); st != ExitFailure {
		t.Fatalf("pcheck B status %d, want %d; stderr:\n%s", st, ExitFailure, b.stderr)
	}
	if a.hasExited() {
		t.Fatalf("pcheck A, the holder of %s, was stopped although the force was refused: %s is watched by nobody; B's stderr:\n%s", pfa, pfa, b.stderr)
	}
	want := fmt.Sprintf("pcheck: pfile '%s': pid file %s: --force: the lock holder pid %d (flock, uid 0) is not a pcheck; it is not signalled; not started\n", pfb, lockB, other)
	if got := refusal(b); got != want {
		t.Fatalf("stderr\n%s\nwant\n%s", b.stderr, want)
	}
	servedBy(t, run, pfa, a.pid())
	if strings.Contains(strings.Join(lineTexts(e), "\n"), "--force: pcheck pid") {
		t.Fatal("a --force stop was logged")
	}
	a.signal(syscall.SIGTERM)
	if st := a.wait(); st != 0 {
		t.Fatalf("pcheck A status %d", st)
	}
}

// refusal returns the lines of p's stderr that pcheck's own failure
// report wrote ("pcheck: ..."), not the copies of its syslog messages.
func refusal(p *pcheck) string {
	var b strings.Builder
	for line := range strings.Lines(p.stderr.String()) {
		if strings.HasPrefix(line, "pcheck: ") {
			b.WriteString(line)
		}
	}
	return b.String()
}

func lineTexts(e *env) []string {
	var out []string
	for _, l := range e.log.Lines() {
		out = append(out, l.Text)
	}
	return out
}
