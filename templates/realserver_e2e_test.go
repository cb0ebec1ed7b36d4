package templates

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pcheck/pcheck/checker/syslogtest"
)

// requireWebserversEnv, when set in the environment (CI sets it), makes the
// real-server tests fail instead of skipping where apache2 or nginx is not
// installed, so a missing package cannot pass unnoticed.
const requireWebserversEnv = "PCHECK_REQUIRE_WEBSERVERS"

// realServer is a web server from Debian, run under its template: the
// template's pfile and restart script, with a private configuration from
// testdata/realserver filled in for one test directory and port.
type realServer struct {
	// dir is the template directory, and the subtest's name.
	dir string
	// bin is the server's executable, as the template's pfile names it.
	bin string
	// pfile and script are the template's files, in dir.
	pfile, script string
	// pidFile is the template pfile's pidfile= path, which the test
	// replaces with its own.
	pidFile string
	// conf is the configuration file that names the instance: every
	// process started with it has its path in argv.
	conf string
	// fixtures are copied from testdata/realserver, filled in.
	fixtures []string
	// ownPidFile is the pid file the fixtures set, in the test directory.
	ownPidFile string
	// env is the restart script's settings (its README's variables) for
	// the test directory and port.
	env func(dir string, port int) []string
}

var realServers = []realServer{
	{
		dir: "apache", bin: "/usr/sbin/apache2", pfile: "apache2.pfile", script: "restart_apache.sh",
		pidFile: "/run/apache2/apache2.pid", conf: "apache2.conf", fixtures: []string{"apache2.conf", "envvars"},
		ownPidFile: "apache2.pid",
		env: func(dir string, port int) []string {
			return []string{"PID_FILE=" + filepath.Join(dir, "apache2.pid"), "ENV_FILE=" + filepath.Join(dir, "envvars"),
				fmt.Sprintf("PROBE_URL=http://127.0.0.1:%d/", port)}
		},
	},
	{
		dir: "nginx", bin: "/usr/sbin/nginx", pfile: "nginx.pfile", script: "restart_nginx.sh",
		pidFile: "/run/nginx.pid", conf: "nginx.conf", fixtures: []string{"nginx.conf"},
		ownPidFile: "nginx.pid",
		env: func(dir string, port int) []string {
			return []string{"PID_FILE=" + filepath.Join(dir, "nginx.pid"), "NGINX_CONF=" + filepath.Join(dir, "nginx.conf"),
				fmt.Sprintf("PROBE_URL=http://127.0.0.1:%d/", port)}
		},
	},
}

// TestRealServerKilled runs Apache and nginx from Debian under their
// templates and the pcheck binary, SIGKILLs the master, and checks that
// pcheck logs Down, Try to restart and the new master Up, byte for byte in
// a real rsyslogd's file, and that the server serves again.
func TestRealServerKilled(t *testing.T) {
	pcheck := buildPcheck(t)
	for _, srv := range realServers {
		t.Run(srv.dir, func(t *testing.T) {
			t.Parallel()
			h := startRealServer(t, srv, pcheck)
			if err := syscall.Kill(h.master, syscall.SIGKILL); err != nil {
				t.Fatalf("SIGKILL to master %d: %v", h.master, err)
			}
			h.checkRestarted()
			h.checkStop()
		})
	}
}

// TestRealServerStalled hangs Apache and nginx under their templates and
// the pcheck binary: SIGSTOP to the master, which alone stalls neither
// server (their workers accept and answer on their own), then to its
// process group, the master and its workers. After the failover time
// pcheck must find the stall on the port, kill the master, and restart the
// server.
func TestRealServerStalled(t *testing.T) {
	pcheck := buildPcheck(t)
	for _, srv := range realServers {
		t.Run(srv.dir, func(t *testing.T) {
			t.Parallel()
			h := startRealServer(t, srv, pcheck)
			if err := syscall.Kill(h.master, syscall.SIGSTOP); err != nil {
				t.Fatalf("SIGSTOP to master %d: %v", h.master, err)
			}
			waitState(t, h.master, 'T')
			h.waitServes()
			if err := syscall.Kill(-h.master, syscall.SIGSTOP); err != nil {
				t.Fatalf("SIGSTOP to process group %d: %v", h.master, err)
			}
			h.want(fmt.Sprintf("Find Web Server Stall: pid = %d : port = %d", h.master, h.port), 3)
			h.want(fmt.Sprintf("Killed Process: pid= %d", h.master), 5)
			h.checkRestarted()
			h.checkStop()
		})
	}
}

