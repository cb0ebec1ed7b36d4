package message

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestFallbackFile: without syslog and without a stderr copy, lines go to
// the fallback file in the traditional syslog file format, appended to
// what it holds, and the file is created with mode 0640.
func TestFallbackFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "pcheck.log")
	if err := os.WriteFile(path, []byte("kept\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.sock")
	l, err := New(Options{Ident: IdentPcheck, Network: "unixgram", Addr: missing, FallbackFile: path})
	if err != nil {
		t.Fatal(err)
	}
	l.Log(Down("httpd", 42))
	l.Log(PadminCommand("stop", "w.pfile"))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	host, _, _ = strings.Cut(host, ".")
	stamp := `[A-Z][a-z]{2} [ 1-3]\d \d\d:\d\d:\d\d `
	pid := regexp.QuoteMeta("[" + itoa(os.Getpid()) + "]: ")
	want := regexp.MustCompile(`^kept\n` +
		stamp + regexp.QuoteMeta(host) + ` pcheck` + pid + regexp.QuoteMeta("syslog unavailable, logging to "+path+": dialing syslog unixgram "+missing+": ") + `.*\n` +
		stamp + regexp.QuoteMeta(host) + ` pcheck` + pid + regexp.QuoteMeta("Process ['httpd',pid=42] Down") + `\n` +
		stamp + regexp.QuoteMeta(host) + ` padmin` + pid + regexp.QuoteMeta("Command execute. [stop] pfile='w.pfile'") + `\n$`)
	if !want.Match(b) {
		t.Errorf("%s holds:\n%s\nwant it to match %s", path, b, want)
	}

	fresh := filepath.Join(dir, "fresh.log")
	l, err = New(Options{Ident: IdentPcheck, Network: "unixgram", Addr: missing, FallbackFile: fresh})
	if err != nil {
		t.Fatal(err)
	}
	l.Log(Info("x"))
	l.Close()
	if st, err := os.Stat(fresh); err != nil || st.Mode() != 0o640 {
		t.Errorf("fresh fallback file: %v, %v; want mode -rw-r-----", st, err)
	}
}

// TestFallbackFileRefusesSymlink: a symlink planted at the fallback path
// is not followed: its target is left alone and nothing is written.
func TestFallbackFileRefusesSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "shadow")
	if err := os.WriteFile(target, []byte("root:x:0:0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "pcheck.log")
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	dangling := filepath.Join(dir, "dangling.log")
	if err := os.Symlink(filepath.Join(dir, "created-through-link"), dangling); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, dangling} {
		l, err := New(Options{Ident: IdentPcheck, Network: "unixgram", Addr: filepath.Join(dir, "missing.sock"), FallbackFile: p})
		if err != nil {
			t.Fatal(err)
		}
		l.Log(Info("through the link"))
		l.Close()
	}
	if b, _ := os.ReadFile(target); string(b) != "root:x:0:0\n" {
		t.Errorf("the symlink's target was written: %q", b)
	}
	if _, err := os.Lstat(filepath.Join(dir, "created-through-link")); !os.IsNotExist(err) {
		t.Errorf("a file was created through a dangling symlink: %v", err)
	}
}

// A second name of another file (a hard link planted where others may
// write) and a file another user owns are never appended to.
func TestFallbackFileRefusesLinkAndForeignOwner(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "shadow")
	if err := os.WriteFile(target, []byte("root:x:0:0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	linked := filepath.Join(dir, "linked.log")
	if err := os.Link(target, linked); err != nil {
		t.Fatal(err)
	}
	foreign := filepath.Join(dir, "foreign.log")
	if err := os.WriteFile(foreign, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		if err := os.Chown(foreign, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{foreign, linked} {
		l, err := New(Options{Ident: IdentPcheck, Network: "unixgram", Addr: filepath.Join(dir, "missing.sock"), FallbackFile: p})
		if err != nil {
			t.Fatal(err)
		}
		l.Log(Info("through the link"))
		l.Close()
	}
	if b, _ := os.ReadFile(target); string(b) != "root:x:0:0\n" {
		t.Errorf("the hard link's other name was written: %q", b)
	}
	if os.Geteuid() == 0 {
		if b, _ := os.ReadFile(foreign); len(b) != 0 {
			t.Errorf("a file owned by nobody was written: %q", b)
		}
	}
}
