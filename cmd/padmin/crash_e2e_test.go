package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pcheck/pcheck/checker/control"
)

// fatalService is the E2E_ROLE=fatal service: it writes to its standard
// output, inherited from the restart script that started it, as daemons
// do, and on SIGUSR1 says why it gives up and dies.
func fatalService() {
	syscall.Setsid()
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	fmt.Println("serving")
	<-usr1
	fmt.Println("FATAL: disk full")
	os.Exit(1)
}

// TestCrashOutputKept: a service started by its restart script writes
// why it dies to the output it inherited; the lines are logged right after
// its Down, are part of the Down event in padmin events, and the previous
// run's output file is kept as .out.1 when the next run starts.
func TestCrashOutputKept(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.service("db", fmt.Sprintf("echo \"starting run $PCHECK_ATTEMPT\"\nE2E_ROLE=fatal '%s' service '%s' </dev/null &", self, e.id+"-db"))
	e.writePfile("", s)
	e.pcheck()
	// Not running at start: Set pid fail after StartWait, then the script.
	pid := e.waitProcess(s.key(), "Up", isUp).Pids[0]
	e.log.WaitText(t, fmt.Sprintf("restart script ('%s'): starting run 1", self), 30*time.Second)

	// The service says "serving" once its SIGUSR1 handler is in place;
	// before that, a Go program drops SIGUSR1 and the test would hang.
	waitServing(t, filepath.Join(e.dir, "state"))
	syscall.Kill(pid, syscall.SIGUSR1)
	down := fmt.Sprintf("Process ['%s',pid=%d] Down", self, pid)
	fatal := fmt.Sprintf("last output ('%s'): FATAL: disk full", self)
	e.log.WaitText(t, down, 30*time.Second)
	e.log.WaitText(t, fatal, 30*time.Second)
	lines := e.log.Lines()
	iDown, iFatal := -1, -1
	for i, l := range lines {
		switch l.Text {
		case down:
			iDown = i
		case fatal:
			iFatal = i
		}
	}
	for i := iDown + 1; i < iFatal; i++ {
		if !strings.HasPrefix(lines[i].Text, "last output (") {
			t.Fatalf("line %q between Down and the FATAL line", lines[i].Text)
		}
	}
	if iFatal < iDown || lines[iFatal].Severity != 6 {
		t.Fatalf("FATAL line at %d (severity %d), Down at %d: want it after Down, at info", iFatal, lines[iFatal].Severity, iDown)
	}
	e.waitProcess(s.key(), "a new pid", func(p control.ProcessStatus) bool { return isUp(p) && p.Pids[0] != pid })
	e.log.WaitText(t, fmt.Sprintf("restart script ('%s'): starting run 2", self), 30*time.Second)

	// The previous run's output is kept beside the current one.
	prev, _ := filepath.Glob(filepath.Join(e.dir, "state", "*.out.1"))
	if len(prev) != 1 {
		t.Fatalf("previous output files %v, want one", prev)
	}
	b, err := os.ReadFile(prev[0])
	if err != nil {
		t.Fatal(err)
	}
	if got := string(b); !strings.HasPrefix(got, "starting run 1\n") || !strings.HasSuffix(got, "FATAL: disk full\n") {
		t.Fatalf("%s holds %q, want the first run's output", prev[0], got)
	}

	// padmin events: the Down event carries the lines.
	var evs []map[string]any
	if err := json.Unmarshal([]byte(e.ok("events", e.pfile, "--json").stdout), &evs); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ev := range evs {
		b, _ := json.Marshal(ev)
		if ev["kind"] == "down" && strings.Contains(string(b), "FATAL: disk full") {
			found = true
		}
	}
	if !found {
		t.Fatalf("no down event with the FATAL line among %v", evs)
	}
	if r := e.ok("events", e.pfile); !strings.Contains(r.stdout, "FATAL: disk full") {
		t.Fatalf("padmin events does not show the FATAL line:\n%s", r.stdout)
	}
}

// waitServing waits until the service's output file in the state
// directory says "serving".
func waitServing(t *testing.T, stateDir string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		outs, _ := filepath.Glob(filepath.Join(stateDir, "*.out"))
		for _, o := range outs {
			if b, _ := os.ReadFile(o); strings.Contains(string(b), "serving\n") {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the service did not say \"serving\" in %v within 30s", outs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
