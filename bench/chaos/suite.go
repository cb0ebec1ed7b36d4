package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pcheck/pcheck/bench/compare"
)

// The timing of every target's stall monitor and of pcheck.
const (
	interval = 1 * time.Second // PS_EXEC interval of every stall monitor
	failover = 5 * time.Second // no success for this long: stalled, killed
	// restartTimeout is pcheck's RestartTimeout: a hung script is killed
	// after it and run again.
	restartTimeout = 6 * time.Second
	startWait      = 3 // pcheck's StartWait, seconds
	// recoverWithin bounds how long the system may take to settle after a
	// fault (every target up, serving, pcheck's status all Up).
	recoverWithin = 60 * time.Second
)

// target is one monitored HTTP server.
type target struct {
	id     string // "t07": its -id= argument, fixed width
	port   int
	socket bool // also a _bi_socket monitor
	script string
	calls  string // the script appends "<unix-ns> <reason> <old-pid>" per run
	stamp  string // the target appends "<unix-ns> <pid>" at exec
	hang   string // flag file: the next script run hangs (once)
	slow   string // flag file: each script run first sleeps its seconds

	wantStarts int // target processes that should have been started
	wantRuns   int // restart-script runs pcheck should have made
	current    int // the pid last seen serving
	retryOff   int // retries_used minus script runs, last reported
}

// suite is one run: the work directory, the processes it started and what
// it has seen.
type suite struct {
	c       config
	rng     *rand.Rand
	dir     string // the work directory; its path is on every command line started here
	bin     string
	pfile   string
	state   string
	runDir  string
	logFile string
	sock    string
	keepDir bool

	r        *compare.Reaper
	rsyslog  *compare.Child
	receiver *receiver // when rsyslogd is not installed
	pcheck   *compare.Child
	tmpfs    bool // state directory is a tmpfs chaos mounted
	fullSkip string

	targets []*target
	log     *compare.LineLog

	mu      sync.Mutex
	stopped map[int]bool // target pids chaos stopped for longer than failover, or killed
	served  map[int]bool // target pids seen serving
	dead    map[int]bool // target pids known dead and accounted
	faults  map[string]int
	viol    map[string][]string
	worst   map[string]time.Duration
	samples map[string]int // faults that measured worst[...]
	base    resources      // first sample at rest of the running pcheck
	base0   resources      // of the first pcheck
	peak    resources
	started time.Time
	ended   time.Time
	reload  int
}

// newSuite builds the binaries, starts the receiver, the targets and pcheck.
func newSuite(ctx context.Context, c config) (*suite, error) {
	dir, err := os.MkdirTemp("", "pcheck-chaos-")
	if err != nil {
		return nil, err
	}
	s := &suite{
		c: c, rng: rand.New(rand.NewPCG(uint64(c.seed), uint64(c.seed)^0x9e3779b97f4a7c15)),
		dir: dir, bin: filepath.Join(dir, "bin"), pfile: filepath.Join(dir, "chaos.pf"),
		state: filepath.Join(dir, "state"), runDir: filepath.Join(dir, "run"),
		logFile: filepath.Join(dir, "syslog.log"), sock: filepath.Join(dir, "log.sock"),
		stopped: map[int]bool{}, served: map[int]bool{}, dead: map[int]bool{},
		faults: map[string]int{}, viol: map[string][]string{}, worst: map[string]time.Duration{}, samples: map[string]int{},
		log: compare.NewLineLog(),
	}
	for _, d := range []string{s.bin, s.state, s.runDir, filepath.Join(dir, "t"), filepath.Join(dir, "flags")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return s, err
		}
	}
	if s.r, err = compare.NewReaper(); err != nil {
		return s, err
	}
	fmt.Printf("chaos: work directory %s\n", dir)
	if out, err := s.r.Output(ctx, "go", "build", "-C", c.pcheckSrc, "-o", s.bin+"/", "./cmd/pcheck", "./cmd/padmin", "./bench/compare/cmd/target"); err != nil {
		return s, fmt.Errorf("go build: %v\n%s", err, out)
	}
	s.mountState(ctx)
	if err := s.startSyslog(); err != nil {
		return s, err
	}
	go s.log.Tail(ctx, s.logFile)
	ports, err := freePorts(c.targets)
	if err != nil {
		return s, err
	}
	for i := range c.targets {
		t := &target{id: fmt.Sprintf("t%02d", i), port: ports[i], socket: i%4 == 3}
		base := filepath.Join(dir, "t", t.id)
		t.script, t.calls, t.stamp = base+".sh", base+".calls", base+".stamp"
		t.hang, t.slow = filepath.Join(dir, "flags", t.id+".hang"), filepath.Join(dir, "flags", t.id+".slow")
		if err := os.WriteFile(t.script, []byte(s.scriptText(t)), 0o755); err != nil {
			return s, err
		}
		if out, err := s.r.Output(ctx, t.script, s.targetBin(), "0", "setup"); err != nil {
			return s, fmt.Errorf("starting %s: %v\n%s", t.id, err, out)
		}
		t.wantStarts = 1
		s.targets = append(s.targets, t)
	}
	if err := s.writePfile(""); err != nil {
		return s, err
	}
	if err := s.startPcheck(); err != nil {
		return s, err
	}
	if err := s.settle(ctx, "start"); err != nil {
		return s, fmt.Errorf("the targets did not all come up under pcheck: %v", err)
	}
	s.started = time.Now()
	return s, nil
}

