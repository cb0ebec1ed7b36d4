package proc

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
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
	if u.Pid != 42 || u.PPid != 1 || u.CPU != 300*tick || u.ChildCPU != 10*tick || u.Threads != 5 || u.Start != 1234 {
		t.Fatalf("parsed %+v", u)
	}
	if _, err := parseUsage([]byte("42 (a) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 7 3 20\n")); !errors.Is(err, errStatFormat) {
		t.Fatalf("a short line: %v", err)
	}
	// The resident set is statm's second field, in pages.
	if rss, err := parseResident([]byte("1000 300 20 10 0 200 0\n")); err != nil || rss != 300*pageSize {
		t.Fatalf("parseResident = %d, %v", rss, err)
	}
	if _, err := parseResident([]byte("1000\n")); !errors.Is(err, errStatmFormat) {
		t.Fatalf("a short statm line: %v", err)
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

// startSleep starts sleep(1) with extra open descriptors; it is killed and
// reaped when the test ends.
func startSleep(t *testing.T, extra int) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "3600")
	for range extra {
		f, err := os.Open(os.DevNull)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		cmd.ExtraFiles = append(cmd.ExtraFiles, f)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	// sleep has exec'd and closed the descriptors marked close-on-exec
	// once it sleeps: the kernel names it sleep before it closes them.
	deadline := time.Now().Add(waitLimit)
	for {
		info, err := Read(cmd.Process.Pid)
		if err == nil && info.Comm == "sleep" && info.State == 'S' {
			return cmd
		}
		if time.Now().After(deadline) {
			t.Fatalf("sleep did not start: %+v %v", info, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// statusField returns a field of /proc/PID/status as a number.
func statusField(t *testing.T, pid int, name string) uint64 {
	t.Helper()
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), name+":"); ok {
			n, err := strconv.ParseUint(strings.Fields(v)[0], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", name, pid)
	return 0
}

// TestReadUsageSleep: the figures of a real sleep(1) are those /proc/PID/status
// gives: one thread, its resident set, its start time; it has five
// descriptors more than a sleep(1) started without the five (both inherit
// whatever the test binary was given).
func TestReadUsageSleep(t *testing.T) {
	t.Parallel()
	cmd, plain := startSleep(t, 5), startSleep(t, 0)
	pid := cmd.Process.Pid
	u, err := ReadUsage(pid)
	if err != nil {
		t.Fatal(err)
	}
	info, err := Read(pid)
	if err != nil {
		t.Fatal(err)
	}
	if u.ID != info.ID {
		t.Errorf("ID %+v, want %+v", u.ID, info.ID)
	}
	if u.Threads != 1 {
		t.Errorf("Threads %d, want 1", u.Threads)
	}
	if want := int64(statusField(t, pid, "VmRSS") * 1024); u.RSS != want || u.RSS == 0 {
		t.Errorf("RSS %d, want VmRSS %d", u.RSS, want)
	}
	if u.CPU < 0 || u.CPU > time.Second {
		t.Errorf("CPU %v of an idle sleep", u.CPU)
	}
	base, err := ReadUsage(plain.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if u.FDs != base.FDs+5 || base.FDs < 3 {
		t.Errorf("FDs %d with five more descriptors than one with %d", u.FDs, base.FDs)
	}
}

// TestReadUsageThreads: the thread count of a Go process (this test
// binary, with threads of its own) is the one of /proc/PID/status, read
// just before and after.
func TestReadUsageThreads(t *testing.T) {
	pid := os.Getpid()
	for range 100 {
		before := statusField(t, pid, "Threads")
		u, err := ReadUsage(pid)
		if err != nil {
			t.Fatal(err)
		}
		after := statusField(t, pid, "Threads")
		if before != after {
			continue // a thread came or went in between: read again
		}
		if uint64(u.Threads) != before || before < 2 {
			t.Fatalf("Threads %d, /proc/PID/status says %d", u.Threads, before)
		}
		return
	}
	t.Fatal("the thread count never held still")
}

// TestReadUsageCPU: a process spinning on the processor accumulates
// processor time.
func TestReadUsageCPU(t *testing.T) {
	t.Parallel()
	cmd := exec.Command("sh", "-c", "while :; do :; done")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(waitLimit)
	for {
		u, err := ReadUsage(cmd.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		if u.CPU >= 100*time.Millisecond {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("CPU %v after %v of spinning", u.CPU, waitLimit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