// realHarness is one server under pcheck, its rsyslogd and what the test
// expects to find in rsyslogd's file, in order.
type realHarness struct {
	t         *testing.T
	srv       realServer
	dir       string
	port      int
	token     string
	master    int // the master pcheck watches now
	pcheck    *exec.Cmd
	stderr    lockedBuffer  // pcheck's output
	exited    chan struct{} // closed when pcheck has exited
	pfilePath string
	file      *syslogtest.Receiver // rsyslogd's RSYSLOG_FileFormat file
	pri       *syslogtest.Receiver // rsyslogd's file with <PRI>
	started   time.Time            // just before pcheck started
	rsFile    string
	lines     []string // every pcheck line awaited, in order

	mu     sync.Mutex
	groups map[int]bool // process groups of the masters seen
}

// startRealServer starts srv by hand with its restart script (as a host
// that adopts a running server), then pcheck on the filled-in template
// pfile, logging to a private rsyslogd, and waits for the master's Up.
// The test's cleanup stops pcheck, kills every process of the instance
// and checks that none is left.
func startRealServer(t *testing.T, srv realServer, pcheck string) *realHarness {
	t.Helper()
	requireServer(t, srv.bin)
	rs := syslogtest.StartRsyslogd(t)
	h := &realHarness{
		t: t, srv: srv, port: freePort(t), groups: map[int]bool{},
		file: syslogtest.FileTail(t, rs.FileLog()), pri: syslogtest.FileTail(t, rs.PriLog()), rsFile: rs.FileLog(),
	}
	h.dir = h.makeDir()
	h.token = fmt.Sprintf("pcheck real %s test %d:%d", srv.dir, os.Getpid(), h.port)
	writeFile(t, filepath.Join(h.dir, "htdocs", "index.html"), 0o644, h.token+"\n")
	h.fillFixtures()
	env := append(srv.env(h.dir, h.port), "START_WAIT=20", "KILL_WAIT=1")

	// The pid file is stale, as after a crash: its pid now belongs to
	// another program (this test). The script must start the server all
	// the same, and leave that program alone.
	writeFile(t, filepath.Join(h.dir, srv.ownPidFile), 0o644, strconv.Itoa(os.Getpid())+"\n")
	if out, err := runScript(t, filepath.Join(srv.dir, srv.script), env); err != nil {
		t.Fatalf("starting %s by hand with %s: %v\n%s", srv.bin, srv.script, err, out)
	}
	h.master = h.readMaster()
	h.waitServes()

	h.pfilePath = h.fillPfile()
	h.pcheck = exec.Command(pcheck, "--state-dir", filepath.Join(h.dir, "state"), "--run-dir", filepath.Join(h.dir, "r"),
		"--syslog", "unixgram:"+rs.Socket, h.pfilePath)
	h.pcheck.Env = append(os.Environ(), env...)
	h.pcheck.Stdout, h.pcheck.Stderr = &h.stderr, &h.stderr
	h.started = time.Now()
	if err := h.pcheck.Start(); err != nil {
		t.Fatal(err)
	}
	h.exited = make(chan struct{})
	go func() { h.pcheck.Wait(); close(h.exited) }()
	t.Cleanup(func() {
		h.stopPcheck()
		if t.Failed() {
			t.Logf("pcheck's output:\n%s", h.stderr.String())
		}
	})
	h.want(fmt.Sprintf("('%s' ,pid=%d) Up", srv.bin, h.master), 6)
	return h
}

