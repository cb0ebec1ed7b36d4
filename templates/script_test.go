package templates

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// product is one template's restart script run against the fake product.
type product struct {
	dir, script string
	// setup copies the fake under the product's name into tmp, writes what
	// the product's start command needs and returns the script's
	// environment and argument 1 (the process as the pfile names it).
	setup func(t *testing.T, tmp string, port int) (env []string, proc string)
	// pidFile is where the master's pid is recorded.
	pidFile func(tmp string) string
	// other starts a process of the same program that belongs to something
	// else and must survive the restart.
	other func(t *testing.T, tmp string) *exec.Cmd
	// workers is how many workers share the master's listening socket.
	workers int
}

var products = []product{
	{dir: "apache", script: "restart_apache.sh", setup: apacheSetup, pidFile: pidIn("apache2.pid"), other: sameBinary("apache2"), workers: 2},
	{dir: "AutoReboot", script: "restart_apache.sh", setup: apacheSetup, pidFile: pidIn("apache2.pid"), other: sameBinary("apache2"), workers: 2},
	{dir: "https", script: "restart_httpd.sh", setup: httpsSetup, pidFile: pidIn("apache2.pid"), other: sameBinary("apache2"), workers: 2},
	{dir: "nginx", script: "restart_nginx.sh", setup: nginxSetup, pidFile: pidIn("nginx.pid"), other: sameBinary("nginx"), workers: 2},
	{dir: "tomcat", script: "restart_tomcat.sh", setup: tomcatSetup, pidFile: pidIn("tomcat/temp/catalina.pid"), other: otherTomcat},
	{dir: "sunone", script: "restart_sunone.sh", setup: sunoneSetup, pidFile: pidIn("https-test/logs/pid"), other: otherSunone, workers: 1},
}

func pidIn(rel string) func(string) string {
	return func(tmp string) string { return filepath.Join(tmp, rel) }
}

func apacheSetup(t *testing.T, tmp string, port int) ([]string, string) {
	bin := copyFake(t, filepath.Join(tmp, "apache2"))
	// The Debian envvars file is sourced before the start; the directories
	// it names are created by the script.
	envvars := filepath.Join(tmp, "envvars")
	writeFile(t, envvars, 0o644, fmt.Sprintf("export APACHE_RUN_DIR=%s/run\nexport APACHE_LOCK_DIR=%s/lock\n", tmp, tmp))
	pid := filepath.Join(tmp, "apache2.pid")
	return []string{
		"PRODUCT_EXES=" + bin, "PID_FILE=" + pid, "ENV_FILE=" + envvars,
		"PROBE_URL=" + fmt.Sprintf("http://127.0.0.1:%d/", port), "FAKE_ADDR=" + fmt.Sprintf("127.0.0.1:%d", port),
		"FAKE_ROLE=launch", "FAKE_PIDFILE=" + pid, "FAKE_WORKERS=2",
	}, bin
}

func httpsSetup(t *testing.T, tmp string, port int) ([]string, string) {
	env, proc := apacheSetup(t, tmp, port)
	return append(env, "PROBE_URL="+fmt.Sprintf("https://127.0.0.1:%d/", port), "FAKE_TLS=1"), proc
}

func nginxSetup(t *testing.T, tmp string, port int) ([]string, string) {
	bin := copyFake(t, filepath.Join(tmp, "nginx"))
	pid := filepath.Join(tmp, "nginx.pid")
	return []string{
		"PRODUCT_EXES=" + bin, "PID_FILE=" + pid, "NGINX_CONF=" + filepath.Join(tmp, "nginx.conf"),
		"PROBE_URL=" + fmt.Sprintf("http://127.0.0.1:%d/", port), "FAKE_ADDR=" + fmt.Sprintf("127.0.0.1:%d", port),
		"FAKE_ROLE=launch", "FAKE_PIDFILE=" + pid, "FAKE_WORKERS=2",
	}, bin
}

// catalinaSh stands in for Tomcat's bin/catalina.sh: "start" runs the JVM
// in the background and records its pid in CATALINA_PID.
const catalinaSh = `#!/bin/sh
[ "$1" = start ] || exit 2
if [ "${FAKE_FAIL:-}" = 1 ]; then echo "catalina.sh: cannot start (FAKE_FAIL)" >&2; exit 1; fi
FAKE_ROLE=master "$FAKE_JAVA" -Dcatalina.base="$CATALINA_BASE" -Dcatalina.home="$CATALINA_HOME" org.apache.catalina.startup.Bootstrap start </dev/null >/dev/null 2>&1 &
echo $! >"$CATALINA_PID"
`

