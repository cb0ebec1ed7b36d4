package rc

import (
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// checkInstalled checks what make install put in dest (PREFIX=/usr):
// stripped binaries, man pages carrying make build's version, the
// defaults sample, docs and completion as in the tree.
func checkInstalled(t *testing.T, root, dest string) {
	t.Helper()
	for _, b := range []string{"pcheck", "padmin"} {
		f, err := elf.Open(filepath.Join(dest, "usr/sbin", b))
		if err != nil {
			t.Errorf("usr/sbin/%s: %v", b, err)
			continue
		}
		if f.Section(".symtab") != nil {
			t.Errorf("usr/sbin/%s is not stripped (it has a .symtab)", b)
		}
		f.Close()
	}
	version := makeVersion(t, root)
	for _, m := range []string{"man8/pcheck.8", "man8/padmin.8", "man5/pfile.5"} {
		b, err := os.ReadFile(filepath.Join(dest, "usr/share/man", m))
		if err != nil {
			t.Errorf("%s: %v", m, err)
			continue
		}
		if th := regexp.MustCompile(`(?m)^\.TH \S+ [58] "\d{4}-\d\d-\d\d" "pcheck ` + regexp.QuoteMeta(version) + `" `); !th.Match(b) {
			t.Errorf("installed %s: .TH does not name a date and version %s:\n%s", m, version, firstLine(b, ".TH"))
		}
	}
	for src, dst := range map[string]string{
		"rc/completion/padmin.bash": "usr/share/bash-completion/completions/padmin",
		"rc/completion/_padmin":     "usr/share/zsh/site-functions/_padmin",
		"README.md":                 "usr/share/doc/pcheck/README.md",
		"docs/pfile.md":             "usr/share/doc/pcheck/docs/pfile.md",
	} {
		a, _ := os.ReadFile(filepath.Join(root, src))
		b, err := os.ReadFile(filepath.Join(dest, dst))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s is not %s as in the tree (%v)", dst, src, err)
		}
	}
	def, _ := os.ReadFile(filepath.Join(dest, "etc/default/pcheck"))
	if !bytes.Contains(def, []byte("#PCHECK=/usr/sbin/pcheck\n")) {
		t.Errorf("etc/default/pcheck is not the commented sample:\n%s", def)
	}
}

// checkUninstall edits the installed defaults, runs make uninstall and
// checks that nothing make install put there is left but the edited
// defaults and the directories the system shares.
func checkUninstall(t *testing.T, mk, root, dest, prefix, bin string, args ...string) {
	t.Helper()
	// A second install keeps the operator's settings.
	edited := filepath.Join(dest, "etc/default/pcheck")
	writeFile(t, edited, 0o644, "STOP_TIMEOUT=60\n")
	install := append([]string{"-C", root, "install", "DESTDIR=" + dest, "PREFIX=" + prefix, "BIN=" + bin}, args...)
	if out, err := exec.Command(mk, install...).CombinedOutput(); err != nil {
		t.Fatalf("make install again: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(edited); string(b) != "STOP_TIMEOUT=60\n" {
		t.Errorf("make install overwrote an edited /etc/default/pcheck: %q", b)
	}
	// A file of the operator's among those make install put there.
	own := prefix[1:] + "/share/pcheck/templates/mine.pfile"
	writeFile(t, filepath.Join(dest, own), 0o644, "# the operator's\n")
	uninstall := append([]string{"-C", root, "uninstall", "DESTDIR=" + dest, "PREFIX=" + prefix}, args...)
	if out, err := exec.Command(mk, uninstall...).CombinedOutput(); err != nil {
		t.Fatalf("make uninstall: %v\n%s", err, out)
	}
	var left []string
	filepath.WalkDir(dest, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			left = append(left, strings.TrimPrefix(p, dest+"/"))
		}
		return nil
	})
	slices.Sort(left)
	if want := []string{"etc/default/pcheck", own}; !slices.Equal(left, want) {
		t.Errorf("make uninstall PREFIX=%s left %v, want only the edited etc/default/pcheck and the operator's %s", prefix, left, own)
	}
	for _, d := range []string{"etc/pcheck", prefix[1:] + "/share/pcheck/rc", prefix[1:] + "/share/pcheck/prometheus",
		prefix[1:] + "/share/doc/pcheck", "usr/lib/ocf/resource.d/pcheck"} {
		if _, err := os.Stat(filepath.Join(dest, d)); err == nil {
			t.Errorf("make uninstall left the directory %s", d)
		}
	}
}

// makeVersion is the version make build gives the binaries.
func makeVersion(t *testing.T, root string) string {
	t.Helper()
	out, err := exec.Command("git", "-C", root, "describe", "--tags", "--always", "--dirty").Output()
	if err != nil {
		t.Fatalf("git describe: %v", err)
	}
	return strings.TrimSpace(string(out))
}

