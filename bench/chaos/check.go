package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/pcheck/pcheck/bench/compare"
)

// procInfo is a live process of this run.
type procInfo struct {
	pid  int
	argv []string
}

// ours lists the live (not zombie) processes with the work directory on
// their command line: targets, restart scripts, pcheck.
func (s *suite) ours() []procInfo {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []procInfo
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || !bytes.Contains(b, []byte(s.dir)) {
			continue
		}
		if !alive(pid) {
			continue
		}
		out = append(out, procInfo{pid: pid, argv: strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")})
	}
	return out
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	st := b[i+2]
	return st != 'Z' && st != 'X'
}

// census is who runs now: target pids by id, pchecks on the pfile, and
// restart scripts running.
type census struct {
	copies  map[string][]int
	pchecks []int
	scripts []string
}

func (s *suite) census() census {
	c := census{copies: map[string][]int{}}
	tbin, pbin := s.targetBin(), filepath.Join(s.bin, "pcheck")
	for _, p := range s.ours() {
		switch {
		case p.argv[0] == tbin:
			for _, a := range p.argv[1:] {
				if id, ok := strings.CutPrefix(a, "-id="); ok {
					c.copies[id] = append(c.copies[id], p.pid)
				}
			}
		case p.argv[0] == pbin:
			for _, a := range p.argv[1:] {
				if a == s.pfile {
					c.pchecks = append(c.pchecks, p.pid)
				}
			}
		case len(p.argv) > 1 && strings.HasSuffix(p.argv[1], ".sh"):
			c.scripts = append(c.scripts, filepath.Base(p.argv[1]))
		}
	}
	return c
}

// settle waits until the system is at rest: pcheck running, every target
// one process that serves, no restart script running, padmin status all
// Up. Then it records the serving pids.
func (s *suite) settle(ctx context.Context, after string) error {
	deadline := time.Now().Add(recoverWithin)
	var why string
	for {
		why = s.atRest(ctx)
		if why == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not at rest %v after %s: %s", recoverWithin, after, why)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// atRest returns "" at rest, or what is not.
func (s *suite) atRest(ctx context.Context) string {
	select {
	case <-s.pcheck.Done():
		return fmt.Sprintf("pcheck exited: %v", s.pcheck.Err())
	default:
	}
	c := s.census()
	if len(c.scripts) > 0 {
		return fmt.Sprintf("restart scripts running: %v", c.scripts)
	}
	for _, t := range s.targets {
		pids := c.copies[t.id]
		if len(pids) != 1 {
			return fmt.Sprintf("%s has %d processes %v", t.id, len(pids), pids)
		}
		got, err := compare.AskPid(t.port)
		if err != nil || got != pids[0] {
			return fmt.Sprintf("%s (pid %d) does not serve: %v", t.id, pids[0], err)
		}
	}
	st, err := s.status(ctx)
	if err != nil {
		return fmt.Sprintf("padmin status: %v", err)
	}
	for _, p := range st.Processes {
		if p.State != "Up" {
			return fmt.Sprintf("padmin status: %s is %s", p.Key, p.State)
		}
	}
	for _, t := range s.targets {
		t.current = c.copies[t.id][0]
		s.mu.Lock()
		s.served[t.current] = true
		s.mu.Unlock()
	}
	return ""
}

// status is padmin --json status.
type status struct {
	Pid       int `json:"pid"`
	Processes []struct {
		Key     string `json:"key"`
		State   string `json:"state"`
		Retries int    `json:"retries_used"`
	} `json:"process_list"`
}

func (s *suite) status(ctx context.Context) (*status, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := s.r.Output(cctx, filepath.Join(s.bin, "padmin"), "--run-dir", s.runDir, "--json", "status", s.pfile)
	var st status
	if jerr := json.Unmarshal(out, &st); jerr != nil {
		if err == nil {
			err = jerr
		}
		return nil, err
	}
	return &st, nil
}

// violation records a broken invariant.
func (s *suite) violation(kind, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.mu.Lock()
	s.viol[kind] = append(s.viol[kind], msg)
	s.mu.Unlock()
	fmt.Printf("  VIOLATION %s: %s\n", kind, msg)
}

func (s *suite) violations() int {
	n := 0
	for _, v := range s.viol {
		n += len(v)
	}
	return n
}

// lines reads a file's non-empty lines.
func lines(path string) [][]string {
	b, _ := os.ReadFile(path)
	var out [][]string
	for l := range strings.SplitSeq(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			out = append(out, f)
		}
	}
	return out
}

// starts returns the pids of every target process started, in order.
func (t *target) starts() []int {
	var pids []int
	for _, f := range lines(t.stamp) {
		if len(f) == 2 {
			if p, err := strconv.Atoi(f[1]); err == nil {
				pids = append(pids, p)
			}
		}
	}
	return pids
}

// runs returns the reasons of the restart-script runs pcheck made.
func (t *target) runs() []string {
	var r []string
	for _, f := range lines(t.calls) {
		if len(f) >= 2 && f[1] != "setup" {
			r = append(r, f[1])
		}
	}
	return r
}

var killedRe = regexp.MustCompile(`Killed Process: pid= ?(\d+)`)

// check verifies every invariant after a fault; logFrom is the syslog
// index before it.
func (s *suite) check(ctx context.Context, fault string, logFrom int) {
	// Never two copies of a target, never two pchecks on the pfile (seen
	// twice, a second apart, to pass over a process being born or dying).
	c1 := s.census()
	if dup := s.dups(c1); dup != "" || len(c1.pchecks) > 1 {
		time.Sleep(time.Second)
		c2 := s.census()
		if dup2 := s.dups(c2); dup2 != "" && dup2 == s.dups(c1) {
			s.violation("two copies", "after %s: %s", fault, dup2)
		}
		if len(c2.pchecks) > 1 && fmt.Sprint(c2.pchecks) == fmt.Sprint(c1.pchecks) {
			s.violation("two pchecks", "after %s: pchecks %v on %s", fault, c2.pchecks, s.pfile)
		}
	}
	// Every death followed by exactly one restart, and the script runs
	// that made it.
	for _, t := range s.targets {
		st := t.starts()
		if len(st) != t.wantStarts {
			s.violation("restarts per death", "after %s: %s: %d target processes started, want %d (pids %v)", fault, t.id, len(st), t.wantStarts, st)
			t.wantStarts = len(st)
		}
		if r := t.runs(); len(r) != t.wantRuns {
			s.violation("script runs per death", "after %s: %s: restart script ran %d times, want %d (reasons %v)", fault, t.id, len(r), t.wantRuns, r)
			t.wantRuns = len(r)
		}
	}
	// No healthy target killed: a pid that served and that chaos neither
	// killed nor hung longer than failover must not die, nor be named by
	// a Killed Process line.
	s.mu.Lock()
	var killed, over []string
	for _, t := range s.targets {
		for _, pid := range t.starts() {
			if s.served[pid] && !s.stopped[pid] && !s.dead[pid] && !alive(pid) {
				s.dead[pid] = true
				killed = append(killed, fmt.Sprintf("%s pid %d died", t.id, pid))
			}
		}
	}
	for _, l := range s.log.Since(logFrom) {
		if m := killedRe.FindStringSubmatch(l.Text); m != nil {
			if pid, _ := strconv.Atoi(m[1]); !s.stopped[pid] {
				killed = append(killed, fmt.Sprintf("stall kill of pid %d: %q", pid, text(l.Text)))
			}
		}
		if strings.Contains(l.Text, "Retry over") {
			over = append(over, text(l.Text))
		}
	}
	s.mu.Unlock()
	for _, k := range killed {
		s.violation("healthy target killed", "after %s: %s", fault, k)
	}
	for _, o := range over {
		s.violation("retry over", "after %s: %q (RetryCount is 100000)", fault, o)
	}
	// Retry counts equal to the restart-script runs.
	if st, err := s.status(ctx); err == nil {
		for _, t := range s.targets {
			for _, p := range st.Processes {
				if strings.Contains(p.Key, "-id="+t.id+" ") {
					if n := len(t.runs()); p.Retries != n && p.Retries-n != t.retryOff {
						t.retryOff = p.Retries - n
						s.violation("retry count", "after %s: %s: padmin retries_used %d, restart script runs %d", fault, t.id, p.Retries, n)
					}
				}
			}
		}
	}
	s.checkResources(fault)
}

// dups describes the targets with more than one process.
func (s *suite) dups(c census) string {
	var b []string
	for _, t := range s.targets {
		if p := c.copies[t.id]; len(p) > 1 {
			b = append(b, fmt.Sprintf("%s pids %v", t.id, p))
		}
	}
	return strings.Join(b, "; ")
}

// text is the message of a syslog line: what follows "ident[pid]: ".
func text(line string) string {
	if i := strings.Index(line, "]: "); i >= 0 {
		return line[i+3:]
	}
	return line
}

// resources are pcheck's open files, threads and resident memory.
type resources struct {
	fds, threads int
	rss          int64 // bytes
}

func sample(pid int) (resources, error) {
	var r resources
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return r, err
	}
	r.fds = len(fds)
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return r, err
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		k, v, _ := strings.Cut(l, ":")
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "Threads":
			r.threads = int(n)
		case "VmRSS":
			r.rss = n * 1024
		}
	}
	return r, nil
}

// The growth of pcheck's resources allowed over its first sample at rest.
const (
	fdGrowth     = 10
	threadGrowth = 24
	rssGrowth    = 48 << 20
)

func (s *suite) checkResources(fault string) {
	r, err := sample(s.pcheck.Pid)
	if err != nil {
		return
	}
	s.peak.fds, s.peak.threads, s.peak.rss = max(s.peak.fds, r.fds), max(s.peak.threads, r.threads), max(s.peak.rss, r.rss)
	if s.base.fds == 0 {
		s.base = r
		if s.base0.fds == 0 {
			s.base0 = r
		}
		return
	}
	if r.fds > s.base.fds+fdGrowth || r.threads > s.base.threads+threadGrowth || r.rss > s.base.rss+rssGrowth {
		s.violation("resource growth", "after %s: pcheck pid %d: fds %d (first %d), threads %d (first %d), RSS %d MiB (first %d MiB)",
			fault, s.pcheck.Pid, r.fds, s.base.fds, r.threads, s.base.threads, r.rss>>20, s.base.rss>>20)
		s.base = r // report growth once per step
	}
}