func tomcatSetup(t *testing.T, tmp string, port int) ([]string, string) {
	java := copyFake(t, filepath.Join(tmp, "java"))
	home := filepath.Join(tmp, "tomcat")
	writeFile(t, filepath.Join(home, "bin", "catalina.sh"), 0o755, catalinaSh)
	if err := os.MkdirAll(filepath.Join(home, "temp"), 0o755); err != nil {
		t.Fatal(err)
	}
	return []string{
		"CATALINA_HOME=" + home, "TOMCAT_USER=", "FAKE_JAVA=" + java,
		"PROBE_URL=" + fmt.Sprintf("http://127.0.0.1:%d/", port), "FAKE_ADDR=" + fmt.Sprintf("127.0.0.1:%d", port),
	}, "java"
}

// otherTomcat is a JVM of another Tomcat whose CATALINA_BASE starts with
// this one's: /tmp/x/tomcat2 against /tmp/x/tomcat.
func otherTomcat(t *testing.T, tmp string) *exec.Cmd {
	return startFake(t, filepath.Join(tmp, "java"), "other", "-Dcatalina.base="+filepath.Join(tmp, "tomcat2"), "org.apache.catalina.startup.Bootstrap", "start")
}

// sunoneStart stands in for an instance's start script.
const sunoneStart = `#!/bin/sh
if [ "${FAKE_FAIL:-}" = 1 ]; then echo "start: cannot start (FAKE_FAIL)" >&2; exit 1; fi
instance=$(cd "$(dirname "$0")" && pwd)
FAKE_ROLE=master "$FAKE_WEBSERVD" -d "$instance/config" </dev/null >/dev/null 2>&1 &
`

