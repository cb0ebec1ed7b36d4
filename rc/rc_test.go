package rc

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pcheck/pcheck/checker/state"
	"github.com/pcheck/pcheck/checker/syslogtest"
)

// roleEnv makes the test binary play a part: "service" is a process to
// watch, "sleep" a process that waits until killed.
const roleEnv = "PCHECK_RC_ROLE"

func TestMain(m *testing.M) {
	switch os.Getenv(roleEnv) {
	case "service", "sleep":
		for {
			time.Sleep(time.Hour)
		}
	}
	os.Exit(m.Run())
}

// unitDirectives returns the Key=Value lines of the unit, by key.
func unitDirectives(t *testing.T) map[string][]string {
	t.Helper()
	f, err := os.Open("pcheck@.service")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	kv := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "[") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Errorf("pcheck@.service: line %q is not Key=Value", line)
			continue
		}
		kv[k] = append(kv[k], v)
	}
	return kv
}

func TestUnitSettings(t *testing.T) {
	kv := unitDirectives(t)
	want := map[string]string{
		"Type":                     "notify",
		"NotifyAccess":             "main",
		"WatchdogSec":              "30",
		"Restart":                  "on-failure",
		"KillMode":                 "process",
		"StateDirectory":           "pcheck",
		"RuntimeDirectory":         "pcheck",
		"RuntimeDirectoryPreserve": "yes",
		"ExecReload":               "/bin/kill -HUP $MAINPID",
		"OOMPolicy":                "continue",
		"WantedBy":                 "multi-user.target",
	}
	for k, v := range want {
		if got := kv[k]; len(got) != 1 || got[0] != v {
			t.Errorf("%s=%q, want %q", k, got, v)
		}
	}
	if got := kv["RestartPreventExitStatus"]; len(got) != 1 || !strings.Contains(" "+got[0]+" ", " 3 ") {
		t.Errorf("RestartPreventExitStatus=%q, want it to hold 3 (retry over with action exit)", got)
	}
	start := kv["ExecStart"]
	if len(start) != 1 {
		t.Fatalf("ExecStart=%q, want one", start)
	}
	fields := strings.Fields(start[0])
	if fields[0] != "/usr/sbin/pcheck" || fields[len(fields)-1] != "/etc/pcheck/%I.pfile" {
		t.Errorf("ExecStart=%q, want /usr/sbin/pcheck ... /etc/pcheck/%%I.pfile", start[0])
	}
	for _, f := range fields {
		if f == "-D" || f == "--daemon" {
			t.Errorf("ExecStart=%q: Type=notify needs pcheck in the foreground, without -D", start[0])
		}
	}
	// Sandboxing is inherited by the products the restart scripts start.
	for _, k := range []string{"PrivateTmp", "ProtectSystem", "ProtectHome", "NoNewPrivileges", "MemoryDenyWriteExecute", "ProtectProc", "OOMScoreAdjust"} {
		if v, ok := kv[k]; ok {
			t.Errorf("%s=%q would be inherited by the monitored products", k, v)
		}
	}
}

// TestUnitVerify runs systemd-analyze verify on an instance of the unit,
// with ExecStart pointing at an executable that exists here.
func TestUnitVerify(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	text, err := os.ReadFile("pcheck@.service")
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	text = bytes.ReplaceAll(text, []byte("/usr/sbin/pcheck"), []byte(self))
	for _, name := range []string{"pcheck@.service", "pcheck@apache.service"} {
		if err := os.WriteFile(filepath.Join(dir, name), text, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(sa, "verify", "--man=no", "./pcheck@apache.service")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	// Unknown keys and bad values are only warnings: none is allowed.
	if len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify warns:\n%s", out)
	}
}

func TestInitScriptSyntax(t *testing.T) {
	for _, sh := range []string{"bash", "sh", "dash"} {
		path, err := exec.LookPath(sh)
		if err != nil {
			continue
		}
		if out, err := exec.Command(path, "-n", "pcheck.init").CombinedOutput(); err != nil {
			t.Errorf("%s -n pcheck.init: %v\n%s", sh, err, out)
		}
	}
	b, err := os.ReadFile("pcheck.init")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("#!/bin/sh\n")) {
		t.Errorf("pcheck.init does not start with #!/bin/sh")
	}
	if st, _ := os.Stat("pcheck.init"); st.Mode().Perm()&0o111 == 0 {
		t.Errorf("pcheck.init is not executable: %v", st.Mode().Perm())
	}
}

