package templates

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pcheck/pcheck/checker/syslogtest"
)

// TestApacheTemplateUnderPcheck runs the apache template as an operator
// would, under the real pcheck (built from cmd/pcheck): the pfile with the
// fake Apache's paths and port and a 1 s stall check, the restart script as
// it is. The master is killed; pcheck must see it Down, run the script, and
// find the new master Up, with the old workers gone.
func TestApacheTemplateUnderPcheck(t *testing.T) {
	requireTools(t)
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not in PATH: cannot build pcheck")
	}
	tmp := shortTemp(t)
	pcheck := filepath.Join(tmp, "pcheck")
	if out, err := exec.Command(goTool, "build", "-o", pcheck, "../cmd/pcheck").CombinedOutput(); err != nil {
		t.Fatalf("go build ../cmd/pcheck: %v\n%s", err, out)
	}
	port := freePort(t)
	env, bin := apacheSetup(t, tmp, port)
	env = append(env, "KILL_WAIT=1", "START_WAIT=30")
	pidFile := filepath.Join(tmp, "apache2.pid")

	text, err := os.ReadFile("apache/apache2.pfile")
	if err != nil {
		t.Fatal(err)
	}
	script, err := filepath.Abs("apache/restart_apache.sh")
	if err != nil {
		t.Fatal(err)
	}
	pf := strings.NewReplacer(
		"/usr/sbin/apache2 ", bin+" ",
		"/etc/pcheck/apache/restart_apache.sh", script,
		"pidfile=/run/apache2/apache2.pid", "pidfile="+pidFile,
		"DIRECT:-:60:0:3:600:80:", fmt.Sprintf("DIRECT:-:1:0:3:5:%d:", port),
	).Replace(string(text))
	if strings.Contains(pf, "/usr/sbin/apache2") || !strings.Contains(pf, fmt.Sprintf(":%d:", port)) {
		t.Fatalf("the template changed: rewrite it here too\n%s", pf)
	}
	pfPath := filepath.Join(tmp, "apache.pfile")
	writeFile(t, pfPath, 0o644, pf)

	// Apache is running before pcheck starts, as on a host that adopts it.
	if out, err := runScript(t, "apache/restart_apache.sh", env, bin, "0", "pidfail"); err != nil {
		t.Fatalf("first start: %v\n%s", err, out)
	}
	old := readPid(t, pidFile)
	workers := waitChildren(t, old, 2)

	logs := syslogtest.Listen(t)
	cmd := exec.Command(pcheck, "--state-dir", filepath.Join(tmp, "state"), "--run-dir", filepath.Join(tmp, "run"),
		"--syslog", "unixgram:"+logs.Addr(), pfPath)
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	logs.WaitText(t, fmt.Sprintf("('%s' ,pid=%d) Up", bin, old), 30*time.Second)

	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	logs.WaitText(t, fmt.Sprintf("Process ['%s',pid=%d] Down", bin, old), 30*time.Second)
	logs.WaitText(t, fmt.Sprintf("Try to restart ('%s')", bin), 30*time.Second)
	up := logs.Wait(t, func(l syslogtest.Line) bool {
		return strings.HasPrefix(l.Text, fmt.Sprintf("('%s' ,pid=", bin)) && strings.HasSuffix(l.Text, ") Up")
	}, 60*time.Second)
	if pid := readPid(t, pidFile); !strings.Contains(up.Text, fmt.Sprintf("pid=%d)", pid)) || pid == old {
		t.Errorf("pcheck says %q; the pid file names %d (old master %d)", up.Text, pid, old)
	}
	for _, w := range workers {
		if live(w) {
			t.Errorf("worker %d of the dead master still runs", w)
		}
	}
	// The script's own report reaches syslog through pcheck.
	logs.Wait(t, func(l syslogtest.Line) bool {
		return strings.Contains(l.Text, "restart_apache.sh: '"+bin+"' is up and answers")
	}, 30*time.Second)
	for _, l := range logs.Lines() {
		if strings.Contains(l.Text, "Restart script failed") {
			t.Errorf("pcheck logged %q", l.Text)
		}
	}
}
