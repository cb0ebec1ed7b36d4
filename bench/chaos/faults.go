package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pcheck/pcheck/bench/compare"
)

// fault is one kind of fault: its name, weight in the random choice, and
// what applies it (and waits for its direct effect).
type fault struct {
	name   string
	weight int
	apply  func(s *suite, ctx context.Context)
}

var faults = []fault{
	{"target SIGKILL", 20, (*suite).targetKill},
	{"target hang (SIGSTOP > failover)", 8, (*suite).targetHang},
	{"target pause (SIGSTOP < failover)", 8, (*suite).targetPause},
	{"pcheck kill -9 and restart", 7, (*suite).pcheckKill},
	{"pcheck SIGSTOP", 6, (*suite).pcheckFreeze},
	{"second pcheck on the pfile", 3, (*suite).secondPcheck},
	{"reload good pfile", 5, (*suite).reloadGood},
	{"reload bad pfile", 5, (*suite).reloadBad},
	{"reload half-written pfile", 5, (*suite).reloadHalf},
	{"deaf syslog", 5, (*suite).syslogDeaf},
	{"full state filesystem", 4, (*suite).stateFull},
	{"slow restart script", 5, (*suite).scriptSlow},
	{"hung restart script", 4, (*suite).scriptHung},
	{"control-socket flood", 5, (*suite).controlFlood},
}

// loop applies random faults until the time is up, checking the
// invariants after each.
func (s *suite) loop(ctx context.Context) {
	var chosen []fault
	for _, f := range faults {
		if s.c.only == "" || slices.ContainsFunc(strings.Split(s.c.only, ","), func(w string) bool { return w != "" && strings.Contains(f.name, w) }) {
			chosen = append(chosen, f)
		}
	}
	total := 0
	for _, f := range chosen {
		total += f.weight
	}
	if total == 0 {
		s.violation("no faults", "-faults %q names no fault", s.c.only)
		return
	}
	end := s.started.Add(s.c.dur)
	for time.Now().Before(end) && ctx.Err() == nil {
		n := s.rng.IntN(total)
		var f fault
		for _, f = range chosen {
			if n < f.weight {
				break
			}
			n -= f.weight
		}
		if f.name == "full state filesystem" && s.fullSkip != "" {
			continue
		}
		s.faults[f.name]++
		from := s.log.Len()
		s.progress("%s", f.name)
		f.apply(s, ctx)
		if ctx.Err() != nil {
			return
		}
		if err := s.settle(ctx, f.name); err != nil {
			if ctx.Err() != nil {
				return
			}
			s.violation("not recovered", "%v", err)
		}
		s.check(ctx, f.name, from)
	}
}

// finish runs the last check.
func (s *suite) finish() {
	s.ended = time.Now()
}

func (s *suite) progress(format string, args ...any) {
	fmt.Printf("[%6.1fs] %s\n", time.Since(s.started).Seconds(), fmt.Sprintf(format, args...))
}

// pick returns a random target and its serving pid.
func (s *suite) pick() (*target, int) {
	t := s.targets[s.rng.IntN(len(s.targets))]
	return t, t.current
}

// signal sends sig to a target process of this run.
func (s *suite) signal(pid int, sig unix.Signal) error {
	return compare.SignalOurs(pid, s.dir, sig)
}

// kill SIGKILLs a target's serving process and counts the restart pcheck
// owes for it.
func (s *suite) kill(t *target, pid int) bool {
	s.mu.Lock()
	s.stopped[pid] = true
	s.mu.Unlock()
	if err := s.signal(pid, unix.SIGKILL); err != nil {
		s.progress("  %s: %v", t.id, err)
		return false
	}
	t.wantStarts++
	t.wantRuns++
	return true
}

// measure keeps the worst of a detection time.
func (s *suite) measure(what string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.samples[what]++
	if d > s.worst[what] {
		s.worst[what] = d
	}
}