// checkRestarted waits for the master's Down, Try to restart and the new
// master's Up; the new master is the pid file's, the old one's process
// group is gone, the restart script reported success and the server
// serves.
func (h *realHarness) checkRestarted() {
	t := h.t
	t.Helper()
	old := h.master
	h.want(fmt.Sprintf("Process ['%s',pid=%d] Down", h.srv.bin, old), 3)
	h.want(fmt.Sprintf("Try to restart ('%s')", h.srv.bin), 5)
	prefix := fmt.Sprintf("('%s' ,pid=", h.srv.bin)
	up := h.file.Wait(t, func(l syslogtest.Line) bool {
		return strings.HasPrefix(l.Text, prefix) && strings.HasSuffix(l.Text, ") Up")
	}, 60*time.Second)
	newPid, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(up.Text, prefix), ") Up"))
	if err != nil {
		t.Fatalf("Up line %q: %v", up.Text, err)
	}
	h.track(newPid)
	h.check(up, 6)
	if newPid == old {
		t.Fatalf("pcheck says the old master %d is Up again", old)
	}
	if pid := h.readMaster(); pid != newPid {
		t.Errorf("pcheck says %q; the pid file names %d", up.Text, pid)
	}
	h.master = newPid
	h.waitServes()
	h.file.WaitText(t, fmt.Sprintf("restart script ('%s'): %s: '%s' is up and answers http://127.0.0.1:%d/",
		h.srv.bin, h.srv.script, h.srv.bin, h.port), 30*time.Second)
	if left := h.processes(func(p realProc) bool { return p.pgid == old }); len(left) > 0 {
		t.Errorf("processes of the old master's group %d still run: %v", old, left)
	}
	for _, l := range h.file.Lines() {
		if strings.HasPrefix(l.Text, "Restart script failed") {
			t.Errorf("pcheck logged %q", l.Text)
		}
	}
}

// checkStop stops pcheck with SIGTERM and checks that it exits 0, having
// logged its stop and never a Down of the current master, and leaves the
// server running and serving; then that every pcheck line awaited is in
// rsyslogd's file byte for byte, in order.
func (h *realHarness) checkStop() {
	t := h.t
	t.Helper()
	if st := h.stopPcheck(); st != 0 {
		t.Errorf("pcheck exited with status %d after SIGTERM, want 0", st)
	}
	h.want("pcheck stop. pfile='"+h.pfilePath+"'", 6)
	down := fmt.Sprintf("Process ['%s',pid=%d] Down", h.srv.bin, h.master)
	for _, l := range h.file.Lines() {
		if l.Text == down {
			t.Errorf("pcheck logged %q for the master it had just found Up", l.Text)
		}
	}
	if !live(h.master) {
		t.Errorf("the master %d did not outlive pcheck's SIGTERM", h.master)
	}
	h.waitServes()

	// Every line awaited is in rsyslogd's file byte for byte, in order.
	data, err := os.ReadFile(h.rsFile)
	if err != nil {
		t.Fatal(err)
	}
	rest := string(data)
	for _, text := range h.lines {
		exact := fmt.Sprintf(" pcheck[%d]: %s\n", h.pcheck.Process.Pid, text)
		i := strings.Index(rest, exact)
		if i < 0 {
			t.Fatalf("rsyslogd's file lacks the exact line %q after the lines before it; the file:\n%s", exact, data)
		}
		rest = rest[i+len(exact):]
	}
}

// stopPcheck sends pcheck SIGTERM, once, and returns its exit status.
func (h *realHarness) stopPcheck() int {
	h.pcheck.Process.Signal(syscall.SIGTERM)
	select {
	case <-h.exited:
	case <-time.After(20 * time.Second):
		h.t.Errorf("pcheck did not exit within 20 s of SIGTERM")
		h.pcheck.Process.Kill()
		<-h.exited
	}
	return h.pcheck.ProcessState.ExitCode()
}

// want waits for a pcheck line in rsyslogd's file, whole as rsyslog writes
// it (pcheck's ident and pid, this host, a time since pcheck started), and
// for it at facility daemon and the given severity in the <PRI> file; it
// is added to the lines checked byte for byte.
func (h *realHarness) want(text string, severity int) {
	h.t.Helper()
	h.check(h.file.WaitText(h.t, text, 30*time.Second), severity)
}

// check checks a pcheck line found in rsyslogd's file as want does.
func (h *realHarness) check(l syslogtest.Line, severity int) {
	t := h.t
	t.Helper()
	text := l.Text
	syslogtest.CheckFileFormat(t, l.Raw, "pcheck", h.pcheck.Process.Pid, text, h.started, time.Now())
	p := h.pri.WaitText(t, text, 30*time.Second)
	syslogtest.CheckProtocol(t, p.Raw, 3, severity, "pcheck", h.pcheck.Process.Pid, text, h.started, time.Now()) // daemon
	h.lines = append(h.lines, text)
}

