package main

// padmin in the shell: short names for pfiles and processes, the exit
// status of status, help per command, --version, PCHECK_RUN_DIR, a missing
// run directory and the bash completion.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pcheck/pcheck/checker/control"
)

// TestShortNames: a pfile is named by its path, file name or stem, a
// process by its path or base name; padmin status exits 4 while an entry
// is not Up and 0 once every one is.
func TestShortNames(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.service("web", "")
	e.start(s)
	e.writePfile("", s)
	e.pcheck()
	e.waitProcess(s.key(), "Up", isUp)
	base := filepath.Base(self)

	// From another directory: "svc.pf" and "svc" are no paths there.
	for _, name := range []string{e.pfile, "svc.pf", "svc"} {
		cmd := exec.Command(padminBin, "--run-dir", e.run, "status", name)
		cmd.Dir = "/"
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), "pfile "+e.pfile+":") {
			t.Fatalf("status %s: %v\n%s", name, err, out)
		}
	}
	r := e.ok("stop", "svc", base)
	if r.stdout != fmt.Sprintf("%s: monitoring of process '%s' paused\n", e.pfile, self) {
		t.Fatalf("stop by base name printed %q", r.stdout)
	}
	e.waitProcess(s.key(), "Paused", func(p control.ProcessStatus) bool { return p.State == "Paused" })

	// Paused is not Up: status says so and exits 4, the table still printed.
	for _, args := range [][]string{{"status"}, {"status", "svc"}, {"--json", "status", "svc"}} {
		r = e.padmin(args...)
		if r.code != 4 || !strings.Contains(r.stdout, "Paused") ||
			!strings.Contains(r.stderr, fmt.Sprintf("process '%s' is Paused", self)) {
			t.Fatalf("padmin %v with an entry Paused: exit %d, want 4\nstdout:\n%s\nstderr:\n%s", args, r.code, r.stdout, r.stderr)
		}
	}
	e.ok("start", "svc.pf", self)
	e.waitProcess(s.key(), "Up", isUp)
	if r = e.padmin("status", "svc"); r.code != 0 || r.stderr != "" {
		t.Fatalf("status with every entry Up: exit %d, stderr %q", r.code, r.stderr)
	}

	// A name two pfiles share is refused, naming both.
	e2 := &env{t: t, dir: e.dir, run: e.run, log: e.log, pfile: filepath.Join(e.dir, "sub", "svc.pf"), id: e.id + "-2"}
	if err := os.Mkdir(filepath.Join(e.dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	s2 := e2.service("web2", "")
	e2.start(s2)
	e2.writePfile("", s2)
	e2.pcheck()
	if r = e.padmin("status", "svc"); r.code != 1 || !strings.Contains(r.stderr, e.pfile) || !strings.Contains(r.stderr, e2.pfile) ||
		!strings.Contains(r.stderr, "ambiguous") {
		t.Fatalf("status of an ambiguous stem: exit %d, stderr %q", r.code, r.stderr)
	}
	if r = e.ok("status", e2.pfile); !strings.HasPrefix(r.stdout, "pfile "+e2.pfile+":") {
		t.Fatalf("status by path beside an ambiguous stem:\n%s", r.stdout)
	}
}

// TestShell: help per command, --version, PCHECK_RUN_DIR, a run
// directory that does not exist, and the completion words.
func TestShell(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.service("web", "")
	e.start(s)
	e.writePfile("", s)
	e.pcheck()
	e.waitProcess(s.key(), "Up", isUp)

	help := e.ok("help", "restart").stdout
	if !strings.HasPrefix(help, "usage: padmin restart PFILE PROC [--force]\n") || !strings.Contains(help, "--force") {
		t.Fatalf("help restart printed:\n%s", help)
	}
	if r := e.ok("restart", "--help"); r.stdout != help {
		t.Fatalf("restart --help printed:\n%s\nwant:\n%s", r.stdout, help)
	}
	if r := e.ok("status", "-h"); !strings.HasPrefix(r.stdout, "usage: padmin status [PFILE] [-l]\n") ||
		!strings.Contains(r.stdout, "exit status 4") {
		t.Fatalf("status -h printed:\n%s", r.stdout)
	}
	// Every help fits 80 columns.
	for _, c := range append([]command{{name: "padmin"}}, commandList...) {
		args := []string{"help", c.name}
		if c.name == "padmin" {
			args = args[:1]
		}
		for _, line := range strings.Split(e.ok(args...).stdout, "\n") {
			if len(line) > 80 {
				t.Errorf("padmin %v: a line of %d columns: %q", args, len(line), line)
			}
		}
	}
	if r := e.padmin("help", "frobnicate"); r.code != 2 || !strings.Contains(r.stderr, `unknown command "frobnicate"`) {
		t.Fatalf("help of an unknown command: exit %d, %q", r.code, r.stderr)
	}
	if r := e.ok("--version"); !regexp.MustCompile(`^padmin \S+\n$`).MatchString(r.stdout) {
		t.Fatalf("--version printed %q", r.stdout)
	}

	// PCHECK_RUN_DIR stands for --run-dir; --run-dir wins over it.
	cmd := exec.Command(padminBin, "status", e.pfile)
	cmd.Env = append(os.Environ(), "PCHECK_RUN_DIR="+e.run)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.HasPrefix(string(out), "pfile "+e.pfile) {
		t.Fatalf("status with PCHECK_RUN_DIR: %v\n%s", err, out)
	}
	cmd = exec.Command(padminBin, "--run-dir", e.run, "list")
	cmd.Env = append(os.Environ(), "PCHECK_RUN_DIR=/nonexistent")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), e.pfile) {
		t.Fatalf("list with --run-dir and PCHECK_RUN_DIR: %v\n%s", err, out)
	}

	// A run directory that does not exist is named, for every command.
	missing := filepath.Join(e.dir, "nosuch")
	for _, args := range [][]string{{"list"}, {"status"}, {"status", e.pfile}, {"events"}} {
		r := e.padmin(append([]string{"--run-dir", missing}, args...)...)
		if r.code != 3 || !strings.Contains(r.stderr, "run directory "+missing+" does not exist") || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("padmin %v with a missing run directory: exit %d, stderr %q", args, r.code, r.stderr)
		}
	}

	// The completion words.
	words := func(args ...string) []string {
		t.Helper()
		out, err := exec.Command(padminBin, append([]string{"__complete", "--run-dir", e.run}, args...)...).Output()
		if err != nil {
			t.Fatalf("padmin __complete %v: %v", args, err)
		}
		return strings.Fields(string(out))
	}
	if w := words("commands"); !slices.Contains(w, "status") || !slices.Contains(w, "config") || slices.Contains(w, "__complete") {
		t.Fatalf("command words %v", w)
	}
	if w := words("pfiles"); !slices.Equal(w, []string{e.pfile, "svc"}) {
		t.Fatalf("pfile words %v", w)
	}
	if w := words("processes", "svc"); !slices.Equal(w, []string{self, filepath.Base(self)}) {
		t.Fatalf("process words %v", w)
	}

	// bash completes them through rc/completion/padmin.bash.
	complete := func(line string) []string { t.Helper(); return bashComplete(t, "", line) }
	run := "--run-dir " + e.run + " "
	if got := complete("padmin st"); !slices.Equal(got, []string{"start", "stats", "status", "stop"}) {
		t.Errorf("padmin st<TAB>: %v", got)
	}
	if got := complete("padmin " + run + "status "); !slices.Equal(got, []string{e.pfile, "svc"}) {
		t.Errorf("padmin status <TAB>: %v", got)
	}
	if got := complete("padmin " + run + "stop svc " + filepath.Base(self)[:3]); !slices.Equal(got, []string{filepath.Base(self)}) {
		t.Errorf("padmin stop svc %s<TAB>: %v", filepath.Base(self)[:3], got)
	}
	// zsh through rc/completion/_padmin, compadd standing in for the
	// completion system's.
	if _, err := exec.LookPath("zsh"); err == nil {
		zcomplete := func(line string) []string { t.Helper(); return zshComplete(t, "", line) }
		// compadd gets every candidate; zsh itself filters by the prefix.
		if got := zcomplete("padmin "); !slices.Contains(got, "status") || !slices.Contains(got, "config") {
			t.Errorf("zsh: padmin <TAB>: %v", got)
		}
		if got := zcomplete("padmin " + run + "status "); !slices.Equal(got, []string{e.pfile, "svc"}) {
			t.Errorf("zsh: padmin status <TAB>: %v", got)
		}
		if got := zcomplete("padmin " + run + "--json stop svc "); !slices.Equal(got, []string{self, filepath.Base(self)}) {
			t.Errorf("zsh: padmin stop svc <TAB>: %v", got)
		}
		if got := zcomplete("padmin --run-dir "); !slices.Equal(got, []string{"DIR"}) {
			t.Errorf("zsh: padmin --run-dir <TAB>: %v", got)
		}
	} else {
		t.Log("zsh is not installed: its completion is not checked")
	}
	if got := complete("padmin help re"); !slices.Equal(got, []string{"reload", "reset", "restart"}) {
		t.Errorf("padmin help re<TAB>: %v", got)
	}
}

