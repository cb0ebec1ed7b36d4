package stall

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pcheck/pcheck/checker/message"
	"github.com/pcheck/pcheck/checker/proc"
)

// TestHeartbeatWallClockStep: a heartbeat's freshness is judged on the
// monotonic clock, by noticing that the file's mtime changed, never by
// comparing the mtime with the date. With the date set an hour ahead, a
// file still being touched stays Ok (against the date it is an hour old);
// with the date then set two hours back, a file no longer touched stalls
// at the attempt one failover after its first unchanged one (against the
// date it is an hour in the future, fresh), neither earlier nor later.
func TestHeartbeatWallClockStep(t *testing.T) {
	clk := newFakeClock()
	target := &fakeTarget{pids: []int{4242}}
	hb := filepath.Join(t.TempDir(), "alive")
	beats := 0
	touch := func() {
		beats++
		mtime := time.Now().Add(time.Duration(beats) * time.Millisecond) // distinct whatever the file system's granularity
		if err := os.WriteFile(hb, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(hb, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	f := loadPfile(t, fmt.Sprintf("%s /bin/true\n%s", testProc, block("heartbeat", "-:1:0:2:2:"+hb, 1)))
	s, log := newTestScheduler(t, f, clk, target)
	touch()
	up(s, f, 4242)
	waitFor(t, "first attempt", func() bool { return status(t, s).Attempts == 1 && clk.armed() == 1 })
	if st := status(t, s); st.State != StateOk {
		t.Fatalf("first attempt on an existing file: %+v", st)
	}

	clk.StepWall(time.Hour)
	n := 1
	for range 4 {
		touch()
		n++
		if st := attempt(t, s, clk, time.Second, n); st.State != StateOk || st.SinceSuccess != 0 {
			t.Fatalf("touched, the date an hour ahead: %+v, want Ok", st)
		}
	}

	// The touching stops.
	n++
	st := attempt(t, s, clk, time.Second, n)
	if st.State != StateInDoubt || st.FailingFor != 0 || st.SinceSuccess != time.Second || !strings.Contains(st.LastError, "not modified") {
		t.Fatalf("first unchanged attempt: %+v", st)
	}
	clk.StepWall(-2 * time.Hour)
	n++
	st = attempt(t, s, clk, time.Second, n)
	if st.State != StateInDoubt || st.FailingFor != time.Second || st.SinceSuccess != 2*time.Second {
		t.Fatalf("second unchanged attempt, the date two hours back: %+v", st)
	}
	if k, _ := target.counts(); k != 0 {
		t.Fatal("killed before the failover time")
	}
	n++
	attempt(t, s, clk, time.Second, n)
	log.wait(t, message.HeartbeatStall(4242, hb).Text, 1)
	if st = status(t, s); st.State != StateStalled || st.Stalls != 1 {
		t.Fatalf("after the failover time: %+v", st)
	}
}

// TestChildrenNotAnotherWatched: with count=2, the second watched process
// (here a sleep started by this test, so also its descendant) does not
// stand in for a required child of its name: apache2's second master is
// not a worker. The attempt fails: the child is missing.
func TestChildrenNotAnotherWatched(t *testing.T) {
	second := exec.Command("sleep", "1000")
	if err := second.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { second.Process.Kill(); second.Wait() })
	info, err := proc.Read(second.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	self, err := proc.Read(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	clk := newFakeClock()
	target := &fakeTarget{pids: []int{self.Pid, info.Pid}}
	f := loadPfile(t, fmt.Sprintf("%s /bin/true count=2\n%s", testProc, block("children", "-:1:0:2:5:sleep", 1)))
	s, _ := newTestScheduler(t, f, clk, target)
	s.upIDs(self.ID, info.ID)
	waitFor(t, "first attempt", func() bool { return status(t, s).Attempts == 1 && clk.armed() == 1 })
	if st := status(t, s); st.State != StateInDoubt || !strings.Contains(st.LastError, "sleep") {
		t.Fatalf("the second watched process taken for the child: %+v", st)
	}
}

// TestResourceChildrenNotAnotherWatched: with count=2, the second watched
// process (a sleep started by this test, so also its descendant) is not
// counted among the children of a _bi_resource children block: with a
// limit of 0 the attempt succeeds.
func TestResourceChildrenNotAnotherWatched(t *testing.T) {
	second := exec.Command("sleep", "1000")
	if err := second.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { second.Process.Kill(); second.Wait() })
	info, err := proc.Read(second.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	self, err := proc.Read(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	clk := newFakeClock()
	target := &fakeTarget{pids: []int{self.Pid, info.Pid}}
	f := loadPfile(t, fmt.Sprintf("%s /bin/true count=2\n%s", testProc, block("resource", "-:1:0:3:5:children:0", 1)))
	s, _ := newTestScheduler(t, f, clk, target)
	s.upIDs(self.ID, info.ID)
	waitFor(t, "first attempt", func() bool { return status(t, s).Attempts == 1 && clk.armed() == 1 })
	if st := status(t, s); st.State != StateOk || st.LastDetail != "children = 0 : limit = 0" {
		t.Fatalf("the second watched process counted as a child: %+v", st)
	}
}