func firstLine(b []byte, prefix string) string {
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

// TestDefaultsFile: the init script reads /etc/default/pcheck (here a
// directory bound over /etc/default in a mount namespace of its own), and
// the sample sets nothing.
func TestDefaultsFile(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root for a mount namespace")
	}
	if err := exec.Command("unshare", "-m", "true").Run(); err != nil {
		t.Skipf("no mount namespace: %v", err)
	}
	sample, err := os.ReadFile("pcheck.default")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(sample), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			t.Errorf("pcheck.default sets %q: the sample only shows the defaults", l)
		}
	}
	// Every setting it shows is one the init script reads, with its default.
	init, _ := os.ReadFile("pcheck.init")
	for _, m := range regexp.MustCompile(`(?m)^#([A-Z_]+)=(.*)$`).FindAllStringSubmatch(string(sample), -1) {
		if !strings.Contains(string(init), `: "${`+m[1]+`:=`+m[2]+`}"`) {
			t.Errorf("pcheck.default shows %s=%s; pcheck.init has no such default", m[1], m[2])
		}
	}
	dir := t.TempDir()
	runlist := filepath.Join(dir, "runlist")
	writeFile(t, runlist, 0o644, "")
	writeFile(t, filepath.Join(dir, "default", "pcheck"), 0o644,
		string(sample)+"PCHECK="+filepath.Join(dir, "no-pcheck")+"\nRUNLIST="+runlist+"\n")
	script, _ := filepath.Abs("pcheck.init")
	start := func() (string, int) {
		t.Helper()
		cmd := exec.Command("unshare", "-m", "sh", "-c", `mount --bind "$1" /etc/default && exec sh "$2" start`, "sh",
			filepath.Join(dir, "default"), script)
		// The environment names none of the settings: they come from the file.
		cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
		out, err := cmd.CombinedOutput()
		return string(out), exitCode(err)
	}
	notInstalled := filepath.Join(dir, "no-pcheck") + " is not installed"
	if out, code := start(); code != 5 || !strings.Contains(out, notInstalled) {
		t.Fatalf("pcheck.init start with PCHECK set in /etc/default/pcheck: exit %d\n%s", code, out)
	}

	// A file others could change is not read as root: nothing starts,
	// and the message names the file and the fix.
	defaults := filepath.Join(dir, "default", "pcheck")
	if err := os.Chmod(defaults, 0o664); err != nil {
		t.Fatal(err)
	}
	out, code := start()
	if code != 6 || strings.Contains(out, notInstalled) ||
		!strings.Contains(out, "/etc/default/pcheck is writable by group or other (mode 664): chmod go-w /etc/default/pcheck") {
		t.Fatalf("pcheck.init start with a group-writable /etc/default/pcheck: exit %d, want 6 refusing it\n%s", code, out)
	}
	if err := os.Chmod(defaults, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(defaults, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	out, code = start()
	if code != 6 || strings.Contains(out, notInstalled) ||
		!strings.Contains(out, "/etc/default/pcheck is owned by uid 65534, not root: chown root /etc/default/pcheck") {
		t.Fatalf("pcheck.init start with /etc/default/pcheck owned by nobody: exit %d, want 6 refusing it\n%s", code, out)
	}
}

// TestDocs: the man pages are dated and versioned (the version pcheck
// has without make's), render within 80 columns, and every document
// names one metrics port, 9734.
func TestDocs(t *testing.T) {
	src, err := os.ReadFile("../cmd/pcheck/main.go")
	if err != nil {
		t.Fatal(err)
	}
	def := regexp.MustCompile(`var version = "([^"]+)"`).FindSubmatch(src)
	if def == nil {
		t.Fatal("no default version in cmd/pcheck")
	}
	pages, _ := filepath.Glob("../docs/man/*.[58]")
	groff, manErr := exec.LookPath("groff")
	for _, p := range pages {
		b, _ := os.ReadFile(p)
		th := regexp.MustCompile(`(?m)^\.TH \S+ [58] "(\d{4}-\d\d-\d\d)" "pcheck ([^"]+)" `).FindSubmatch(b)
		if th == nil || string(th[2]) != string(def[1]) {
			t.Errorf("%s: .TH wants a date and pcheck %s: %q", p, def[1], firstLine(b, ".TH"))
		}
		if manErr != nil {
			continue
		}
		// As man renders it in 80 columns: plain text, no overstriking.
		cmd := exec.Command(groff, "-man", "-Tutf8", "-rLL=80n", "-P-cbou", p)
		out, err := cmd.Output()
		if err != nil {
			t.Errorf("groff %s: %v", p, err)
		}
		for _, l := range strings.Split(string(out), "\n") {
			if n := len([]rune(l)); n > 80 {
				t.Errorf("%s renders a line of %d columns: %q", p, n, l)
			}
		}
	}
	if manErr != nil {
		t.Log("groff is not installed: widths not checked")
	}
	docs, _ := filepath.Glob("../docs/*.md")
	more, _ := filepath.Glob("../docs/man/*.[58]")
	docs = append(append(docs, more...), "../README.md", "pcheck.default", "pcheck@.service", "pcheck.init")
	found := 0
	port := regexp.MustCompile(`(?:\\?-\\?-metrics|instance|targets)[^\n]*?[\w.\]]:(\d{2,5})\b`)
	for _, d := range docs {
		b, _ := os.ReadFile(d)
		for _, m := range port.FindAllSubmatch(b, -1) {
			found++
			// Federation targets are Prometheus servers (9090), not pchecks.
			if string(m[1]) != "9734" && !bytes.Contains(m[0], []byte("prometheus.")) {
				t.Errorf("%s: metrics port %s in %q; every document uses 9734", d, m[1], m[0])
			}
		}
	}
	if found < 5 {
		t.Errorf("only %d metrics addresses found in the documents: the pattern misses them", found)
	}
}
