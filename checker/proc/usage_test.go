package proc

import (
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestReadUsage: the figures of a real process agree with what the
// kernel shows elsewhere: threads and VmRSS in /proc/PID/status, the fd
// count in /proc/PID/fd, the start time in Read; CPU grows with work.
func TestReadUsage(t *testing.T) {
	h, line := startHelper(t, spec{mode: "parent", env: []string{countEnv + "=3"}})
	kids := pids(t, line)
	u, err := ReadUsage(h.id.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if u.ID != h.id || u.PPid != os.Getpid() || u.StartTime != mustRead(t, h.id.Pid).StartTime {
		t.Fatalf("usage %+v of helper %+v (parent %d)", u, h.id, os.Getpid())
	}
	// A sleep(1) child holds still: one thread, its memory and files
	// stay as they are.
	kid := kids[0]
	if u, err = ReadUsage(kid); err != nil {
		t.Fatal(err)
	}
	status := statusFields(t, kid)
	if strconv.Itoa(u.Threads) != status["Threads"] {
		t.Errorf("threads %d, status says %s", u.Threads, status["Threads"])
	}
	// VmRSS is in kB; both come from the same counters, read at
	// slightly different times.
	kb, _ := strconv.ParseInt(strings.Fields(status["VmRSS"])[0], 10, 64)
	if u.RSS <= 0 || abs(u.RSS/1024-kb) > kb/4 {
		t.Errorf("rss %d bytes, status says VmRSS %d kB", u.RSS, kb)
	}
	fds, err := os.ReadDir("/proc/" + strconv.Itoa(kid) + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	if u.FDs != len(fds) || u.FDs < 3 || u.Threads != 1 || u.PPid != h.id.Pid {
		t.Errorf("fds %d, /proc/PID/fd lists %d; usage %+v", u.FDs, len(fds), u)
	}
	got, err := Children(h.id.Pid)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	slices.Sort(kids)
	if !slices.Equal(got, kids) {
		t.Errorf("children %v, the helper started %v", got, kids)
	}
	// Our own CPU time grows as we burn some.
	self, err := ReadUsage(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(waitLimit)
	for {
		for i := 0; i < 1e6; i++ {
			_ = strconv.Itoa(i)
		}
		now, err := ReadUsage(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if now.CPU > self.CPU {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("CPU time stays %v", now.CPU)
		}
	}
}

// TestReadUsageGone: a process that does not exist is ErrNotFound, for
// its usage and its children.
func TestReadUsageGone(t *testing.T) {
	h, _ := startHelper(t, spec{mode: "sleep"})
	pid := h.id.Pid
	h.stop()
	if _, err := ReadUsage(pid); !errors.Is(err, ErrNotFound) {
		t.Errorf("ReadUsage of a reaped pid: %v", err)
	}
	if _, err := Children(pid); !errors.Is(err, ErrNotFound) {
		t.Errorf("Children of a reaped pid: %v", err)
	}
}

func TestParseUsage(t *testing.T) {
	line := "42 (a) b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 7 3 20 0 5 0 1234 10000000 300 18446744073709551615\n"
	u, err := parseUsage([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	tick := time.Second / time.Duration(clockTicks)
	if u.Pid != 42 || u.PPid != 1 || u.CPU != 300*tick || u.ChildCPU != 10*tick || u.Threads != 5 ||
		u.RSS != 300*pageSize || u.Start != 1234 {
		t.Fatalf("parsed %+v", u)
	}
	if _, err := parseUsage([]byte("42 (a) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 7 3 20 0 5 0 1234\n")); !errors.Is(err, errStatFormat) {
		t.Fatalf("a short line: %v", err)
	}
}

func statusFields(t *testing.T, pid int) map[string]string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for l := range strings.SplitSeq(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			out[k] = strings.TrimSpace(v)
		}
	}
	return out
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}
