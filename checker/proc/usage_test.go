package proc

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

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

// TestReadUsage: the figures of a real sleep(1) are those /proc/PID/status
// gives: one thread, its resident set, its start time; it has five
// descriptors more than a sleep(1) started without the five (both inherit
// whatever the test binary was given).
func TestReadUsage(t *testing.T) {
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
	if want := statusField(t, pid, "VmRSS") * 1024; u.RSS != want || u.RSS == 0 {
		t.Errorf("RSS %d, want VmRSS %d", u.RSS, want)
	}
	if u.CPU < 0 || u.CPU > time.Second {
		t.Errorf("CPU %v of an idle sleep", u.CPU)
	}
	n, err := CountFDs(pid)
	if err != nil {
		t.Fatal(err)
	}
	base, err := CountFDs(plain.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if n != base+5 || base < 3 {
		t.Errorf("CountFDs %d with five more descriptors than one with %d", n, base)
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

// TestReadUsageGone: a process that has exited and been reaped is not
// found.
func TestReadUsageGone(t *testing.T) {
	t.Parallel()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadUsage(cmd.Process.Pid); !errors.Is(err, ErrNotFound) {
		t.Errorf("ReadUsage of a reaped pid: %v, want ErrNotFound", err)
	}
	if _, err := CountFDs(cmd.Process.Pid); !errors.Is(err, ErrNotFound) {
		t.Errorf("CountFDs of a reaped pid: %v, want ErrNotFound", err)
	}
}

func TestParseUsage(t *testing.T) {
	line := "4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 150 50 7 3 20 0 9 0 123456 1000000 256 18446744073709551615\n"
	u, err := parseUsage([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	want := Usage{ID: ID{Pid: 4242, Start: 123456}, CPU: ticksToDuration(150 + 50 + 7 + 3), Threads: 9}
	if u != want {
		t.Errorf("got %+v, want %+v", u, want)
	}
	if rss, err := parseResident([]byte("730 449 423 5 0 89 0\n")); err != nil || rss != 449*pageSize {
		t.Errorf("parseResident: %d, %v; want %d", rss, err, 449*pageSize)
	}
	if _, err := parseResident([]byte("730\n")); !errors.Is(err, errStatmFormat) {
		t.Errorf("parseResident of one field: %v, want errStatmFormat", err)
	}
	for _, bad := range []string{"", "4242 (a) S 1", "x (a) S 1 4242 4242 0 -1 0 0 0 0 0 1 1 1 1 20 0 1 0 1 1 1"} {
		if _, err := parseUsage([]byte(bad)); !errors.Is(err, errStatFormat) {
			t.Errorf("parseUsage(%q): %v, want errStatFormat", bad, err)
		}
	}
}
