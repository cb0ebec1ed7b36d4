package probe

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestHeartbeat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alive")
	p := Heartbeat(path)
	r := p.Run(withTimeout(t, 30*time.Second))
	if r.OK || !errors.Is(r.Err, fs.ErrNotExist) || !r.ModTime.IsZero() {
		t.Fatalf("missing file: got OK=%v Err=%v ModTime=%v, want fs.ErrNotExist", r.OK, r.Err, r.ModTime)
	}
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, mtime := range []time.Time{
		time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC),
		time.Date(2024, 5, 1, 12, 0, 1, 500, time.UTC),
	} {
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		r := p.Run(withTimeout(t, 30*time.Second))
		if !r.OK || !r.ModTime.Equal(mtime) {
			t.Fatalf("got OK=%v ModTime=%v (Err %v), want OK and %v", r.OK, r.ModTime, r.Err, mtime)
		}
		if want := "mtime " + r.ModTime.Format(time.RFC3339Nano); r.Detail != want {
			t.Errorf("Detail = %q, want %q", r.Detail, want)
		}
	}
}
