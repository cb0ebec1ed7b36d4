package stall

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pcheck/pcheck/checker/message"
)

// checkFile is a pfile whose one process has a CMD check, check: interval
// 1 s, failover 3 s.
func checkFile(t *testing.T, check string) string {
	return fmt.Sprintf("%s /bin/true\n_bi_check{\n  PS_EXEC CMD:%s:DIRECT:-:1:0:1:3\n}\n", testProc, check)
}

// TestUnknownNeverStalls: a CMD check whose file vanishes cannot run: the
// monitor is Unknown with the reason, logs `Monitor unknown` once (and
// again only when the reason changes), and is never stalled however long
// it lasts (here more than twice the failover time). The check restored,
// the next attempt is Ok.
func TestUnknownNeverStalls(t *testing.T) {
	dir := t.TempDir()
	check := filepath.Join(dir, "check_app")
	write := func(body string, mode os.FileMode) {
		t.Helper()
		tmp := check + ".new"
		if err := os.WriteFile(tmp, []byte("#!/bin/sh\n"+body+"\n"), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, check); err != nil {
			t.Fatal(err)
		}
	}
	write("exit 0", 0o755)
	clk := newFakeClock()
	target := &fakeTarget{pids: []int{4242}}
	f := loadPfile(t, checkFile(t, check))
	s, log := newTestScheduler(t, f, clk, target)
	up(s, f, 4242)
	waitFor(t, "first attempt", func() bool { return status(t, s).Attempts == 1 && clk.armed() == 1 })
	if st := status(t, s); st.State != StateOk {
		t.Fatalf("first attempt: %+v", st)
	}

	if err := os.Remove(check); err != nil {
		t.Fatal(err)
	}
	gone := fmt.Sprintf("check command %s: fork/exec %s: no such file or directory", check, check)
	n := 1
	for range 7 { // 7 s: more than twice the failover time
		n++
		st := attempt(t, s, clk, time.Second, n)
		if st.State != StateUnknown || st.LastError != gone || st.Failures != 0 || st.FailingFor != 0 {
			t.Fatalf("attempt %d with the check gone: %+v, want Unknown: %s", n, st, gone)
		}
	}
	if k, _ := target.counts(); k != 0 {
		t.Fatalf("%d kills while the check could not run", k)
	}
	want := message.MonitorUnknown(testProc, "_bi_check", gone)
	if want.Text != fmt.Sprintf("Monitor unknown ('%s') _bi_check: %s", testProc, gone) || want.Priority != message.PriorityWarning {
		t.Fatalf("message %+v", want)
	}
	if c := log.count(want.Text); c != 1 {
		t.Fatalf("%q logged %d times, want once; logged:\n%s", want.Text, c, strings.Join(log.texts(), "\n"))
	}
	for _, l := range log.texts() {
		if strings.HasPrefix(l, "Find ") {
			t.Fatalf("a stall was found: %q", l)
		}
	}

	// Another reason: logged again, once.
	write("exit 0", 0o644)
	n++
	st := attempt(t, s, clk, time.Second, n)
	if st.State != StateUnknown || !strings.Contains(st.LastError, "permission denied") {
		t.Fatalf("check not executable: %+v", st)
	}
	n++
	attempt(t, s, clk, time.Second, n)
	noexec := message.MonitorUnknown(testProc, "_bi_check", st.LastError).Text
	if c := log.count(noexec); c != 1 {
		t.Fatalf("%q logged %d times, want once", noexec, c)
	}

	write("exit 0", 0o755)
	n++
	if st := attempt(t, s, clk, time.Second, n); st.State != StateOk || st.LastError != "" || st.SinceSuccess != 0 {
		t.Fatalf("check restored: %+v, want Ok", st)
	}
	if k, _ := target.counts(); k != 0 {
		t.Fatalf("%d kills", k)
	}
}

// TestUnknownEndsFailureRun: an Unknown attempt ends a series of failures
// in progress (the service was not seen failing while it was not seen at
// all): after failures, an Unknown, then failures again, the stall comes
// one failover after the first failure of the new series, not earlier.
func TestUnknownEndsFailureRun(t *testing.T) {
	dir := t.TempDir()
	check := filepath.Join(dir, "check_app")
	write := func(body string) {
		t.Helper()
		tmp := check + ".new"
		if err := os.WriteFile(tmp, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, check); err != nil {
			t.Fatal(err)
		}
	}
	write("echo CRITICAL; exit 2")
	clk := newFakeClock()
	target := &fakeTarget{pids: []int{4242}}
	f := loadPfile(t, checkFile(t, check))
	s, log := newTestScheduler(t, f, clk, target)
	up(s, f, 4242)
	waitFor(t, "first attempt", func() bool { return status(t, s).Attempts == 1 && clk.armed() == 1 })
	st := attempt(t, s, clk, time.Second, 2)
	if st.State != StateInDoubt || st.FailingFor != time.Second {
		t.Fatalf("two failures: %+v", st)
	}
	if err := os.Remove(check); err != nil {
		t.Fatal(err)
	}
	if st = attempt(t, s, clk, time.Second, 3); st.State != StateUnknown || st.FailingFor != 0 {
		t.Fatalf("check gone: %+v, want Unknown, no failure series", st)
	}
	write("echo CRITICAL; exit 2")
	// A failure series from the old start would stall here (3 s).
	for n := 4; n <= 6; n++ {
		st = attempt(t, s, clk, time.Second, n)
		if st.State != StateInDoubt || st.FailingFor != time.Duration(n-4)*time.Second {
			t.Fatalf("attempt %d, failing again: %+v", n, st)
		}
	}
	if k, _ := target.counts(); k != 0 {
		t.Fatal("stalled before a new series lasted the failover time")
	}
	attempt(t, s, clk, time.Second, 7)
	log.wait(t, message.CommandStall(4242, check).Text, 1)
	if st = status(t, s); st.State != StateStalled || st.Failures != 6 {
		t.Fatalf("after the failover time: %+v", st)
	}
}
