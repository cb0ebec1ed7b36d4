package state

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pcheck/pcheck/pfile"
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

func TestWriteFileErrorNamesPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "x.state")
	err := WriteFile(path, []byte("x"), 0o600)
	if err == nil || !strings.Contains(err.Error(), path) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("WriteFile into a missing directory: err = %v", err)
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

func TestKey(t *testing.T) {
	p := &pfile.Process{Name: "/usr/sbin/httpd", Script: "/etc/r.sh", Args: "-k", User: "www"}
	q := *p
	q.Retry = 9 // retry settings do not change the key
	if Key(p) != Key(&q) {
		t.Fatal("retry settings change the key")
	}
	r := *p
	r.ByName = true
	if Key(p) == Key(&r) {
		t.Fatal("a quoted name and a path share a key")
	}
	s := *p
	s.Args = "-x"
	if Key(p) == Key(&s) {
		t.Fatal("different args share a key")
	}
}
