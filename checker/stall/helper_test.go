package stall

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/pcheck/pcheck/checker/message"
	"github.com/pcheck/pcheck/checker/proc"
	"github.com/pcheck/pcheck/checker/stall/stalltest"
	"github.com/pcheck/pcheck/checker/states"
	"github.com/pcheck/pcheck/parser"
	"github.com/pcheck/pcheck/pfile"
)

// The test binary re-executes itself as the monitored web service
// (stalltest) and as an idle daemon (STALL_TEST_ROLE=idle).
func TestMain(m *testing.M) {
	stalltest.Serve()
	if os.Getenv("STALL_TEST_ROLE") == "idle" {
		unix.Setsid()
		for {
			time.Sleep(time.Hour)
		}
	}
	os.Exit(m.Run())
}

// bin is the test binary.
var bin = func() string {
	p, err := os.Executable()
	if err != nil {
		panic(err)
	}
	p, _ = filepath.EvalSymlinks(p)
	return p
}()

// recorder is a Logger that keeps every message and lets tests wait for
// one.
type recorder struct {
	mu      sync.Mutex
	msgs    []message.Message
	changed chan struct{}
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{})} }

func (r *recorder) Log(m message.Message) {
	r.mu.Lock()
	r.msgs = append(r.msgs, m)
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

func (r *recorder) texts() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, len(r.msgs))
	for i, m := range r.msgs {
		out[i] = m.Text
	}
	return out
}

// index returns the position of the first message text, -1 if none.
func (r *recorder) index(text string) int { return slices.Index(r.texts(), text) }

func (r *recorder) count(text string) int {
	n := 0
	for _, s := range r.texts() {
		if s == text {
			n++
		}
	}
	return n
}

// wait waits for text to have been logged n times.
func (r *recorder) wait(t testing.TB, text string, n int) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		r.mu.Lock()
		ch := r.changed
		r.mu.Unlock()
		if r.count(text) >= n {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("no %q (x%d) within 30 s; logged:\n%s", text, n, strings.Join(r.texts(), "\n"))
		}
	}
}

// waitFor polls cond until it holds, failing the test after 30 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// fakeTarget stands for the engine's kill: it records the kills and
// retry overs asked for and answers with killErr for every pid, logging to
// log (when set) what the engine logs.
type fakeTarget struct {
	mu         sync.Mutex
	pids       []int
	killErr    error
	log        *recorder
	kills      []string
	retryOvers []string
}

// kill is the engine's stall kill of the entry key: one result per pid.
func (f *fakeTarget) kill(key string) map[int]error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.kills = append(f.kills, key+" stall")
	out := map[int]error{}
	for _, pid := range f.pids {
		out[pid] = f.killErr
		if f.log != nil && f.killErr == nil {
			f.log.Log(message.Killed(pid))
		} else if f.log != nil {
			f.log.Log(message.CannotKill(pid))
		}
	}
	return out
}

func (f *fakeTarget) retryOver(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.retryOvers = append(f.retryOvers, key)
}

func (f *fakeTarget) counts() (kills, retryOvers int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.kills), len(f.retryOvers)
}

// event is a message the harness logged, as the engine reports it.
type event struct{ Kind, Text, Process, Pfile string }

// harnessOptions configure a harness.
type harnessOptions struct {
	File    *pfile.File
	Log     *recorder
	Clock   Clock
	OnEvent func(event)
}

// harness stands for the engine's entry of the one process entry of a
// pfile: it owns the entry's monitors on a Runtime of their own, starts
// them (up) and stops them (down), and acts on their results as the entry
// does: Monitor unknown, and on a stall the find message, the kill
// (through the fakeTarget), Acted and, when asked, the retry over.
type harness struct {
	rt      *Runtime
	file    *pfile.File
	key     string
	log     *recorder
	onEvent func(event)
	ms      []*Monitor
	mu      sync.Mutex
	target  *fakeTarget
}

func newHarness(o harnessOptions) (*harness, error) {
	h := &harness{rt: NewRuntime(RuntimeOptions{Clock: o.Clock}), file: o.File, key: o.File.Processes[0].Key, log: o.Log, onEvent: o.OnEvent}
	p := o.File.Processes[0]
	for _, b := range p.Blocks {
		m, err := h.rt.NewMonitor(p.Name, b, func(context.Context) ([]proc.Info, error) { return proc.Scan() })
		if err != nil {
			return nil, err
		}
		h.ms = append(h.ms, m)
	}
	return h, nil
}

