package proc

import (
	"errors"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
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

// The effective uid comes from the owner of /proc/PID, which the kernel
// keeps the euid for a process that is not dumpable, whose other files it
// gives to root.
func TestUIDOfNonDumpableProcess(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to change a helper's effective uid")
	}
	const nobody = 65534
	h, _ := startHelper(t, spec{mode: "euid", env: []string{euidEnv + "=" + strconv.Itoa(nobody)}})
	pid := h.cmd.Process.Pid
	fi, err := os.Stat("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	if uid := fi.Sys().(*syscall.Stat_t).Uid; uid != 0 {
		t.Fatalf("/proc/%d/stat owned by %d: the helper is still dumpable, the test proves nothing", pid, uid)
	}
	if got := mustRead(t, pid).UID; got != nobody {
		t.Errorf("Read(%d).UID = %d, want the effective uid %d", pid, got, nobody)
	}
	if got := statusUID(t, pid); got != nobody {
		t.Errorf("/proc/%d/status effective uid = %d, want %d", pid, got, nobody)
	}
	all := mustScan(t)
	i := slices.IndexFunc(all, func(p Info) bool { return p.Pid == pid })
	if i < 0 {
		t.Fatalf("Scan does not list helper %d", pid)
	}
	if all[i].UID != nobody {
		t.Errorf("Scan: helper %d has UID %d, want %d", pid, all[i].UID, nobody)
	}
}

// statusUID returns the effective uid of the Uid line of /proc/PID/status.
func statusUID(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
			if f := strings.Fields(rest); len(f) > 1 {
				uid, err := strconv.Atoi(f[1])
				if err != nil {
					t.Fatalf("/proc/%d/status: %q: %v", pid, line, err)
				}
				return uid
			}
		}
	}
	t.Fatalf("/proc/%d/status: no Uid line", pid)
	return 0
}

// slowInfo reads what Scan reports of pid the plain way: every file with
// os.ReadFile, the uid from status. ok is false when the process is gone.
func slowInfo(pid int) (uid int, argv []string, exe string, ok bool) {
	dir := "/proc/" + strconv.Itoa(pid)
	status, err := os.ReadFile(dir + "/status")
	if err != nil {
		return 0, nil, "", false
	}
	uid = -1
	for line := range strings.Lines(string(status)) {
		if rest, found := strings.CutPrefix(line, "Uid:"); found {
			if f := strings.Fields(rest); len(f) > 1 {
				uid, _ = strconv.Atoi(f[1])
			}
		}
	}
	cmdline, err := os.ReadFile(dir + "/cmdline")
	if err != nil {
		return 0, nil, "", false
	}
	if s := strings.TrimSuffix(string(cmdline), "\x00"); s != "" {
		argv = strings.Split(s, "\x00")
	}
	exe, _ = os.Readlink(dir + "/exe")
	return uid, argv, strings.TrimSuffix(exe, " (deleted)"), true
}

// Scan's shortcuts (uid from the directory, no cmdline or exe for kernel
// threads and zombies, one read per file) give what reading every file the
// plain way gives, for every process on the machine. A process that changes
// between the two readings is read again; one that exits is skipped.
func TestScanAgreesWithPlainReads(t *testing.T) {
	h, _ := startHelper(t, spec{mode: "sleep", path: fakeSvc, args: []string{strings.Repeat("long argument ", 600)}})
	all := mustScan(t)
	if !slices.ContainsFunc(all, func(p Info) bool { return p.Pid == h.cmd.Process.Pid && len(p.Argv) == 2 && len(p.Argv[1]) > minRead }) {
		t.Errorf("Scan did not read the %d-byte command line of helper %d whole", len(fakeSvc)+600*14, h.cmd.Process.Pid)
	}
	compared := 0
	for _, p := range all {
		for try := 0; ; try++ {
			uid, argv, exe, ok := slowInfo(p.Pid)
			if !ok {
				break
			}
			if uid == p.UID && slices.Equal(argv, p.Argv) && exe == p.Exe {
				compared++
				break
			}
			if try == 2 {
				t.Errorf("pid %d (%s): Scan gave uid %d argv %q exe %q; plain reads give uid %d argv %q exe %q",
					p.Pid, p.Comm, p.UID, p.Argv, p.Exe, uid, argv, exe)
				break
			}
			again, err := Read(p.Pid)
			if err != nil || again.ID != p.ID {
				break
			}
			p = again
		}
	}
	if compared < 2 {
		t.Errorf("only %d processes compared", compared)
	}
}

