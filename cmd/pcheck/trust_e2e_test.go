package main

// The files pcheck runs or trusts as root (docs/behaviour.md, "Files pcheck
// runs or trusts"): refused by pcheck -n at the position of the field that
// names them, and by a start.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// nobody is the uid and gid of user nobody, the attacker of these tests.
const nobody = 65534

// asNobody runs sh -c script as user nobody and fails the test if it fails.
func asNobody(t *testing.T, script string) {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("as nobody: %s: %v\n%s", script, err, out)
	}
}

// reachable lets other users walk down to dir (t.TempDir makes its parent
// 0700), as they can on a real box.
func reachable(t *testing.T, dir string) {
	t.Helper()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// scriptField is where service.pf names the restart script: line 13,
// after the process path and a blank.
func (e *e2e) scriptField() string { return fmt.Sprintf("%s:13:%d", e.pfile, len(self)+2) }

// TestWorldWritableScript: a 0777 restart script is refused by pcheck -n
// and at start, so a line that user nobody appends to it never runs as
// root. Today the appended line runs as uid 0 when the process dies.
func TestWorldWritableScript(t *testing.T) {
	t.Parallel()
	e := setup(t, "start", 3, "continue")
	reachable(t, e.dir)
	script := filepath.Join(e.dir, "restart.sh")
	// Many scripts end without an exit: what is appended runs.
	b, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(script, bytes.TrimSuffix(b, []byte("exit 0\n")), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(script, 0o777); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%s: restart script %s is writable by group and other (mode 0777): chmod go-w %s", e.scriptField(), script, script)

	ranAs := filepath.Join(e.dir, "ran-as")
	asNobody(t, fmt.Sprintf("echo 'id -u > %s' >> %s", ranAs, script))
	pid := e.startService()
	p := e.pcheck(e.pfile)
	up := fmt.Sprintf("('%s' ,pid=%d) Up", self, pid)
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-p.done:
		default:
			if !hasLine(e, up) && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			if hasLine(e, up) {
				// Today's defect: pcheck runs the script, with the
				// line nobody appended, as root.
				syscall.Kill(pid, syscall.SIGKILL)
				e.wait(fmt.Sprintf("Try to restart ('%s')", self))
				waitFile(t, ranAs)
				b, _ := os.ReadFile(ranAs)
				t.Fatalf("pcheck started on a 0777 restart script, and the line nobody appended ran as uid %s", strings.TrimSpace(string(b)))
			}
			t.Fatalf("pcheck neither refused nor adopted; stderr:\n%s", p.stderr)
		}
		break
	}
	if st := p.status(t); st != 2 {
		t.Fatalf("exit status %d, want 2; stderr:\n%s", st, p.stderr)
	}
	if !strings.Contains(p.stderr.String(), want+"\n") {
		t.Fatalf("stderr lacks %q:\n%s", want, p.stderr)
	}
	e.wait("pfile error: " + want)
	if _, err := os.Stat(filepath.Join(e.dir, "state")); !os.IsNotExist(err) {
		t.Fatal("the state directory was created for a refused pfile")
	}
	syscall.Kill(pid, syscall.SIGKILL)
	if _, err := os.Stat(ranAs); !os.IsNotExist(err) {
		t.Fatal("the line nobody appended ran")
	}
	if b, _ := os.ReadFile(e.calls); len(b) != 0 {
		t.Fatalf("the restart script ran: %s", b)
	}

	out, err := exec.Command(pcheckBin, "-n", e.pfile).CombinedOutput()
	if code := exitCode(err); code != 2 || !strings.HasPrefix(string(out), want+"\n") {
		t.Fatalf("pcheck -n: status %d, output\n%s\nwant status 2 and\n%s", code, out, want)
	}
}

func hasLine(e *e2e, text string) bool {
	for _, l := range e.log.Lines() {
		if l.Text == text {
			return true
		}
	}
	return false
}

func waitFile(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s was not written", path)
		}
		time.Sleep(10 * time.Millisecond)
	}
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

