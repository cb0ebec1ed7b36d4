// Package compare is the side-by-side benchmark of pcheck against monit and
// supervisord (`make bench-compare`): one run measures the three monitors
// on the same target program (cmd/target) and restart scripts, each at its
// fastest supported settings, and writes docs/benchmarks.md.
//
// The workloads:
//   - W1 death: SIGKILL the target, time kill -> restart script exec, kill
//     -> new target exec, kill -> port serving again.
//   - W2 stall: SIGSTOP the target under an HTTP check every second that
//     declares a stall after 5 s; time hang -> kill and hang -> serving.
//   - W3 overhead: 200 and 1,000 targets, each with a process check and a
//     TCP check (_bi_socket) every second, then the same with an HTTP HEAD
//     check (_bi_webserv); the monitor's CPU over a window after warm-up
//     (children included) and its peak RSS. The floor (cmd/floor), a bare
//     loop doing the same checks and nothing else, is measured the same
//     way in the same run, and every monitor's CPU is also shown as a
//     multiple of it.
//   - W4 start-up: start the monitor on 200 running targets; time until it
//     reports them all running.
//
// Everything the monitors use (configuration, pid, state and log files,
// sockets) is under a private work directory; only processes the harness
// started, or that carry the work directory on their command line, are
// ever signalled.
package compare

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Options configure a run. Zero values take the defaults of the brief.
type Options struct {
	PcheckBin      string // pcheck binary (required)
	TargetBin      string // cmd/target binary (required)
	FloorBin       string // cmd/floor binary; none: no floor rows
	MonitBin       string // default "monit"
	SupervisordBin string // default "supervisord"
	Out            string // the report; default docs/benchmarks.md
	WorkDir        string // where the run's own new directory goes; default os.TempDir()
	Keep           bool   // keep the work directory (logs, configs)

	Kills  int           // W1 trials; default 20
	Stalls int           // W2 trials; default 3
	Small  int           // W3/W4 small set; default 200
	Large  int           // W3 large set; default 1000
	Warmup time.Duration // W3 warm-up; default 10 s
	Window time.Duration // W3 measurement window; default 60 s
	// Checks are the W3 health checks, each run at Small and Large;
	// default CheckTCP and CheckHTTP.
	Checks []Check

	// Only, when not empty, restricts the run to these monitors.
	Only []string
	// Workloads, when not empty, restricts the run to these workloads
	// ("W1", "W2", "W3"; W4 is measured with W3).
	Workloads []string
	// Progress receives one line per step; nil is io.Discard.
	Progress io.Writer
}

func (o *Options) defaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.Kills, 20)
	def(&o.Stalls, 3)
	def(&o.Small, 200)
	def(&o.Large, 1000)
	o.Large = max(o.Large, o.Small)
	if o.Warmup <= 0 {
		o.Warmup = DefaultWarmup
	}
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	if len(o.Checks) == 0 {
		o.Checks = []Check{CheckTCP, CheckHTTP}
	}
	if o.MonitBin == "" {
		o.MonitBin = "monit"
	}
	if o.SupervisordBin == "" {
		o.SupervisordBin = "supervisord"
	}
	if o.Out == "" {
		o.Out = "docs/benchmarks.md"
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
}

// The W3 defaults: warm-up after every target is up, then the window over
// which CPU is measured.
const (
	DefaultWarmup = 10 * time.Second
	DefaultWindow = 60 * time.Second
)

// Ports used on 127.0.0.1: one per monitor for W1 and W2, a range for W3.
const (
	portDeath = 19100
	portStall = 19110
	portLoad  = 20000
)

// harness is one run.
type harness struct {
	o          Options
	l          *Layout
	r          *Reaper
	syslog     *net.UnixConn
	syslogPath string
	spawned    []*Child // targets the harness started itself
}