// TestStatusSilentPcheck: padmin status over every pfile exits 4 when a
// pcheck does not answer, whether it is silent from the start or answers
// who it is and then not its status; the pchecks that answer are printed.
func TestStatusSilentPcheck(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.service("web", "")
	e.start(s)
	e.writePfile("", s)
	e.pcheck()
	e.waitProcess(s.key(), "Up", isUp)
	if r := e.padmin("status"); r.code != 0 {
		t.Fatalf("status with every entry Up: exit %d, stderr %q", r.code, r.stderr)
	}

	// A socket that takes connections and never answers.
	silent := filepath.Join(e.run, "silent.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: silent, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	r := e.padmin("--timeout", "500ms", "status")
	if r.code != 4 || !strings.HasPrefix(r.stdout, "pfile "+e.pfile+":") || !strings.Contains(r.stderr, silent) {
		t.Fatalf("status beside a silent socket: exit %d, want 4\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	// Completion waits about a second for it, not padmin's 30 s.
	start := time.Now()
	out, err := exec.Command(padminBin, "__complete", "--run-dir", e.run, "pfiles").Output()
	if took := time.Since(start); err != nil || !slices.Contains(sortedLines(string(out)), e.pfile) || took > 10*time.Second {
		t.Fatalf("__complete pfiles beside a silent socket: %v after %s, words %q", err, took, out)
	}
	l.Close()

	// One that says who it is, then does not answer the status.
	half := filepath.Join(e.run, "half.sock")
	l, err = net.ListenUnix("unix", &net.UnixAddr{Name: half, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	info, _ := json.Marshal(control.InfoResult{Pfile: "/nonexistent/half.pf", PfileAbs: "/nonexistent/half.pf"})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				var req control.Request
				if json.NewDecoder(c).Decode(&req) != nil || req.Command != control.CmdInfo {
					io.Copy(io.Discard, c) // silent until padmin hangs up
					return
				}
				json.NewEncoder(c).Encode(control.Response{OK: true, Pfile: "/nonexistent/half.pf", Result: info})
			}()
		}
	}()
	r = e.padmin("--timeout", "500ms", "status")
	if r.code != 4 || !strings.HasPrefix(r.stdout, "pfile "+e.pfile+":") || !strings.Contains(r.stderr, half) {
		t.Fatalf("status beside a pcheck that does not answer its status: exit %d, want 4\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
}

// bashComplete returns the words bash completes line to through
// rc/completion/padmin.bash, sorted; it runs in dir ("" the test's).
func bashComplete(t *testing.T, dir, line string) []string {
	t.Helper()
	script, err := filepath.Abs("../../rc/completion/padmin.bash")
	if err != nil {
		t.Fatal(err)
	}
	sh := fmt.Sprintf(`source %q
PATH=%s:$PATH
COMP_LINE=%q; COMP_WORDS=(%s); COMP_CWORD=$((${#COMP_WORDS[@]}-1)); [[ $COMP_LINE == *' ' ]] && COMP_WORDS+=('') && COMP_CWORD=$((COMP_CWORD+1))
_padmin padmin
printf '%%s\n' "${COMPREPLY[@]}"`, script, filepath.Dir(padminBin), line, line)
	cmd := exec.Command("bash", "--norc", "-c", sh)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("bash completion of %q: %v\n%s", line, err, stderr.String())
	}
	return sortedLines(string(out))
}

// zshComplete returns the words zsh's rc/completion/_padmin offers for
// line, sorted, compadd and _call_program (which evals its command, as
// zsh's does) standing in for the completion system's; it runs in dir
// ("" the test's).
func zshComplete(t *testing.T, dir, line string) []string {
	t.Helper()
	script, err := filepath.Abs("../../rc/completion/_padmin")
	if err != nil {
		t.Fatal(err)
	}
	sh := fmt.Sprintf(`compadd() { [[ $1 == -- ]] && shift; print -l -- "$@" }
_call_program() { shift; eval "$*" }
_directories() { print DIR }
PATH=%s:$PATH
words=(${=1}); [[ $1 == *' ' ]] && words+=('')
CURRENT=${#words}
source %q`, filepath.Dir(padminBin), script)
	cmd := exec.Command("zsh", "-f", "-c", sh, "zsh", line)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("zsh completion of %q: %v\n%s", line, err, stderr.String())
	}
	return sortedLines(string(out))
}

// TestCompletionNoExpansion: the words the completions get from padmin
// come from the pfiles served; a word with $(...) in it is offered (bash
// quoting it for the line), never run.
func TestCompletionNoExpansion(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.pfile = filepath.Join(e.dir, "$(id>pwned).pf")
	s := e.service("web", "")
	e.start(s)
	e.writePfile("", s)
	e.pcheck()
	pwned := filepath.Join(e.dir, "pwned")
	run := "--run-dir " + e.run + " "
	got := bashComplete(t, e.dir, "padmin "+run+"status ")
	if _, err := os.Stat(pwned); err == nil {
		t.Fatalf("bash completion ran the $(...) in a pfile's name (offered %q)", got)
	}
	q := `\$\(id\>pwned\)`
	if want := []string{strings.ReplaceAll(e.pfile, "$(id>pwned)", q), q}; !slices.Equal(got, want) {
		t.Errorf("bash: padmin status <TAB>: %q, want %q", got, want)
	}
	if _, err := exec.LookPath("zsh"); err != nil {
		t.Log("zsh is not installed: its completion is not checked")
		return
	}
	got = zshComplete(t, e.dir, "padmin "+run+"status ")
	if _, err := os.Stat(pwned); err == nil {
		t.Fatalf("zsh completion ran the $(...) in a pfile's name (offered %q)", got)
	}
	if want := []string{"$(id>pwned)", e.pfile}; !slices.Equal(got, want) {
		t.Errorf("zsh: padmin status <TAB>: %q, want %q", got, want)
	}
	// The stem as compadd puts it on the line, quoted: the processes of
	// that pfile, the name never run.
	got = zshComplete(t, e.dir, "padmin "+run+"stop "+q+" ")
	if _, err := os.Stat(pwned); err == nil {
		t.Fatalf("zsh completion ran the $(...) in a pfile's name on the line (offered %q)", got)
	}
	if want := []string{self, filepath.Base(self)}; !slices.Equal(got, want) {
		t.Errorf("zsh: padmin stop %s <TAB>: %q, want %q", q, got, want)
	}
}

// sortedLines returns the non-empty lines of out, sorted.
func sortedLines(out string) []string {
	var got []string
	for _, l := range strings.Split(out, "\n") {
		if l != "" {
			got = append(got, l)
		}
	}
	slices.Sort(got)
	return got
}