func TestInitScriptLSBHeader(t *testing.T) {
	b, err := os.ReadFile("pcheck.init")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	begin := strings.Index(text, "### BEGIN INIT INFO\n")
	end := strings.Index(text, "### END INIT INFO\n")
	if begin < 0 || end < begin {
		t.Fatal("no ### BEGIN INIT INFO ... ### END INIT INFO block")
	}
	fields := map[string]string{}
	last := ""
	for _, line := range strings.Split(text[begin:end], "\n")[1:] {
		if line == "" {
			continue
		}
		if !strings.HasPrefix(line, "# ") {
			t.Errorf("header line %q does not start with \"# \"", line)
			continue
		}
		line = line[2:]
		if strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t") {
			if last == "" {
				t.Errorf("continuation line %q without a field", line)
			}
			fields[last] += " " + strings.TrimSpace(line)
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			t.Errorf("header line %q is not Field: value", line)
			continue
		}
		last = k
		fields[k] = strings.TrimSpace(v)
	}
	want := map[string]string{
		"Provides":       "pcheck",
		"Default-Start":  "2 3 4 5",
		"Default-Stop":   "0 1 6",
		"Required-Start": "$local_fs $remote_fs $network $syslog",
		"Required-Stop":  "$local_fs $remote_fs $network $syslog",
	}
	for k, v := range want {
		if fields[k] != v {
			t.Errorf("%s: %q, want %q", k, fields[k], v)
		}
	}
	for _, k := range []string{"Short-Description", "Description"} {
		if fields[k] == "" {
			t.Errorf("%s is missing", k)
		}
	}
	known := "Provides Required-Start Required-Stop Should-Start Should-Stop Default-Start Default-Stop Short-Description Description"
	for k := range fields {
		if !strings.Contains(" "+known+" ", " "+k+" ") && !strings.HasPrefix(k, "X-") {
			t.Errorf("unknown header field %q", k)
		}
	}

	// Every LSB action is handled; anything else is a usage error.
	out, err := exec.Command("sh", "pcheck.init", "frobnicate").CombinedOutput()
	if code := exitCode(err); code != 2 {
		t.Errorf("pcheck.init frobnicate: exit %d, want 2 (usage)\n%s", code, out)
	}
	for _, action := range []string{"start", "stop", "status", "restart", "reload", "force-reload"} {
		if !strings.Contains(string(out), action) {
			t.Errorf("usage %q does not name %s", out, action)
		}
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(action) + `\)`).MatchString(text) {
			t.Errorf("pcheck.init has no case for %s", action)
		}
	}
}

// initEnv is what the init script reads instead of the system's paths.
type initEnv struct {
	dir, pcheck, runlist, stateDir, runDir string
	opts                                   string
}

// newInitEnv prepares the init script's paths in a temporary directory;
// pcheck is the real one, built from cmd/pcheck, when build is set, else a
// copy of the test binary (a process named pcheck).
func newInitEnv(t *testing.T, build bool) *initEnv {
	t.Helper()
	dir := shortTemp(t)
	pcheck := filepath.Join(dir, "pcheck")
	if build {
		goTool, err := exec.LookPath("go")
		if err != nil {
			t.Skip("the go command is not in PATH: cannot build pcheck")
		}
		if out, err := exec.Command(goTool, "build", "-o", pcheck, "../cmd/pcheck").CombinedOutput(); err != nil {
			t.Fatalf("go build ../cmd/pcheck: %v\n%s", err, out)
		}
	} else {
		copySelf(t, pcheck)
	}
	e := &initEnv{
		dir:      dir,
		pcheck:   pcheck,
		runlist:  filepath.Join(dir, "runlist"),
		stateDir: filepath.Join(dir, "state"),
		runDir:   filepath.Join(dir, "run"),
	}
	return e
}

