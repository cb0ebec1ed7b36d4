package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pcheck/pcheck/checker/syslogtest"
)

// TestWatchHalfWritten: with --watch a pfile written in two chunks by a
// writer that keeps it open (a shell redirection around a slow command) is
// not loaded while it is open, cut inside pidfile=; the advice to write by
// rename is logged once, and the whole file is loaded when it is closed.
func TestWatchHalfWritten(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := newService(t, e.dir, "a", "")
	pidfile := filepath.Join(e.dir, "b.pid")
	b := newService(t, e.dir, "b", fmt.Sprintf("SERVICE_PIDFILE='%s' %s", pidfile, startService))
	pa, pb := a.start(), b.start()
	pf := filepath.Join(e.dir, "a.pf")
	writeFile(t, pf, pfileHead+a.entry(""))
	e.start(nil, "--watch", pf)
	e.wait(upLine(pa))

	whole := pfileHead + a.entry("") + b.entry("pidfile="+pidfile)
	cut := strings.Index(whole, "pidfile=") + len("pidfile=") + len(pidfile)/2
	f, err := os.OpenFile(pf, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(whole[:cut]); err != nil {
		t.Fatal(err)
	}
	advice := fmt.Sprintf("pfile '%s' changed while being read; write pfiles to a temporary file and rename it into place", pf)
	loaded := fmt.Sprintf("pfile '%s' reloaded", pf)
	// The first chunk is refused with the advice, never loaded.
	first := e.log.Wait(t, func(l syslogtest.Line) bool {
		return strings.HasSuffix(l.Text, advice) || l.Text == loaded || l.Text == pidFailLine
	}, 30*time.Second)
	if !strings.HasSuffix(first.Text, advice) {
		t.Fatalf("the half-written pfile was loaded: %q\n%v", first.Text, e.log.Lines())
	}
	if _, err := f.WriteString(whole[cut:]); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	e.wait(loaded)
	e.wait(upLine(pb))
	for _, l := range e.log.Lines() {
		if l.Text == pidFailLine || strings.HasPrefix(l.Text, "pfile error") {
			t.Fatalf("half-written pfile seen: %q", l.Text)
		}
	}
	if n := e.count(loaded); n != 1 {
		t.Fatalf("reloaded %d times, want once", n)
	}
	n := 0
	for _, l := range e.log.Lines() {
		if strings.HasSuffix(l.Text, advice) {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("advice logged %d times, want once per change", n)
	}
	if r := b.callReasons(); len(r) != 1 {
		t.Fatalf("b's restart script ran %d times, want once (by hand): %v", len(r), r)
	}
}

// TestWatchInvalidAdvice: with --watch an invalid pfile put in place by
// rename is refused (the old rules stay) with the advice to write pfiles
// by rename, once; a later valid pfile is loaded.
func TestWatchInvalidAdvice(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := newService(t, e.dir, "a", "")
	b := newService(t, e.dir, "b", "")
	pa, pb := a.start(), b.start()
	pf := filepath.Join(e.dir, "a.pf")
	writeFile(t, pf, pfileHead+a.entry(""))
	e.start(nil, "--watch", pf)
	e.wait(upLine(pa))
	replace := func(text string) {
		t.Helper()
		writeFile(t, pf+".new", text)
		if err := os.Rename(pf+".new", pf); err != nil {
			t.Fatal(err)
		}
	}
	replace(pfileHead + "Grace 0\n" + a.entry(""))
	e.wait(fmt.Sprintf("pfile '%s': reload refused, the old rules stay", pf))
	advice := fmt.Sprintf("pfile '%s' changed while being read; write pfiles to a temporary file and rename it into place", pf)
	e.log.Wait(t, func(l syslogtest.Line) bool { return strings.HasSuffix(l.Text, advice) }, 30*time.Second)
	replace(pfileHead + a.entry("") + b.entry(""))
	e.wait(upLine(pb))
	n := 0
	for _, l := range e.log.Lines() {
		if strings.HasSuffix(l.Text, advice) {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("advice logged %d times, want once", n)
	}
}
