package pidlock

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestAcquireHeldAndRelease(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.pid")
	first, res, err := Acquire(path, false)
	if err != nil {
		t.Fatal(err)
	}
	if res.StalePid != 0 || res.ForcedPid != 0 {
		t.Fatalf("fresh lock reports %+v", res)
	}
	if pid, _ := ReadPid(path); pid != os.Getpid() {
		t.Fatalf("pid file holds %d, want %d", pid, os.Getpid())
	}

	// flock locks belong to the open file, so a second Acquire in the
	// same process is refused like another pcheck would be.
	_, _, err = Acquire(path, false)
	var held *HeldError
	if !errors.As(err, &held) || !errors.Is(err, ErrHeld) {
		t.Fatalf("second Acquire: err = %v, want HeldError", err)
	}
	if held.Pid != os.Getpid() || held.Path != path {
		t.Fatalf("HeldError = %+v", held)
	}
	if want := "(pid " + strconv.Itoa(os.Getpid()) + ")"; !strings.Contains(err.Error(), want) {
		t.Fatalf("message %q does not name the holder %s", err, want)
	}

	if err := first.Release(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("pid file left after Release: %v", err)
	}
	again, _, err := Acquire(path, false)
	if err != nil {
		t.Fatalf("Acquire after Release: %v", err)
	}
	again.Release()
}

func TestAcquireStale(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.pid")
	if err := os.WriteFile(path, []byte("424242\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, res, err := Acquire(path, false)
	if err != nil {
		t.Fatalf("stale file not taken over: %v", err)
	}
	defer l.Release()
	if res.StalePid != 424242 {
		t.Fatalf("StalePid = %d, want 424242", res.StalePid)
	}
	if pid, _ := ReadPid(path); pid != os.Getpid() {
		t.Fatalf("pid file holds %d after takeover", pid)
	}
}

func TestAcquireForce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.pid")
	first, _, err := Acquire(path, false)
	if err != nil {
		t.Fatal(err)
	}
	second, res, err := Acquire(path, true)
	if err != nil {
		t.Fatalf("forced Acquire: %v", err)
	}
	if res.ForcedPid != os.Getpid() {
		t.Fatalf("ForcedPid = %d", res.ForcedPid)
	}
	// The pushed-aside holder must not remove the new holder's file.
	if err := first.Release(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("old holder's Release removed the new pid file: %v", err)
	}
	if _, _, err := Acquire(path, false); !errors.Is(err, ErrHeld) {
		t.Fatalf("lock not held by the forced holder: %v", err)
	}
	second.Release()
}

func TestAcquireMissingDir(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no", "x.pid")
	if _, _, err := Acquire(path, false); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want ErrNotExist", err)
	}
}
