package control

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pcheck/pcheck/checker/engine"
	"github.com/pcheck/pcheck/pfile"
)

// fakeEngine stands in for an engine.Instance: the protocol and the socket
// are what these tests exercise; cmd/padmin runs the real thing.
type fakeEngine struct {
	mu      sync.Mutex
	file    *pfile.File
	calls   []string
	restart error
	procs   []engine.ProcessStatus // the entries Snapshot reports; nil: httpd and db
}

func (f *fakeEngine) record(c string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, c)
}

func (f *fakeEngine) Snapshot() engine.Status {
	if f.procs != nil {
		return engine.Status{Pfile: f.File().Path, Started: time.Now(), Processes: f.procs}
	}
	return engine.Status{Pfile: f.File().Path, Started: time.Now().Add(-time.Hour), Processes: []engine.ProcessStatus{
		{Name: "httpd", Key: "httpd /r.sh", State: engine.StateUp, Pids: []int{os.Getpid()}, Since: time.Now(), RetriesAllowed: 3, Grace: time.Hour},
		{Name: "db", Key: "db /r.sh", State: engine.StateRetryOver, RetriesUsed: 3, RetriesAllowed: 3},
	}}
}
func (f *fakeEngine) File() *pfile.File {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.file
}

func (f *fakeEngine) set(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn()
}
func (f *fakeEngine) Pause(p string) error {
	f.record("pause " + p)
	if p == "nosuch" {
		return fmt.Errorf("process %q: %w", p, engine.ErrUnknownProcess)
	}
	return nil
}
func (f *fakeEngine) Resume(p string) error { f.record("resume " + p); return nil }
func (f *fakeEngine) RestartNow(p string, force bool) error {
	f.record(fmt.Sprintf("restart %s %v", p, force))
	if !force {
		return fmt.Errorf("process %q: %w", p, engine.ErrHealthy)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.restart
}
func (f *fakeEngine) Reset(p string) error { f.record("reset " + p); return nil }
func (f *fakeEngine) DumpFile() error      { f.record("dump"); return nil }

func newFile(path string) *pfile.File {
	return &pfile.File{Path: path, Params: pfile.DefaultParams()}
}

// shortDir is a temporary directory whose socket paths fit sun_path.
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ctl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

type fixture struct {
	srv  *Server
	eng  *fakeEngine
	rec  *Recorder
	path string
	dir  string
}

func serve(t *testing.T, target func(*Target)) *fixture {
	return serveWith(t, target, nil)
}

// serveWith is serve with a change to the Server before it serves.
func serveWith(t *testing.T, target func(*Target), before func(*Server)) *fixture {
	t.Helper()
	dir := shortDir(t)
	eng := &fakeEngine{file: newFile("web.pf")}
	rec := NewRecorder(RecorderOptions{Events: 10})
	tg := Target{Engine: eng, Recorder: rec}
	if target != nil {
		target(&tg)
	}
	path := SocketPath(dir, "web.pf")
	srv, err := Listen(path, tg)
	if err != nil {
		t.Fatal(err)
	}
	if before != nil {
		before(srv)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &fixture{srv: srv, eng: eng, rec: rec, path: path, dir: dir}
}

func dial(t *testing.T, path string) *Client {
	t.Helper()
	c, err := Dial(path, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// rawConn is a connection that speaks the protocol by hand.
type rawConn struct {
	net.Conn
	r *bufio.Reader
}

func rawDial(t *testing.T, path string) *rawConn {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{c, bufio.NewReader(c)}
}

func (c *rawConn) answer(t *testing.T) Response {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := c.r.ReadBytes('\n')
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		t.Fatalf("answer %q: %v", line, err)
	}
	return resp
}

func TestSocketMode(t *testing.T) {
	f := serve(t, nil)
	st, err := os.Stat(f.path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode()&os.ModeSocket == 0 || st.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, want a socket of mode 0600", st.Mode())
	}
	if filepath.Base(f.path) != SocketName("web.pf") {
		t.Fatalf("socket %s", f.path)
	}
}

// TestMalformed: a bad line gets an error answer and the connection goes
// on serving.
func TestMalformed(t *testing.T) {
	f := serve(t, nil)
	c := rawDial(t, f.path)
	fmt.Fprint(c, "this is not json\n\n{\"command\":\"frobnicate\"}\n{\"command\":\"info\"}\n")
	resp := c.answer(t)
	if resp.OK || resp.Error == nil || resp.Error.Code != "malformed" {
		t.Fatalf("garbage answered %+v", resp)
	}
	resp = c.answer(t)
	if resp.OK || resp.Error.Code != "unknown-command" || !errors.Is(resp.Error, ErrUnknownCommand) {
		t.Fatalf("unknown command answered %+v", resp)
	}
	resp = c.answer(t)
	if !resp.OK || resp.Pfile != "web.pf" || resp.Facility != "daemon" {
		t.Fatalf("info answered %+v", resp)
	}
}

// TestOversized: a request over 64 KiB is refused and the connection
// closed; one of exactly 64 KiB is read.
func TestOversized(t *testing.T) {
	f := serve(t, nil)
	c := rawDial(t, f.path)
	pad := strings.Repeat(" ", MaxRequest-len(`{"command":"info"}`))
	fmt.Fprintf(c, "{\"command\":\"info\"}%s\n", pad)
	if resp := c.answer(t); !resp.OK {
		t.Fatalf("a request of exactly %d bytes: %+v", MaxRequest, resp.Error)
	}
	go fmt.Fprintf(c, "{\"command\":\"info\"}%s \n", pad) // the server may close before reading it all
	resp := c.answer(t)
	if resp.OK || resp.Error.Code != "too-large" {
		t.Fatalf("oversized request answered %+v", resp)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.r.ReadByte(); err == nil {
		t.Fatal("connection still open after an oversized request")
	}
}

// TestDenied: a peer whose uid is not allowed gets an error answer that
// says nothing about the pfile.
func TestDenied(t *testing.T) {
	f := serveWith(t, nil, func(s *Server) { s.allowed = func(uint32) bool { return false } })
	c := dial(t, f.path)
	resp, err := c.Do(Request{Command: CmdStatus})
	if !errors.Is(err, ErrDenied) {
		t.Fatalf("err %v, want ErrDenied", err)
	}
	if resp.Pfile != "" || len(resp.Result) != 0 {
		t.Fatalf("a refused peer was told %+v", resp)
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("uid %d", os.Getuid())) {
		t.Fatalf("refusal %q does not name the uid", err)
	}
}

// TestCommands: each command reaches the engine and its errors come back
// with their codes.
func TestCommands(t *testing.T) {
	var reloads, resetReboots atomic.Int32
	f := serve(t, func(tg *Target) {
		tg.Reload = func() error {
			if reloads.Add(1) == 2 {
				return &pfile.InvalidError{Diagnostics: pfile.Diagnostics{{Pos: pfile.Pos{File: "web.pf", Line: 3, Col: 1}, Msg: "unknown parameter"}}}
			}
			return nil
		}
		tg.Reboots = func() (int, bool) { return 2, true }
		tg.ResetReboots = func() error { resetReboots.Add(1); return nil }
		tg.Monitors = func() []MonitorStatus {
			return []MonitorStatus{{Process: "httpd", Monitor: "webserv http://127.0.0.1:80/", State: MonitorInDoubt, SinceSuccessSeconds: 12}}
		}
	})
	c := dial(t, f.path)

	var st StatusResult
	if _, err := c.Call(Request{Command: CmdStatus}, &st); err != nil {
		t.Fatal(err)
	}
	if st.Pid != os.Getpid() || st.Processes != 2 || st.States["Up"] != 1 || st.States["RetryOver"] != 1 ||
		st.Reboots == nil || *st.Reboots != 2 || st.UptimeSeconds < 3599 {
		t.Fatalf("status head %+v", st.InfoResult)
	}
	if p := st.ProcessList[0]; p.State != "Up" || p.GraceSeconds != 3600 || p.RetriesAllowed != 3 || p.UptimeSeconds <= 0 && p.Pids[0] != os.Getpid() {
		t.Fatalf("process %+v", p)
	}
	if len(st.Monitors) != 1 || st.Monitors[0].State != "In doubt" {
		t.Fatalf("monitors %+v", st.Monitors)
	}

	for _, req := range []Request{{Command: CmdStop, Process: "httpd"}, {Command: CmdStart}, {Command: CmdReset}} {
		if _, err := c.Do(req); err != nil {
			t.Fatalf("%s: %v", req.Command, err)
		}
	}
	if _, err := c.Do(Request{Command: CmdStop, Process: "nosuch"}); !errors.Is(err, ErrUnknownProcess) {
		t.Fatalf("stop nosuch: %v", err)
	}
	if _, err := c.Do(Request{Command: CmdRestart, Process: "httpd"}); !errors.Is(err, ErrHealthy) {
		t.Fatalf("restart without force: %v, want ErrHealthy", err)
	}
	if _, err := c.Do(Request{Command: CmdRestart}); !errors.Is(err, ErrBadArgument) {
		t.Fatalf("restart without a process: %v", err)
	}
	f.eng.set(func() { f.eng.restart = fmt.Errorf("process %q: %w", "httpd", engine.ErrBusy) })
	if _, err := c.Do(Request{Command: CmdRestart, Process: "httpd", Force: true}); !errors.Is(err, ErrBusy) {
		t.Fatalf("restart while restarting: %v", err)
	}
	if _, err := c.Do(Request{Command: CmdReload}); err != nil {
		t.Fatal(err)
	}
	_, err := c.Do(Request{Command: CmdReload})
	var re *RemoteError
	if !errors.Is(err, ErrInvalidPfile) || !errors.As(err, &re) || len(re.Details) != 1 || re.Details[0] != "web.pf:3:1: unknown parameter" {
		t.Fatalf("bad reload: %v", err)
	}
	if _, err := c.Do(Request{Command: CmdDump}); !errors.Is(err, ErrNoDumpFile) {
		t.Fatalf("dump without DumpFileName: %v", err)
	}
	f.eng.set(func() {
		f.eng.file = newFile("web.pf")
		f.eng.file.Params.DumpFileName = "/tmp/x.dump"
	})
	var d DumpResult
	if _, err := c.Call(Request{Command: CmdDump}, &d); err != nil || d.File != "/tmp/x.dump" {
		t.Fatalf("dump: %v %+v", err, d)
	}
	want := "[pause httpd resume  reset  pause nosuch restart httpd false restart httpd true dump]"
	var calls []string
	f.eng.set(func() { calls = f.eng.calls })
	if got := fmt.Sprint(calls); got != want {
		t.Fatalf("engine calls %s, want %s", got, want)
	}
	if n := resetReboots.Load(); n != 1 {
		t.Fatalf("reboot count reset %d times, want 1", n)
	}

	var rules RulesResult
	if _, err := c.Call(Request{Command: CmdRules}, &rules); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(rules.Text, "pfile web.pf\n") || !strings.Contains(string(rules.Rules), `"dump_file_name":"/tmp/x.dump"`) {
		t.Fatalf("rules %s\n%s", rules.Rules, rules.Text)
	}

	var cfg ConfigResult
	if _, err := c.Call(Request{Command: CmdConfig, Config: &Config{Events: 5, Buckets: 12, BucketSeconds: 5}}, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg != (ConfigResult{Events: 5, Buckets: 12, BucketSeconds: 5}) {
		t.Fatalf("config %+v", cfg)
	}
	if _, err := c.Do(Request{Command: CmdConfig, Config: &Config{BucketSeconds: 0.5}}); !errors.Is(err, ErrBadArgument) {
		t.Fatalf("half-second buckets: %v", err)
	}
	// Sizes that would exhaust memory (or panic in make) are refused, and
	// the server still answers afterwards.
	for _, bad := range []Config{{Events: 1 << 62}, {Buckets: 1 << 62}, {Events: MaxEvents + 1}, {BucketSeconds: 1e300}} {
		if _, err := c.Do(Request{Command: CmdConfig, Config: &bad}); !errors.Is(err, ErrBadArgument) {
			t.Fatalf("config %+v: %v, want ErrBadArgument", bad, err)
		}
	}
	if _, err := c.Call(Request{Command: CmdConfig}, &cfg); err != nil || cfg.Events != 5 {
		t.Fatalf("config after refused sizes: %+v %v", cfg, err)
	}
}

// TestEventsAndStats: what the Recorder took in comes out of the socket.
func TestEventsAndStats(t *testing.T) {
	f := serve(t, nil)
	for i, kind := range []string{"start", "up", "down", "try-restart", "up"} {
		f.rec.Event(engine.Event{Time: time.Unix(int64(1000+i), 0), Pfile: "web.pf", Process: "httpd", Kind: kind})
	}
	f.rec.Attempt(Attempt{Process: "httpd", Monitor: "m", OK: false, Latency: 3 * time.Millisecond})
	c := dial(t, f.path)
	var evs []Event
	if _, err := c.Call(Request{Command: CmdEvents, N: 2}, &evs); err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[0].Kind != "up" || evs[1].Kind != "try-restart" || evs[0].Seq != 5 {
		t.Fatalf("events %+v", evs)
	}
	var st StatsResult
	if _, err := c.Call(Request{Command: CmdStats}, &st); err != nil {
		t.Fatal(err)
	}
	// up, down, up and the attempt are checks; down and the attempt failed.
	if st.Total != (Counts{Checks: 4, Failures: 2, Restarts: 1}) {
		t.Fatalf("stats total %+v", st.Total)
	}
	lat := f.rec.Latencies()
	if len(lat) != 1 || lat[0].Count != 1 || lat[0].Counts[2] != 1 {
		t.Fatalf("latencies %+v", lat)
	}
}

// slowEngine's Snapshot reports each call, to show that a stuck client
// never holds it.
type slowEngine struct {
	fakeEngine
	snapshots chan struct{}
}

func (s *slowEngine) Snapshot() engine.Status {
	select {
	case s.snapshots <- struct{}{}:
	default:
	}
	return s.fakeEngine.Snapshot()
}

// TestStuckClient: a client that sends requests and never reads the
// answers, and one that connects and says nothing, leave the engine free
// and the other clients served.
func TestStuckClient(t *testing.T) {
	eng := &slowEngine{fakeEngine: fakeEngine{file: newFile("web.pf")}, snapshots: make(chan struct{}, 1)}
	f := serve(t, func(tg *Target) { tg.Engine = eng })

	silent := rawDial(t, f.path)
	_ = silent
	stuck := rawDial(t, f.path)
	go func() {
		req := []byte(`{"command":"status"}` + "\n")
		for range 5000 {
			stuck.SetWriteDeadline(time.Now().Add(20 * time.Second))
			if _, err := stuck.Write(req); err != nil {
				return
			}
		}
	}()
	// The stuck client's answers fill its socket buffer: the server is
	// then blocked writing to it, holding nothing.
	for range 3 {
		<-eng.snapshots
	}
	done := make(chan error, 1)
	go func() {
		c, err := Dial(f.path, 10*time.Second)
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		var st StatusResult
		_, err = c.Call(Request{Command: CmdStatus}, &st)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(IdleTimeout / 2):
		t.Fatal("a stuck client blocked another client")
	}
	// Direct engine use, as the monitoring goroutines do, is not blocked.
	snap := make(chan struct{})
	go func() { eng.fakeEngine.Snapshot(); close(snap) }()
	<-snap
}

// TestCloseRemovesSocket: Close drops connections and the socket; Listen
// replaces a stale socket file.
func TestCloseRemovesSocket(t *testing.T) {
	dir := shortDir(t)
	path := SocketPath(dir, "a.pf")
	tg := Target{Engine: &fakeEngine{file: newFile("a.pf")}, Recorder: NewRecorder(RecorderOptions{})}
	// A stale socket: bound, then abandoned without unlinking.
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	if _, err := Query(path, time.Second); !errors.Is(err, ErrNotServed) {
		t.Fatalf("stale socket: %v, want ErrNotServed", err)
	}
	srv, err := Listen(path, tg)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	c := dial(t, path)
	if _, err := c.Do(Request{Command: CmdInfo}); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve after Close: %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket left behind: %v", err)
	}
	if _, err := c.Do(Request{Command: CmdInfo}); err == nil {
		t.Fatal("connection still served after Close")
	}
	if _, err := Listen(filepath.Join(dir, strings.Repeat("x", 120)), tg); !errors.Is(err, ErrPathTooLong) {
		t.Fatalf("long path: %v", err)
	}
}

// TestSocketOwnedByCreator: Listen never takes the path of a socket that
// is served, and Close never removes a socket that another server has
// made at the path since.
func TestSocketOwnedByCreator(t *testing.T) {
	f := serve(t, nil)
	tg := Target{Engine: &fakeEngine{file: newFile("web.pf")}, Recorder: NewRecorder(RecorderOptions{})}
	if _, err := Listen(f.path, tg); err == nil || !strings.Contains(err.Error(), "is served by another running process") {
		t.Fatalf("Listen over a live socket: err = %v", err)
	}
	if _, err := Query(f.path, 5*time.Second); err != nil {
		t.Fatalf("the live socket no longer answers: %v", err)
	}

	// Another server takes the path over (as after a forced start); the
	// first one's Close must leave it in place.
	if err := os.Remove(f.path); err != nil {
		t.Fatal(err)
	}
	second, err := Listen(f.path, tg)
	if err != nil {
		t.Fatal(err)
	}
	go second.Serve()
	defer second.Close()
	if err := f.srv.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Query(f.path, 5*time.Second); err != nil {
		t.Fatalf("the first server's Close removed the second's socket: %v", err)
	}
}

// TestLookup: a pfile is found by the path pcheck was given or its
// absolute form, through its own socket or any other.
func TestLookup(t *testing.T) {
	f := serve(t, nil)
	abs, _ := filepath.Abs("web.pf")
	for _, name := range []string{"web.pf", abs, "./web.pf"} {
		sv, err := Lookup(f.dir, name, 5*time.Second)
		if err != nil {
			t.Fatalf("Lookup(%q): %v", name, err)
		}
		if sv.Socket != f.path || sv.Info.Pfile != "web.pf" || sv.Info.PfileAbs != abs {
			t.Fatalf("Lookup(%q) = %+v", name, sv)
		}
	}
	// Renamed socket: found by asking every socket.
	other := filepath.Join(f.dir, "renamed.sock")
	if err := os.Rename(f.path, other); err != nil {
		t.Fatal(err)
	}
	if sv, err := Lookup(f.dir, "web.pf", 5*time.Second); err != nil || sv.Socket != other {
		t.Fatalf("Lookup through another socket: %+v, %v", sv, err)
	}
	if _, err := Lookup(f.dir, "other.pf", 5*time.Second); !errors.Is(err, ErrNotServed) {
		t.Fatalf("Lookup(other.pf): %v, want ErrNotServed", err)
	}
	served, errs := List(f.dir, 5*time.Second)
	if len(served) != 1 || len(errs) != 0 {
		t.Fatalf("List: %+v %v", served, errs)
	}
	// A pfile without a slash is also found by its file name or stem.
	for _, name := range []string{"web.pf", "web"} {
		if sv, err := Lookup(t.TempDir(), name, time.Second); !errors.Is(err, ErrNotServed) {
			t.Fatalf("Lookup(%q) in an empty run directory: %+v, %v", name, sv, err)
		}
	}
	if sv, err := Lookup(f.dir, "web", 5*time.Second); err != nil || sv.Socket != other {
		t.Fatalf("Lookup by stem: %+v, %v", sv, err)
	}
	if _, err := Lookup(f.dir, "./web", 5*time.Second); !errors.Is(err, ErrNotServed) {
		t.Fatalf("Lookup(./web): %v, want ErrNotServed (a path is no stem)", err)
	}
	// A missing run directory is said to be missing.
	missing := filepath.Join(f.dir, "missing")
	served, errs = List(missing, time.Second)
	if len(served) != 0 || len(errs) != 1 || !errors.Is(errs[0], ErrNotServed) ||
		!strings.Contains(errs[0].Error(), "run directory "+missing+" does not exist") {
		t.Fatalf("List of a missing run directory: %+v %v", served, errs)
	}
}

// serveAt serves a pfile at path through a socket in dir until the test
// ends.
func serveAt(t *testing.T, dir, path string) {
	t.Helper()
	tg := Target{Engine: &fakeEngine{file: newFile(path)}, Recorder: NewRecorder(RecorderOptions{})}
	srv, err := Listen(SocketPath(dir, path), tg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
}

// TestLookupShortNameUnsure: a short name is refused while a socket does
// not answer, since its pcheck may serve a pfile of that name too; a path
// is still found.
func TestLookupShortNameUnsure(t *testing.T) {
	f := serve(t, nil)
	// A socket that takes connections into its backlog and never answers.
	hung := filepath.Join(f.dir, "hung.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: hung, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, err = Lookup(f.dir, "web", 200*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "the pcheck on "+hung+" did not answer") ||
		!strings.Contains(err.Error(), "name the pfile by its path") {
		t.Fatalf("Lookup(web) beside a socket that does not answer: %v", err)
	}
	abs, _ := filepath.Abs("web.pf")
	if sv, err := Lookup(f.dir, abs, 200*time.Millisecond); err != nil || sv.Socket != f.path {
		t.Fatalf("Lookup by path beside a socket that does not answer: %+v, %v", sv, err)
	}
}

// TestLookupPathAndStem: a bare name that is the path of one pfile (here
// relative to the working directory) and the short name of another is
// ambiguous; ./NAME is the path.
func TestLookupPathAndStem(t *testing.T) {
	f := serve(t, nil) // web.pf, relative to the working directory
	other := filepath.Join(shortDir(t), "web.pf")
	serveAt(t, f.dir, other)
	for _, name := range []string{"web.pf", "web"} {
		_, err := Lookup(f.dir, name, 5*time.Second)
		abs, _ := filepath.Abs("web.pf")
		if !errors.Is(err, ErrAmbiguous) || !strings.Contains(err.Error(), other) || !strings.Contains(err.Error(), abs) {
			t.Fatalf("Lookup(%s), the path of one pfile and the short name of another: %v, want ErrAmbiguous naming both", name, err)
		}
	}
	if sv, err := Lookup(f.dir, "./web.pf", 5*time.Second); err != nil || sv.Socket != f.path {
		t.Fatalf("Lookup(./web.pf): %+v, %v", sv, err)
	}
	if sv, err := Lookup(f.dir, other, 5*time.Second); err != nil || sv.Info.PfileAbs != other {
		t.Fatalf("Lookup(%s): %+v, %v", other, sv, err)
	}
}

// TestProcessNameExactAndBase: a name that is one entry's as written and
// another's program base name is ambiguous, and nothing is done; the key
// names the entry.
func TestProcessNameExactAndBase(t *testing.T) {
	f := serve(t, func(tg *Target) {
		tg.Engine.(*fakeEngine).procs = []engine.ProcessStatus{
			{Name: "httpd", Key: "httpd /r.sh", State: engine.StateUp},
			{Name: "/usr/sbin/httpd -k", Key: "/usr/sbin/httpd -k /r2.sh", State: engine.StateUp},
		}
	})
	var out strings.Builder
	a := &Admin{RunDir: f.dir, Timeout: 5 * time.Second, Out: &out}
	err := a.Stop("web.pf", "httpd")
	if !errors.Is(err, ErrAmbiguous) || !strings.Contains(err.Error(), "/usr/sbin/httpd -k") {
		t.Fatalf("stop httpd beside /usr/sbin/httpd: %v, want ErrAmbiguous naming both", err)
	}
	if err := a.Stop("web.pf", "httpd /r.sh"); err != nil {
		t.Fatalf("stop by key: %v", err)
	}
	f.eng.mu.Lock()
	defer f.eng.mu.Unlock()
	if want := []string{"pause httpd /r.sh"}; fmt.Sprint(f.eng.calls) != fmt.Sprint(want) {
		t.Fatalf("engine calls %q, want %q", f.eng.calls, want)
	}
}