// waitStart waits for a target process started after n starts; it returns
// the time from t0, or false after within.
func (s *suite) waitStart(ctx context.Context, t *target, n int, t0 time.Time, within time.Duration) (time.Duration, bool) {
	for time.Since(t0) < within && ctx.Err() == nil {
		if len(t.starts()) > n {
			return time.Since(t0), true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return 0, false
}

// waitLine waits for a syslog line (from index from on) whose message
// matches.
func (s *suite) waitLine(ctx context.Context, from int, within time.Duration, match func(string) bool) (compare.Line, bool) {
	cctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	l, _, err := s.log.WaitFor(cctx, from, func(line string) bool { return match(text(line)) })
	return l, err == nil
}

// waitDead waits for pid to die; false after within.
func waitDead(ctx context.Context, pid int, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if !alive(pid) {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return !alive(pid)
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func (s *suite) between(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(s.rng.Int64N(int64(hi-lo)+1))
}

// targetKill: SIGKILL of a target; pcheck must log Down and restart it.
func (s *suite) targetKill(ctx context.Context) {
	t, pid := s.pick()
	from, n := s.log.Len(), len(t.starts())
	t0 := time.Now()
	if !s.kill(t, pid) {
		return
	}
	s.progress("  %s pid %d killed", t.id, pid)
	down := fmt.Sprintf("',pid=%d] Down", pid)
	if l, ok := s.waitLine(ctx, from, 30*time.Second, func(m string) bool { return strings.HasSuffix(m, down) }); ok {
		s.measure("kill -> Down (syslog)", l.At.Sub(t0))
	} else {
		s.violation("death not logged", "%s pid %d: no Down line within 30 s of SIGKILL", t.id, pid)
	}
	if d, ok := s.waitStart(ctx, t, n, t0, 30*time.Second); ok {
		s.measure("kill -> restarted", d)
	}
}

// targetHang: SIGSTOP of a target for longer than failover: a real hang
// that pcheck must kill (and restart) within failover and a margin.
func (s *suite) targetHang(ctx context.Context) {
	t, pid := s.pick()
	s.mu.Lock()
	s.stopped[pid] = true
	s.mu.Unlock()
	t0 := time.Now()
	if err := s.signal(pid, unix.SIGSTOP); err != nil {
		s.progress("  %s: %v", t.id, err)
		return
	}
	within := failover + 3*interval + 5*time.Second
	s.progress("  %s pid %d stopped (must be killed within %v)", t.id, pid, within)
	if waitDead(ctx, pid, within) {
		s.measure("hang -> killed", time.Since(t0))
		t.wantStarts++
		t.wantRuns++
		return
	}
	s.violation("hang not killed", "%s pid %d stopped for %v and still there", t.id, pid, within)
	_ = s.signal(pid, unix.SIGCONT)
}

// targetPause: SIGSTOP shorter than failover minus interval: pcheck must
// leave it alone.
func (s *suite) targetPause(ctx context.Context) {
	t, pid := s.pick()
	d := s.between(300*time.Millisecond, failover-interval-3*interval/2)
	if err := s.signal(pid, unix.SIGSTOP); err != nil {
		s.progress("  %s: %v", t.id, err)
		return
	}
	s.progress("  %s pid %d stopped for %v", t.id, pid, d.Round(time.Millisecond))
	sleep(ctx, d)
	_ = s.signal(pid, unix.SIGCONT)
	// At least failover after the stop: a wrong stall kill would come by
	// then.
	sleep(ctx, failover+2*interval-d)
}

// pcheckKill: kill -9 of pcheck and its restart; sometimes a target dies
// while pcheck is down, sometimes pcheck is killed while a slow restart
// script runs (it must not be run again beside the orphan).
func (s *suite) pcheckKill(ctx context.Context) {
	variant := s.rng.IntN(3)
	var t *target
	var pid int
	switch variant {
	case 2:
		t, pid = s.pick()
		os.WriteFile(t.slow, []byte("5\n"), 0o644)
		if !s.kill(t, pid) {
			os.Remove(t.slow)
			return
		}
		// Until the script has started.
		n := len(lines(t.calls))
		for i := 0; i < 1000 && len(lines(t.calls)) == n; i++ {
			time.Sleep(10 * time.Millisecond)
		}
		s.progress("  %s pid %d killed; pcheck killed while its 5 s restart script runs", t.id, pid)
	}
	old := s.pcheck
	_ = old.Signal(syscall.SIGKILL)
	select {
	case <-old.Done():
	case <-time.After(10 * time.Second):
		s.violation("pcheck kill", "pcheck pid %d did not die of SIGKILL", old.Pid)
	}
	if variant == 1 {
		t, pid = s.pick()
		if s.kill(t, pid) {
			s.progress("  pcheck down; %s pid %d killed meanwhile", t.id, pid)
		}
	}
	if err := s.startPcheck(); err != nil {
		s.violation("pcheck restart", "%v", err)
		return
	}
	s.progress("  pcheck pid %d killed, restarted as pid %d", old.Pid, s.pcheck.Pid)
	if variant == 2 {
		// Let the orphaned script end, then make scripts fast again.
		for i := 0; i < 1000 && len(s.census().scripts) > 0; i++ {
			time.Sleep(20 * time.Millisecond)
		}
		os.Remove(t.slow)
	}
}

// secondPcheck: a second pcheck on the same pfile must refuse; with
// --force it must make the first one stop (never two monitors).
func (s *suite) secondPcheck(ctx context.Context) {
	force := s.rng.IntN(2) == 0
	old := s.pcheck
	args := []string{"--state-dir", s.state, "--run-dir", s.runDir, "--syslog", "unixgram:" + s.sock, "--watch"}
	if force {
		args = append(args, "--force")
	}
	out, err := os.OpenFile(filepath.Join(s.dir, "pcheck.out"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		s.violation("second pcheck", "%v", err)
		return
	}
	defer out.Close()
	cmd := exec.Command(filepath.Join(s.bin, "pcheck"), append(args, s.pfile)...)
	cmd.Stdout, cmd.Stderr = out, out
	c, err := s.r.Spawn(cmd)
	if err != nil {
		s.violation("second pcheck", "%v", err)
		return
	}
	if !force {
		s.progress("  second pcheck pid %d without --force", c.Pid)
		select {
		case <-c.Done():
			if c.Err() == nil {
				s.violation("two pchecks", "a second pcheck on the pfile exited 0 instead of refusing")
			}
		case <-time.After(10 * time.Second):
			s.violation("two pchecks", "a second pcheck (pid %d) on the pfile without --force still runs after 10 s beside pid %d", c.Pid, old.Pid)
			_ = c.Signal(syscall.SIGKILL)
			<-c.Done()
		}
		return
	}
	s.progress("  second pcheck pid %d with --force beside pid %d", c.Pid, old.Pid)
	select {
	case <-old.Done():
		s.pcheck = c
		s.base = resources{}
	case <-c.Done():
		s.violation("second pcheck", "pcheck --force (pid %d) exited: %v, the first (pid %d) still runs", c.Pid, c.Err(), old.Pid)
	case <-time.After(15 * time.Second):
		s.violation("two pchecks", "pcheck --force (pid %d) and the pcheck it pushed aside (pid %d) both run after 15 s", c.Pid, old.Pid)
		// Back to one pcheck: the first one, restarted clean.
		_ = c.Signal(syscall.SIGKILL)
		_ = old.Signal(syscall.SIGKILL)
		<-c.Done()
		<-old.Done()
		if err := s.startPcheck(); err != nil {
			s.violation("pcheck restart", "%v", err)
		}
	}
}

// pcheckFreeze: SIGSTOP of pcheck for less than -freeze-max.
func (s *suite) pcheckFreeze(ctx context.Context) {
	d := s.between(500*time.Millisecond, s.c.freezeMax)
	_ = s.pcheck.Signal(syscall.SIGSTOP)
	s.progress("  pcheck pid %d stopped for %v", s.pcheck.Pid, d.Round(time.Millisecond))
	sleep(ctx, d)
	_ = s.pcheck.Signal(syscall.SIGCONT)
	sleep(ctx, failover+2*interval)
}

// reloadGood: a valid pfile written by rename must be reloaded.
func (s *suite) reloadGood(ctx context.Context) {
	s.reload++
	from := s.log.Len()
	if err := s.writePfile(fmt.Sprintf("# reload %d\n", s.reload)); err != nil {
		s.violation("reload", "%v", err)
		return
	}
	want := fmt.Sprintf("pfile '%s' reloaded", s.pfile)
	if _, ok := s.waitLine(ctx, from, 15*time.Second, func(m string) bool { return m == want }); !ok {
		s.violation("reload not applied", "no %q within 15 s of a rename", want)
	}
}

// reloadBad: an invalid pfile is refused (the old rules stay), then the
// good one is put back.
func (s *suite) reloadBad(ctx context.Context) {
	from := s.log.Len()
	if err := s.writePfile("bogus /bin/true args=\"unterminated\n"); err != nil {
		s.violation("reload", "%v", err)
		return
	}
	refused := fmt.Sprintf("pfile '%s': reload refused, the old rules stay", s.pfile)
	if _, ok := s.waitLine(ctx, from, 15*time.Second, func(m string) bool { return strings.HasSuffix(m, refused) }); !ok {
		s.violation("bad pfile not refused", "no %q within 15 s", refused)
	}
	from = s.log.Len()
	s.reload++
	_ = s.writePfile(fmt.Sprintf("# reload %d\n", s.reload))
	want := fmt.Sprintf("pfile '%s' reloaded", s.pfile)
	if _, ok := s.waitLine(ctx, from, 15*time.Second, func(m string) bool { return m == want }); !ok {
		s.violation("reload not applied", "no %q within 15 s of putting the good pfile back", want)
	}
}

// reloadHalf: the pfile written in place in two chunks 2 s apart by a
// writer that keeps it open, cut inside an entry: nothing may be read
// (loaded or refused) before it is closed, and it is loaded once after.
func (s *suite) reloadHalf(ctx context.Context) {
	s.reload++
	whole := s.pfileText(fmt.Sprintf("# reload %d\n", s.reload))
	t, _ := s.pick()
	cut := strings.Index(whole, "args=\"-id="+t.id) + len("args=\"-id=t")
	f, err := os.OpenFile(s.pfile, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		s.violation("reload", "%v", err)
		return
	}
	defer f.Close()
	from := s.log.Len()
	f.WriteString(whole[:cut])
	s.progress("  pfile cut inside %s's args=, closed 2 s later", t.id)
	sleep(ctx, 2*time.Second)
	for _, l := range s.log.Since(from) {
		m := text(l.Text)
		if strings.Contains(m, "reloaded") || strings.Contains(m, "reload refused") || strings.HasPrefix(m, "pfile error") {
			s.violation("half-written pfile read", "%q while the writer still had it open", m)
			break
		}
	}
	from = s.log.Len()
	f.WriteString(whole[cut:])
	f.Close()
	want := fmt.Sprintf("pfile '%s' reloaded", s.pfile)
	if _, ok := s.waitLine(ctx, from, 15*time.Second, func(m string) bool { return m == want }); !ok {
		s.violation("reload not applied", "no %q within 15 s of closing the pfile", want)
	}
}

// deaf makes the syslog receiver stop reading, or read again.
func (s *suite) deaf(on bool) {
	switch {
	case s.rsyslog != nil && on:
		_ = s.rsyslog.Signal(syscall.SIGSTOP)
	case s.rsyslog != nil:
		_ = s.rsyslog.Signal(syscall.SIGCONT)
	case s.receiver != nil:
		s.receiver.deaf(on)
	}
}

// deafRestart bounds a restart while syslog is deaf: logging must not
// delay death handling (a restart takes some 30 ms otherwise).
const deafRestart = time.Second

// fillSyslog fills the deaf receiver's socket queue as other programs'
// messages would, until a send would block; it returns how many it sent.
func (s *suite) fillSyslog() int {
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: s.sock, Net: "unixgram"})
	if err != nil {
		return 0
	}
	defer c.Close()
	n := 0
	for ; n < 100000; n++ {
		_ = c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
		if _, err := fmt.Fprintf(c, "<14>chaos[%d]: filler %d while the receiver is deaf", os.Getpid(), n); err != nil {
			break
		}
	}
	return n
}

// syslogDeaf: the receiver stops reading (SIGSTOP) for 5-10 s and its
// queue is full; a target killed meanwhile must be restarted as fast as
// ever.
func (s *suite) syslogDeaf(ctx context.Context) {
	d := s.between(5*time.Second, 10*time.Second)
	s.deaf(true)
	t0 := time.Now()
	filled := s.fillSyslog()
	s.progress("  syslog receiver deaf for %v, its queue filled with %d messages", d.Round(time.Millisecond), filled)
	sleep(ctx, d/3)
	// Five targets die at once: each restart logs lines the receiver
	// does not take.
	k0 := time.Now()
	var killed []*target
	before := map[*target]int{}
	for _, k := range s.rng.Perm(len(s.targets))[:5] {
		t := s.targets[k]
		before[t] = len(t.starts())
		if s.kill(t, t.current) {
			killed = append(killed, t)
		}
	}
	for _, t := range killed {
		dd, ok := s.waitStart(ctx, t, before[t], k0, max(d-time.Since(t0), deafRestart))
		if ok {
			s.measure("kill -> restarted (deaf syslog)", dd)
		}
		if !ok || dd > deafRestart {
			s.violation("restart held up by syslog", "%s killed with 4 others while syslog was deaf: restarted after %v (ok %v), want within %v",
				t.id, dd.Round(time.Millisecond), ok, deafRestart)
		}
	}
	sleep(ctx, d-time.Since(t0))
	s.deaf(false)
}

// stateFull: the state filesystem full (a filler file); a target killed
// meanwhile must still be restarted.
func (s *suite) stateFull(ctx context.Context) {
	filler := filepath.Join(s.state, "chaos-filler")
	f, err := os.Create(filler)
	if err != nil {
		s.violation("state full", "%v", err)
		return
	}
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			break
		}
	}
	f.Close()
	defer os.Remove(filler)
	t, pid := s.pick()
	n := len(t.starts())
	t0 := time.Now()
	s.progress("  state filesystem full; %s pid %d killed", t.id, pid)
	if s.kill(t, pid) {
		if d, ok := s.waitStart(ctx, t, n, t0, 20*time.Second); ok {
			s.measure("kill -> restarted (state full)", d)
		} else {
			s.violation("restart with full state fs", "%s pid %d not restarted within 20 s", t.id, pid)
		}
	}
}

// scriptSlow: a restart script that takes 2 s (below RestartTimeout).
func (s *suite) scriptSlow(ctx context.Context) {
	t, pid := s.pick()
	os.WriteFile(t.slow, []byte("2\n"), 0o644)
	defer os.Remove(t.slow)
	n := len(t.starts())
	t0 := time.Now()
	s.progress("  %s pid %d killed, its script takes 2 s", t.id, pid)
	if s.kill(t, pid) {
		if d, ok := s.waitStart(ctx, t, n, t0, 30*time.Second); ok {
			s.measure("kill -> restarted (slow script)", d)
		}
	}
}

// scriptHung: the next restart script run hangs; pcheck must kill it
// after RestartTimeout and run it again (two runs, one start).
func (s *suite) scriptHung(ctx context.Context) {
	t, pid := s.pick()
	os.WriteFile(t.hang, nil, 0o644)
	defer os.Remove(t.hang)
	n := len(t.starts())
	t0 := time.Now()
	s.progress("  %s pid %d killed, its next script run hangs", t.id, pid)
	if s.kill(t, pid) {
		t.wantRuns++ // the hung run, and the one after it
		if d, ok := s.waitStart(ctx, t, n, t0, restartTimeout+40*time.Second); ok {
			s.measure("kill -> restarted (hung script)", d)
		}
	}
}

// controlFlood: many concurrent padmin runs and raw control connections
// (some sending garbage), with a target killed meanwhile.
func (s *suite) controlFlood(ctx context.Context) {
	socks, _ := filepath.Glob(filepath.Join(s.runDir, "*.sock"))
	if len(socks) == 0 {
		s.violation("control flood", "no control socket in %s", s.runDir)
		return
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var mu sync.Mutex
	fails := 0
	for i := range 200 {
		wg.Go(func() {
			c, err := net.DialTimeout("unix", socks[0], 2*time.Second)
			if err != nil {
				mu.Lock()
				fails++
				mu.Unlock()
				return
			}
			defer c.Close()
			if i%2 == 0 {
				c.Write([]byte("{not json\n"))
			}
			<-stop
		})
	}
	for range 32 {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			s.r.Output(cctx, filepath.Join(s.bin, "padmin"), "--run-dir", s.runDir, "status", s.pfile)
		})
	}
	t, pid := s.pick()
	n := len(t.starts())
	t0 := time.Now()
	s.progress("  232 control connections; %s pid %d killed meanwhile", t.id, pid)
	if s.kill(t, pid) {
		if d, ok := s.waitStart(ctx, t, n, t0, 20*time.Second); ok {
			s.measure("kill -> restarted (control flood)", d)
		} else {
			s.violation("restart held up by control flood", "%s pid %d not restarted within 20 s", t.id, pid)
		}
	}
	sleep(ctx, time.Second)
	close(stop)
	wg.Wait()
	if fails > 0 {
		s.progress("  %d of 200 raw control connections failed to connect", fails)
	}
}
