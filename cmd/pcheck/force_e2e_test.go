package main

import (
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/pcheck/pcheck/checker/control"
	"github.com/pcheck/pcheck/checker/proc"
)

// TestForceDetached: `pcheck -D --force` over a detached pcheck stops it
// (the binary proves the holder is a pcheck by its command name), then
// monitors alone: padmin reaches the new one through the socket.
func TestForceDetached(t *testing.T) {
	t.Parallel()
	e := setup(t, "start", 3, "continue")
	pid := e.startService()
	up := fmt.Sprintf("('%s' ,pid=%d) Up", self, pid)

	a := e.pcheck("-D", e.pfile)
	if st := a.status(t); st != 0 {
		t.Fatalf("-D exit status %d; stderr:\n%s", st, a.stderr)
	}
	first := e.wait(up).Pid
	t.Cleanup(func() { syscall.Kill(first, syscall.SIGKILL) })

	b := e.pcheck("-D", "--force", e.pfile)
	if st := b.status(t); st != 0 {
		t.Fatalf("-D --force exit status %d; stderr:\n%s", st, b.stderr)
	}
	l := e.wait(fmt.Sprintf("pfile '%s': --force: pcheck pid %d stopped, its lock taken over", e.pfile, first))
	second := l.Pid
	t.Cleanup(func() { syscall.Kill(second, syscall.SIGKILL) })
	if i, err := proc.Read(first); err == nil && !i.Dead() {
		t.Fatalf("the first pcheck (pid %d) still runs", first)
	}
	e.wait("pcheck stop. pfile='" + e.pfile + "'")

	sock := control.SocketPath(filepath.Join(e.dir, "run"), e.pfile)
	deadline := time.Now().Add(30 * time.Second)
	for {
		sv, err := control.Query(sock, time.Second)
		if err == nil && sv.Info.Pid == second {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("padmin does not reach the forced pcheck %d: %+v, %v", second, sv.Info, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	syscall.Kill(second, syscall.SIGTERM)
	deadline = time.Now().Add(30 * time.Second)
	for {
		if i, err := proc.Read(second); err != nil || i.Dead() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the forced pcheck did not stop on SIGTERM")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
