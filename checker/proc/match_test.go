package proc

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
)

func TestMatcherRealProcesses(t *testing.T) {
	// argv[0] values unique to this run of the test.
	daemonPath := "/opt/fake/daemon" + strconv.Itoa(os.Getpid())
	renamedPath := "/x/renamed" + strconv.Itoa(os.Getpid())
	a, _ := startHelper(t, spec{mode: "sleep", path: fakeSvc, args: []string{"--role=a"}})
	b, _ := startHelper(t, spec{mode: "sleep", path: fakeSvc, argv0: daemonPath, args: []string{"--role=b"}})
	c, _ := startHelper(t, spec{mode: "sleep", path: fakeSvc, argv0: renamedPath, args: []string{"--role=c"}})
	pa, pb, pc := a.cmd.Process.Pid, b.cmd.Process.Pid, c.cmd.Process.Pid
	abc := []int{pa, pb, pc}
	slices.Sort(abc)

	// Another user's instance, when the test may start one.
	pd := -1
	if os.Geteuid() == 0 {
		d, _ := startHelper(t, spec{mode: "sleep", path: fakeSvc, args: []string{"--role=d"},
			cred: &syscall.Credential{Uid: 65534, Gid: 65534}})
		pd = d.cmd.Process.Pid
	}
	withD := func(ps ...int) []int {
		if pd > 0 {
			ps = append(ps, pd)
		}
		slices.Sort(ps)
		return ps
	}

	dir := t.TempDir()
	link := filepath.Join(dir, "link")
	if err := os.Symlink(fakeSvc, link); err != nil {
		t.Fatal(err)
	}
	pidFile := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pidOfB := pidFile("b.pid", "  "+strconv.Itoa(pb)+"\n")
	pidOfA := pidFile("a.pid", strconv.Itoa(pa))
	pidOfTest := pidFile("test.pid", strconv.Itoa(os.Getpid()))

	tests := []struct {
		name string
		m    Matcher
		want []int
	}{
		{"path matches exe", Matcher{Target: fakeSvc, UID: -1}, withD(pa, pb, pc)},
		{"path matches argv0", Matcher{Target: daemonPath, UID: -1}, []int{pb}},
		{"path through a symlink", Matcher{Target: link, UID: -1}, withD(pa, pb, pc)},
		{"path of nothing", Matcher{Target: "/opt/fake/none", UID: -1}, nil},
		{"name matches comm", Matcher{Target: svcName, ByName: true, UID: -1}, withD(pa, pb, pc)},
		{"name matches argv0 base", Matcher{Target: filepath.Base(renamedPath), ByName: true, UID: -1}, []int{pc}},
		{"name is not a path", Matcher{Target: renamedPath, ByName: true, UID: -1}, nil},
		{"args select one", Matcher{Target: fakeSvc, Args: "--role=b", UID: -1}, []int{pb}},
		{"args shared by all", Matcher{Target: svcName, ByName: true, Args: "--role", UID: -1}, withD(pa, pb, pc)},
		{"args of nothing", Matcher{Target: fakeSvc, Args: "--role=z", UID: -1}, nil},
		{"uid of the test", Matcher{Target: fakeSvc, UID: os.Geteuid()}, abc},
		{"uid of nobody", Matcher{Target: fakeSvc, UID: 65534}, withD()},
		{"pidfile", Matcher{Target: fakeSvc, UID: -1, PidFile: pidOfB}, []int{pb}},
		{"pidfile and args", Matcher{Target: fakeSvc, Args: "--role=b", UID: -1, PidFile: pidOfA}, nil},
		{"pidfile of another program", Matcher{Target: fakeSvc, UID: -1, PidFile: pidOfTest}, nil},
		{"pidfile missing", Matcher{Target: fakeSvc, UID: -1, PidFile: filepath.Join(dir, "none")}, nil},
	}
	all := mustScan(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := pidsOf(tt.m.Match(all))
			if !slices.Equal(got, tt.want) && !(len(got) == 0 && len(tt.want) == 0) {
				t.Errorf("Match = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMatcherTopOfTree(t *testing.T) {
	h, line := startHelper(t, spec{mode: "forker", path: fakeSvc, args: []string{"--role=master"},
		env: []string{countEnv + "=3"}})
	workers := pids(t, line)
	if len(workers) != 3 {
		t.Fatalf("forker started %v, want 3 workers", workers)
	}
	all := mustScan(t)
	for _, w := range workers {
		i := slices.IndexFunc(all, func(p Info) bool { return p.Pid == w })
		if i < 0 || all[i].PPid != h.id.Pid || all[i].Exe != fakeSvc {
			t.Fatalf("worker %d is not a fakesvc child of %d in the scan", w, h.id.Pid)
		}
	}
	for _, m := range []Matcher{
		{Target: fakeSvc, UID: -1},
		{Target: svcName, ByName: true, UID: -1},
		{Target: fakeSvc, Args: "--role=master", UID: -1},
	} {
		got := pidsOf(m.Match(all))
		if !slices.Equal(got, []int{h.id.Pid}) {
			t.Errorf("%+v: Match = %v, want only the master %d (workers %v)", m, got, h.id.Pid, workers)
		}
	}

	var desc []int
	for _, id := range Descendants(all, h.id.Pid) {
		desc = append(desc, id.Pid)
	}
	slices.Sort(desc)
	slices.Sort(workers)
	if !slices.Equal(desc, workers) {
		t.Errorf("Descendants(%d) = %v, want %v", h.id.Pid, desc, workers)
	}
}

// info builds a process for the table tests.
func info(pid, ppid int, comm, exe string, argv ...string) Info {
	return Info{ID: ID{Pid: pid, Start: uint64(pid)}, PPid: ppid, State: 'S', Comm: comm, Exe: exe, Argv: argv}
}

func TestMatchTable(t *testing.T) {
	zombie := info(20, 1, "httpd", "")
	zombie.State = 'Z'
	root := info(50, 1, "httpd", "/usr/sbin/httpd", "/usr/sbin/httpd")
	root.UID = 0
	user := info(60, 1, "httpd", "/usr/sbin/httpd", "/usr/sbin/httpd", "-f", "user.conf")
	user.UID = 1000
	all := []Info{
		info(12, 10, "httpd", "/usr/sbin/httpd", "/usr/sbin/httpd", "-k", "start"),
		info(1, 0, "systemd", "/usr/lib/systemd/systemd", "/sbin/init"),
		info(10, 1, "httpd", "/usr/sbin/httpd", "/usr/sbin/httpd", "-k", "start"),
		info(11, 10, "httpd", "/usr/sbin/httpd", "/usr/sbin/httpd", "-k", "start"),
		zombie,
		info(25, 1, "bash", "/usr/bin/bash", "bash", "run.sh"),
		info(30, 25, "httpd", "/usr/sbin/httpd", "/usr/sbin/httpd"),
		info(31, 30, "sh", "/usr/bin/bash", "sh", "-c", "log"),
		info(32, 31, "httpd", "/usr/sbin/httpd", "httpd"),
		info(40, 2, "kworker/0:1", ""),
		root, user,
	}
	tests := []struct {
		name string
		m    Matcher
		want []int
	}{
		{"tops by path, zombie left out", Matcher{Target: "/usr/sbin/httpd", UID: -1}, []int{10, 30, 32, 50, 60}},
		{"tops by name", Matcher{Target: "httpd", ByName: true, UID: -1}, []int{10, 30, 32, 50, 60}},
		{"args", Matcher{Target: "httpd", ByName: true, Args: "-k start", UID: -1}, []int{10}},
		{"uid", Matcher{Target: "httpd", ByName: true, UID: 1000}, []int{60}},
		{"argv0 path", Matcher{Target: "/sbin/init", UID: -1}, []int{1}},
		{"kernel thread by name", Matcher{Target: "kworker/0:1", ByName: true, UID: -1}, []int{40}},
		{"kernel thread has no path", Matcher{Target: "", UID: -1}, nil},
	}
	for _, tt := range tests {
		got := pidsOf(tt.m.Match(all))
		if !slices.Equal(got, tt.want) && !(len(got) == 0 && len(tt.want) == 0) {
			t.Errorf("%s: Match = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestDescendants(t *testing.T) {
	all := []Info{
		info(1, 0, "init", ""),
		info(10, 1, "a", ""),
		info(11, 10, "b", ""),
		info(12, 10, "c", ""),
		info(13, 11, "d", ""),
		info(14, 13, "e", ""),
		info(20, 1, "other", ""),
		info(21, 20, "other-child", ""),
	}
	var got []int
	for _, id := range Descendants(all, 10) {
		got = append(got, id.Pid)
	}
	if want := []int{11, 12, 13, 14}; !slices.Equal(got, want) {
		t.Errorf("Descendants(10) = %v, want %v", got, want)
	}
	if got := Descendants(all, 14); len(got) != 0 {
		t.Errorf("Descendants of a leaf = %v, want none", got)
	}
	// A loop (impossible in a consistent snapshot, possible in a torn
	// one) must not hang.
	loop := []Info{info(5, 6, "x", ""), info(6, 5, "y", "")}
	if got := Descendants(loop, 5); len(got) != 1 || got[0].Pid != 6 {
		t.Errorf("Descendants in a loop = %v, want [6]", got)
	}
}

// TestMatchArgsAllocations: the Args test joins each candidate's argv in
// one buffer kept for the whole Match, not in a new string per process:
// a thousand entries matched against the same thousand processes at start
// cost a thousand Matches, not a million allocations.
func TestMatchArgsAllocations(t *testing.T) {
	all := make([]Info, 1000)
	for i := range all {
		all[i] = Info{ID: ID{Pid: 1000 + i}, PPid: 1, UID: 0, State: 'S', Exe: "/usr/bin/sleep",
			Argv: []string{"/usr/bin/sleep", strconv.Itoa(3000000+i) + "s"}}
	}
	m := Matcher{Target: "/usr/bin/sleep", Args: "3000042s", UID: -1}
	if got := m.Match(all); len(got) != 1 || got[0].Pid != 1042 {
		t.Fatalf("Match = %v, want pid 1042 alone", got)
	}
	// A space in Args spans two arguments of the joined command line.
	if got := (Matcher{Target: "/usr/bin/sleep", Args: "sleep 3000042s", UID: -1}).Match(all); len(got) != 1 || got[0].Pid != 1042 {
		t.Fatalf("Match across arguments = %v, want pid 1042 alone", got)
	}
	allocs := testing.AllocsPerRun(10, func() { m.Match(all) })
	if allocs > 20 {
		t.Errorf("Match of %d processes with Args: %.0f allocations, want at most 20 (none per process)", len(all), allocs)
	}
}
