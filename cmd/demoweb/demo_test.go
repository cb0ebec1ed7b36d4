package main

// TestMakeRun runs the real demo as a newcomer would, on a port and in
// directories of its own: make run, a stall (kill -STOP) found and
// repaired, Ctrl-C leaving the server running, make run refusing a taken
// port, make clean stopping the server.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// output collects the lines of a command as they come.
type output struct {
	mu    sync.Mutex
	lines []string
}

func (o *output) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		o.mu.Lock()
		o.lines = append(o.lines, sc.Text())
		o.mu.Unlock()
	}
}

func (o *output) all() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.lines...)
}

// wait polls the output for a line matching re until the deadline.
func (o *output) wait(t *testing.T, re string, d time.Duration) string {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(d)
	for {
		for _, l := range o.all() {
			if rx.MatchString(l) {
				return l
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no line matching %q within %s; output:\n%s", re, d, strings.Join(o.all(), "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// freePort returns a loopback port nobody listens on (now).
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// demo is one test's make variables.
type demo struct {
	t         *testing.T
	root, bin string
	dir       string
	port      int
}

func (d *demo) make(args ...string) *exec.Cmd {
	cmd := exec.Command("make", append([]string{"-C", d.root, "DEMO_DIR=" + d.dir, "BIN=" + d.bin,
		"DEMO_PORT=" + strconv.Itoa(d.port)}, args...)...)
	return cmd
}

// serverPid returns the pid the demo's pid file names when it is a live
// demoweb of the test's binaries, 0 otherwise.
func (d *demo) serverPid() int {
	b, err := os.ReadFile(filepath.Join(d.dir, "demoweb.pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil || strings.TrimSuffix(exe, " (deleted)") != filepath.Join(d.bin, "demoweb") {
		return 0
	}
	return pid
}

// answers tells whether the demo server answers HTTP.
func (d *demo) answers() (string, bool) {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/", d.port))
	if err != nil {
		return "", false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b), resp.StatusCode == http.StatusOK
}

// waitFor polls cond until the deadline.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestMakeRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every binary and runs the demo for about a minute")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	d := &demo{t: t, root: root, bin: filepath.Join(tmp, "bin"), dir: filepath.Join(tmp, "run"), port: freePort(t)}
	// Whatever happens, the servers this test started are stopped.
	var started sync.Map
	t.Cleanup(func() {
		if pid := d.serverPid(); pid > 0 {
			started.Store(pid, true)
		}
		started.Range(func(k, _ any) bool {
			pid := k.(int)
			if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err == nil &&
				strings.TrimSuffix(exe, " (deleted)") == filepath.Join(d.bin, "demoweb") {
				syscall.Kill(pid, syscall.SIGKILL)
			}
			return true
		})
	})

	// make run, as a terminal runs a job: a process group of its own.
	run := d.make("run")
	run.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw := io.Pipe()
	run.Stdout, run.Stderr = pw, pw
	out := &output{}
	go out.read(pr)
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { run.Wait(); pw.Close(); close(exited) }()
	t.Cleanup(func() {
		syscall.Kill(-run.Process.Pid, syscall.SIGKILL)
		<-exited
	})
	out.wait(t, `pcheck\[\d+\]: \('.*demoweb' ,pid=\d+\) Up`, 5*time.Minute)

	// The first line is no error, and the banner comes before pcheck's
	// lines; the binaries carry make build's version.
	lines := out.all()
	bad := regexp.MustCompile(`(?i)error|fail|unavailable|no such|cannot|refuse|warning|denied`)
	if bad.MatchString(lines[0]) {
		t.Errorf("make run's first line looks like an error: %q", lines[0])
	}
	banner := indexOf(lines, `^make run: pcheck `)
	firstLog := indexOf(lines, `pcheck\[\d+\]: `)
	if banner < 0 || firstLog < banner {
		t.Fatalf("the banner (line %d) does not come before pcheck's first line (%d):\n%s", banner, firstLog, strings.Join(lines, "\n"))
	}
	describe, err := exec.Command("git", "-C", root, "describe", "--tags", "--always", "--dirty").Output()
	if err != nil {
		t.Fatalf("git describe: %v", err)
	}
	want := "pcheck " + strings.TrimSpace(string(describe))
	if v, err := exec.Command(filepath.Join(d.bin, "pcheck"), "--version").Output(); err != nil || strings.TrimSpace(string(v)) != want {
		t.Errorf("make run's pcheck --version: %q, %v; make build's is %q", v, err, want)
	}
	if !strings.HasPrefix(lines[banner], "make run: "+want+" on ") {
		t.Errorf("banner %q does not name version %q", lines[banner], want)
	}

	// The server: in a session of its own, answering.
	pid := d.serverPid()
	if pid == 0 {
		t.Fatal("no live demo server after make run")
	}
	started.Store(pid, true)
	if sid, err := unixSid(pid); err != nil || sid != pid {
		t.Errorf("demo server %d is in session %d (%v), want its own", pid, sid, err)
	}
	if body, ok := d.answers(); !ok || !strings.Contains(body, "pid "+strconv.Itoa(pid)) {
		t.Fatalf("demo server does not answer: %q", body)
	}

	// kill -STOP: the _bi_webserv block finds the stall, pcheck kills and
	// restarts the server.
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	out.wait(t, fmt.Sprintf(`Find Web Server Stall: pid = %d : port = %d`, pid, d.port), 90*time.Second)
	var newPid int
	waitFor(t, "a new demo server after the stall", 60*time.Second, func() bool {
		newPid = d.serverPid()
		_, ok := d.answers()
		return newPid != 0 && newPid != pid && ok
	})
	started.Store(newPid, true)

	// Ctrl-C: make and pcheck stop, the server keeps running.
	if err := syscall.Kill(-run.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(60 * time.Second):
		t.Fatalf("make run did not stop on Ctrl-C:\n%s", strings.Join(out.all(), "\n"))
	}
	if body, ok := d.answers(); !ok || d.serverPid() != newPid {
		t.Fatalf("after Ctrl-C the demo server is gone: pid file %d, answer %q", d.serverPid(), body)
	}

	// make run on a port another program holds says so and stops.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := &demo{t: t, root: root, bin: d.bin, dir: filepath.Join(tmp, "run2"), port: l.Addr().(*net.TCPAddr).Port}
	b, err := taken.make("run").CombinedOutput()
	if err == nil || !strings.Contains(string(b), fmt.Sprintf("port %d on 127.0.0.1 is taken by another program", taken.port)) {
		t.Fatalf("make run on a taken port: %v\n%s", err, b)
	}

	// make clean stops the server make run started.
	if b, err := d.make("clean").CombinedOutput(); err != nil || !strings.Contains(string(b), fmt.Sprintf("stopped the demo server (pid %d)", newPid)) {
		t.Fatalf("make clean: %v\n%s", err, b)
	}
	waitFor(t, "the demo server to exit after make clean", 30*time.Second, func() bool {
		_, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", newPid)) // gone, or a zombie
		return err != nil
	})
	if _, err := os.Stat(d.dir); !os.IsNotExist(err) {
		t.Errorf("make clean left %s: %v", d.dir, err)
	}
}

// indexOf returns the index of the first line matching re, -1 for none.
func indexOf(lines []string, re string) int {
	rx := regexp.MustCompile(re)
	for i, l := range lines {
		if rx.MatchString(l) {
			return i
		}
	}
	return -1
}

// unixSid returns the session id of pid (field 6 of /proc/pid/stat).
func unixSid(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 4 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	return strconv.Atoi(f[3])
}