// Run runs the monitors' Runtime until ctx ends; target takes the kills.
func (h *harness) Run(ctx context.Context, target *fakeTarget) {
	h.mu.Lock()
	h.target = target
	h.mu.Unlock()
	h.rt.Run(ctx)
}

// Snapshot is the monitors' status, as the engine's Monitors.
func (h *harness) Snapshot() []MonitorStatus {
	var out []MonitorStatus
	for _, m := range h.ms {
		st := m.Status(h.rt.clock.Now())
		st.Key = h.key
		out = append(out, st)
	}
	return out
}

func (h *harness) emit(m message.Message) {
	h.log.Log(m)
	if h.onEvent != nil {
		h.onEvent(event{Kind: string(m.ID), Text: m.Text, Process: h.file.Processes[0].Name, Pfile: h.file.Path})
	}
}

// deliver is the monitors' delivery: handled at once, as the entry would.
func (h *harness) deliver(r Result) {
	if !r.Current() {
		return
	}
	m := r.Monitor()
	name := h.file.Processes[0].Name
	if r.Unknown != "" {
		h.emit(message.MonitorUnknown(name, m.Block(), r.Unknown))
	}
	if !r.Stalled {
		return
	}
	h.emit(m.FindMessage(r.Pid, r.Probe))
	h.mu.Lock()
	target := h.target
	h.mu.Unlock()
	killed := true
	for pid, err := range target.kill(h.key) {
		if err != nil {
			killed = false
			h.emit(message.Warning(fmt.Sprintf("('%s' ,pid=%d): %s: cannot kill the stalled process: %v", name, pid, m.Block(), err)))
		}
	}
	if m.Acted(killed) {
		target.retryOver(h.key)
	}
}

// upIDs starts the monitors for ids, as the entry coming Up.
func (h *harness) upIDs(ids ...proc.ID) {
	for _, m := range h.ms {
		m.Start(ids, h.deliver)
	}
}

// down stops the monitors, as the entry leaving Up.
func (h *harness) down() {
	for _, m := range h.ms {
		m.Stop()
	}
}

// fakeClock is a Clock that moves only when told. Its readings carry a
// monotonic reading (they derive from time.Now by Add), and StepWall moves
// their wall reading alone, as setting the date does to time.Now.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	step   time.Duration
	timers []*fakeTimer
	// origin is the first reading; suspended the time added to Boot.
	origin    time.Time
	suspended time.Duration
}

func newFakeClock() *fakeClock {
	now := time.Now()
	return &fakeClock{now: now, origin: now}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return stepWall(c.now, c.step)
}

// Boot is the fake's boot clock: its monotonic time since it was made,
// plus what Suspend added.
func (c *fakeClock) Boot() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now.Sub(c.origin) + c.suspended
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	t := &fakeTimer{c: c, ch: make(chan time.Time, 1)}
	c.mu.Lock()
	c.timers = append(c.timers, t)
	c.mu.Unlock()
	t.Reset(d)
	return t
}

// Advance moves the clock (wall and monotonic) by d, firing due timers.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.fireLocked()
}

// StepWall moves the wall reading of Now by d, leaving the monotonic
// reading and the timers alone.
func (c *fakeClock) StepWall(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.step += d
}

// armed returns how many timers wait to fire.
func (c *fakeClock) armed() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if t.armed {
			n++
		}
	}
	return n
}

func (c *fakeClock) fireLocked() {
	for _, t := range c.timers {
		if t.armed && !t.when.After(c.now) {
			t.armed = false
			select {
			case t.ch <- c.now:
			default:
			}
		}
	}
}

type fakeTimer struct {
	c     *fakeClock
	ch    chan time.Time
	when  time.Time
	armed bool
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.armed
	t.armed = false
	t.drain()
	return was
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.armed
	t.drain()
	t.when, t.armed = t.c.now.Add(d), true
	t.c.fireLocked()
	return was
}

func (t *fakeTimer) drain() {
	select {
	case <-t.ch:
	default:
	}
}