// run runs the init script with an action and returns its output and exit
// status.
func (e *initEnv) run(t *testing.T, action string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "pcheck.init", action)
	cmd.Env = append(os.Environ(),
		"PCHECK="+e.pcheck, "RUNLIST="+e.runlist, "STATE_DIR="+e.stateDir,
		"RUN_DIR="+e.runDir, "PCHECK_OPTS="+e.opts, "STOP_TIMEOUT=20")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("pcheck.init %s did not end:\n%s", action, out.String())
	}
	return out.String(), exitCode(err)
}

// TestInitScriptRunsPcheck starts, inspects, reloads and stops the real
// pcheck through the init script, and checks that the watched process
// outlives it.
func TestInitScriptRunsPcheck(t *testing.T) {
	e := newInitEnv(t, true)
	logs := syslogtest.Listen(t)
	e.opts = "--syslog unixgram:" + logs.Addr()

	svcPath := copySelf(t, filepath.Join(e.dir, "svc"))
	svc := exec.Command(svcPath)
	svc.Env = append(os.Environ(), roleEnv+"=service")
	if err := svc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Process.Kill(); svc.Wait() })

	script := filepath.Join(e.dir, "restart_svc.sh")
	writeFile(t, script, 0o755, "#!/bin/sh\nexit 1\n")
	pf := filepath.Join(e.dir, "svc.pfile")
	writeFile(t, pf, 0o644, fmt.Sprintf("MonitorInterval 1\n%s %s\n", svcPath, script))
	writeFile(t, e.runlist, 0o644, "# test runlist\n\n  "+pf+"   # the service\n")

	out, code := e.run(t, "status")
	if code != 3 || !strings.Contains(out, "not running") {
		t.Errorf("status before start: exit %d, want 3\n%s", code, out)
	}

	out, code = e.run(t, "start")
	if code != 0 {
		t.Fatalf("start: exit %d\n%s", code, out)
	}
	lockPath := filepath.Join(e.stateDir, state.Name(pf)+".pid")
	pid := readPid(t, lockPath)
	if !strings.Contains(out, fmt.Sprintf("started (pid %d)", pid)) {
		t.Errorf("start does not name the pid of the pid file %s (%d):\n%s", lockPath, pid, out)
	}
	logs.WaitText(t, fmt.Sprintf("('%s' ,pid=%d) Up", svcPath, svc.Process.Pid), 30*time.Second)

	out, code = e.run(t, "status")
	if code != 0 || !strings.Contains(out, fmt.Sprintf("is running (pid %d)", pid)) {
		t.Errorf("status: exit %d, want 0 and pid %d\n%s", code, pid, out)
	}
	out, code = e.run(t, "start")
	if code != 0 || !strings.Contains(out, "already running") {
		t.Errorf("second start: exit %d, want 0 and already running\n%s", code, out)
	}
	if p := readPid(t, lockPath); p != pid {
		t.Errorf("second start replaced pcheck %d by %d", pid, p)
	}
	out, code = e.run(t, "reload")
	if code != 0 || !strings.Contains(out, "reloads") {
		t.Errorf("reload: exit %d, want 0\n%s", code, out)
	}

	out, code = e.run(t, "stop")
	if code != 0 || !strings.Contains(out, "stopped") {
		t.Errorf("stop: exit %d, want 0\n%s", code, out)
	}
	if processAlive(pid) {
		t.Errorf("pcheck %d still runs after stop", pid)
	}
	logs.WaitText(t, fmt.Sprintf("pcheck stop. pfile='%s'", pf), 30*time.Second)
	if !processAlive(svc.Process.Pid) {
		t.Errorf("the watched process %d did not outlive pcheck", svc.Process.Pid)
	}
	out, code = e.run(t, "status")
	if code != 3 {
		t.Errorf("status after stop: exit %d, want 3\n%s", code, out)
	}
	out, code = e.run(t, "stop")
	if code != 0 {
		t.Errorf("stop when stopped: exit %d, want 0\n%s", code, out)
	}
	out, code = e.run(t, "reload")
	if code != 7 {
		t.Errorf("reload when stopped: exit %d, want 7\n%s", code, out)
	}

	// force-reload starts what is listed and not running.
	out, code = e.run(t, "force-reload")
	if code != 0 || !strings.Contains(out, "started") {
		t.Fatalf("force-reload when stopped: exit %d, want 0 and a start\n%s", code, out)
	}
	pid = readPid(t, lockPath)
	if out, code := e.run(t, "restart"); code != 0 || !strings.Contains(out, "stopped") || !strings.Contains(out, "started") {
		t.Errorf("restart: exit %d, want 0, stopped and started\n%s", code, out)
	}
	if p := readPid(t, lockPath); p == pid || !processAlive(p) {
		t.Errorf("restart: pid file names %d, want a new live pcheck (old %d)", p, pid)
	}
	if out, code := e.run(t, "stop"); code != 0 {
		t.Errorf("final stop: exit %d\n%s", code, out)
	}
}