// makeDir makes the instance's directory, readable by the workers (which
// run as www-data), and registers the cleanup that ends the instance.
func (h *realHarness) makeDir() string {
	t := h.t
	dir, err := os.MkdirTemp("", "pcheck-rs-"+h.srv.dir+"-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.stopAll()
		os.RemoveAll(dir)
	})
	for _, d := range []string{"htdocs", "run", "lock", "log", "tmp"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// fillFixtures copies the server's configuration into the directory with
// its paths, port and worker user.
func (h *realHarness) fillFixtures() {
	t := h.t
	usr, grp := workerUser(t)
	fill := strings.NewReplacer("@DIR@", h.dir, "@PORT@", strconv.Itoa(h.port), "@USER@", usr, "@GROUP@", grp)
	for _, name := range h.srv.fixtures {
		b, err := os.ReadFile(filepath.Join("testdata", "realserver", name))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(h.dir, name), 0o644, fill.Replace(string(b)))
	}
}

// fillPfile writes the template's pfile with the test's paths and port,
// short intervals and a 1 s stall check with a 3 s failover.
func (h *realHarness) fillPfile() string {
	t := h.t
	b, err := os.ReadFile(filepath.Join(h.srv.dir, h.srv.pfile))
	if err != nil {
		t.Fatal(err)
	}
	script, err := filepath.Abs(filepath.Join(h.srv.dir, h.srv.script))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	for _, r := range []struct{ re, with string }{
		{`(?m)^MonitorInterval\s+\d+$`, "MonitorInterval 1"},
		{`(?m)^StartWait\s+\d+$`, "StartWait 20"},
		{`(?m)^KillWait\s+\d+$`, "KillWait 1"},
		{regexp.QuoteMeta("/etc/pcheck/" + h.srv.dir + "/" + h.srv.script), script},
		{regexp.QuoteMeta("pidfile=" + h.srv.pidFile), "pidfile=" + filepath.Join(h.dir, h.srv.ownPidFile)},
		{regexp.QuoteMeta("DIRECT:-:60:0:3:600:80:127.0.0.1"), fmt.Sprintf("DIRECT:-:1:0:3:3:%d:127.0.0.1", h.port)},
	} {
		re := regexp.MustCompile(r.re)
		if !re.MatchString(text) {
			t.Fatalf("%s/%s: no %q: the template changed, change this test too", h.srv.dir, h.srv.pfile, r.re)
		}
		text = re.ReplaceAllLiteralString(text, r.with)
	}
	path := filepath.Join(h.dir, h.srv.pfile)
	writeFile(t, path, 0o644, text)
	return path
}

// readMaster reads the master's pid from the pid file and tracks its
// process group.
func (h *realHarness) readMaster() int {
	pid := readPid(h.t, filepath.Join(h.dir, h.srv.ownPidFile))
	h.track(pid)
	return pid
}

// track records the process group a master leads (both servers start
// their master in a session of its own), so that the cleanup finds its
// workers even after the master is gone.
func (h *realHarness) track(master int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.groups[master] = true
}