// Run measures the three monitors and writes the report.
func Run(ctx context.Context, o Options) error {
	o.defaults()
	if o.PcheckBin == "" || o.TargetBin == "" {
		return errors.New("compare: the pcheck and target binaries are required")
	}
	for _, p := range []*string{&o.PcheckBin, &o.TargetBin, &o.FloorBin} {
		if *p == "" {
			continue
		}
		abs, err := filepath.Abs(*p)
		if err != nil {
			return err
		}
		*p = abs
	}
	h, err := newHarness(o)
	if err != nil {
		return err
	}
	defer h.close()
	rep, err := h.run(ctx)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(o.Out), 0o755); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := os.WriteFile(o.Out, []byte(rep.Markdown()), 0o644); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	h.progress("wrote %s", o.Out)
	return nil
}

func newHarness(o Options) (*harness, error) {
	// Always a new directory (under WorkDir when given): close removes
	// it, and no file of an earlier run can mix with this one's.
	dir, err := os.MkdirTemp(o.WorkDir, "pcheck-bench-")
	if err != nil {
		return nil, fmt.Errorf("work directory: %w", err)
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, err
	}
	l, err := newLayout(dir, o.TargetBin)
	if err != nil {
		return nil, err
	}
	r, err := NewReaper()
	if err != nil {
		return nil, err
	}
	h := &harness{o: o, l: l, r: r, syslogPath: filepath.Join(dir, "syslog.sock")}
	// pcheck logs to syslog as in production; this receiver drains it.
	h.syslog, err = net.ListenUnixgram("unixgram", &net.UnixAddr{Name: h.syslogPath, Net: "unixgram"})
	if err != nil {
		r.close()
		return nil, fmt.Errorf("syslog receiver: %w", err)
	}
	go func() {
		buf := make([]byte, 64<<10)
		for {
			if _, err := h.syslog.Read(buf); err != nil {
				return
			}
		}
	}()
	return h, nil
}

// close kills every target of the run still alive, stops reaping and
// removes the work directory unless asked to keep it.
func (h *harness) close() {
	h.killTargets(h.spawned)
	h.sweep()
	h.syslog.Close()
	h.r.close()
	if h.o.Keep {
		h.progress("work directory kept: %s", h.l.Dir)
		return
	}
	os.RemoveAll(h.l.Dir)
}

func (h *harness) progress(format string, args ...any) {
	fmt.Fprintf(h.o.Progress, time.Now().Format("15:04:05 ")+format+"\n", args...)
}

// wants tells whether the run includes monitor (or workload) name.
func wants(list []string, name string) bool {
	return len(list) == 0 || slices.ContainsFunc(list, func(s string) bool { return strings.EqualFold(s, name) })
}