// stepWall returns t with its wall clock reading moved by d (whole
// seconds) and its monotonic reading kept: what a change of the date does
// to the readings of time.Now. The time package offers no way to build
// such a reading, so this edits the packed representation (time.Time is
// {wall uint64; ext int64; loc}; with a monotonic reading, wall holds a
// flag in bit 63, seconds since 1885 in bits 30-62 and nanoseconds in bits
// 0-29, and ext the monotonic reading). TestStepWall checks that it does
// what it says, so a change of that layout fails loudly.
func stepWall(t time.Time, d time.Duration) time.Time {
	if d == 0 {
		return t
	}
	type layout struct {
		wall uint64
		ext  int64
		loc  *time.Location
	}
	const nsecShift = 30
	p := (*layout)(unsafe.Pointer(&t))
	if p.wall&(1<<63) == 0 {
		panic("stepWall: no monotonic reading")
	}
	sec := int64(p.wall<<1>>(nsecShift+1)) + int64(d/time.Second)
	p.wall = p.wall&(1<<63|(1<<nsecShift-1)) | uint64(sec)<<nsecShift
	return t
}

// loadPfile writes text to a pfile and parses it as pcheck does.
func loadPfile(t testing.TB, text string) *pfile.File {
	t.Helper()
	path := filepath.Join(t.TempDir(), "test.pf")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	f, diags := parser.Load(path)
	if err := diags.Err(); err != nil {
		t.Fatalf("pfile:\n%s\n%v", text, err)
	}
	return f
}

// block returns a _bi_<kind> block with one PS_EXEC entry of the given
// fields after DIRECT (timeout:interval:error:argc:argv...) and a PS_ACTION
// with actionError.
func block(kind, exec string, actionError int) string {
	lib := "/opt/HA/PSWE/lib/lib_bi_" + kind + ".so"
	return fmt.Sprintf("_bi_%s{\n  PS_INIT DLL:%s:DIRECT:-::-:0\n  PS_EXEC DLL:%s:DIRECT:%s\n  PS_ACTION DLL:%s:DIRECT:-::-:%d:0\n  PS_QUIT DLL:%s:DIRECT:-::-:0\n}\n",
		kind, lib, lib, exec, lib, actionError, lib)
}

// newTestScheduler builds a harness for f with the fake clock and target
// and no first-attempt stagger, and runs it until the test ends.
func newTestScheduler(t *testing.T, f *pfile.File, clk *fakeClock, target *fakeTarget) (*harness, *recorder) {
	t.Helper()
	log := newRecorder()
	target.log = log
	s, err := newHarness(harnessOptions{File: f, Log: log, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	s.rt.stagger = func(time.Duration) time.Duration { return 0 }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx, target) }()
	t.Cleanup(func() { cancel(); <-done })
	return s, log
}

// status returns the one monitor's status.
func status(t testing.TB, s *harness) MonitorStatus {
	t.Helper()
	st := s.Snapshot()
	if len(st) != 1 {
		t.Fatalf("%d monitors, want 1", len(st))
	}
	return st[0]
}

// attempt advances clk by d and waits until the monitor has made attempt
// number n and waits again (or has stalled, when stall is set).
func attempt(t *testing.T, s *harness, clk *fakeClock, d time.Duration, n int) MonitorStatus {
	t.Helper()
	clk.Advance(d)
	var st MonitorStatus
	waitFor(t, fmt.Sprintf("attempt %d", n), func() bool {
		st = status(t, s)
		return st.Attempts >= n && (clk.armed() == 1 || st.State == StateStalled || st.State == StateStopped)
	})
	if st.Attempts != n {
		t.Fatalf("%d attempts, want %d", st.Attempts, n)
	}
	return st
}

// up tells s that the one process entry of f is Up with pid: this test
// process (for the probes that look at its tree) or a made-up pid.
func up(s *harness, f *pfile.File, pid int) {
	id := proc.ID{Pid: pid, Start: 1}
	if pid == os.Getpid() {
		self, err := proc.Read(pid)
		if err != nil {
			panic(err)
		}
		id = self.ID
	}
	s.upIDs(id)
}

// down tells s that the one process entry of f left Up.
func down(s *harness, f *pfile.File, st states.Process) { s.down() }

// closedPort returns a loopback port nobody listens on.
func closedPort(t testing.TB) int {
	t.Helper()
	p, err := stalltest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}
