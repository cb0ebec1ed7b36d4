package daemon

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pcheck/pcheck/checker/syslogtest"
)

// nobody is the uid and gid of user nobody, the attacker of these tests.
const nobody = 65534

// writeAsNobody writes text to path as user nobody (cat > path), as
// anyone could once the file is writable by other.
func writeAsNobody(t testing.TB, path, text string) {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", `cat > "$1"`, "sh", path)
	cmd.Stdin = strings.NewReader(text)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("writing %s as nobody: %v\n%s", path, err, out)
	}
}

// TestReloadRefusesUntrustedPfile: a running pcheck whose pfile is made
// world-writable and then repointed by user nobody to another restart
// script refuses the reload, by SIGHUP and by --watch alike: the old
// rules stay, and when the process dies its OLD script runs. Today the
// reload is accepted and nobody's choice of script runs as root.
func TestReloadRefusesUntrustedPfile(t *testing.T) {
	for _, how := range []string{"SIGHUP", "watch"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			if err := os.Chmod(filepath.Dir(e.dir), 0o755); err != nil { // nobody may walk to the pfile
				t.Fatal(err)
			}
			a := newService(t, e.dir, "a", "")
			// nobody's script would be entered for the same process.
			other := newService(t, e.dir, "other", "")
			pa := a.start()
			pf := filepath.Join(e.dir, "a.pf")
			writeFile(t, pf, pfileHead+a.entry(""))
			var args []string
			if how == "watch" {
				args = append(args, "--watch")
			}
			p := e.start(nil, append(args, pf)...)
			e.wait(upLine(pa))

			if err := os.Chmod(pf, 0o666); err != nil {
				t.Fatal(err)
			}
			writeAsNobody(t, pf, pfileHead+fmt.Sprintf("%s %s args=\"%s\"\n", bin, other.script, a.tag))
			if how == "SIGHUP" {
				p.signal(syscall.SIGHUP)
			}
			refused := fmt.Sprintf("pfile '%s': reload refused, the old rules stay", pf)
			reloaded := fmt.Sprintf("pfile '%s' reloaded", pf)
			l := e.log.Wait(t, func(l syslogtest.Line) bool { return l.Text == refused || l.Text == reloaded }, 30*time.Second)
			syscall.Kill(pa, syscall.SIGKILL)
			if l.Text == reloaded {
				waitFor(t, "nobody's script to run", func() bool { return len(other.callReasons()) > 0 })
				t.Fatalf("the reload was accepted, and on the death nobody's script ran as root: %v", other.callReasons())
			}
			want := fmt.Sprintf("%s:0:0: pfile %s is writable by group and other (mode 0666): chmod go-w %s", pf, pf, pf)
			e.wait("pfile error: " + want)
			e.wait(downLine(pa))
			e.wait(upLine(a.waitPid(pa)))
			if got := a.callReasons(); !slices.Equal(got, []string{"setup", "down"}) {
				t.Fatalf("old script calls %v, want [setup down]", got)
			}
			if got := other.callReasons(); len(got) != 0 {
				t.Fatalf("nobody's script ran: %v", got)
			}
		})
	}
}

// TestStartRefusesUntrustedScript: a restart script in a directory that
// other users can write is refused at start: exit 2, the error at the
// script's position in syslog and on stderr, nothing created or run.
func TestStartRefusesUntrustedScript(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	open := filepath.Join(e.dir, "open")
	if err := os.Mkdir(open, 0o755); err != nil {
		t.Fatal(err)
	}
	s := newService(t, open, "a", "")
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	pf := filepath.Join(e.dir, "a.pf")
	writeFile(t, pf, pfileHead+s.entry(""))
	p := e.start(nil, pf)
	if st := p.wait(); st != ExitInvalid {
		t.Fatalf("exit status %d, want %d; stderr:\n%s", st, ExitInvalid, p.stderr)
	}
	want := fmt.Sprintf("%s:5:%d: restart script %s is reached through directory %s, which is writable by group and other without the sticky bit (mode 0777): chmod go-w %s",
		pf, len(bin)+2, s.script, open, open)
	e.wait("pfile error: " + want)
	if !strings.Contains(p.stderr.String(), want+"\n") {
		t.Fatalf("stderr lacks %q:\n%s", want, p.stderr)
	}
	if _, err := os.Stat(e.state); !os.IsNotExist(err) {
		t.Fatalf("state directory created for a refused pfile: %v", err)
	}
	if len(s.callReasons()) != 0 {
		t.Fatal("a restart script ran")
	}
}
