package proc

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The test binary re-executes itself as the processes the tests look at.
// helperEnv selects what the re-executed binary does.
const (
	helperEnv = "PROC_TEST_HELPER"
	fileEnv   = "PROC_TEST_FILE"   // term-clean: where to record SIGTERM
	countEnv  = "PROC_TEST_COUNT"  // parent, forker: how many children
	targetEnv = "PROC_TEST_TARGET" // sigperm: "pid:start" to signal
	euidEnv   = "PROC_TEST_EUID"   // euid: the effective uid to take
)

// waitLimit bounds every wait of the tests for an event; it is generous
// because a loaded machine running -race is slow, and only a failure waits
// this long.
const waitLimit = 30 * time.Second

// fakeSvc is a copy of the test binary under its own name, svcName, so
// that the processes it runs can be told by exe and comm from the test
// process and from those of another run of this test on the machine.
var (
	fakeSvc string
	svcName = "svc" + strconv.Itoa(os.Getpid())
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		runHelper(mode)
		return
	}
	dir, err := os.MkdirTemp("", "proctest")
	if err == nil {
		err = os.Chmod(dir, 0o755) // other users run it in the uid tests
	}
	if err == nil {
		fakeSvc, err = installCopy(dir, svcName)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "proc test setup:", err)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// installCopy puts the test binary in dir under name and returns its path
// with symbolic links resolved, as /proc/PID/exe shows it.
func installCopy(dir, name string) (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	dst := filepath.Join(dir, name)
	if err := copyFile(self, dst); err != nil {
		return "", err
	}
	return filepath.EvalSymlinks(dst)
}

// copyFile copies src to an executable dst.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// runHelper is the main of a re-executed helper. Every helper prints one
// line when it is ready and runs until its standard input closes.
func runHelper(mode string) {
	untilStdinCloses := func() { io.Copy(io.Discard, os.Stdin) }
	switch mode {
	case "sleep":
		fmt.Println("ready")
		untilStdinCloses()

	case "term-ignore":
		signal.Ignore(syscall.SIGTERM)
		fmt.Println("ready")
		untilStdinCloses()

	case "term-clean":
		got := make(chan os.Signal, 1)
		signal.Notify(got, syscall.SIGTERM)
		fmt.Println("ready")
		sig := <-got
		if err := os.WriteFile(os.Getenv(fileEnv), []byte(sig.String()+"\n"), 0o644); err != nil {
			os.Exit(1)
		}
		os.Exit(0)

	case "forker", "parent", "noreap":
		// forker: workers of its own program; parent: sleep children it
		// reaps; noreap: sleep children it leaves as zombies until its
		// standard input closes.
		n, _ := strconv.Atoi(os.Getenv(countEnv))
		var cmds []*exec.Cmd
		var pids []string
		for range n {
			var c *exec.Cmd
			if mode == "forker" {
				self, _ := os.Executable()
				c = exec.Command(self, os.Args[1:]...)
				c.Args[0] = os.Args[0]
				c.Env = helperEnviron("sleep")
				c.Stdin = os.Stdin // each worker ends with its parent's input
			} else {
				c = exec.Command("sleep", "3600")
			}
			if err := c.Start(); err != nil {
				fmt.Println("error:", err)
				os.Exit(1)
			}
			cmds = append(cmds, c)
			pids = append(pids, strconv.Itoa(c.Process.Pid))
		}
		var reaped sync.WaitGroup
		if mode == "parent" {
			for _, c := range cmds {
				reaped.Go(func() { c.Wait() })
			}
		}
		fmt.Println(strings.Join(pids, " "))
		untilStdinCloses()
		for _, c := range cmds {
			c.Process.Kill()
			if mode != "parent" {
				c.Wait()
			}
		}
		reaped.Wait()

	case "euid":
		// Only the effective uid changes, on every thread (syscall, not
		// x/sys/unix, for that), and the process makes itself not dumpable,
		// as a daemon dropping privileges may.
		euid, _ := strconv.Atoi(os.Getenv(euidEnv))
		if err := syscall.Setresuid(-1, euid, -1); err != nil {
			fmt.Println("error: setresuid:", err)
			os.Exit(1)
		}
		if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
			fmt.Println("error: prctl:", err)
			os.Exit(1)
		}
		fmt.Println("ready")
		untilStdinCloses()

	case "sigperm":
		var id ID
		fmt.Sscanf(os.Getenv(targetEnv), "%d:%d", &id.Pid, &id.Start)
		err := Signal(id, 0)
		switch {
		case errors.Is(err, unix.EPERM):
			fmt.Println("EPERM")
		default:
			fmt.Println("unexpected:", err)
		}

	case "pidreuse":
		fmt.Println(pidReuse())

	default:
		fmt.Fprintln(os.Stderr, "unknown helper", mode)
		os.Exit(2)
	}
}

