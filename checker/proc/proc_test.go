package proc

import (
	"errors"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestReadAndScan(t *testing.T) {
	h, _ := startHelper(t, spec{mode: "sleep", path: fakeSvc, args: []string{"--role=read", "two words"}})
	pid := h.cmd.Process.Pid

	info := mustRead(t, pid)
	wantArgv := []string{fakeSvc, "--role=read", "two words"}
	if !slices.Equal(info.Argv, wantArgv) {
		t.Errorf("Argv = %q, want %q", info.Argv, wantArgv)
	}
	if info.Comm != svcName {
		t.Errorf("Comm = %q, want %s", info.Comm, svcName)
	}
	if info.Exe != fakeSvc {
		t.Errorf("Exe = %q, want %q", info.Exe, fakeSvc)
	}
	if info.PPid != os.Getpid() {
		t.Errorf("PPid = %d, want %d", info.PPid, os.Getpid())
	}
	if info.UID != os.Geteuid() {
		t.Errorf("UID = %d, want %d", info.UID, os.Geteuid())
	}
	if info.State == 'Z' || info.Start == 0 || info.StartTime <= 0 {
		t.Errorf("State %c Start %d StartTime %v: want a live process with a start time", info.State, info.Start, info.StartTime)
	}
	self := mustRead(t, os.Getpid())
	if info.Start < self.Start || info.StartTime < self.StartTime {
		t.Errorf("helper started (%d, %v) before the test (%d, %v)", info.Start, info.StartTime, self.Start, self.StartTime)
	}
	if pgid, _ := unix.Getpgid(pid); info.PGid != pgid {
		t.Errorf("PGid = %d, want %d", info.PGid, pgid)
	}
	if sid, _ := unix.Getsid(os.Getpid()); info.Sid != sid {
		t.Errorf("Sid = %d, want the test's %d", info.Sid, sid)
	}
	if got := info.ID.String(); got != strconv.Itoa(pid) {
		t.Errorf("ID.String() = %q, want %q", got, strconv.Itoa(pid))
	}

	all := mustScan(t)
	if !slices.IsSortedFunc(all, func(a, b Info) int { return a.Pid - b.Pid }) {
		t.Error("Scan is not ordered by pid")
	}
	i := slices.IndexFunc(all, func(p Info) bool { return p.Pid == pid })
	if i < 0 {
		t.Fatalf("Scan does not list helper %d", pid)
	}
	if !slices.Equal(all[i].Argv, wantArgv) || all[i].ID != info.ID {
		t.Errorf("Scan lists %+v, Read gave %+v", all[i], info)
	}
	if !slices.ContainsFunc(all, func(p Info) bool { return p.Pid == os.Getpid() }) {
		t.Errorf("Scan does not list the test process %d", os.Getpid())
	}

	h.stop()
	if _, err := Read(pid); !errors.Is(err, ErrNotFound) {
		t.Errorf("Read(%d) after exit: err = %v, want ErrNotFound", pid, err)
	}
	if _, ok := Current(info.ID); ok {
		t.Errorf("Current(%v) true after exit", info.ID)
	}
}

func TestReadInvalidPid(t *testing.T) {
	for _, pid := range []int{0, -1} {
		if _, err := Read(pid); !errors.Is(err, ErrNotFound) {
			t.Errorf("Read(%d): err = %v, want ErrNotFound", pid, err)
		}
	}
}

// A binary replaced under a running process shows as "path (deleted)";
// the process is still the one of that path.
func TestReadDeletedExe(t *testing.T) {
	dir := t.TempDir()
	path, err := installCopy(dir, "replaced")
	if err != nil {
		t.Fatal(err)
	}
	h, _ := startHelper(t, spec{mode: "sleep", path: path, argv0: "replaced"})
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	info := mustRead(t, h.cmd.Process.Pid)
	if info.Exe != path {
		t.Errorf("Exe = %q, want %q", info.Exe, path)
	}
	got := Matcher{Target: path, UID: -1}.Match(mustScan(t))
	if !slices.Equal(pidsOf(got), []int{h.cmd.Process.Pid}) {
		t.Errorf("Match(%s) = %v, want [%d]", path, pidsOf(got), h.cmd.Process.Pid)
	}
}

func TestParseStat(t *testing.T) {
	tail := " 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20"
	tests := []struct {
		line  string
		comm  string
		state byte
		ppid  int
		start uint64
		err   bool
	}{
		{line: "42 (sleep) S 7 42 42 0 -1 4194304 91 0 0 0 0 0 0 0 20 0 1 0 12345 100", comm: "sleep", state: 'S', ppid: 7, start: 12345},
		{line: "42 (a) b (c)) Z 7 42 42" + tail, comm: "a) b (c)", state: 'Z', ppid: 7, start: 16},
		{line: "42 () R 1 1 1" + tail, comm: "", state: 'R', ppid: 1, start: 16},
		{line: "42 (short) S 1 1 1", err: true},
		{line: "42 sleep S 1 1 1" + tail, err: true},
		{line: "x (sleep) S 1 1 1" + tail, err: true},
		{line: "42 (sleep) S one 1 1" + tail, err: true},
	}
	for _, tt := range tests {
		var info Info
		err := parseStat([]byte(tt.line), &info)
		if tt.err {
			if !errors.Is(err, errStatFormat) {
				t.Errorf("parseStat(%q): err = %v, want errStatFormat", tt.line, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseStat(%q): %v", tt.line, err)
			continue
		}
		if info.Pid != 42 || info.Comm != tt.comm || info.State != tt.state || info.PPid != tt.ppid || info.Start != tt.start {
			t.Errorf("parseStat(%q) = pid %d comm %q state %c ppid %d start %d", tt.line, info.Pid, info.Comm, info.State, info.PPid, info.Start)
		}
	}
}

func TestTicksToDuration(t *testing.T) {
	ticks := 3*clockTicks + clockTicks/2
	if got, want := ticksToDuration(ticks), 3500*time.Millisecond; got != want {
		t.Errorf("ticksToDuration(%d) = %v, want %v", ticks, got, want)
	}
}

func TestCurrent(t *testing.T) {
	h, _ := startHelper(t, spec{mode: "sleep"})
	if info, ok := Current(h.id); !ok || info.Pid != h.id.Pid {
		t.Fatalf("Current(%v) = %v, %v; want the live helper", h.id, info.ID, ok)
	}
	// The same pid with another start time is another process: what a
	// reused pid looks like.
	reused := ID{Pid: h.id.Pid, Start: h.id.Start + 1}
	if _, ok := Current(reused); ok {
		t.Errorf("Current(%+v) true for a different start time", reused)
	}
	h.stop()
	if _, ok := Current(h.id); ok {
		t.Errorf("Current(%v) true after the process exited", h.id)
	}
}

func TestLookupUID(t *testing.T) {
	tests := []struct {
		user string
		uid  int
	}{
		{"0", 0},
		{"root", 0},
		{"65534", 65534},
	}
	for _, tt := range tests {
		uid, err := LookupUID(tt.user)
		if err != nil || uid != tt.uid {
			t.Errorf("LookupUID(%q) = %d, %v; want %d", tt.user, uid, err, tt.uid)
		}
	}
	var unknown user.UnknownUserError
	if _, err := LookupUID("no-such-user-pcheck"); !errors.As(err, &unknown) {
		t.Errorf("LookupUID(unknown): err = %v, want user.UnknownUserError", err)
	}
	if _, err := LookupUID("-3"); err == nil {
		t.Error("LookupUID(-3) succeeded")
	}
}

func TestReadPidFile(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		content string
		pid     int
		err     bool
	}{
		{"1234\n", 1234, false},
		{"  77  \n", 77, false},
		{"88 extra words\n", 88, false},
		{"", 0, true},
		{"abc\n", 0, true},
		{"-5\n", 0, true},
	}
	for i, tt := range tests {
		path := filepath.Join(dir, strconv.Itoa(i))
		if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
			t.Fatal(err)
		}
		pid, err := ReadPidFile(path)
		if (err != nil) != tt.err || pid != tt.pid {
			t.Errorf("ReadPidFile(%q) = %d, %v", tt.content, pid, err)
		}
		if tt.err && !errors.Is(err, errNoPid) {
			t.Errorf("ReadPidFile(%q): err = %v, want errNoPid", tt.content, err)
		}
	}
	if _, err := ReadPidFile(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadPidFile(missing): err = %v, want os.ErrNotExist", err)
	}
}

func BenchmarkScan(b *testing.B) {
	n := 0
	for b.Loop() {
		all, err := Scan()
		if err != nil {
			b.Fatal(err)
		}
		n = len(all)
	}
	b.ReportMetric(float64(n), "procs")
}

// BenchmarkRead reads one process, the cost of a re-check.
func BenchmarkRead(b *testing.B) {
	cmd := exec.Command("sleep", "3600")
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	for b.Loop() {
		if _, err := Read(cmd.Process.Pid); err != nil {
			b.Fatal(err)
		}
	}
}
