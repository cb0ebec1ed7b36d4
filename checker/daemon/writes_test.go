package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pcheck/pcheck/checker/control"
	"github.com/pcheck/pcheck/checker/state"
	"github.com/pcheck/pcheck/parser"
)

// Tests of what pcheck writes (issue 11 items 2, 4 and 9), with real
// pcheck processes: symlinks planted where it writes, unsafe state and run
// directories, --force over a live pcheck, future attempts in the state
// file, and a state directory that cannot be written.

// shortRunDir is a run directory short enough for socket paths.
func shortRunDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "pr")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// plantVictimFile writes a file an attacker wants root to overwrite and
// returns its path and content.
func plantVictimFile(t *testing.T) (string, string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "victim")
	const text = "precious\n"
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p, text
}

func assertVictimUnwritten(t *testing.T, path, text string) {
	t.Helper()
	if b, err := os.ReadFile(path); err != nil || string(b) != text {
		t.Fatalf("the link's target %s was written: %q, %v", path, b, err)
	}
}

// waitLogParts waits for a syslog line containing all of parts.
func (e *env) waitLogParts(parts ...string) string {
	e.t.Helper()
	var found string
	waitFor(e.t, fmt.Sprintf("a syslog line with %q", parts), func() bool {
		for _, l := range e.log.Lines() {
			ok := true
			for _, p := range parts {
				ok = ok && strings.Contains(l.Text, p)
			}
			if ok {
				found = l.Text
				return true
			}
		}
		return false
	})
	return found
}

// hasExited reports whether p has exited.
func (p *pcheck) hasExited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitUpOrFail waits for the Up line of pid, failing at once if p exits first.
func (e *env) waitUpOrFail(p *pcheck, pid int) {
	e.t.Helper()
	waitFor(e.t, "Up or exit", func() bool { return p.hasExited() || e.count(upLine(pid)) > 0 })
	if p.hasExited() {
		e.t.Fatalf("pcheck exited with status %d instead of monitoring; stderr:\n%s", p.status, p.stderr)
	}
}

// TestSymlinkAtPidLock: a link planted at the pid lock's path is not
// followed: pcheck refuses to start and the target is untouched.
func TestSymlinkAtPidLock(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := newService(t, e.dir, "a", "")
	pf := filepath.Join(e.dir, "a.pf")
	writeFile(t, pf, pfileHead+s.entry(""))
	victim, text := plantVictimFile(t)
	if err := os.MkdirAll(e.state, 0o755); err != nil {
		t.Fatal(err)
	}
	lockPath := filepath.Join(e.state, state.Name(pf)+".pid")
	if err := os.Symlink(victim, lockPath); err != nil {
		t.Fatal(err)
	}
	p := e.start(nil, pf)
	waitFor(t, "exit or a write through the link", func() bool {
		b, _ := os.ReadFile(victim)
		return p.hasExited() || string(b) != text
	})
	assertVictimUnwritten(t, victim, text)
	if st := p.wait(); st != ExitFailure {
		t.Fatalf("status %d, want %d; stderr:\n%s", st, ExitFailure, p.stderr)
	}
	if want := "pid file " + lockPath + ": open " + lockPath + ": too many levels of symbolic links"; !strings.Contains(p.stderr.String(), want) {
		t.Fatalf("stderr does not say %q:\n%s", want, p.stderr)
	}
}

// TestSymlinkAtStateAndDump: links planted at the state file and at
// DumpFileName are replaced by pcheck's own files, never written through.
func TestSymlinkAtStateAndDump(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := newService(t, e.dir, "a", "")
	pid := s.start()
	pf := filepath.Join(e.dir, "a.pf")
	dump := filepath.Join(e.dir, "dump.json")
	writeFile(t, pf, pfileHead+"DumpFileName "+dump+"\n"+s.entry(""))
	stateVictim, stateText := plantVictimFile(t)
	dumpVictim, dumpText := plantVictimFile(t)
	if err := os.MkdirAll(e.state, 0o755); err != nil {
		t.Fatal(err)
	}
	statePath := filepath.Join(e.state, state.Name(pf)+".state")
	if err := os.Symlink(stateVictim, statePath); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(dumpVictim, dump); err != nil {
		t.Fatal(err)
	}
	p := e.start(nil, pf)
	e.waitUpOrFail(p, pid)
	// A restart saves the retry count.
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	e.wait(downLine(pid))
	s.waitPid(pid)
	waitFor(t, "the state file", func() bool {
		st, err := os.Lstat(statePath)
		return err == nil && st.Mode().IsRegular()
	})
	p.signal(syscall.SIGUSR1)
	e.wait(fmt.Sprintf("pfile '%s': state dump written to %s", pf, dump))
	assertVictimUnwritten(t, stateVictim, stateText)
	assertVictimUnwritten(t, dumpVictim, dumpText)
	e.waitLogParts("retry counts start from zero: state file " + statePath + " is a symbolic link")
	if st, err := os.Lstat(dump); err != nil || !st.Mode().IsRegular() || st.Mode().Perm() != 0o600 {
		t.Fatalf("dump file: %v, %v", st.Mode(), err)
	}
	p.stop(t, syscall.SIGTERM)
}