func sunoneSetup(t *testing.T, tmp string, port int) ([]string, string) {
	webservd := copyFake(t, filepath.Join(tmp, "webservd"))
	inst := filepath.Join(tmp, "https-test")
	writeFile(t, filepath.Join(inst, "start"), 0o755, sunoneStart)
	if err := os.MkdirAll(filepath.Join(inst, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	return []string{
		"SERVER_ROOT=" + tmp, "INSTANCE=https-test", "FAKE_WEBSERVD=" + webservd,
		"PROBE_URL=" + fmt.Sprintf("http://127.0.0.1:%d/", port), "FAKE_ADDR=" + fmt.Sprintf("127.0.0.1:%d", port),
		"FAKE_PIDFILE=" + filepath.Join(inst, "logs", "pid"), "FAKE_WORKERS=1",
	}, "webservd"
}

// otherSunone is the server of another instance: https-test2.
func otherSunone(t *testing.T, tmp string) *exec.Cmd {
	return startFake(t, filepath.Join(tmp, "webservd"), "other", "-d", filepath.Join(tmp, "https-test2", "config"))
}

// sameBinary starts the product's own binary in a process group of its own:
// not a leftover of the watched server.
func sameBinary(name string) func(*testing.T, string) *exec.Cmd {
	return func(t *testing.T, tmp string) *exec.Cmd {
		return startFake(t, filepath.Join(tmp, name), "other")
	}
}

// TestRestartScriptReplacesADeadServer kills the master of a running fake
// product, leaving its workers (which hold the listening socket), and
// checks that the restart script ends them, spares a process of the same
// program that is not part of the server, starts a new master and exits 0
// once it answers.
func TestRestartScriptReplacesADeadServer(t *testing.T) {
	requireTools(t)
	for _, p := range products {
		t.Run(p.dir, func(t *testing.T) {
			t.Parallel()
			tmp := shortTemp(t)
			port := freePort(t)
			env, proc := p.setup(t, tmp, port)
			env = append(env, "KILL_WAIT=1", "START_WAIT=60")
			script := filepath.Join(p.dir, p.script)

			// A first run starts the product from nothing.
			if out, err := runScript(t, script, env, proc, "0", "pidfail"); err != nil {
				t.Fatalf("first start: %v\n%s", err, out)
			}
			old := readPid(t, p.pidFile(tmp))
			workers := waitChildren(t, old, p.workers)
			other := p.other(t, tmp)

			// The old master dies for good; its workers are left behind.
			// A JVM has no workers: it hangs instead (SIGSTOP), still
			// holding the port.
			sig := syscall.SIGKILL
			if p.workers == 0 {
				sig = syscall.SIGSTOP
			}
			if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", old)); !strings.HasPrefix(exe, tmp+"/") {
				t.Fatalf("pid file names %d, which runs %q, not the fake product", old, exe)
			}
			if err := syscall.Kill(old, sig); err != nil {
				t.Fatal(err)
			}

			out, err := runScript(t, script, env, proc, strconv.Itoa(old), "down")
			if err != nil {
				t.Fatalf("restart: %v\n%s", err, out)
			}
			for _, pid := range append(workers, old) {
				if live(pid) {
					t.Errorf("leftover pid %d still runs after the restart\n%s", pid, out)
				}
			}
			if !live(other.Process.Pid) {
				t.Errorf("pid %d of another server was killed\n%s", other.Process.Pid, out)
			}
			if pid := readPid(t, p.pidFile(tmp)); pid == old || !live(pid) {
				t.Errorf("pid file names %d after the restart, want a new live master (old %d)", pid, old)
			}
			if !strings.Contains(out, "is up and answers") {
				t.Errorf("the script did not report the server up:\n%s", out)
			}
			if strings.HasPrefix(p.script, "restart_apache") {
				for _, d := range []string{"run", "lock"} {
					if _, err := os.Stat(filepath.Join(tmp, d)); err != nil {
						t.Errorf("the directory of ENV_FILE's APACHE_%s_DIR was not made: %v", strings.ToUpper(d), err)
					}
				}
			}
		})
	}
}

// TestRestartScriptStops runs each restart script with reason stop (the
// OCF agent's stop_services=true): it ends the running server, master and
// workers, spares a process of the same program that is not part of it,
// starts nothing and exits 0.
func TestRestartScriptStops(t *testing.T) {
	requireTools(t)
	for _, p := range products {
		t.Run(p.dir, func(t *testing.T) {
			t.Parallel()
			tmp := shortTemp(t)
			env, proc := p.setup(t, tmp, freePort(t))
			env = append(env, "KILL_WAIT=1", "START_WAIT=60")
			script := filepath.Join(p.dir, p.script)
			if out, err := runScript(t, script, env, proc, "0", "pidfail"); err != nil {
				t.Fatalf("first start: %v\n%s", err, out)
			}
			master := readPid(t, p.pidFile(tmp))
			workers := waitChildren(t, master, p.workers)
			other := p.other(t, tmp)

			out, err := runScript(t, script, env, proc, strconv.Itoa(master), "stop")
			if err != nil {
				t.Fatalf("stop: %v\n%s", err, out)
			}
			for _, pid := range append(workers, master) {
				if live(pid) {
					t.Errorf("pid %d still runs after the stop\n%s", pid, out)
				}
			}
			if !live(other.Process.Pid) {
				t.Errorf("pid %d of another server was killed\n%s", other.Process.Pid, out)
			}
			if b, err := os.ReadFile(p.pidFile(tmp)); err == nil {
				if pid, _ := strconv.Atoi(strings.TrimSpace(string(b))); pid != master && live(pid) {
					t.Errorf("the stop started a new server, pid %d\n%s", pid, out)
				}
			}
			if !strings.Contains(out, "is stopped") {
				t.Errorf("the script did not report the server stopped:\n%s", out)
			}
		})
	}
}

// TestRestartScriptReportsFailure checks the exit status when the start
// command fails, and when the server starts but never answers.
func TestRestartScriptReportsFailure(t *testing.T) {
	requireTools(t)
	for _, p := range products {
		t.Run(p.dir, func(t *testing.T) {
			t.Parallel()
			tmp := shortTemp(t)
			env, proc := p.setup(t, tmp, freePort(t))
			env = append(env, "KILL_WAIT=1", "START_WAIT=2")
			script := filepath.Join(p.dir, p.script)

			out, err := runScript(t, script, append(env, "FAKE_FAIL=1"), proc, "0", "down")
			if exitCode(err) < 1 {
				t.Errorf("failed start command: exit %v, want non-zero\n%s", err, out)
			}
			if !strings.Contains(out, "could not start") || !strings.Contains(out, "FAKE_FAIL") {
				t.Errorf("failed start command: the output does not say why:\n%s", out)
			}

			out, err = runScript(t, script, append(env, "FAKE_DEAF=1"), proc, "0", "down")
			if exitCode(err) < 1 {
				t.Errorf("silent server: exit %v, want non-zero\n%s", err, out)
			}
			if !strings.Contains(out, "does not answer") {
				t.Errorf("silent server: the output does not say it:\n%s", out)
			}
		})
	}
}

// TestRestartScriptWithoutCurl probes with bash's /dev/tcp when curl is not
// installed.
func TestRestartScriptWithoutCurl(t *testing.T) {
	requireTools(t)
	tmp := shortTemp(t)
	port := freePort(t)
	env, proc := apacheSetup(t, tmp, port)
	env = append(env, "KILL_WAIT=1", "START_WAIT=60", "PATH="+pathWithout(t, tmp, "curl"))
	out, err := runScript(t, filepath.Join("apache", "restart_apache.sh"), env, proc, "0", "pidfail")
	if err != nil {
		t.Fatalf("start without curl: %v\n%s", err, out)
	}
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
	if err != nil {
		t.Fatalf("the server does not listen after the script said it was up: %v\n%s", err, out)
	}
	conn.Close()

	// Without curl and without a listener the probe fails too.
	env, proc = apacheSetup(t, shortTemp(t), freePort(t))
	env = append(env, "KILL_WAIT=1", "START_WAIT=2", "FAKE_DEAF=1", "PATH="+pathWithout(t, tmp, "curl"))
	if out, err := runScript(t, filepath.Join("apache", "restart_apache.sh"), env, proc, "0", "down"); exitCode(err) < 1 {
		t.Errorf("silent server without curl: exit %v, want non-zero\n%s", err, out)
	}
}

func requireTools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"bash", "setsid", "timeout"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
}

