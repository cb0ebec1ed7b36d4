package probe

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const sh = "/bin/sh"

func TestCommandExit(t *testing.T) {
	for _, tc := range []struct {
		name   string
		script string
		env    []string
		ok     bool
		detail string
		code   int
	}{
		{"healthy", "echo 'OK - all good'", nil, true, "exit 0: OK - all good", 0},
		{"silent", "exit 0", nil, true, "exit 0", 0},
		{"critical", "echo 'CRITICAL - disk full'; echo more; exit 2", nil, false, "exit 2: CRITICAL - disk full", 2},
		{"stderr is captured", "echo oops >&2; exit 1", nil, false, "exit 1: oops", 1},
		{"first non-blank line", "echo; echo '  WARNING - slow  '; exit 1", nil, false, "exit 1: WARNING - slow", 1},
		{"environment", "echo \"$PROBE_GREETING\"", []string{"PROBE_GREETING=hello"}, true, "exit 0: hello", 0},
		{"stdin is /dev/null", "cat; echo done", nil, true, "exit 0: done", 0},
		{"control characters", "printf 'bad\\tline\\033[31m'; exit 3", nil, false, "exit 3: bad?line?[31m", 3},
		{"killed by a signal", "kill -TERM $$", nil, false, "signal SIGTERM", -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Command(sh, []string{"-c", tc.script}, tc.env).Run(withTimeout(t, 30*time.Second))
			if r.OK != tc.ok || r.Detail != tc.detail {
				t.Fatalf("got OK=%v Detail=%q (Err %v), want OK=%v Detail=%q", r.OK, r.Detail, r.Err, tc.ok, tc.detail)
			}
			if tc.ok {
				if r.Err != nil {
					t.Errorf("Err = %v, want nil", r.Err)
				}
				return
			}
			var ee *exec.ExitError
			if !errors.As(r.Err, &ee) || ee.ExitCode() != tc.code {
				t.Errorf("Err = %v, want an *exec.ExitError with code %d", r.Err, tc.code)
			}
		})
	}
}

func TestCommandMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "check_nothing")
	r := Command(path, nil, nil).Run(withTimeout(t, 30*time.Second))
	if r.OK || !errors.Is(r.Err, fs.ErrNotExist) || !strings.Contains(r.Err.Error(), path) {
		t.Errorf("got OK=%v Err=%v, want fs.ErrNotExist naming %s", r.OK, r.Err, path)
	}
}

// A command printing 10 MB runs to its end (it would hit the deadline if it
// blocked on a full pipe) and only 4 KiB of it is kept.
func TestCommandOutputCap(t *testing.T) {
	r := Command(sh, []string{"-c", "yes 'line of output' | head -c 10000000; exit 3"}, nil).Run(withTimeout(t, 60*time.Second))
	if r.Detail != "exit 3: line of output" {
		t.Fatalf("Detail = %q (Err %v), want the command's own exit 3", r.Detail, r.Err)
	}
	b := &cappedBuffer{max: maxOutput}
	chunk := []byte(strings.Repeat("x", 1000))
	for i := 0; i < 10; i++ {
		if n, err := b.Write(chunk); n != len(chunk) || err != nil {
			t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(chunk))
		}
	}
	if len(b.buf) != maxOutput {
		t.Errorf("kept %d bytes, want %d", len(b.buf), maxOutput)
	}
}

// At the deadline the whole process group is killed, the grandchild
// included, and the command reaped before Run returns.
func TestCommandTimeoutKillsGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pids")
	script := "sleep 100 & echo $$ $! > " + pidFile + "; sleep 100"
	r := Command(sh, []string{"-c", script}, nil).Run(withTimeout(t, 2*time.Second))
	if r.OK || r.Detail != "timeout" || !errors.Is(r.Err, context.DeadlineExceeded) {
		t.Errorf("got OK=%v Detail=%q Err=%v, want a timeout", r.OK, r.Detail, r.Err)
	}
	if r.Latency > 30*time.Second {
		t.Errorf("Latency = %v, far beyond the 2s deadline", r.Latency)
	}
	shell, grandchild := readPids(t, pidFile)
	if _, err := os.Stat("/proc/" + strconv.Itoa(shell)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the shell (pid %d) was not reaped: %v", shell, err)
	}
	waitDead(t, grandchild)
}

// A command that exits leaving a background process in its group does not
// hold Run until the deadline, and the background process is killed.
func TestCommandKillsLeftovers(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pids")
	script := "sleep 100 & echo $$ $! > " + pidFile + "; echo started"
	r := Command(sh, []string{"-c", script}, nil).Run(withTimeout(t, 60*time.Second))
	if !r.OK || r.Detail != "exit 0: started" {
		t.Fatalf("got OK=%v Detail=%q Err=%v, want exit 0", r.OK, r.Detail, r.Err)
	}
	if r.Latency > 30*time.Second {
		t.Errorf("Latency = %v: Run waited for the background sleep", r.Latency)
	}
	_, background := readPids(t, pidFile)
	waitDead(t, background)
}

// readPids reads "<shell pid> <background pid>" written by a test script.
func readPids(t *testing.T, path string) (int, int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the script did not record its pids: %v", err)
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		t.Fatalf("pid file holds %q", b)
	}
	a, err1 := strconv.Atoi(f[0])
	c, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil {
		t.Fatalf("pid file holds %q", b)
	}
	return a, c
}

// waitDead waits until pid is gone or a zombie (its new parent, init, may
// be slow to reap it or not reap at all in a container).
func waitDead(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if errors.Is(err, fs.ErrNotExist) {
			return
		}
		state := ""
		if i := strings.LastIndexByte(string(stat), ')'); i >= 0 && i+2 < len(stat) {
			state = string(stat[i+2])
		}
		if state == "Z" || state == "X" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d still alive (state %q) after Run returned", pid, state)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