// TestUnsafeDirsRefused: a state or run directory that is a link or that
// group or other can write (sticky or not) stops pcheck at start, exit 1,
// with the directory and the fix named.
func TestUnsafeDirsRefused(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		// make prepares the directory at path.
		make func(t *testing.T, path string)
		run  bool // the run directory rather than the state directory
		want string
	}{
		{"state symlink", func(t *testing.T, path string) {
			real := t.TempDir()
			if err := os.Symlink(real, path); err != nil {
				t.Fatal(err)
			}
		}, false, "is a symbolic link"},
		{"state 0777", func(t *testing.T, path string) { mkdirWithMode(t, path, 0o777) }, false, "is writable by group or other (mode 0777)"},
		{"state 1777", func(t *testing.T, path string) { mkdirWithMode(t, path, os.ModeSticky|0o777) }, false, "is writable by group or other (mode 1777)"},
		{"run 0777", func(t *testing.T, path string) { mkdirWithMode(t, path, 0o777) }, true, "is writable by group or other (mode 0777)"},
		{"run symlink", func(t *testing.T, path string) {
			if err := os.Symlink(t.TempDir(), path); err != nil {
				t.Fatal(err)
			}
		}, true, "is a symbolic link"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			s := newService(t, e.dir, "a", "")
			pf := filepath.Join(e.dir, "a.pf")
			writeFile(t, pf, pfileHead+s.entry(""))
			run := filepath.Join(shortRunDir(t), "run")
			dir, what := e.state, "state directory"
			if c.run {
				dir, what = run, "run directory"
			}
			c.make(t, dir)
			p := e.start(nil, "--run-dir", run, pf)
			// The service is not running: a pcheck that starts
			// monitoring runs the restart script at once.
			waitFor(t, "exit or a restart", func() bool { return p.hasExited() || len(s.callReasons()) > 0 })
			if calls := s.callReasons(); len(calls) != 0 {
				t.Fatalf("pcheck started monitoring (restart script ran: %v); stderr:\n%s", calls, p.stderr)
			}
			if st := p.wait(); st != ExitFailure {
				t.Fatalf("status %d, want %d; stderr:\n%s", st, ExitFailure, p.stderr)
			}
			want := fmt.Sprintf("pcheck: %s: directory %s %s; pcheck writes only in a real directory", what, dir, c.want)
			if !strings.Contains(p.stderr.String(), want) {
				t.Fatalf("stderr does not say %q:\n%s", want, p.stderr)
			}
		})
	}
}