// TestCheckNamedFiles: pcheck -n refuses each file a pfile names that
// pcheck could not trust, at the file:line:col of the field naming it,
// and accepts the safe ones. Every file is real, made with the mode and
// owner it needs.
func TestCheckNamedFiles(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the files are given to user nobody")
	}
	file := func(t *testing.T, path string, mode os.FileMode) string {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("#!/bin/sh\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		return path
	}
	dir := func(t *testing.T, path string, mode os.FileMode) {
		t.Helper()
		if err := os.Mkdir(path, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
	}
	chown := func(t *testing.T, path string) {
		t.Helper()
		if err := os.Chown(path, nobody, nobody); err != nil {
			t.Fatal(err)
		}
	}
	// The process line is "/usr/sbin/web <script>": the script starts
	// at column 15 of its line.
	const target = "/usr/sbin/web "
	cases := []struct {
		name string
		// pfile returns the pfile's text for the test directory d,
		// making its files; want is the error line ("" when accepted),
		// with @D@ for d and @P@ for the pfile.
		pfile func(t *testing.T, d string) string
		want  string
	}{
		{"safe files", func(t *testing.T, d string) string {
			return target + file(t, d+"/r.sh", 0o755) + "\n"
		}, ""},
		{"group-writable script", func(t *testing.T, d string) string {
			return target + file(t, d+"/r.sh", 0o775) + "\n"
		}, "@P@:1:15: restart script @D@/r.sh is writable by group (mode 0775): chmod g-w @D@/r.sh"},
		{"script owned by nobody", func(t *testing.T, d string) string {
			s := file(t, d+"/r.sh", 0o755)
			chown(t, s)
			return target + s + "\n"
		}, "@P@:1:15: restart script @D@/r.sh is owned by uid 65534 (nobody), not root: chown root @D@/r.sh"},
		{"script in a directory writable by other", func(t *testing.T, d string) string {
			s := file(t, d+"/open/r.sh", 0o755)
			os.Chmod(d+"/open", 0o777)
			return target + s + "\n"
		}, "@P@:1:15: restart script @D@/open/r.sh is reached through directory @D@/open, which is writable by group and other without the sticky bit (mode 0777): chmod go-w @D@/open"},
		{"script in a sticky directory", func(t *testing.T, d string) string {
			s := file(t, d+"/tmp/r.sh", 0o755)
			os.Chmod(d+"/tmp", os.ModeSticky|0o777)
			return target + s + "\n"
		}, ""},
		{"missing script", func(t *testing.T, d string) string {
			return target + d + "/none.sh\n"
		}, "@P@:1:15: restart script @D@/none.sh does not exist"},
		{"script not executable", func(t *testing.T, d string) string {
			return target + file(t, d+"/r.sh", 0o644) + "\n"
		}, "@P@:1:15: restart script @D@/r.sh is not executable (mode 0644): chmod +x @D@/r.sh"},
		{"CMD file", func(t *testing.T, d string) string {
			return target + file(t, d+"/r.sh", 0o755) + "\n_bi_check{\nPS_EXEC CMD:" + file(t, d+"/check", 0o757) + ":DIRECT:-:10:0:1:30\n}\n"
		}, "@P@:3:13: CMD file @D@/check is writable by other (mode 0757): chmod o-w @D@/check"},
		{"missing CMD file", func(t *testing.T, d string) string {
			return target + file(t, d+"/r.sh", 0o755) + "\n_bi_check{\n  PS_EXEC CMD:" + d + "/none:DIRECT:-:10:0:1:30\n}\n"
		}, "@P@:3:15: CMD file @D@/none does not exist"},
		{"TLSCAFile", func(t *testing.T, d string) string {
			return target + file(t, d+"/r.sh", 0o755) + "\n_bi_webservs{\n" +
				"PS_INIT DLL:/opt/lib_bi_webservs.so:DIRECT:-::-:0\n" +
				"PS_EXEC DLL:/opt/lib_bi_webservs.so:DIRECT:-:10:0:2:30:443\n" +
				"PS_ACTION DLL:/opt/lib_bi_webservs.so:DIRECT:-::-:1:0\n" +
				"PS_QUIT DLL:/opt/lib_bi_webservs.so:DIRECT:-::-:0\n" +
				"TLSCAFile   " + file(t, d+"/ca.pem", 0o664) + "\n}\n"
		}, "@P@:7:13: TLSCAFile @D@/ca.pem is writable by group (mode 0664): chmod g-w @D@/ca.pem"},
		{"RebootCommand with AutoReboot on", func(t *testing.T, d string) string {
			return "AutoReboot on\nRebootCommand " + file(t, d+"/reboot", 0o777) + " -r now\n" + target + file(t, d+"/r.sh", 0o755) + "\n"
		}, "@P@:2:15: RebootCommand program @D@/reboot is writable by group and other (mode 0777): chmod go-w @D@/reboot"},
		{"RebootCommand with AutoReboot off", func(t *testing.T, d string) string {
			return "AutoReboot off\nRebootCommand " + file(t, d+"/reboot", 0o777) + " -r now\n" + target + file(t, d+"/r.sh", 0o755) + "\n"
		}, ""},
		// The directories pcheck writes the dump and the reboot count
		// in: refused by -n as the write itself would refuse them, with
		// no advice to chmod a shared directory such as /var/log.
		{"DumpFileName in a group-writable directory", func(t *testing.T, d string) string {
			dir(t, d+"/log", 0o775)
			return "DumpFileName " + d + "/log/web.dump\n" + target + file(t, d+"/r.sh", 0o755) + "\n"
		}, "@P@:1:14: DumpFileName @D@/log/web.dump: directory @D@/log is writable by group or other (mode 0775); " + writeRule + " (" + ownDir + ")"},
		{"DumpFileName in a sticky directory", func(t *testing.T, d string) string {
			dir(t, d+"/tmp", os.ModeSticky|0o777)
			return "DumpFileName " + d + "/tmp/web.dump\n" + target + file(t, d+"/r.sh", 0o755) + "\n"
		}, "@P@:1:14: DumpFileName @D@/tmp/web.dump: directory @D@/tmp is writable by group or other (mode 1777); " + writeRule + " (" + ownDir + ")"},
		{"DumpFileName in a directory of nobody's", func(t *testing.T, d string) string {
			dir(t, d+"/home", 0o755)
			chown(t, d+"/home")
			return "DumpFileName " + d + "/home/web.dump\n" + target + file(t, d+"/r.sh", 0o755) + "\n"
		}, "@P@:1:14: DumpFileName @D@/home/web.dump: directory @D@/home is owned by uid 65534; " + writeRule + " (" + ownDir + ")"},
		{"DumpFileName in a safe directory", func(t *testing.T, d string) string {
			dir(t, d+"/dump", 0o755)
			return "DumpFileName " + d + "/dump/web.dump\n" + target + file(t, d+"/r.sh", 0o755) + "\n"
		}, ""},
		{"RebootStateFile with AutoReboot on", func(t *testing.T, d string) string {
			dir(t, d+"/log", 0o775)
			return "AutoReboot on\nRebootStateFile " + d + "/log/reboots\nRebootCommand " + file(t, d+"/reboot", 0o755) + "\n" + target + file(t, d+"/r.sh", 0o755) + "\n"
		}, "@P@:2:17: RebootStateFile @D@/log/reboots: directory @D@/log is writable by group or other (mode 0775); " + writeRule + " (" + ownDir + ")"},
		{"RebootStateFile with AutoReboot off", func(t *testing.T, d string) string {
			dir(t, d+"/log", 0o775)
			return "AutoReboot off\nRebootStateFile " + d + "/log/reboots\n" + target + file(t, d+"/r.sh", 0o755) + "\n"
		}, ""},
		{"pfile writable by other", func(t *testing.T, d string) string {
			os.WriteFile(d+"/a.pf", nil, 0o600)
			os.Chmod(d+"/a.pf", 0o646)
			return target + file(t, d+"/r.sh", 0o755) + "\n"
		}, "@P@:0:0: pfile @P@ is writable by other (mode 0646): chmod o-w @P@"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			d := t.TempDir()
			pf := filepath.Join(d, "a.pf")
			text := c.pfile(t, d)
			if err := os.WriteFile(pf, []byte(text), 0o644); err != nil { // keeps the mode of an existing file
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			status := run([]string{"-n", pf}, &stdout, &stderr)
			want := strings.NewReplacer("@D@", d, "@P@", pf).Replace(c.want)
			if want == "" {
				if status != 0 || stderr.Len() != 0 {
					t.Fatalf("status %d, want 0; stderr:\n%s", status, &stderr)
				}
				return
			}
			if status != 2 || stderr.String() != want+"\n" {
				t.Fatalf("status %d, stderr\n%s\nwant status 2, stderr\n%s", status, &stderr, want)
			}
			if s := stdout.String(); s != pf+": invalid, 1 error(s)\n" {
				t.Fatalf("stdout %q", s)
			}
		})
	}
}

// The rule and the advice of a refused directory pcheck writes in that is
// not its own (docs/behaviour.md, "Files").
const (
	writeRule = "pcheck writes only in a real directory owned by root and not writable by group or other"
	ownDir    = "choose a directory of pcheck's own, such as /var/lib/pcheck"
)

// TestCheckWriteDirMissing: a DumpFileName in a directory that does not
// exist (yet) is a warning, not an error: the dump cannot be written until
// the directory is made, but nothing is unsafe.
func TestCheckWriteDirMissing(t *testing.T) {
	d := t.TempDir()
	script := filepath.Join(d, "r.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	pf := filepath.Join(d, "a.pf")
	if err := os.WriteFile(pf, []byte("DumpFileName "+d+"/none/web.dump\n/usr/sbin/web "+script+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	want := fmt.Sprintf("%s:1:14: warning: DumpFileName %s/none/web.dump: open %s/none: no such file or directory; it cannot be written until this is fixed\n", pf, d, d)
	if st := run([]string{"-n", pf}, &stdout, &stderr); st != 0 || stderr.String() != want {
		t.Fatalf("status %d, stderr\n%s\nwant 0 and\n%s", st, &stderr, want)
	}
}

// TestRebootProgramInPath: a RebootCommand whose first word is a bare
// name is checked where /bin/sh would find it, in PATH.
func TestRebootProgramInPath(t *testing.T) {
	d := t.TempDir()
	bin := filepath.Join(d, "bin")
	os.Mkdir(bin, 0o755)
	prog := filepath.Join(bin, "node-reboot")
	if err := os.WriteFile(prog, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(d, "r.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	pf := filepath.Join(d, "a.pf")
	if err := os.WriteFile(pf, []byte("AutoReboot on\nRebootCommand node-reboot --now\n/usr/sbin/web "+script+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", "/nonexistent:relative:"+bin+":/usr/bin:/bin")
	var stdout, stderr bytes.Buffer
	if st := run([]string{"-n", pf}, &stdout, &stderr); st != 0 {
		t.Fatalf("status %d; stderr:\n%s", st, &stderr)
	}
	if err := os.Chmod(prog, 0o775); err != nil {
		t.Fatal(err)
	}
	stderr.Reset()
	want := fmt.Sprintf("%s:2:15: RebootCommand program %s is writable by group (mode 0775): chmod g-w %s\n", pf, prog, prog)
	if st := run([]string{"-n", pf}, &stdout, &stderr); st != 2 || stderr.String() != want {
		t.Fatalf("status %d, stderr\n%s\nwant 2 and\n%s", st, &stderr, want)
	}
	t.Setenv("PATH", "/nonexistent")
	stderr.Reset()
	want = fmt.Sprintf("%s:2:15: RebootCommand program node-reboot is not found in PATH /nonexistent\n", pf)
	if st := run([]string{"-n", pf}, &stdout, &stderr); st != 2 || stderr.String() != want {
		t.Fatalf("status %d, stderr\n%s\nwant 2 and\n%s", st, &stderr, want)
	}
}

// TestSyntaxOnly: --syntax-only checks the language alone: a pfile whose
// script is not installed passes, a language error still fails, and the
// flag needs -n.
func TestSyntaxOnly(t *testing.T) {
	t.Parallel()
	d := t.TempDir()
	pf := filepath.Join(d, "a.pf")
	if err := os.WriteFile(pf, []byte("/usr/sbin/web /opt/not/installed.sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if st := run([]string{"-n", pf}, &stdout, &stderr); st != 2 || stderr.String() != pf+":1:15: restart script /opt/not/installed.sh does not exist\n" {
		t.Fatalf("-n: status %d, stderr:\n%s", st, &stderr)
	}
	stdout.Reset()
	stderr.Reset()
	if st := run([]string{"-n", "--syntax-only", pf}, &stdout, &stderr); st != 0 || stderr.Len() != 0 || !strings.Contains(stdout.String(), "/opt/not/installed.sh") {
		t.Fatalf("-n --syntax-only: status %d, stdout:\n%s\nstderr:\n%s", st, &stdout, &stderr)
	}
	if err := os.WriteFile(pf, []byte("MonitorInterval 0\n/usr/sbin/web /opt/not/installed.sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	stderr.Reset()
	if st := run([]string{"--syntax-only", "-n", pf}, &stdout, &stderr); st != 2 || stderr.String() != pf+":1:17: MonitorInterval must be at least 1, not 0\n" {
		t.Fatalf("-n --syntax-only on a bad pfile: status %d, stderr:\n%s", st, &stderr)
	}
	stderr.Reset()
	if st := run([]string{"--syntax-only", pf}, &stdout, &stderr); st != 2 || !strings.HasPrefix(stderr.String(), "pcheck: --syntax-only goes with -n\n") {
		t.Fatalf("--syntax-only alone: status %d, stderr:\n%s", st, &stderr)
	}
}