// TestInitScriptFindsPidFiles checks that the init script names pid files
// as pcheck does (checker/state.Name) for paths that need cleaning,
// escaping, shortening or the hash fallback.
func TestInitScriptFindsPidFiles(t *testing.T) {
	e := newInitEnv(t, false)
	if err := os.MkdirAll(e.stateDir, 0o755); err != nil {
		t.Fatal(err)
	}
	sleeper := exec.Command(e.pcheck) // named pcheck, as the script expects
	sleeper.Env = append(os.Environ(), roleEnv+"=sleep")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sleeper.Process.Kill(); sleeper.Wait() })
	pid := sleeper.Process.Pid

	paths := []struct{ listed, clean string }{
		{"/etc/pcheck/web.pfile", ""},
		{"/etc//pcheck/./sub/../odd name#1+x.pfile", "/etc/pcheck/odd name#1+x.pfile"},
		{"/srv/" + strings.Repeat("very-long-directory-name/", 6) + "app.pfile", ""},
		{"/etc/pcheck/wéb.pfile", ""},
	}
	var runlist strings.Builder
	for _, p := range paths {
		clean := p.clean
		if clean == "" {
			clean = p.listed
		}
		runlist.WriteString(p.listed + "\n")
		writeFile(t, filepath.Join(e.stateDir, state.Name(clean)+".pid"), 0o644, fmt.Sprintf("%d\n", pid))
	}
	// A pfile whose pid file names a dead process.
	stale := "/etc/pcheck/stale.pfile"
	runlist.WriteString(stale + "\n")
	writeFile(t, filepath.Join(e.stateDir, state.Name(stale)+".pid"), 0o644, "999999999\n")
	writeFile(t, e.runlist, 0o644, runlist.String())

	out, code := e.run(t, "status")
	for _, p := range paths {
		clean := p.clean
		if clean == "" {
			clean = p.listed
		}
		if want := fmt.Sprintf("pcheck for %s is running (pid %d)", clean, pid); !strings.Contains(out, want) {
			t.Errorf("status does not say %q:\n%s", want, out)
		}
	}
	if !strings.Contains(out, "pcheck for "+stale+" is dead") {
		t.Errorf("status does not report the stale pid file of %s:\n%s", stale, out)
	}
	if code != 1 {
		t.Errorf("status with a stale pid file: exit %d, want 1", code)
	}
}

