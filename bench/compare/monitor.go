package compare

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The monitors under test.
const (
	Pcheck      = "pcheck"
	Monit       = "monit"
	Supervisord = "supervisord"
	// Floor is not a monitor: the bare loop of W3's checks (cmd/floor),
	// driven as one so that it is measured the same way.
	Floor = "floor"
)

// monitor is one monitor under test, driven the same way in every
// workload.
type monitor interface {
	name() string
	// ownsChildren tells a monitor that can only supervise the children
	// it starts itself (supervisord): the harness does not start its
	// targets, and it runs no restart script.
	ownsChildren() bool
	// start writes the configuration for targets with check and starts
	// the monitor.
	start(ctx context.Context, targets []*Target, check Check) error
	// watching waits until the monitor holds pid as the running process
	// of t.
	watching(ctx context.Context, t *Target, pid int) error
	// allUp waits until the monitor reports every target running and
	// returns when it saw that.
	allUp(ctx context.Context, targets []*Target) (time.Time, error)
	// proc is the running monitor process.
	proc() *monProc
}

// monProc is a running monitor process and what it logged.
type monProc struct {
	Child   *Child
	started time.Time
	log     *LineLog
	cancel  context.CancelFunc // stops tailing its log file
}

// exited reports whether the monitor has ended, and how.
func (m *monProc) exited() error {
	select {
	case <-m.Child.Done():
		if err := m.Child.Err(); err != nil {
			return err
		}
		return fmt.Errorf("%s (pid %d): exit status 0: %w", m.Child.name, m.Child.Pid, ErrExited)
	default:
		return nil
	}
}

// stop ends the monitor with SIGTERM (each of the three leaves or stops its
// processes as it does in production) and stops following its log.
func (m *monProc) stop() error {
	err := m.Child.Stop(60 * time.Second)
	if m.cancel != nil {
		m.cancel()
	}
	return err
}