func mkdirWithMode(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// TestForceStopsHolder: --force over a live pcheck stops it before it
// takes over: one pcheck serves the pfile, one death gives one restart
// script run, padmin reaches the new pcheck, and the old one's exit leaves
// the new one's control socket in place.
func TestForceStopsHolder(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := newService(t, e.dir, "a", "")
	pid := s.start()
	pf := filepath.Join(e.dir, "a.pf")
	writeFile(t, pf, pfileHead+s.entry(""))
	run := shortRunDir(t)
	sock := control.SocketPath(run, pf)

	a := e.start(nil, "--run-dir", run, pf)
	e.wait(upLine(pid))
	waitFor(t, "pcheck A's socket", func() bool {
		sv, err := control.Query(sock, time.Second)
		return err == nil && sv.Info.Pid == a.pid()
	})
	b := e.start(nil, "--run-dir", run, "--force", pf)
	e.wait(fmt.Sprintf("pfile '%s': --force: pcheck pid %d stopped, its lock taken over", pf, a.pid()))
	select {
	case <-a.done:
	case <-time.After(5 * time.Second):
		t.Fatal("pcheck A still runs after pcheck B was started with --force")
	}
	if a.status != 0 {
		t.Fatalf("pcheck A status %d", a.status)
	}
	waitFor(t, "pcheck B's socket", func() bool {
		sv, err := control.Query(sock, time.Second)
		return err == nil && sv.Info.Pid == b.pid()
	})

	// B has adopted the service (the second Up line, after A's).
	waitFor(t, "pcheck B's Up", func() bool { return e.count(upLine(pid)) == 2 })

	// One death, one restart.
	before := len(s.callReasons())
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	next := s.waitPid(pid)
	e.wait(upLine(next))
	waitFor(t, "the restart script run", func() bool { return len(s.callReasons()) > before })
	// Both pchecks, had there been two, would have seen the death within
	// MonitorInterval (10 s) and StartWait; Up for the new pid means the
	// one serving pcheck is done with it.
	e.wait(fmt.Sprintf("Try to restart ('%s')", bin))
	if n := len(s.callReasons()) - before; n != 1 {
		t.Fatalf("%d restart script runs for one death, want 1", n)
	}
	if n := e.count(downLine(pid)); n != 1 {
		t.Fatalf("%d Down lines for one death, want 1", n)
	}
	sv, err := control.Query(sock, time.Second)
	if err != nil || sv.Info.Pid != b.pid() {
		t.Fatalf("padmin reaches %+v, %v; want pcheck B (pid %d)", sv.Info, err, b.pid())
	}
	b.signal(syscall.SIGTERM)
	if st := b.wait(); st != 0 {
		t.Fatalf("pcheck B status %d", st)
	}
}

// TestFutureAttemptsNotCounted: restart attempts recorded in the future
// (clock ahead, damaged file) are dropped with a warning and the entry
// restarts as usual, instead of an immediate retry over.
func TestFutureAttemptsNotCounted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := newService(t, e.dir, "a", "")
	pid := s.start()
	pf := filepath.Join(e.dir, "a.pf")
	writeFile(t, pf, pfileHead+"RetryCount 3\nretry_over_action exit\n"+s.entry(""))
	f, diags := parser.Load(pf)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	key := f.Processes[0].BaseKey()
	future := time.Now().Add(24 * time.Hour).UTC()
	var times []string
	for i := range 3 {
		times = append(times, fmt.Sprintf("%q", future.Add(time.Duration(i)*time.Minute).Format(time.RFC3339Nano)))
	}
	if err := os.MkdirAll(e.state, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(e.state, state.Name(pf)+".state"),
		fmt.Sprintf(`{"version":1,"pfile":%q,"entries":{%q:{"attempts":[%s]}}}`, pf, key, strings.Join(times, ",")))

	p := e.start(nil, pf)
	e.waitUpOrFail(p, pid)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a restart or an exit", func() bool { return p.hasExited() || e.count(tryLine) > 0 })
	if p.hasExited() {
		t.Fatalf("pcheck exited (status %d) with %d restart attempts: the future attempts were counted; stderr:\n%s",
			p.status, e.count(tryLine), p.stderr)
	}
	next := s.waitPid(pid)
	e.wait(upLine(next))
	if n := e.count(tryLine); n != 1 {
		t.Fatalf("%d restart attempts, want 1", n)
	}
	e.waitLogParts(fmt.Sprintf("entry '%s': restart attempt at %s is in the future", key, future.Format(time.RFC3339Nano)), "not counted")
	p.stop(t, syscall.SIGTERM)
}

// TestStateDirNotWritable: a state directory that cannot be written at
// start (read-only, full) is logged to syslog and monitoring starts: the
// counts are kept in memory with a warning per failed save, the pid lock
// still keeps a second pcheck out, and restarts work.
func TestStateDirNotWritable(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		// spoil makes the state directory unwritable.
		spoil func(t *testing.T, dir string)
		lock  string // where the pid lock is: "state" or "run"
	}{
		{"read-only", func(t *testing.T, dir string) {
			if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
				t.Skipf("bind mount: %v", err)
			}
			t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
			if err := unix.Mount("", dir, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
				t.Fatal(err)
			}
		}, "run"},
		{"full", func(t *testing.T, dir string) {
			if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=64k,mode=0755"); err != nil {
				t.Skipf("tmpfs: %v", err)
			}
			t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
			fill, err := os.Create(filepath.Join(dir, "fill"))
			if err != nil {
				t.Fatal(err)
			}
			defer fill.Close()
			chunk := make([]byte, 4096)
			for {
				if _, err := fill.Write(chunk); err != nil {
					break
				}
			}
		}, "state"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			s := newService(t, e.dir, "a", "")
			pid := s.start()
			pf := filepath.Join(e.dir, "a.pf")
			writeFile(t, pf, pfileHead+s.entry(""))
			if err := os.MkdirAll(e.state, 0o755); err != nil {
				t.Fatal(err)
			}
			c.spoil(t, e.state)
			run := shortRunDir(t)

			p := e.start(nil, "--run-dir", run, pf)
			e.waitUpOrFail(p, pid)
			e.waitLogParts("state directory "+e.state+": directory "+e.state+" cannot be written",
				"retry counts are kept in memory only and not saved, pid locks that cannot be made there go to the run directory "+run)
			lockPath := filepath.Join(e.state, state.Name(pf)+".pid")
			if c.lock == "run" {
				lockPath = filepath.Join(run, state.Name(pf)+".pid")
			}
			second := e.start(nil, "--run-dir", run, pf)
			if st := second.wait(); st != ExitFailure {
				t.Fatalf("second pcheck status %d, want %d; stderr:\n%s", st, ExitFailure, second.stderr)
			}
			if want := fmt.Sprintf("already watched by pcheck pid %d (lock %s)", p.pid(), lockPath); !strings.Contains(second.stderr.String(), want) {
				t.Fatalf("second pcheck does not say %q:\n%s", want, second.stderr)
			}

			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			next := s.waitPid(pid)
			e.wait(upLine(next))
			e.waitLogParts(fmt.Sprintf("('%s'): retry count not saved", bin))
			p.stop(t, syscall.SIGTERM)
		})
	}
}
