package state

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestStoreRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.state")
	s, err := Open(path, "/etc/pcheck/x.pf")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Attempts("a"); got != nil {
		t.Fatalf("empty store has attempts %v", got)
	}
	t1 := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	t2 := t1.Add(time.Minute)
	if err := s.SetAttempts("a", []time.Time{t1, t2}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAttempts("b", []time.Time{t1}); err != nil {
		t.Fatal(err)
	}

	again, err := Open(path, "/etc/pcheck/x.pf")
	if err != nil {
		t.Fatal(err)
	}
	got := again.Attempts("a")
	if len(got) != 2 || !got[0].Equal(t1) || !got[1].Equal(t2) {
		t.Fatalf("attempts after reopen = %v, want [%v %v]", got, t1, t2)
	}
	if err := again.Keep([]string{"b"}); err != nil {
		t.Fatal(err)
	}
	third, err := Open(path, "/etc/pcheck/x.pf")
	if err != nil {
		t.Fatal(err)
	}
	if third.Attempts("a") != nil || len(third.Attempts("b")) != 1 {
		t.Fatalf("after Keep(b): a=%v b=%v", third.Attempts("a"), third.Attempts("b"))
	}
	if err := third.SetAttempts("b", nil); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if strings.Contains(string(b), `"b"`) {
		t.Fatalf("cleared key still in file:\n%s", b)
	}
	// No temporary files are left behind.
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Fatalf("directory holds %d files, want only the state file", len(ents))
	}
}

func TestOpenCorrupt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.state")
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, "x.pf")
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open corrupt file: err = %v, want ErrCorrupt", err)
	}
	if s == nil || s.Attempts("a") != nil {
		t.Fatal("Open of a corrupt file must still return an empty store")
	}
	if err := s.SetAttempts("a", []time.Time{time.Now()}); err != nil {
		t.Fatalf("writing over a corrupt file: %v", err)
	}
	if _, err := Open(path, "x.pf"); err != nil {
		t.Fatalf("file rewritten after corruption does not open: %v", err)
	}
}

func TestSaveErrorNamesPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "x.state")
	s, err := Open(path, "x.pf")
	if err != nil {
		t.Fatal(err)
	}
	err = s.SetAttempts("a", []time.Time{time.Now()})
	if err == nil || !strings.Contains(err.Error(), path) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("save into a missing directory: err = %v", err)
	}
	// The count is kept in memory all the same.
	if len(s.Attempts("a")) != 1 {
		t.Fatal("a failed save lost the attempt")
	}
}

// TestFutureAttemptsDropped: attempts more than ClockSkew ahead of the
// clock are not counted, and each is reported; those within it count.
func TestFutureAttemptsDropped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.state")
	now := time.Now()
	past, near, far := now.Add(-time.Minute), now.Add(ClockSkew/2), now.Add(time.Hour)
	data := fmt.Sprintf(`{"version":1,"pfile":"x.pf","entries":{
		"a":{"attempts":[%q,%q,%q]},
		"b":{"attempts":[%q]}}}`,
		past.Format(time.RFC3339Nano), near.Format(time.RFC3339Nano), far.Format(time.RFC3339Nano),
		far.Add(time.Hour).Format(time.RFC3339Nano))
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, "x.pf")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Attempts("a"); len(got) != 2 || !got[0].Equal(past) || !got[1].Equal(near) {
		t.Fatalf("a: attempts %v, want [%v %v]", got, past, near)
	}
	if got := s.Attempts("b"); got != nil {
		t.Fatalf("b: attempts %v, want none", got)
	}
	d := s.Dropped()
	if len(d) != 2 || d[0].Key != "a" || !d[0].Attempt.Equal(far) || d[1].Key != "b" {
		t.Fatalf("Dropped = %v", d)
	}
	want := "entry 'a': restart attempt at " + far.Format(time.RFC3339Nano) + " is in the future (now "
	if !strings.HasPrefix(d[0].String(), want) || !strings.HasSuffix(d[0].String(), "), not counted") {
		t.Fatalf("message %q, want prefix %q", d[0], want)
	}
}

// TestStateFileSymlink: a link planted at the state file's path is never
// read or written through: the next save replaces the link.
func TestStateFileSymlink(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("precious\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "x.state")
	if err := os.Symlink(victim, path); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, "x.pf")
	if err == nil || !strings.Contains(err.Error(), "is a symbolic link") {
		t.Fatalf("Open through a link: err = %v", err)
	}
	if err := s.SetAttempts("a", []time.Time{time.Now()}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "precious\n" {
		t.Fatalf("victim written: %q", b)
	}
	if st, err := os.Lstat(path); err != nil || !st.Mode().IsRegular() {
		t.Fatalf("state file is not a regular file after save: %v", err)
	}
}

func TestName(t *testing.T) {
	a := Name("/etc/pcheck/web.pf")
	if !strings.HasPrefix(a, "etc_pcheck_web.pf-") || len(a) != len("etc_pcheck_web.pf-")+8 {
		t.Fatalf("Name = %q", a)
	}
	if b := Name("/etc/pcheck_web.pf"); b == a {
		t.Fatalf("two paths share the name %q", a)
	}
	if strings.ContainsRune(Name("/a b/c:d.pf"), ' ') {
		t.Fatal("Name keeps a space")
	}
}

// TestSpareWhileStateDirUnwritable: while the state file cannot be
// written, the counts go to the spare, and a Store opened meanwhile (pcheck
// restarted) reads them from there; once the state file is written again
// the spare is removed, and the later of the two files is the state.
func TestSpareWhileStateDirUnwritable(t *testing.T) {
	stateDir := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(stateDir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(stateDir, "web.state")
	spare := filepath.Join(t.TempDir(), "web.state")
	s, err := OpenWithSpare(path, spare, "/etc/pcheck/web.pfile")
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().Add(-time.Minute).Round(0)
	if err := s.SetAttempts("k", []time.Time{t0}); err != nil {
		t.Fatal(err)
	}
	// The state directory goes away (as good as full for a write).
	if err := os.RemoveAll(stateDir); err != nil {
		t.Fatal(err)
	}
	t1 := t0.Add(time.Second)
	err = s.SetAttempts("k", []time.Time{t0, t1})
	if err == nil || !strings.Contains(err.Error(), "kept in "+spare) {
		t.Fatalf("save without a state directory: %v, want it kept in the spare", err)
	}
	again, err := OpenWithSpare(path, spare, "/etc/pcheck/web.pfile")
	if err != nil {
		t.Fatal(err)
	}
	if got := again.Attempts("k"); len(got) != 2 || !got[1].Equal(t1) {
		t.Fatalf("attempts after a restart while the state directory was gone: %v, want %v", got, []time.Time{t0, t1})
	}
	// Back: the state file is written and the spare removed.
	if err := os.Mkdir(stateDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := again.SetAttempts("k", []time.Time{t0, t1, t1.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(spare); !os.IsNotExist(err) {
		t.Fatalf("spare left once the state file was written: %v", err)
	}
	last, err := Open(path, "/etc/pcheck/web.pfile")
	if err != nil || len(last.Attempts("k")) != 3 {
		t.Fatalf("state file after recovery: %v, %v", last.Attempts("k"), err)
	}
}