// runScript runs a restart script as pcheck does: its own process group,
// stdin /dev/null, with a generous deadline.
func runScript(t *testing.T, script string, env []string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	abs, err := filepath.Abs(script)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, abs, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// The product's processes may keep the output pipe: do not wait for
	// them once the script has exited.
	cmd.WaitDelay = time.Second
	err = cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s did not end within the deadline:\n%s", script, out.String())
	}
	return out.String(), err
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

// shortTemp is a temporary directory that is cleaned up, after every
// process started from it is killed.
func shortTemp(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Cleanup(func() { killUnder(dir) })
	return dir
}

// killUnder kills every process whose executable lies under dir: the fake
// products this test copied there, and nothing else.
func killUnder(dir string) {
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		exe, err := os.Readlink(filepath.Join(p, "exe"))
		if err != nil || !strings.HasPrefix(exe, dir+"/") {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(p)); err == nil {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// copyFake copies the test binary to path, to play the product there.
func copyFake(t *testing.T, path string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// startFake starts a copied fake in a role of its own, in a process group
// of its own, and kills it when the test ends.
func startFake(t *testing.T, path, role string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), roleEnv+"="+role)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd
}

func writeFile(t *testing.T, path string, mode os.FileMode, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), mode); err != nil {
		t.Fatal(err)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// readPid reads a pid file, waiting (with a deadline) until it holds one.
func readPid(t *testing.T, path string) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && perr == nil && pid > 0 {
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid file %s holds no pid: %v %q", path, err, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// live reports whether pid is a process that is not a zombie.
func live(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && len(s) > i+2 && s[i+2] != 'Z'
}

// waitChildren waits until pid has n children and returns them.
func waitChildren(t *testing.T, pid, n int) []int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		// Each thread lists the children it forked: read them all.
		files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
		var kids []int
		for _, file := range files {
			b, _ := os.ReadFile(file)
			for _, f := range strings.Fields(string(b)) {
				if k, err := strconv.Atoi(f); err == nil {
					kids = append(kids, k)
				}
			}
		}
		if len(kids) >= n {
			return kids
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d has children %v, want %d", pid, kids, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pathWithout builds a PATH directory holding every command of the usual
// PATH except the named ones.
func pathWithout(t *testing.T, tmp string, drop ...string) string {
	t.Helper()
	dir := filepath.Join(tmp, "path-without-"+strings.Join(drop, "-"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	skip := map[string]bool{}
	for _, d := range drop {
		skip[d] = true
	}
	for _, src := range filepath.SplitList(os.Getenv("PATH")) {
		ents, err := os.ReadDir(src)
		if err != nil {
			continue
		}
		for _, e := range ents {
			dst := filepath.Join(dir, e.Name())
			if skip[e.Name()] {
				continue
			}
			if _, err := os.Lstat(dst); err == nil {
				continue // an earlier PATH entry wins
			}
			os.Symlink(filepath.Join(src, e.Name()), dst)
		}
	}
	return dir
}