// ScanStat gives what Scan gives of stat, and nothing a Matcher could take
// for a user, an executable or arguments.
func TestScanStat(t *testing.T) {
	h, _ := startHelper(t, spec{mode: "sleep", path: fakeSvc, args: []string{"--role=stat"}})
	pid := h.cmd.Process.Pid
	brief, err := ScanStat()
	if err != nil {
		t.Fatal(err)
	}
	full := mustRead(t, pid)
	i := slices.IndexFunc(brief, func(p Info) bool { return p.Pid == pid })
	if i < 0 {
		t.Fatalf("ScanStat does not list helper %d", pid)
	}
	want := full
	want.UID, want.Exe, want.Argv = -1, "", nil
	got := brief[i]
	if got.State == 0 {
		t.Errorf("ScanStat lists helper %d without a state", pid)
	}
	got.State = want.State // it may change from one reading to the next
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ScanStat lists %+v, want %+v", got, want)
	}
	if !slices.IsSortedFunc(brief, func(a, b Info) int { return a.Pid - b.Pid }) {
		t.Error("ScanStat is not ordered by pid")
	}
	for _, m := range []Matcher{
		{Target: fakeSvc, UID: -1},
		{Target: svcName, ByName: true, UID: os.Geteuid()},
		{Target: svcName, ByName: true, UID: -1, Args: "--role=stat"},
	} {
		if got := m.Match(brief); len(got) != 0 {
			t.Errorf("%+v matched %v in a ScanStat, want nothing", m, pidsOf(got))
		}
		if got := m.Match(mustScan(t)); !slices.Contains(pidsOf(got), pid) {
			t.Errorf("%+v: Scan gives %v, want helper %d among them", m, pidsOf(got), pid)
		}
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
		flags uint64
		start uint64
		err   bool
	}{
		{line: "42 (sleep) S 7 42 42 0 -1 4194304 91 0 0 0 0 0 0 0 20 0 1 0 12345 100\n", comm: "sleep", state: 'S', ppid: 7, flags: 4194304, start: 12345},
		{line: "42 (kworker/0:1) I 2 0 0 0 -1 69238880 0 0 0 0 0 0 0 0 20 0 1 0 77\n", comm: "kworker/0:1", state: 'I', ppid: 2, flags: 69238880, start: 77},
		{line: "42 (a) b (c)) Z 7 42 42" + tail, comm: "a) b (c)", state: 'Z', ppid: 7, flags: 3, start: 16},
		{line: "42 () R 1 1 1" + tail, comm: "", state: 'R', ppid: 1, flags: 3, start: 16},
		{line: "42 (short) S 1 1 1", err: true},
		{line: "42 (short) S 1 1 1 0 -1 4194304 91 0 0 0 0 0 0 0 20 0 1 0\n", err: true},
		{line: "42 sleep S 1 1 1" + tail, err: true},
		{line: "x (sleep) S 1 1 1" + tail, err: true},
		{line: "42 (sleep) S one 1 1" + tail, err: true},
		{line: "42 (sleep) S 1 1 1 0 -1 -4 91 0 0 0 0 0 0 0 20 0 1 0 12345 100", err: true},
	}
	for _, tt := range tests {
		var info Info
		flags, err := parseStat([]byte(tt.line), &info)
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
		if info.Pid != 42 || info.Comm != tt.comm || info.State != tt.state || info.PPid != tt.ppid || flags != tt.flags || info.Start != tt.start {
			t.Errorf("parseStat(%q) = pid %d comm %q state %c ppid %d flags %d start %d",
				tt.line, info.Pid, info.Comm, info.State, info.PPid, flags, info.Start)
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

func BenchmarkScan(b *testing.B) { benchScan(b, Scan) }

// BenchmarkScan1000 scans with a thousand sleep processes more than the
// machine runs, as bench/idle does: the scan of a busy server.
func BenchmarkScan1000(b *testing.B) {
	startSleeps(b, 1000)
	benchScan(b, Scan)
}

// BenchmarkScanStat1000 is BenchmarkScan1000 with ScanStat: every
// process's stat read, as a StatWalker's first walk does.
func BenchmarkScanStat1000(b *testing.B) {
	startSleeps(b, 1000)
	benchScan(b, ScanStat)
}

// BenchmarkStatWalk1000 is BenchmarkScanStat1000 with a StatWalker that
// has seen the processes already, as the MonitorInterval re-checks walk.
func BenchmarkStatWalk1000(b *testing.B) {
	startSleeps(b, 1000)
	w := NewStatWalker()
	benchScan(b, func() ([]Info, error) { return w.Scan(nil) })
}

func benchScan(b *testing.B, scan func() ([]Info, error)) {
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		all, err := scan()
		if err != nil {
			b.Fatal(err)
		}
		n = len(all)
	}
	b.ReportMetric(float64(n), "procs")
}

// startSleeps starts n sleep processes, killed when the benchmark ends.
func startSleeps(b *testing.B, n int) {
	for range n {
		c := exec.Command("sleep", "3600")
		if err := c.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			c.Process.Kill()
			c.Wait()
		})
	}
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
