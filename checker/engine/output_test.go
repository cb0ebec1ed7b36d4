package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pcheck/pcheck/checker/state"
)

// TestCreateOutput: the previous run's file is kept as .1, an empty one is
// not (it would replace a useful .1), and a symbolic link planted at the
// output path is replaced, never written through.
func TestCreateOutput(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "x.out")
	write := func(text string) {
		t.Helper()
		f, err := createOutput(out)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(text)
		f.Close()
	}
	read := func(path string) string {
		b, _ := os.ReadFile(path)
		return string(b)
	}
	write("run 1\n")
	write("run 2\n")
	if got := read(out + ".1"); got != "run 1\n" {
		t.Fatalf(".1 holds %q, want run 1", got)
	}
	write("")
	write("run 4\n")
	if got := read(out + ".1"); got != "run 2\n" {
		t.Fatalf(".1 holds %q after an empty run, want run 2", got)
	}

	// A directory in the way of .1: the new run still gets its file.
	os.Remove(out + ".1")
	os.Mkdir(out+".1", 0o700)
	os.WriteFile(filepath.Join(out+".1", "x"), nil, 0o600)
	write("run 4b\n")
	if got := read(out); got != "run 4b\n" {
		t.Fatalf("output file holds %q with a directory at .1", got)
	}

	victim := filepath.Join(dir, "victim")
	os.WriteFile(victim, []byte("precious\n"), 0o600)
	os.Remove(out)
	if err := os.Symlink(victim, out); err != nil {
		t.Fatal(err)
	}
	write("run 5\n")
	if got := read(victim); got != "precious\n" {
		t.Fatalf("written through a planted link: victim holds %q", got)
	}
	if st, err := os.Lstat(out); err != nil || !st.Mode().IsRegular() || read(out) != "run 5\n" {
		t.Fatalf("output file after a planted link: %v %v %q", st, err, read(out))
	}
}

// TestLastOutput: the lines written after the mark, at most crashLines of
// the last crashBytes, without the line the bound cuts; another file than
// the mark's counts only when written since the process started.
func TestLastOutput(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.out")
	f, err := createOutput(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteString("script line\n")
	mark := fileMark(f, int64(len("script line\n")))

	if lines, _ := lastOutput(path, mark, time.Now()); len(lines) != 0 {
		t.Fatalf("nothing written since the mark, got %q", lines)
	}
	f.WriteString("serving\nFATAL: disk full\n")
	lines, next := lastOutput(path, mark, time.Now())
	if !slices.Equal(lines, []string{"serving", "FATAL: disk full"}) {
		t.Fatalf("lines %q", lines)
	}
	if lines, _ := lastOutput(path, next, time.Now()); len(lines) != 0 {
		t.Fatalf("lines logged twice: %q", lines)
	}

	// Bounds: 30 lines of 200 bytes are more than 4 KiB; the last 10.
	for i := range 30 {
		fmt.Fprintf(f, "%03d %s\n", i, strings.Repeat("x", 195))
	}
	lines, _ = lastOutput(path, next, time.Now())
	if len(lines) != crashLines || !strings.HasPrefix(lines[0], "020 ") || !strings.HasPrefix(lines[9], "029 ") {
		t.Fatalf("bounded lines: %d, first %.8q", len(lines), lines)
	}
	// One line longer than the bound: its start is cut, nothing is left.
	f.WriteString(strings.Repeat("y", 2*crashBytes) + "\n")
	if lines, _ = lastOutput(path, next, time.Now()); len(lines) != 0 {
		t.Fatalf("a cut line was logged: %d lines", len(lines))
	}

	// Another file (no mark): written since the process started, its
	// tail counts; a process started after the last write has none.
	f.WriteString("last words\n")
	if lines, _ := lastOutput(path, outMark{}, time.Now().Add(-time.Minute)); len(lines) == 0 {
		t.Fatal("no lines from a file written since the process started")
	}
	if lines, _ := lastOutput(path, outMark{}, time.Now().Add(time.Minute)); len(lines) != 0 {
		t.Fatalf("lines from a file last written before the process started: %d", len(lines))
	}
	// A link is not followed.
	link := filepath.Join(dir, "link.out")
	os.Symlink(path, link)
	if lines, _ := lastOutput(link, outMark{}, time.Now().Add(-time.Minute)); len(lines) != 0 {
		t.Fatal("read through a link")
	}
}

// TestOutputLinkNotFollowed: a symbolic link planted at an entry's output
// file is never written through when its restart script runs.
func TestOutputLinkNotFollowed(t *testing.T) {
	f := newFixture(t, "a", startHelper+"\necho restarted")
	dir := t.TempDir()
	p := f.process()
	victim := filepath.Join(t.TempDir(), "victim")
	os.WriteFile(victim, []byte("precious\n"), 0o600)
	out := filepath.Join(dir, state.Name("x.pf")+"-"+keyHash(p.BaseKey())+".out")
	if err := os.Symlink(victim, out); err != nil {
		t.Fatal(err)
	}
	log := newRecorder()
	params := testParams()
	params.StartWait = 300 * time.Millisecond
	run(t, Options{File: testFile("x.pf", params, p), Log: log, ScriptOutputDir: dir})
	log.wait(t, "restart script ('"+bin+"'): restarted", 1)
	if b, _ := os.ReadFile(victim); string(b) != "precious\n" {
		t.Fatalf("written through the planted link: victim holds %q", b)
	}
}