// waitServes waits until an HTTP GET on the port answers 200 with this
// test's page.
func (h *realHarness) waitServes() {
	t := h.t
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	url := fmt.Sprintf("http://127.0.0.1:%d/", h.port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get(url)
		if err == nil {
			body, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && rerr == nil && strings.TrimSpace(string(body)) == h.token {
				return
			}
			err = fmt.Errorf("status %s, body %q, %v", resp.Status, body, rerr)
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s does not serve the test's page: %v", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitState waits until pid is in state (a letter of /proc/PID/stat):
// kill returns before its signal has taken effect.
func waitState(t *testing.T, pid int, state byte) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		s := string(b)
		if i := strings.LastIndexByte(s, ')'); err == nil && i >= 0 && len(s) > i+2 && s[i+2] == state {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d is not in state %c: %v %q", pid, state, err, s)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// realProc is a process of the instance.
type realProc struct {
	pid, pgid int
	exe, args string
}

// processes lists the live processes of this instance that match: those
// with the directory in argv (Apache's master and workers, nginx's master,
// pcheck), those with the directory in their environment (restart scripts
// and what they start), and the server's processes in a group of a master
// seen (nginx's workers, which rewrite their argv and environment).
func (h *realHarness) processes(match func(realProc) bool) []realProc {
	h.mu.Lock()
	defer h.mu.Unlock()
	var found []realProc
	entries, _ := filepath.Glob("/proc/[0-9]*")
	for _, e := range entries {
		pid, err := strconv.Atoi(filepath.Base(e))
		if err != nil || pid == os.Getpid() || !live(pid) {
			continue
		}
		stat, err := os.ReadFile(filepath.Join(e, "stat"))
		if err != nil {
			continue
		}
		s := string(stat)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 3 {
			continue
		}
		pgid, _ := strconv.Atoi(f[2])
		exe, _ := os.Readlink(filepath.Join(e, "exe"))
		argv, _ := os.ReadFile(filepath.Join(e, "cmdline"))
		environ, _ := os.ReadFile(filepath.Join(e, "environ"))
		p := realProc{pid: pid, pgid: pgid, exe: exe, args: string(bytes.ReplaceAll(argv, []byte{0}, []byte{' '}))}
		ours := strings.Contains(p.args, h.dir+"/") || bytes.Contains(environ, []byte(h.dir+"/")) ||
			(exe == h.srv.bin && h.groups[pgid])
		if ours && match(p) {
			found = append(found, p)
		}
	}
	return found
}

// stopAll kills what is left of the instance once pcheck has stopped (the
// servers, a restart script still running), until nothing is left, and
// checks that pgrep finds nothing started with the instance's
// configuration either.
func (h *realHarness) stopAll() {
	t := h.t
	all := func(realProc) bool { return true }
	deadline := time.Now().Add(15 * time.Second)
	for {
		left := h.processes(all)
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("processes of the instance survive SIGKILL: %v", left)
			return
		}
		for _, p := range left {
			syscall.Kill(p.pid, syscall.SIGKILL)
		}
		time.Sleep(50 * time.Millisecond)
	}
	conf := filepath.Join(h.dir, h.srv.conf)
	out, err := exec.Command("pgrep", "-a", "-f", regexp.QuoteMeta(conf)).CombinedOutput()
	switch {
	case exitCode(err) == 1:
		// pgrep found no such process.
	case err == nil:
		t.Errorf("processes started with %s are left behind:\n%s", conf, out)
	default:
		t.Errorf("pgrep -f %s: %v\n%s", conf, err, out)
	}
}

// requireServer skips the test when the server is not installed, or fails
// it when requireWebserversEnv is set.
func requireServer(t *testing.T, bin string) {
	t.Helper()
	requireTools(t)
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv(requireWebserversEnv) != "" {
			t.Fatalf("%s is not installed but %s is set (apt-get install -y apache2 nginx): %v", bin, requireWebserversEnv, err)
		}
		t.Skipf("%s is not installed (apt-get install -y apache2 nginx)", bin)
	}
	// The check that nothing is left behind uses pgrep.
	if _, err := exec.LookPath("pgrep"); err != nil {
		if os.Getenv(requireWebserversEnv) != "" {
			t.Fatalf("pgrep is not installed but %s is set (apt-get install -y procps): %v", requireWebserversEnv, err)
		}
		t.Skipf("pgrep is not installed (apt-get install -y procps)")
	}
}

// workerUser is the user and group of the servers' workers: Debian's
// www-data.
func workerUser(t *testing.T) (string, string) {
	t.Helper()
	if _, err := user.Lookup("www-data"); err != nil {
		t.Fatalf("user www-data, which runs the workers on Debian: %v", err)
	}
	if _, err := user.LookupGroup("www-data"); err != nil {
		t.Fatalf("group www-data, which runs the workers on Debian: %v", err)
	}
	return "www-data", "www-data"
}

// buildPcheck builds the pcheck binary into the test's directory.
func buildPcheck(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not in PATH: cannot build pcheck")
	}
	bin := filepath.Join(t.TempDir(), "pcheck")
	if out, err := exec.Command(goTool, "build", "-o", bin, "../cmd/pcheck").CombinedOutput(); err != nil {
		t.Fatalf("go build ../cmd/pcheck: %v\n%s", err, out)
	}
	return bin
}

// lockedBuffer is a bytes.Buffer safe for a process's output and the test
// reading it at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
