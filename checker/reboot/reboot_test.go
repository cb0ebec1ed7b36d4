package reboot

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pcheck/pcheck/checker/message"
)

type logs struct {
	mu    sync.Mutex
	lines []string
}

func (l *logs) Log(m message.Message) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, m.Text)
}

// The reboot command is harmless: it appends a line to a file, which is
// how the test sees that it ran. Tests never reboot the machine.
func TestCountedToLimitThenSkipped(t *testing.T) {
	dir := t.TempDir()
	ran := filepath.Join(dir, "ran")
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	l := &logs{}
	r := &Rebooter{
		File: filepath.Join(dir, "reboots.json"), Limit: 2, Window: time.Hour,
		Command: "echo reboot >> " + ran, Log: l, Now: func() time.Time { return now },
	}
	for i := 0; i < 3; i++ {
		did, err := r.Trigger(context.Background(), "/usr/sbin/httpd")
		if err != nil {
			t.Fatal(err)
		}
		if did != (i < 2) {
			t.Fatalf("trigger %d: rebooted=%v", i, did)
		}
		now = now.Add(time.Minute)
	}
	data, _ := os.ReadFile(ran)
	if got := strings.Count(string(data), "reboot"); got != 2 {
		t.Errorf("command ran %d times, want 2", got)
	}
	want := []string{
		"Auto reboot ('/usr/sbin/httpd') count=1/2",
		"Auto reboot ('/usr/sbin/httpd') count=2/2",
		"Auto reboot skipped ('/usr/sbin/httpd'): limit 2 reached",
	}
	if strings.Join(l.lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("messages:\n%s\nwant:\n%s", strings.Join(l.lines, "\n"), strings.Join(want, "\n"))
	}
	// Outside the window the old reboots no longer count.
	now = now.Add(2 * time.Hour)
	if n, err := r.Count(); err != nil || n != 0 {
		t.Errorf("count after the window: %d, %v", n, err)
	}
	if did, _ := r.Trigger(context.Background(), "/usr/sbin/httpd"); !did {
		t.Error("no reboot after the window passed")
	}
}

// The count is on disk before the command runs: the command sees it.
func TestRecordedBeforeCommand(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "reboots.json")
	seen := filepath.Join(dir, "seen")
	r := &Rebooter{File: file, Limit: 3, Window: time.Hour, Command: "cat " + file + " > " + seen, Log: &logs{}}
	if _, err := r.Trigger(context.Background(), "p"); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(seen)
	if !strings.Contains(string(data), `"reboots":["`) {
		t.Errorf("the command saw %q, want the recorded reboot", data)
	}
}

func TestResetAndCorrupt(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "reboots.json")
	r := &Rebooter{File: file, Limit: 1, Window: time.Hour, Command: "true", Log: &logs{}}
	if _, err := r.Trigger(context.Background(), "p"); err != nil {
		t.Fatal(err)
	}
	if n, _ := r.Count(); n != 1 {
		t.Fatalf("count %d", n)
	}
	if err := r.Reset(); err != nil {
		t.Fatal(err)
	}
	if n, _ := r.Count(); n != 0 {
		t.Fatalf("count after reset %d", n)
	}
	if err := os.WriteFile(file, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	did, err := r.Trigger(context.Background(), "p")
	if did || err == nil || !strings.Contains(err.Error(), file) {
		t.Errorf("corrupt count: rebooted=%v err=%v; want no reboot and an error naming the file", did, err)
	}
}

// TestStateFileNotFollowed: a link planted at RebootStateFile is neither
// read nor written through, and a count in a world-writable directory is
// refused: no reboot on a count that cannot be trusted.
func TestStateFileNotFollowed(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte(`{"reboots":[]}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ran := filepath.Join(dir, "ran")
	r := &Rebooter{File: filepath.Join(dir, "reboots.json"), Limit: 2, Window: time.Hour,
		Command: "echo reboot >> " + ran, Log: &logs{}}
	if err := os.Symlink(victim, r.File); err != nil {
		t.Fatal(err)
	}
	did, err := r.Trigger(context.Background(), "/usr/sbin/httpd")
	if did || err == nil {
		t.Fatalf("count read through a link: rebooted=%v err=%v", did, err)
	}
	if b, _ := os.ReadFile(victim); string(b) != `{"reboots":[]}`+"\n" {
		t.Fatalf("victim written: %q", b)
	}

	open := t.TempDir()
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	r.File = filepath.Join(open, "reboots.json")
	did, err = r.Trigger(context.Background(), "/usr/sbin/httpd")
	if did || err == nil || !strings.Contains(err.Error(), "is writable by group or other") {
		t.Fatalf("count in a 0777 directory: rebooted=%v err=%v", did, err)
	}
	if _, err := os.Stat(ran); err == nil {
		t.Fatal("RebootCommand ran")
	}
}

// A RebootCommand program made writable by others after the pfile was
// loaded is checked again before it runs as root: it is not run, and no
// reboot is recorded.
func TestUnsafeProgramNotRun(t *testing.T) {
	dir := t.TempDir()
	ran := filepath.Join(dir, "ran")
	prog := filepath.Join(dir, "reboot.sh")
	syscall.ForkLock.Lock()
	err := os.WriteFile(prog, []byte("#!/bin/sh\necho reboot >> "+ran+"\n"), 0o755)
	syscall.ForkLock.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(prog, 0o777); err != nil {
		t.Fatal(err)
	}
	l := &logs{}
	r := &Rebooter{File: filepath.Join(dir, "reboots.json"), Limit: 3, Window: time.Hour, Command: prog, Log: l}
	did, err := r.Trigger(context.Background(), "/usr/sbin/httpd")
	if did || err == nil {
		t.Fatalf("Trigger with a 0777 program: rebooted=%v err=%v", did, err)
	}
	if _, err := os.Stat(ran); !os.IsNotExist(err) {
		t.Fatalf("the 0777 RebootCommand program ran as root: %v", err)
	}
	if n, _ := r.Count(); n != 0 {
		t.Fatalf("%d reboots recorded for a command that did not run", n)
	}
	want := "Auto reboot ('/usr/sbin/httpd'): RebootCommand refused, not run: RebootCommand program " + prog + " is writable by group and other (mode 0777): chmod go-w " + prog
	if len(l.lines) != 1 || l.lines[0] != want {
		t.Fatalf("messages %q, want %q", l.lines, want)
	}
}