func (s *suite) targetBin() string { return filepath.Join(s.bin, "target") }

// scriptText is a target's restart script. pcheck runs it as <script>
// <proc> <old-pid> <reason>. The target is detached in a session of its
// own, so the script ends at once unless a flag file makes it slow or hang.
func (s *suite) scriptText(t *target) string {
	return fmt.Sprintf(`#!/bin/sh
# chaos restart script of %[1]s (generated)
echo "$(date +%%s%%N) $3 $2" >> %[2]s
if rm %[3]s 2>/dev/null; then while :; do sleep 1; done; fi
if [ -f %[4]s ]; then sleep "$(cat %[4]s)"; fi
exec setsid -f %[5]s -id=%[1]s -port=%[6]d -stamp=%[7]s </dev/null >>%[8]s.out 2>&1
`, t.id, t.calls, t.hang, t.slow, s.targetBin(), t.port, t.stamp, strings.TrimSuffix(t.script, ".sh"))
}

// pfileText is the pfile: every target by -id with a _bi_webserv block
// (interval 1 s, attempt timeout 1 s, failover 5 s), every fourth also a
// _bi_socket block. extra is appended (a comment, or an error).
func (s *suite) pfileText(extra string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `# bench/chaos (generated)
MonitorInterval 1
StartWait %d
RestartTimeout %d
KillWait 1
RetryCount 100000
Grace 86400
retry_over_action continue
`, startWait, int(restartTimeout/time.Second))
	block := func(lib, argv string) {
		so := "DLL:/opt/HA/PSWE/lib/lib_bi_" + lib + ".so:DIRECT:"
		fmt.Fprintf(&b, "_bi_%s{\n    PS_INIT   %s-::-:0\n    PS_EXEC   %s1:%d:0:%s\n    PS_ACTION %s-::-:1:0\n    PS_QUIT   %s-::-:0\n}\n",
			lib, so, so, int(interval/time.Second), argv, so, so)
	}
	for _, t := range s.targets {
		fmt.Fprintf(&b, "%s %s args=\"-id=%s \"\n", s.targetBin(), t.script, t.id)
		block("webserv", fmt.Sprintf("3:%d:%d:127.0.0.1", int(failover/time.Second), t.port))
		if t.socket {
			block("socket", fmt.Sprintf("2:%d:%d", int(failover/time.Second), t.port))
		}
	}
	b.WriteString(extra)
	return b.String()
}

// writePfile replaces the pfile by rename, as pfiles should be written.
func (s *suite) writePfile(extra string) error {
	tmp := s.pfile + ".tmp"
	if err := os.WriteFile(tmp, []byte(s.pfileText(extra)), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, s.pfile)
}