// spec describes a helper process to start.
type spec struct {
	mode  string
	path  string   // program; the test binary when empty
	argv0 string   // argv[0]; path when empty
	args  []string // after argv[0]
	env   []string // added to the environment
	cred  *syscall.Credential
	pgid  bool // own process group
}

// helperEnviron returns the environment of a helper of mode. A helper
// built with -race does not sleep at exit, as the race runtime does by
// default.
func helperEnviron(mode string) []string {
	return append(os.Environ(), helperEnv+"="+mode,
		"GORACE="+os.Getenv("GORACE")+" atexit_sleep_ms=0")
}

// helper is a running helper process, a child of the test.
type helper struct {
	t     *testing.T
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
	id    ID

	waitOnce sync.Once
	state    *os.ProcessState
}

// startHelper starts a helper, waits for its first line and stops it at
// the end of the test.
func startHelper(t *testing.T, s spec) (*helper, string) {
	t.Helper()
	path := s.path
	if path == "" {
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		path = self
	}
	cmd := exec.Command(path, s.args...)
	if s.argv0 != "" {
		cmd.Args[0] = s.argv0
	}
	cmd.Env = append(helperEnviron(s.mode), s.env...)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Setpgid: s.pgid}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start helper %s: %v", s.mode, err)
	}
	h := &helper{t: t, cmd: cmd, stdin: stdin, lines: make(chan string, 8)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			h.lines <- sc.Text()
		}
		close(h.lines)
	}()
	t.Cleanup(h.stop)
	first := h.line()
	info, err := Read(cmd.Process.Pid)
	if err != nil {
		t.Fatalf("read helper %s: %v", s.mode, err)
	}
	h.id = info.ID
	return h, first
}

// line returns the helper's next output line.
func (h *helper) line() string {
	h.t.Helper()
	select {
	case l, ok := <-h.lines:
		if !ok {
			h.t.Fatalf("helper %d ended its output", h.cmd.Process.Pid)
		}
		if strings.HasPrefix(l, "error:") {
			h.t.Fatalf("helper %d: %s", h.cmd.Process.Pid, l)
		}
		return l
	case <-time.After(waitLimit):
		h.t.Fatalf("helper %d printed nothing in %v", h.cmd.Process.Pid, waitLimit)
		return ""
	}
}

// wait reaps the helper and returns how it ended.
func (h *helper) wait() *os.ProcessState {
	h.waitOnce.Do(func() {
		h.cmd.Wait()
		h.state = h.cmd.ProcessState
	})
	return h.state
}

// stop closes the helper's input, which ends it, and reaps it; a helper
// that does not end in waitLimit is killed.
func (h *helper) stop() {
	h.stdin.Close()
	done := make(chan struct{})
	go func() { h.wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(waitLimit):
		h.t.Errorf("helper %d did not stop; killing it", h.cmd.Process.Pid)
		h.cmd.Process.Kill()
		<-done
	}
}

// pids parses a line of space-separated pids.
func pids(t *testing.T, line string) []int {
	t.Helper()
	var out []int
	for f := range strings.FieldsSeq(line) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("helper line %q: %v", line, err)
		}
		out = append(out, pid)
	}
	return out
}

// mustRead reads a process that must exist.
func mustRead(t *testing.T, pid int) Info {
	t.Helper()
	info, err := Read(pid)
	if err != nil {
		t.Fatalf("Read(%d): %v", pid, err)
	}
	return info
}

// mustScan scans /proc.
func mustScan(t *testing.T) []Info {
	t.Helper()
	all, err := Scan()
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	return all
}

// pidsOf returns the pids of ps.
func pidsOf(ps []Info) []int {
	out := make([]int, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.Pid)
	}
	return out
}