// run carries out the workloads in order and gathers the report.
func (h *harness) run(ctx context.Context) (*Report, error) {
	rep := &Report{Date: time.Now(), Opts: h.o}
	rep.LoadAvg[0] = loadAvg()
	defer func() { rep.LoadAvg[1] = loadAvg() }()
	rep.Machine = MachineInfo()
	rep.Versions = h.versions(ctx)
	all := []monitor{&pcheckMon{h: h}, &monitMon{h: h}, &supervisorMon{h: h}}
	var mons []monitor
	for _, m := range all {
		if wants(h.o.Only, m.name()) {
			mons = append(mons, m)
		}
	}

	for i, m := range mons {
		if !wants(h.o.Workloads, "W1") {
			break
		}
		rep.Death = append(rep.Death, h.death(ctx, m, portDeath+i))
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	for i, m := range mons {
		if !wants(h.o.Workloads, "W2") {
			break
		}
		if m.ownsChildren() {
			rep.Stall = append(rep.Stall, StallResult{Monitor: m.name(), NA: "no built-in health check"})
			continue
		}
		rep.Stall = append(rep.Stall, h.stall(ctx, m, portStall+i))
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}

	if !wants(h.o.Workloads, "W3") {
		rep.Elapsed = time.Since(rep.Date)
		return rep, ctx.Err()
	}
	targets := make([]*Target, h.o.Large)
	for i := range targets {
		t, err := h.l.NewTarget(fmt.Sprintf("w3-%04d", i), portLoad+i)
		if err != nil {
			return nil, err
		}
		targets[i] = t
	}
	small := targets[:min(h.o.Small, len(targets))]
	// The floor first at each size and check, then the monitors that
	// watch the harness's targets; supervisord, which does no check, last
	// on its own copies.
	var ours []monitor
	if h.o.FloorBin != "" && wants(h.o.Only, Floor) {
		ours = append(ours, &floorMon{h: h})
	}
	for _, m := range mons {
		if !m.ownsChildren() {
			ours = append(ours, m)
		}
	}
	large := len(targets) > len(small)
	if len(ours) > 0 {
		kids, err := h.startTargets(ctx, small)
		if err != nil {
			return nil, err
		}
		for _, c := range h.o.Checks {
			for _, m := range ours {
				rep.Load = append(rep.Load, h.load(ctx, m, small, c))
			}
		}
		if large {
			more, err := h.startTargets(ctx, targets[len(small):])
			if err != nil {
				return nil, err
			}
			kids = append(kids, more...)
			for _, c := range h.o.Checks {
				for _, m := range ours {
					rep.Load = append(rep.Load, h.load(ctx, m, targets, c))
				}
			}
		}
		h.killTargets(kids)
	}
	for _, m := range mons {
		if m.ownsChildren() {
			rep.Load = append(rep.Load, h.load(ctx, m, small, CheckNone))
			if large {
				rep.Load = append(rep.Load, h.load(ctx, m, targets, CheckNone))
			}
		}
	}
	rep.Elapsed = time.Since(rep.Date)
	return rep, ctx.Err()
}

// versions asks each program for its version.
func (h *harness) versions(ctx context.Context) map[string]string {
	v := make(map[string]string)
	ask := func(name, bin string, args ...string) {
		out, err := h.r.Output(ctx, bin, args...)
		first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		if err != nil && first == "" {
			first = "unknown (" + err.Error() + ")"
		}
		v[name] = first
	}
	ask(Pcheck, h.o.PcheckBin, "--version")
	ask(Monit, h.o.MonitBin, "-V")
	ask(Supervisord, h.o.SupervisordBin, "--version")
	return v
}

// runScript runs t's restart script as a monitor would, and waits until
// the target it starts answers; it returns the target's pid.
func (h *harness) runScript(ctx context.Context, t *Target) (int, error) {
	c, err := h.r.Spawn(exec.Command(t.Script))
	if err != nil {
		return 0, err
	}
	if err := c.wait(ctx); err != nil {
		return 0, fmt.Errorf("restart script of %s: %w", t.ID, err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	pid, _, err := waitServing(wctx, t.Port, 0)
	return pid, err
}

// startTargets starts targets as children of the harness, each in a
// session of its own as a restart script would, and waits until each has
// written its pid file (it does once listening).
func (h *harness) startTargets(ctx context.Context, targets []*Target) ([]*Child, error) {
	h.progress("starting %d targets", len(targets))
	kids := make([]*Child, 0, len(targets))
	for _, t := range targets {
		out, err := os.OpenFile(t.Log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return kids, fmt.Errorf("target %s: %w", t.ID, err)
		}
		argv := h.l.Argv(t)
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Stdout, cmd.Stderr = out, out
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		c, err := h.r.Spawn(cmd)
		out.Close()
		if err != nil {
			return kids, fmt.Errorf("target %s: %w", t.ID, err)
		}
		kids = append(kids, c)
		h.spawned = append(h.spawned, c)
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	next := 0
	err := pollUntil(wctx, 20*time.Millisecond, func() (bool, error) {
		for ; next < len(targets); next++ {
			select {
			case <-kids[next].Done():
				return false, fmt.Errorf("target %s (port %d) exited at start (see %s): %w", targets[next].ID, targets[next].Port, targets[next].Log, ErrExited)
			default:
			}
			if pid, err := readPid(targets[next].PidFile); err != nil || pid != kids[next].Pid {
				return false, nil
			}
		}
		return true, nil
	})
	return kids, err
}

// killTargets kills targets the harness started and waits for them.
func (h *harness) killTargets(kids []*Child) {
	for _, c := range kids {
		_ = c.Signal(syscall.SIGKILL)
	}
	for _, c := range kids {
		<-c.Done()
	}
}

// sweep kills every target of this run still alive: each pid a target
// ever stamped whose command line still names the work directory.
func (h *harness) sweep() {
	stamps, _ := filepath.Glob(filepath.Join(h.l.Dir, "stamps", "*.exec"))
	for _, s := range stamps {
		execs, _ := readExecStamps(s)
		for _, e := range execs {
			_ = SignalOurs(e.pid, h.l.Dir, unix.SIGKILL)
		}
	}
}

// readPid reads a pid file.
func readPid(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("pid file %s: %q is not a pid", path, b)
	}
	return pid, nil
}

// execStamp is one line of a target's stamp file.
type execStamp struct {
	at  time.Time
	pid int
}

// readExecStamps reads "<unix-ns> <pid>" lines.
func readExecStamps(path string) ([]execStamp, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []execStamp
	for line := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		ns, err1 := strconv.ParseInt(f[0], 10, 64)
		pid, err2 := strconv.Atoi(f[1])
		if err1 != nil || err2 != nil {
			continue
		}
		out = append(out, execStamp{at: time.Unix(0, ns), pid: pid})
	}
	return out, nil
}

// readScriptStamps reads the microsecond times a restart script appended.
func readScriptStamps(path string) ([]time.Time, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []time.Time
	for line := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
		us, err := strconv.ParseInt(strings.TrimSpace(line), 10, 64)
		if err != nil {
			continue
		}
		out = append(out, time.UnixMicro(us))
	}
	return out, nil
}

// AskPid asks the target on port for its pid.
func AskPid(port int) (int, error) { return ask(port, "/") }

// askConns asks the target on port how many connections it has accepted,
// this one included.
func askConns(port int) (int, error) { return ask(port, "/conns") }

// ask gets path from the target on port, whose answer is a number: one
// HTTP/1.0 request on a connection that is reset on close, so polling
// leaves no TIME_WAIT.
func ask(port int, path string) (int, error) {
	d := net.Dialer{Timeout: 200 * time.Millisecond, Control: lingerZero}
	c, err := d.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"); err != nil {
		return 0, err
	}
	b, err := io.ReadAll(io.LimitReader(c, 4096))
	if err != nil {
		return 0, err
	}
	_, body, ok := strings.Cut(string(b), "\r\n\r\n")
	if !ok || !strings.HasPrefix(string(b), "HTTP/1.") {
		return 0, fmt.Errorf("port %d: not an HTTP answer: %q", port, trimOutput(b))
	}
	n, err := strconv.Atoi(strings.TrimSpace(body))
	if err != nil {
		return 0, fmt.Errorf("port %d: answer %q to %s is not a number", port, trimOutput([]byte(body)), path)
	}
	return n, nil
}

// lingerZero sets SO_LINGER {on, 0} on a socket before it connects.
func lingerZero(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptLinger(int(fd), unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	})
	return errors.Join(err, serr)
}

// waitServing polls port every millisecond until a process other than old
// answers; it returns that pid and when it answered.
func waitServing(ctx context.Context, port, old int) (int, time.Time, error) {
	var last error
	for {
		pid, err := AskPid(port)
		if err == nil && pid != old {
			return pid, time.Now(), nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return 0, time.Time{}, fmt.Errorf("port %d: no new process answered (last: %v): %w", port, last, ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
}