// startPcheck starts pcheck in the foreground on the pfile with --watch.
func (s *suite) startPcheck() error {
	out, err := os.OpenFile(filepath.Join(s.dir, "pcheck.out"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	cmd := exec.Command(filepath.Join(s.bin, "pcheck"), "--state-dir", s.state, "--run-dir", s.runDir,
		"--syslog", "unixgram:"+s.sock, "--watch", s.pfile)
	cmd.Stdout, cmd.Stderr = out, out
	c, err := s.r.Spawn(cmd)
	if err != nil {
		return err
	}
	s.pcheck = c
	s.base = resources{}
	return nil
}

// startSyslog starts a private rsyslogd with its stock settings on a
// socket in the work directory, every message to one file; without
// rsyslogd, a receiver of this program writes the datagrams to that file.
func (s *suite) startSyslog() error {
	path, err := exec.LookPath("rsyslogd")
	if err != nil {
		fmt.Println("chaos: rsyslogd not installed: using chaos's own unixgram receiver (apt-get install rsyslog for the real one)")
		s.receiver, err = listenReceiver(s.sock, s.logFile)
		return err
	}
	conf := filepath.Join(s.dir, "rsyslog.conf")
	text := fmt.Sprintf(`global(workDirectory="%[1]s")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="%[1]s/log.sock")
*.* action(type="omfile" file="%[1]s/syslog.log")
`, s.dir)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return err
	}
	out, err := os.Create(filepath.Join(s.dir, "rsyslogd.out"))
	if err != nil {
		return err
	}
	defer out.Close()
	cmd := exec.Command(path, "-n", "-f", conf, "-i", filepath.Join(s.dir, "rsyslogd.pid"))
	cmd.Stdout, cmd.Stderr = out, out
	if s.rsyslog, err = s.r.Spawn(cmd); err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(s.sock); err == nil {
			return nil
		}
		select {
		case <-s.rsyslog.Done():
			return fmt.Errorf("rsyslogd exited: %v (see %s)", s.rsyslog.Err(), out.Name())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return errors.New("rsyslogd did not create its socket within 10 s")
		}
	}
}

// mountState puts the state directory on a 2 MiB tmpfs (as root), so the
// full-filesystem fault can fill it; where mount fails, that fault is
// skipped.
func (s *suite) mountState(ctx context.Context) {
	if os.Geteuid() != 0 {
		s.fullSkip = "not root"
	} else if out, err := s.r.Output(ctx, "mount", "-t", "tmpfs", "-o", "size=2m,mode=0755", "chaos-state", s.state); err != nil {
		s.fullSkip = fmt.Sprintf("mount tmpfs: %v %s", err, strings.TrimSpace(string(out)))
	} else {
		s.tmpfs = true
	}
	if s.fullSkip != "" {
		fmt.Printf("chaos: state-full fault skipped: %s\n", s.fullSkip)
	}
}

// close stops every process the suite started (pcheck, targets, scripts,
// rsyslogd), unmounts the tmpfs and removes the work directory unless it
// is kept.
func (s *suite) close() {
	if s.pcheck != nil {
		_ = s.pcheck.Signal(syscall.SIGCONT)
		_ = s.pcheck.Stop(10 * time.Second)
	}
	// Targets and scripts: only processes with the work directory on
	// their command line.
	for range 3 {
		left := 0
		for _, p := range s.ours() {
			_ = compare.SignalOurs(p.pid, s.dir, unix.SIGCONT)
			_ = compare.SignalOurs(p.pid, s.dir, unix.SIGKILL)
			left++
		}
		if left == 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if s.rsyslog != nil {
		_ = s.rsyslog.Signal(syscall.SIGCONT)
		_ = s.rsyslog.Stop(10 * time.Second)
	}
	if s.receiver != nil {
		s.receiver.close()
	}
	if s.tmpfs {
		if err := unix.Unmount(s.state, 0); err != nil {
			_ = unix.Unmount(s.state, unix.MNT_DETACH)
		}
	}
	if s.keepDir || s.c.keep {
		fmt.Printf("chaos: work directory kept: %s\n", s.dir)
		return
	}
	os.RemoveAll(s.dir)
}

// freePorts returns n loopback ports free now.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// receiver is the fallback syslog receiver: every datagram on a unixgram
// socket appended to a file as one line. Paused, it stops reading (deaf).
type receiver struct {
	conn   *net.UnixConn
	mu     sync.Mutex
	paused bool
	resume chan struct{}
}

func listenReceiver(sock, file string) (*receiver, error) {
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		c.Close()
		return nil, err
	}
	r := &receiver{conn: c, resume: make(chan struct{})}
	go func() {
		defer f.Close()
		buf := make([]byte, 64<<10)
		for {
			r.mu.Lock()
			wait := r.resume
			paused := r.paused
			r.mu.Unlock()
			if paused {
				<-wait
				continue
			}
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			fmt.Fprintf(f, "%s\n", strings.TrimRight(string(buf[:n]), "\n"))
		}
	}()
	return r, nil
}

// deaf stops or resumes reading.
func (r *receiver) deaf(on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if on == r.paused {
		return
	}
	r.paused = on
	if !on {
		close(r.resume)
		r.resume = make(chan struct{})
	}
}

func (r *receiver) close() { r.deaf(false); r.conn.Close() }