// TestMakeInstall installs into a temporary DESTDIR and checks the tree.
func TestMakeInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries")
	}
	mk, err := exec.LookPath("make")
	if err != nil {
		t.Skip("make is not installed")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dest := t.TempDir()
	bin := t.TempDir()
	cmd := exec.Command(mk, "-C", root, "install", "DESTDIR="+dest, "PREFIX=/usr", "BIN="+bin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	want := map[string]os.FileMode{
		"usr/sbin/pcheck":                                         0o755,
		"usr/lib/systemd/system/pcheck@.service":                  0o644,
		"usr/share/pcheck/rc/pcheck.init":                         0o755,
		"usr/share/pcheck/rc/runlist.sample":                      0o644,
		"usr/share/pcheck/prometheus/pcheck-rules.yml":            0o644,
		"usr/share/man/man8/pcheck.8":                             0o644,
		"usr/share/man/man8/padmin.8":                             0o644,
		"usr/share/man/man5/pfile.5":                              0o644,
		"usr/share/pcheck/templates/apache/apache2.pfile":         0o644,
		"usr/share/pcheck/templates/apache/httpd.pfile":           0o644,
		"usr/share/pcheck/templates/apache/restart_apache.sh":     0o755,
		"usr/share/pcheck/templates/apache/README.md":             0o644,
		"usr/share/pcheck/templates/AutoReboot/apache.pfile":      0o644,
		"usr/share/pcheck/templates/AutoReboot/restart_apache.sh": 0o755,
		"usr/share/pcheck/templates/tomcat/restart_tomcat.sh":     0o755,
		"usr/share/pcheck/templates/sunone/restart_sunone.sh":     0o755,
		"usr/share/pcheck/templates/https/restart_httpd.sh":       0o755,
		"usr/share/pcheck/templates/nginx/restart_nginx.sh":       0o755,
		"etc/pcheck":                                   os.ModeDir | 0o755,
		"usr/lib/ocf/resource.d/pcheck/pcheck":         0o755,
		"usr/share/pcheck/rc/pcheck.default":           0o644,
		"etc/default/pcheck":                           0o644,
		"usr/share/doc/pcheck/README.md":               0o644,
		"usr/share/doc/pcheck/docs/behaviour.md":       0o644,
		"usr/share/doc/pcheck/docs/metrics.md":         0o644,
		"usr/share/bash-completion/completions/padmin": 0o644,
		"usr/share/zsh/site-functions/_padmin":         0o644,
	}
	if srcs, _ := filepath.Glob(filepath.Join(root, "cmd", "padmin", "*.go")); len(srcs) > 0 {
		want["usr/sbin/padmin"] = 0o755
	}
	for rel, mode := range want {
		st, err := os.Stat(filepath.Join(dest, rel))
		if err != nil {
			t.Errorf("%s: not installed: %v", rel, err)
			continue
		}
		if got := st.Mode() & (os.ModeDir | os.ModePerm); got != mode {
			t.Errorf("%s: mode %v, want %v", rel, got, mode)
		}
	}
	// Only the product's commands go to sbin (no demo servers).
	sbin, _ := os.ReadDir(filepath.Join(dest, "usr/sbin"))
	for _, e := range sbin {
		if e.Name() != "pcheck" && e.Name() != "padmin" {
			t.Errorf("usr/sbin/%s installed: only pcheck and padmin belong there", e.Name())
		}
	}
	// Nothing but the templates themselves: no Go test files.
	filepath.WalkDir(filepath.Join(dest, "usr/share/pcheck/templates"), func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".go") {
			t.Errorf("%s: a Go file among the installed templates", p)
		}
		return nil
	})
	// The installed unit and init script run the installed binary.
	unit, _ := os.ReadFile(filepath.Join(dest, "usr/lib/systemd/system/pcheck@.service"))
	if !bytes.Contains(unit, []byte("ExecStart=/usr/sbin/pcheck ")) {
		t.Errorf("installed unit does not start /usr/sbin/pcheck")
	}
	checkInstalled(t, root, dest)
	// Without INITSCRIPT=yes nothing goes to /etc/init.d.
	if _, err := os.Stat(filepath.Join(dest, "etc/init.d/pcheck")); err == nil {
		t.Errorf("etc/init.d/pcheck installed without INITSCRIPT=yes")
	}

	// PREFIX=/usr/local moves the binary, and the unit follows it;
	// INITSCRIPT=yes installs the init script.
	dest2 := t.TempDir()
	cmd = exec.Command(mk, "-C", root, "install", "DESTDIR="+dest2, "PREFIX=/usr/local", "BIN="+bin, "INITSCRIPT=yes")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make install PREFIX=/usr/local: %v\n%s", err, out)
	}
	unit, err = os.ReadFile(filepath.Join(dest2, "usr/local/lib/systemd/system/pcheck@.service"))
	if err != nil || !bytes.Contains(unit, []byte("ExecStart=/usr/local/sbin/pcheck ")) {
		t.Errorf("unit for PREFIX=/usr/local does not start /usr/local/sbin/pcheck (%v)", err)
	}
	init, err := os.ReadFile(filepath.Join(dest2, "etc/init.d/pcheck"))
	if err != nil || !bytes.Contains(init, []byte("PCHECK:=/usr/local/sbin/pcheck}")) {
		t.Errorf("etc/init.d/pcheck for PREFIX=/usr/local does not run /usr/local/sbin/pcheck (%v)", err)
	}
	agent, err := os.ReadFile(filepath.Join(dest2, "usr/lib/ocf/resource.d/pcheck/pcheck"))
	if err != nil || !bytes.Contains(agent, []byte("_pcheck_default=/usr/local/sbin/pcheck\n")) || !bytes.Contains(agent, []byte("_padmin_default=/usr/local/sbin/padmin\n")) {
		t.Errorf("the OCF agent for PREFIX=/usr/local does not run /usr/local/sbin/pcheck and padmin (%v)", err)
	}
	if st, err := os.Stat(filepath.Join(dest2, "etc/init.d/pcheck")); err == nil && st.Mode().Perm() != 0o755 {
		t.Errorf("etc/init.d/pcheck: mode %v, want 0755", st.Mode().Perm())
	}
	checkUninstall(t, mk, root, dest, "/usr", bin)
	checkUninstall(t, mk, root, dest2, "/usr/local", bin, "INITSCRIPT=yes")
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