// startProc spawns a monitor with its standard output and error going to
// the file console and, when log is not nil, line by line to log too.
func (h *harness) startProc(console string, log *LineLog, name string, args ...string) (*monProc, error) {
	out, err := os.OpenFile(console, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%s console file: %w", name, err)
	}
	cmd := exec.Command(name, args...)
	cmd.Dir = h.l.Dir
	if log == nil {
		defer out.Close()
		cmd.Stdout, cmd.Stderr = out, out
		started := time.Now()
		c, err := h.r.Spawn(cmd)
		if err != nil {
			return nil, err
		}
		return &monProc{Child: c, started: started}, nil
	}
	r, w, err := os.Pipe()
	if err != nil {
		out.Close()
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = w, w
	started := time.Now()
	c, err := h.r.Spawn(cmd)
	w.Close()
	if err != nil {
		r.Close()
		out.Close()
		return nil, err
	}
	go func() {
		log.readLines(r, out)
		r.Close()
		out.Close()
	}()
	return &monProc{Child: c, started: started, log: log}, nil
}

// pollUntil calls cond every interval until it reports done, fails, or ctx
// ends.
func pollUntil(ctx context.Context, interval time.Duration, cond func() (bool, error)) error {
	for {
		done, err := cond()
		if err != nil || done {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}

// pcheckMon drives pcheck: it reads pcheck's messages from its standard
// error, where pcheck copies every syslog line when it runs in the
// foreground.
type pcheckMon struct {
	h    *harness
	runs int
	p    *monProc
}

func (m *pcheckMon) name() string       { return Pcheck }
func (m *pcheckMon) ownsChildren() bool { return false }
func (m *pcheckMon) proc() *monProc     { return m.p }

func (m *pcheckMon) start(_ context.Context, targets []*Target, check Check) error {
	m.runs++
	dir := filepath.Join(m.h.l.Dir, "pcheck", fmt.Sprintf("run%d", m.runs))
	for _, sub := range []string{"state", "run"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return fmt.Errorf("pcheck directories: %w", err)
		}
	}
	pf := filepath.Join(dir, "bench.pfile")
	if err := os.WriteFile(pf, []byte(pcheckPfile(m.h.l, targets, check)), 0o644); err != nil {
		return fmt.Errorf("pfile: %w", err)
	}
	p, err := m.h.startProc(filepath.Join(dir, "stderr.log"), NewLineLog(), m.h.o.PcheckBin,
		"--state-dir", filepath.Join(dir, "state"), "--run-dir", filepath.Join(dir, "run"),
		"--syslog", "unixgram:"+m.h.syslogPath, pf)
	m.p = p
	return err
}

func (m *pcheckMon) watching(ctx context.Context, _ *Target, pid int) error {
	want := fmt.Sprintf(",pid=%d) Up", pid)
	_, _, err := m.p.log.WaitFor(ctx, 0, func(s string) bool { return strings.HasSuffix(s, want) })
	if err != nil {
		return fmt.Errorf("pcheck: waiting for %q: %w", want, err)
	}
	return nil
}

func (m *pcheckMon) allUp(ctx context.Context, targets []*Target) (time.Time, error) {
	up := make(map[string]bool)
	ln, _, err := m.p.log.WaitFor(ctx, 0, func(s string) bool {
		if strings.HasSuffix(s, ") Up") {
			if i := strings.LastIndex(s, ",pid="); i >= 0 {
				up[s[i:]] = true
			}
		}
		return len(up) >= len(targets)
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("pcheck: %d of %d Up lines: %w", len(up), len(targets), err)
	}
	return ln.At, nil
}

// monitMon drives monit, in the foreground (-I) with a private control
// file. Its state is read with its own CLI (monit status, monit summary)
// over the control file's Unix socket.
type monitMon struct {
	h    *harness
	runs int
	rc   string
	p    *monProc
}

func (m *monitMon) name() string       { return Monit }
func (m *monitMon) ownsChildren() bool { return false }
func (m *monitMon) proc() *monProc     { return m.p }

func (m *monitMon) start(_ context.Context, targets []*Target, check Check) error {
	// A fresh directory per run: a state file would carry the last
	// run's service states over.
	m.runs++
	dir := filepath.Join(m.h.l.Dir, "monit", fmt.Sprintf("run%d", m.runs))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("monit directory: %w", err)
	}
	m.rc = filepath.Join(dir, "monitrc")
	if err := os.WriteFile(m.rc, []byte(monitrc(dir, m.h.l, targets, check)), 0o600); err != nil {
		return fmt.Errorf("monitrc: %w", err)
	}
	p, err := m.h.startProc(filepath.Join(dir, "console.log"), nil, m.h.o.MonitBin, "-I", "-c", m.rc)
	if err != nil {
		return err
	}
	m.p = p
	tailCtx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.log = NewLineLog()
	go p.log.Tail(tailCtx, filepath.Join(dir, "monit.log"))
	return nil
}

// cli runs monit's command line against this run's daemon.
func (m *monitMon) cli(ctx context.Context, args ...string) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := m.h.r.Output(cctx, m.h.o.MonitBin, append([]string{"-c", m.rc, "-B"}, args...)...)
	return string(out), err
}

func (m *monitMon) watching(ctx context.Context, t *Target, pid int) error {
	var last string
	err := pollUntil(ctx, 50*time.Millisecond, func() (bool, error) {
		if err := m.p.exited(); err != nil {
			return false, err
		}
		out, err := m.cli(ctx, "status", t.ID)
		if err != nil {
			last = err.Error()
			return false, nil // the daemon may not answer yet
		}
		st := parseMonitStatus(out)
		last = fmt.Sprintf("status %q pid %q", st["status"], st["pid"])
		return st["status"] == "OK" && st["pid"] == strconv.Itoa(pid), nil
	})
	if err != nil {
		return fmt.Errorf("monit: waiting for %s to be OK with pid %d (last: %s): %w", t.ID, pid, last, err)
	}
	return nil
}

func (m *monitMon) allUp(ctx context.Context, targets []*Target) (time.Time, error) {
	var at time.Time
	ok := 0
	err := pollUntil(ctx, 50*time.Millisecond, func() (bool, error) {
		if err := m.p.exited(); err != nil {
			return false, err
		}
		out, err := m.cli(ctx, "summary")
		if err != nil {
			return false, nil
		}
		at = time.Now()
		st := parseMonitSummary(out)
		ok = 0
		for _, t := range targets {
			if st[t.ID] == "OK" {
				ok++
			}
		}
		return ok == len(targets), nil
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("monit: %d of %d services OK: %w", ok, len(targets), err)
	}
	return at, nil
}

// parseMonitStatus reads the "key   value" lines of `monit -B status NAME`.
func parseMonitStatus(out string) map[string]string {
	st := make(map[string]string)
	for line := range strings.SplitSeq(out, "\n") {
		line = strings.TrimSpace(line)
		// The key and the value are separated by a run of spaces;
		// keys themselves may hold single spaces ("parent pid").
		i := strings.Index(line, "  ")
		if i < 0 {
			continue
		}
		key := line[:i]
		if _, seen := st[key]; !seen {
			st[key] = strings.TrimSpace(line[i:])
		}
	}
	return st
}

// parseMonitSummary reads `monit -B summary`: service name, status (which
// may be several words), type.
func parseMonitSummary(out string) map[string]string {
	st := make(map[string]string)
	for line := range strings.SplitSeq(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		st[f[0]] = strings.Join(f[1:len(f)-1], " ")
	}
	return st
}

// supervisorMon drives supervisord in the foreground (-n) with a private
// configuration; its state changes are read from its log file.
type supervisorMon struct {
	h    *harness
	runs int
	p    *monProc
}

func (m *supervisorMon) name() string       { return Supervisord }
func (m *supervisorMon) ownsChildren() bool { return true }
func (m *supervisorMon) proc() *monProc     { return m.p }

func (m *supervisorMon) start(_ context.Context, targets []*Target, _ Check) error {
	m.runs++
	dir := filepath.Join(m.h.l.Dir, "supervisord", fmt.Sprintf("run%d", m.runs))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("supervisord directory: %w", err)
	}
	conf := filepath.Join(dir, "supervisord.conf")
	if err := os.WriteFile(conf, []byte(supervisordConf(dir, m.h.l, targets)), 0o644); err != nil {
		return fmt.Errorf("supervisord.conf: %w", err)
	}
	p, err := m.h.startProc(filepath.Join(dir, "console.log"), nil, m.h.o.SupervisordBin, "-n", "-c", conf)
	if err != nil {
		return err
	}
	m.p = p
	tailCtx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.log = NewLineLog()
	go p.log.Tail(tailCtx, filepath.Join(dir, "supervisord.log"))
	return nil
}

func (m *supervisorMon) watching(ctx context.Context, t *Target, pid int) error {
	spawned := fmt.Sprintf("spawned: '%s' with pid %d", t.ID, pid)
	running := fmt.Sprintf("success: %s entered RUNNING state", t.ID)
	_, next, err := m.p.log.WaitFor(ctx, 0, func(s string) bool { return strings.HasSuffix(s, spawned) })
	if err == nil {
		_, _, err = m.p.log.WaitFor(ctx, next, func(s string) bool { return strings.Contains(s, running) })
	}
	if err != nil {
		return fmt.Errorf("supervisord: waiting for %s RUNNING with pid %d: %w", t.ID, pid, err)
	}
	return nil
}

func (m *supervisorMon) allUp(ctx context.Context, targets []*Target) (time.Time, error) {
	want := make(map[string]bool, len(targets))
	for _, t := range targets {
		want[t.ID] = true
	}
	running := make(map[string]bool)
	ln, _, err := m.p.log.WaitFor(ctx, 0, func(s string) bool {
		if _, rest, ok := strings.Cut(s, "success: "); ok {
			if id, _, ok := strings.Cut(rest, " entered RUNNING state"); ok && want[id] {
				running[id] = true
			}
		}
		return len(running) == len(want)
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("supervisord: %d of %d RUNNING: %w", len(running), len(want), err)
	}
	return ln.At, nil
}

// floorMon runs the floor (cmd/floor) as W3 runs a monitor: the same
// checks of the same targets over the same window, and nothing else. It
// takes part in W3 only.
type floorMon struct {
	h    *harness
	runs int
	p    *monProc
}

func (m *floorMon) name() string       { return Floor }
func (m *floorMon) ownsChildren() bool { return false }
func (m *floorMon) proc() *monProc     { return m.p }

func (m *floorMon) start(_ context.Context, targets []*Target, check Check) error {
	args, err := floorArgs(targets, check)
	if err != nil {
		return err
	}
	m.runs++
	dir := filepath.Join(m.h.l.Dir, "floor", fmt.Sprintf("run%d", m.runs))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("floor directory: %w", err)
	}
	m.p, err = m.h.startProc(filepath.Join(dir, "console.log"), NewLineLog(), m.h.o.FloorBin, args...)
	return err
}

func (m *floorMon) watching(context.Context, *Target, int) error {
	return errors.New("floor: it watches no process (W3 only)")
}

// allUp returns at once: the floor checks from its start and reports
// nothing (its W4 is not measured).
func (m *floorMon) allUp(context.Context, []*Target) (time.Time, error) {
	if err := m.p.exited(); err != nil {
		return time.Time{}, err
	}
	return m.p.started, nil
}
