package proc

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
)

// Matcher selects the processes of one pfile process entry.
type Matcher struct {
	// Target is an absolute path, or a process name when ByName is set.
	Target string
	// ByName matches Target against comm or the base name of argv[0];
	// otherwise Target is matched against /proc/PID/exe (a replaced
	// binary's "path (deleted)" included) or argv[0].
	ByName bool
	// Args, when set, must be contained in the command line (argv joined
	// with spaces).
	Args string
	// UID is the effective user id the process must have; -1 is any user.
	UID int
	// PidFile, when set, names a file whose first integer is the pid to
	// monitor; that process must also satisfy the rest.
	PidFile string
}

// Match returns the monitored processes among all: the matches whose parent
// does not match (the top of each matching tree: httpd master, not workers),
// zombies excluded, ordered by pid. With a PidFile it returns the process the
// file names when that process matches, and nothing otherwise.
func (m Matcher) Match(all []Info) []Info {
	// A path target is also compared with its symbolic links resolved,
	// because /proc/PID/exe is always the resolved path.
	resolved := ""
	if !m.ByName {
		if r, err := filepath.EvalSymlinks(m.Target); err == nil && r != m.Target {
			resolved = r
		}
	}
	l := cmdline{args: []byte(m.Args)}
	is := func(p *Info) bool { return !p.Dead() && m.matches(p, resolved, &l) }

	if m.PidFile != "" {
		pid, err := ReadPidFile(m.PidFile)
		if err != nil {
			return nil
		}
		for i := range all {
			if all[i].Pid == pid && is(&all[i]) {
				return []Info{all[i]}
			}
		}
		return nil
	}

	matched := make(map[int]bool)
	for i := range all {
		if is(&all[i]) {
			matched[all[i].Pid] = true
		}
	}
	var top []Info
	for i := range all {
		if matched[all[i].Pid] && !matched[all[i].PPid] {
			top = append(top, all[i])
		}
	}
	sortByPid(top)
	return top
}

// matches tells whether p satisfies every condition of m, zombies aside.
// resolved is Target with its symbolic links resolved, "" when the same.
// l holds Args and the buffer the command line is joined in, kept from
// one process to the next.
func (m Matcher) matches(p *Info, resolved string, l *cmdline) bool {
	if m.UID >= 0 && p.UID != m.UID {
		return false
	}
	argv0 := ""
	if len(p.Argv) > 0 {
		argv0 = p.Argv[0]
	}
	if m.ByName {
		if p.Comm != m.Target && (argv0 == "" || filepath.Base(argv0) != m.Target) {
			return false
		}
	} else {
		exe := p.Exe != "" && (p.Exe == m.Target || p.Exe == resolved)
		if !exe && (argv0 == "" || argv0 != m.Target) {
			return false
		}
	}
	if m.Args != "" && !l.contains(p.Argv) {
		return false
	}
	return true
}

// cmdline tests command lines for Matcher.Args with one buffer: a thousand
// entries matched against a thousand processes join argv without a
// million allocations.
type cmdline struct {
	args []byte // Matcher.Args
	buf  []byte // the last command line joined
}

// contains tells whether argv joined with spaces contains args.
func (l *cmdline) contains(argv []string) bool {
	l.buf = l.buf[:0]
	for i, a := range argv {
		if i > 0 {
			l.buf = append(l.buf, ' ')
		}
		l.buf = append(l.buf, a...)
	}
	return bytes.Contains(l.buf, l.args)
}

// ReadPidFile returns the first integer of a pid file, surrounding space
// ignored.
func ReadPidFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("proc: pid file: %w", err)
	}
	f := bytes.Fields(b)
	if len(f) == 0 {
		return 0, fmt.Errorf("proc: pid file %s: %w", path, errNoPid)
	}
	pid, err := strconv.Atoi(string(f[0]))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("proc: pid file %s: %w: %q", path, errNoPid, f[0])
	}
	return pid, nil
}

// errNoPid reports a pid file that does not start with a positive integer.
var errNoPid = errors.New("no pid")

// LookupUID returns the uid of a user given by name or number.
func LookupUID(name string) (int, error) {
	if uid, err := strconv.Atoi(name); err == nil {
		if uid < 0 {
			return 0, fmt.Errorf("proc: user %q: negative uid", name)
		}
		return uid, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return 0, fmt.Errorf("proc: user %q: %w", name, err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return 0, fmt.Errorf("proc: user %q: uid %q: %w", name, u.Uid, err)
	}
	return uid, nil
}

// Descendants returns every descendant of root among all (root excluded), at
// any depth, parents before their children.
func Descendants(all []Info, root int) []ID {
	children := make(map[int][]ID)
	for _, p := range all {
		children[p.PPid] = append(children[p.PPid], p.ID)
	}
	seen := map[int]bool{root: true}
	var out []ID
	queue := []int{root}
	for len(queue) > 0 {
		parent := queue[0]
		queue = queue[1:]
		for _, c := range children[parent] {
			if seen[c.Pid] {
				continue
			}
			seen[c.Pid] = true
			out = append(out, c)
			queue = append(queue, c.Pid)
		}
	}
	return out
}

// sortByPid orders processes by pid.
func sortByPid(ps []Info) {
	slices.SortFunc(ps, func(a, b Info) int { return a.Pid - b.Pid })
}
