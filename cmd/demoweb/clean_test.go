package main

// run.sh stop and make clean: the demo server found through symbolic links,
// one that outlives SIGTERM left and said so, and make clean removing only
// what the demo made.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// goBuild builds the Go program at src (a package directory or a file)
// into out.
func goBuild(t *testing.T, src, out string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-o", out, "./"+filepath.Base(src))
	cmd.Dir = filepath.Dir(src)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", src, err, b)
	}
}

// startServer starts bin/demoweb (or a stand-in) in a session of its own
// with its pid file in dir, as restart_demoweb.sh does, and waits for the
// pid file. The test kills it at the end if it still runs.
func startServer(t *testing.T, bin, dir string, args ...string) int {
	t.Helper()
	pidFile := filepath.Join(dir, "demoweb.pid")
	cmd := exec.Command(filepath.Join(bin, "demoweb"), append([]string{"-pidfile", pidFile}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	waitFor(t, "the server's pid file", 30*time.Second, func() bool {
		b, err := os.ReadFile(pidFile)
		return err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(cmd.Process.Pid)
	})
	return cmd.Process.Pid
}

// runSh runs testdata/demo/run.sh through script with the demo's
// variables.
func runSh(t *testing.T, script, dir, bin, arg string) (string, error) {
	t.Helper()
	cmd := exec.Command(script, arg)
	cmd.Env = append(os.Environ(), "DEMO_DIR="+dir, "BIN="+bin, "DEMO_PORT="+strconv.Itoa(freePort(t)))
	b, err := cmd.CombinedOutput()
	return string(b), err
}

// TestDemoStopSymlinked: run.sh stop, run through a symbolic link to the
// checkout with BIN relative to it, finds and stops the server.
func TestDemoStopSymlinked(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	bin, dir := filepath.Join(tmp, "bin"), filepath.Join(tmp, "run")
	os.Mkdir(dir, 0o755)
	goBuild(t, root+"/cmd/demoweb", filepath.Join(bin, "demoweb"))
	link := filepath.Join(tmp, "checkout")
	if err := os.Symlink(root, link); err != nil {
		t.Fatal(err)
	}
	pid := startServer(t, bin, dir, "-addr", fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	relBin, err := filepath.Rel(root, bin)
	if err != nil {
		t.Fatal(err)
	}
	out, err := runSh(t, filepath.Join(link, "testdata/demo/run.sh"), dir, relBin, "stop")
	if err != nil || !strings.Contains(out, fmt.Sprintf("stopped the demo server (pid %d)", pid)) {
		t.Fatalf("run.sh stop through %s with BIN=%s: %v\n%s", link, relBin, err, out)
	}
	if syscall.Kill(pid, 0) == nil {
		if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err == nil {
			t.Fatalf("the server (%s) still runs after run.sh stop said it stopped", exe)
		}
	}
}

// TestDemoStopStillRunning: a server that outlives SIGTERM is not said to
// be stopped; stop and clean fail and its pid file stays.
func TestDemoStopStillRunning(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	bin, dir := filepath.Join(tmp, "bin"), filepath.Join(tmp, "run")
	os.Mkdir(dir, 0o755)
	src := filepath.Join(tmp, "stub.go")
	stub := `package main

import (
	"flag"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

func main() {
	pidFile := flag.String("pidfile", "", "")
	flag.Parse()
	signal.Ignore(syscall.SIGTERM)
	os.WriteFile(*pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
	for {
		time.Sleep(time.Hour)
	}
}
`
	if err := os.WriteFile(src, []byte(stub), 0o644); err != nil {
		t.Fatal(err)
	}
	goBuild(t, src, filepath.Join(bin, "demoweb"))
	pid := startServer(t, bin, dir)
	for _, arg := range []string{"stop", "clean"} {
		out, err := runSh(t, filepath.Join(root, "testdata/demo/run.sh"), dir, bin, arg)
		if err == nil || strings.Contains(out, "stopped the demo server") ||
			!strings.Contains(out, fmt.Sprintf("the demo server (pid %d) is still running", pid)) {
			t.Fatalf("run.sh %s of a server that ignores SIGTERM: %v\n%s", arg, err, out)
		}
		if _, err := os.Stat(filepath.Join(dir, "demoweb.pid")); err != nil {
			t.Fatalf("run.sh %s removed the pid file of a server still running: %v", arg, err)
		}
	}
}

// TestMakeCleanKeepsOthers: make clean removes the files make build and
// make run made, by name, and leaves the operator's files in BIN and
// DEMO_DIR, and the directories holding them.
func TestMakeCleanKeepsOthers(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	d := &demo{t: t, root: root, bin: filepath.Join(tmp, "bin"), dir: filepath.Join(tmp, "run"), port: freePort(t)}
	pf := filepath.Join(d.dir, "demo.pf")
	stem := strings.ReplaceAll(strings.TrimPrefix(pf, "/"), "/", "_") // state.Name, for this path
	if len(stem) > 80 {
		stem = stem[len(stem)-80:]
	}
	demoFiles := []string{
		pf, filepath.Join(d.dir, "demoweb.pid"), filepath.Join(d.dir, "demoweb.log"), filepath.Join(d.dir, "pcheck-dump.json"),
		filepath.Join(d.dir, "state", stem+"-1a2b3c4d.state"), filepath.Join(d.dir, "state", stem+"-1a2b3c4d.pid"),
		filepath.Join(d.dir, "state", stem+"-1a2b3c4d-5e6f7a8b.script"), filepath.Join(d.dir, "run", stem+"-1a2b3c4d.sock"),
		filepath.Join(d.bin, "pcheck"), filepath.Join(d.bin, "padmin"), filepath.Join(d.bin, "demoweb"),
	}
	operator := []string{filepath.Join(d.dir, "notes.txt"), filepath.Join(d.dir, "state", "other.state"), filepath.Join(d.bin, "mytool")}
	for _, f := range append(demoFiles, operator...) {
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte("x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if b, err := d.make("clean").CombinedOutput(); err != nil {
		t.Fatalf("make clean: %v\n%s", err, b)
	}
	for _, f := range operator {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("make clean removed a file the demo did not make: %v", err)
		}
	}
	for _, f := range demoFiles {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("make clean left %s: %v", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(d.dir, "run")); !os.IsNotExist(err) {
		t.Errorf("make clean left the empty %s/run: %v", d.dir, err)
	}
}
