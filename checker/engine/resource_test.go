package engine

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pcheck/pcheck/checker/message"
	"github.com/pcheck/pcheck/checker/stall"
)

// The tests below run the real engine with _bi_resource monitors against
// the test binary as a daemon: "grow" touches more and more memory,
// "sleep" stays small. Intervals are 1 s and failovers 2 s.

// growStep, growSteps and growEvery are how the grow helper's memory
// grows: to 256 MiB in 5 s, then it holds still.
const (
	growStep  = 16 << 20
	growSteps = 16
	growEvery = 300 * time.Millisecond
)

// grown keeps the grow helper's memory reachable.
var grown [][]byte

// grow allocates and touches growStep bytes every growEvery, then idles.
func grow() {
	for range growSteps {
		b := make([]byte, growStep)
		for i := 0; i < len(b); i += os.Getpagesize() {
			b[i] = 1
		}
		grown = append(grown, b)
		time.Sleep(growEvery)
	}
	idle()
}

// newResourceService is a service whose restart script starts the small
// "sleep" helper and records its calls.
func newResourceService(t *testing.T) *service {
	t.Helper()
	s := &service{t: t, tag: tagFor(t, "res"), dir: t.TempDir(), log: newRecorder()}
	s.calls = filepath.Join(s.dir, "calls")
	s.script = writeScript(t, s.dir, "restart.sh", fmt.Sprintf("echo \"$1 $2 $3\" >> '%s'\nENGINE_TEST_HELPER=sleep '%s' helper '%s' </dev/null >/dev/null 2>&1 &\n", s.calls, bin, s.tag))
	t.Cleanup(func() { killTagged(s.tag) })
	return s
}

// startHelperRole starts the test binary as helper role with the
// service's tag, as an operator would have started it, and returns its
// pid.
func (s *service) startHelperRole(role string) int {
	s.t.Helper()
	cmd := exec.Command(bin, "helper", s.tag)
	cmd.Env = append(os.Environ(), helperEnv+"="+role)
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	go cmd.Wait()
	return cmd.Process.Pid
}

// resourceBlock is a _bi_resource block: interval 1 s, failover 2 s.
func resourceBlock(metric, limit string) string {
	return block("resource", "-:1:0:3:2:"+metric+":"+limit, 1)
}

// TestResourceRSSStall: a daemon whose resident memory grows past the
// limit of its _bi_resource block is found stalled with the measure in the
// unit of the limit, killed, restarted with reason stall, and its
// successor, under the limit, is not stalled. The lines come in this
// order: find, Killed Process, Down, Try to restart, Up.
func TestResourceRSSStall(t *testing.T) {
	t.Parallel()
	s := newResourceService(t)
	pid := s.startHelperRole("grow")
	s.run(s.pfile(resourceBlock("rss", "64M")))
	s.log.wait(t, message.Up(bin, pid).Text, 1)

	pattern := regexp.MustCompile(`^Find Resource Stall: pid = ` + strconv.Itoa(pid) + ` : rss = (\d+)M : limit = 64M$`)
	var find string
	waitFor(t, "the resource stall", func() bool {
		for _, line := range s.log.texts() {
			if m := pattern.FindStringSubmatch(line); m != nil {
				find = line
				return true
			}
		}
		return false
	})
	t.Log(find)
	value, _ := strconv.Atoi(pattern.FindStringSubmatch(find)[1])
	if value <= 64 {
		t.Fatalf("%q: the measure is not above the limit", find)
	}
	if want := message.ResourceStall(pid, "rss", strconv.Itoa(value)+"M", "64M"); find != want.Text {
		t.Fatalf("%q, want %q", find, want.Text)
	}
	newPid := waitPidTag(t, s.tag, pid)
	s.log.wait(t, message.Up(bin, newPid).Text, 1)
	order := []string{find, message.Killed(pid).Text, message.Down(bin, pid).Text, message.TryRestart(bin).Text, message.Up(bin, newPid).Text}
	for i := 1; i < len(order); i++ {
		if s.log.indexOf(order[i-1]) > s.log.indexOf(order[i]) {
			t.Fatalf("%q logged after %q: %q", order[i-1], order[i], s.log.texts())
		}
	}
	if calls := readFile(s.calls); calls != fmt.Sprintf("%s %d stall\n", bin, pid) {
		t.Fatalf("restart script calls %q, want one with reason stall", calls)
	}
	waitFor(t, "the monitor to run afresh and see the successor under the limit", func() bool {
		st := s.monitor(t)
		return st.State == stall.StateOk && st.Pid == newPid && st.Attempts >= 4
	})
	if st := s.monitor(t); st.Stalls != 1 || st.Target != "rss <= 64M" {
		t.Fatalf("status %+v: want 1 stall, target rss <= 64M", st)
	}
	if n := len(pattern.FindAllString(strings.Join(s.log.texts(), "\n"), -1)); n > 1 {
		t.Fatalf("stalled %d times: %q", n, s.log.texts())
	}
}

// TestResourceUnderLimitNeverStalls: a small idle daemon watched by one
// _bi_resource block of each metric, all within their limits, is never
// stalled however many failover times pass.
func TestResourceUnderLimitNeverStalls(t *testing.T) {
	t.Parallel()
	s := newResourceService(t)
	pid := s.startHelperRole("sleep")
	s.run(s.pfile(resourceBlock("rss", "1G"), resourceBlock("cpu", "90%"), resourceBlock("fds", "1000"),
		resourceBlock("threads", "1000"), resourceBlock("children", "0")))
	s.log.wait(t, message.Up(bin, pid).Text, 1)
	waitFor(t, "5 attempts of every monitor", func() bool {
		ms := s.inst.Monitors()
		for _, m := range ms {
			if m.Attempts < 5 {
				return false
			}
		}
		return len(ms) == 5
	})
	for _, m := range s.inst.Monitors() {
		if m.State != stall.StateOk || m.Failures != 0 || m.Stalls != 0 {
			t.Errorf("%s: %+v, want Ok without failures", m.Target, m)
		}
	}
	for _, line := range s.log.texts() {
		if strings.HasPrefix(line, "Find ") || strings.HasPrefix(line, "Monitor unknown") {
			t.Fatalf("%q logged for a process within its limits: %q", line, s.log.texts())
		}
	}
	if calls := readFile(s.calls); calls != "" {
		t.Fatalf("restart script called: %q", calls)
	}
}