// shortTemp is a temporary directory; every process whose executable lies
// in it (the copies this test made: pcheck, the watched service) is killed
// when the test ends. That is how pchecks that a failed test left running
// are ended, without signalling a pid that may have been reused.
func shortTemp(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Cleanup(func() {
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
	})
	return dir
}

// copySelf copies the test binary to path.
func copySelf(t *testing.T, path string) string {
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

func writeFile(t *testing.T, path string, mode os.FileMode, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), mode); err != nil {
		t.Fatal(err)
	}
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

// processAlive reports whether pid is a process that is not a zombie.
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && len(s) > i+2 && s[i+2] != 'Z'
}

// TestManPages renders every man page without a warning and checks that
// pcheck(8) documents every option pcheck's usage names.
func TestManPages(t *testing.T) {
	pages, _ := filepath.Glob("../docs/man/*.[58]")
	if len(pages) != 3 {
		t.Fatalf("man pages %v, want pcheck.8, padmin.8 and pfile.5", pages)
	}
	if groff, err := exec.LookPath("groff"); err == nil {
		for _, p := range pages {
			cmd := exec.Command(groff, "-man", "-Tutf8", "-ww", "-z", p)
			out, err := cmd.CombinedOutput()
			if err != nil || len(out) > 0 {
				t.Errorf("groff %s: %v\n%s", p, err, out)
			}
		}
	} else {
		t.Log("groff is not installed: rendering not checked")
	}
	src, err := os.ReadFile("../cmd/pcheck/main.go")
	if err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile("../docs/man/pcheck.8")
	if err != nil {
		t.Fatal(err)
	}
	usage := regexp.MustCompile("(?s)const usage = `.*?`").Find(src)
	opts := regexp.MustCompile(`--[a-z][a-z-]*`).FindAll(usage, -1)
	if len(opts) == 0 {
		t.Fatal("no option found in cmd/pcheck's usage")
	}
	for _, o := range opts {
		roff := strings.ReplaceAll(string(o), "-", `\-`)
		// On a macro line such as .TP's tag: .B, .BI, .BR.
		if !regexp.MustCompile(`(?m)^\.B[IR]? .*` + regexp.QuoteMeta(roff) + `\b`).Match(page) {
			t.Errorf("pcheck.8 does not document %s", o)
		}
	}
}
