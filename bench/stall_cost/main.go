// Command stall_cost measures what stall monitors cost pcheck: N _bi_webserv
// monitors at interval 1 s against local web servers. It starts K server
// processes holding N loopback listeners between them, a pfile with one
// process entry per server and one monitor block per listener, and pcheck
// on it; once every process is Up and the monitors have warmed up it
// watches pcheck for a while and reports its CPU time (utime+stime of
// /proc/PID/stat) against one core, its peak resident memory (VmHWM), its
// descriptors (/proc/PID/fd) and goroutines at the start and end of the
// window and their maximum, the attempts the servers answered, and any
// stall found (there must be none).
//
//	go run ./bench/stall_cost                         # 1000 webserv monitors, 60 s
//	go run ./bench/stall_cost -n 200 -duration 20s
//	go run ./bench/stall_cost -pcheck bin/pcheck      # the real binary
//	go run ./bench/stall_cost -kind socket            # _bi_socket (TCP connect) monitors
//	go run ./bench/stall_cost -floor                  # the probes alone, for comparison
//	go run ./bench/stall_cost -cpuprofile cpu.prof    # where pcheck spends it
//
// Without -pcheck the program re-executes itself as pcheck (daemon.Run, the
// code the pcheck binary runs), which then also reports its goroutine count.
// -floor measures instead a process that runs the same probes one after
// another every second, with no scheduler, engine or daemon: the cost of the
// probes themselves (connect, HEAD, status line, close: mostly the kernel's
// loopback TCP work), which pcheck cannot go below.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pcheck/pcheck/checker/daemon"
	"github.com/pcheck/pcheck/checker/probe"
	"github.com/pcheck/pcheck/checker/syslogtest"
	"github.com/pcheck/pcheck/parser"
)

// roleEnv selects what a re-executed copy does: "server" or "pcheck".
const roleEnv = "PCHECK_STALL_COST_ROLE"

// clockTicks is USER_HZ, 100 on every Linux architecture pcheck targets.
const clockTicks = 100

func main() {
	switch os.Getenv(roleEnv) {
	case "server":
		os.Exit(server(os.Args[1:]))
	case "pcheck":
		os.Exit(pcheckRole(os.Args[1:]))
	case "floor":
		os.Exit(floorRole(os.Args[1:]))
	}
	n := flag.Int("n", 1000, "monitors (listeners)")
	kind := flag.String("kind", "webserv", "monitor block: webserv (HTTP HEAD) or socket (TCP connect)")
	k := flag.Int("servers", 10, "server processes holding the listeners")
	dur := flag.Duration("duration", 60*time.Second, "how long pcheck is measured")
	warm := flag.Duration("warmup", 5*time.Second, "wait after every process is Up, before measuring")
	pcheck := flag.String("pcheck", "", "pcheck binary to measure (default: this program as pcheck)")
	profile := flag.String("cpuprofile", "", "write pcheck's CPU profile to this file (without -pcheck)")
	floor := flag.Bool("floor", false, "measure, instead of pcheck, a loop that runs the same probes one after another every second")
	flag.Parse()
	if *profile != "" {
		abs, err := filepath.Abs(*profile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "stall_cost:", err)
			os.Exit(1)
		}
		os.Setenv("PCHECK_STALL_COST_CPUPROFILE", abs)
	}
	if *kind != "webserv" && *kind != "socket" {
		fmt.Fprintln(os.Stderr, "stall_cost: -kind is webserv or socket")
		os.Exit(2)
	}
	if *floor {
		os.Setenv(roleEnv+"_MEASURED", "floor")
	}
	if err := run(*kind, *n, *k, *dur, *warm, *pcheck); err != nil {
		fmt.Fprintln(os.Stderr, "stall_cost:", err)
		os.Exit(1)
	}
}

// server listens on argv[1] loopback ports, writes them to the file
// argv[0], answers 200 to every request and keeps the number of requests
// answered in the file argv[2], rewritten every 200 ms.
func server(args []string) int {
	syscall.Setsid()
	n, _ := strconv.Atoi(args[1])
	var answered atomic.Int64
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		answered.Add(1)
	}), ReadHeaderTimeout: 5 * time.Second}
	srv.SetKeepAlivesEnabled(false)
	var ports bytes.Buffer
	for range n {
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, "server:", err)
			return 1
		}
		fmt.Fprintln(&ports, l.Addr().(*net.TCPAddr).Port)
		go srv.Serve(l)
	}
	if err := writeAtomic(args[0], ports.Bytes()); err != nil {
		return 1
	}
	for {
		writeAtomic(args[2], []byte(strconv.FormatInt(answered.Load(), 10)))
		time.Sleep(200 * time.Millisecond)
	}
}

// pcheckRole runs pcheck (argv: state-dir run-dir syslog-socket pfile) and
// writes its goroutine count to $PCHECK_STALL_COST_GOROUTINES every 200 ms;
// with $PCHECK_STALL_COST_CPUPROFILE it writes a CPU profile there.
func pcheckRole(args []string) int {
	if path := os.Getenv("PCHECK_STALL_COST_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "pcheck:", err)
			return 1
		}
		defer f.Close()
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	go func() {
		for {
			writeAtomic(os.Getenv("PCHECK_STALL_COST_GOROUTINES"), []byte(strconv.Itoa(runtime.NumGoroutine())))
			time.Sleep(200 * time.Millisecond)
		}
	}()
	status := daemon.Run(context.Background(), daemon.Options{
		StateDir: args[0], RunDir: args[1], SyslogNetwork: "unixgram", SyslogAddr: args[2],
		Pfiles: args[3:], Stderr: io.Discard,
	})
	return status
}

// floorRole runs the probes of the pfile argv[0] one after another, every
// second, each with a 1 s deadline: what the probes cost with no
// scheduling, monitoring or engine. It sends one line per process entry to
// the syslog socket argv[1] so that the main program sees them "Up".
func floorRole(args []string) int {
	f, diags := parser.Load(args[0])
	if err := diags.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		return 1
	}
	var probes []probe.Prober
	for _, p := range f.Processes {
		for _, b := range p.Blocks {
			pr, err := probe.New(b.Monitor, nil)
			if err != nil {
				fmt.Fprintln(os.Stderr, "floor:", err)
				return 1
			}
			probes = append(probes, pr)
		}
	}
	if conn, err := net.Dial("unixgram", args[1]); err == nil {
		for range f.Processes {
			fmt.Fprint(conn, "<30>"+time.Now().Format(time.Stamp)+" floor[1]: (floor) Up")
		}
		conn.Close()
	}
	go func() {
		for {
			writeAtomic(os.Getenv("PCHECK_STALL_COST_GOROUTINES"), []byte(strconv.Itoa(runtime.NumGoroutine())))
			time.Sleep(200 * time.Millisecond)
		}
	}()
	tick := time.NewTicker(time.Second)
	for range tick.C {
		for _, pr := range probes {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			pr.Run(ctx)
			cancel()
		}
	}
	return 0
}

func writeAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func readInt(path string) int64 {
	b, _ := os.ReadFile(path)
	n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return n
}

func run(kind string, n, k int, dur, warm time.Duration, pcheckBin string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "pcheck-stall-cost")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	// The servers, each with its share of the listeners.
	var servers []*exec.Cmd
	defer func() {
		for _, c := range servers {
			c.Process.Kill()
			c.Wait()
		}
	}()
	var pf bytes.Buffer
	fmt.Fprintf(&pf, "MonitorInterval 10\nStartWait 30\n")
	lib := "DLL:/opt/HA/PSWE/lib/lib_bi_" + kind + ".so"
	args := "3:10:%s:127.0.0.1" // failover 10 s, port, host
	if kind == "socket" {
		args = "2:10:%s" // socket probes localhost
	}
	var counts []string
	for i := range k {
		share := n / k
		if i < n%k {
			share++
		}
		tag := fmt.Sprintf("stall-cost-%d-%04d", os.Getpid(), i)
		portsFile := filepath.Join(dir, tag+".ports")
		countFile := filepath.Join(dir, tag+".count")
		counts = append(counts, countFile)
		c := exec.Command(self, portsFile, strconv.Itoa(share), countFile, tag)
		c.Env = append(os.Environ(), roleEnv+"=server")
		if err := c.Start(); err != nil {
			return fmt.Errorf("starting server %d: %w", i, err)
		}
		servers = append(servers, c)
		ports, err := waitFile(portsFile, 30*time.Second)
		if err != nil {
			return fmt.Errorf("server %d: %w", i, err)
		}
		fmt.Fprintf(&pf, "%s /bin/true args=\"%s\"\n", self, tag)
		for _, p := range strings.Fields(string(ports)) {
			fmt.Fprintf(&pf, "_bi_%s{\n  PS_INIT %s:DIRECT:-::-:0\n  PS_EXEC %s:DIRECT:-:1:0:%s\n  PS_ACTION %s:DIRECT:-::-:1:0\n  PS_QUIT %s:DIRECT:-::-:0\n}\n",
				kind, lib, lib, fmt.Sprintf(args, p), lib, lib)
		}
	}
	pfPath := filepath.Join(dir, "cost.pf")
	if err := os.WriteFile(pfPath, pf.Bytes(), 0o644); err != nil {
		return err
	}

	// A syslog receiver that counts Up and find lines.
	sock := filepath.Join(dir, "log.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer conn.Close()
	var ups, finds atomic.Int64
	go func() {
		buf := make([]byte, 64<<10)
		for {
			m, err := conn.Read(buf)
			if err != nil {
				return
			}
			l, err := syslogtest.Parse(string(buf[:m]))
			switch {
			case err != nil:
			case strings.HasSuffix(l.Text, ") Up"):
				ups.Add(1)
			case strings.HasPrefix(l.Text, "Find "):
				finds.Add(1)
			}
		}
	}()

	goroutines := filepath.Join(dir, "goroutines")
	stateDir, runDir := filepath.Join(dir, "state"), filepath.Join(dir, "run")
	var cmd *exec.Cmd
	floor := os.Getenv(roleEnv+"_MEASURED") == "floor"
	switch {
	case floor:
		cmd = exec.Command(self, pfPath, sock)
		cmd.Env = append(os.Environ(), roleEnv+"=floor", "PCHECK_STALL_COST_GOROUTINES="+goroutines)
	case pcheckBin != "":
		cmd = exec.Command(pcheckBin, "--state-dir", stateDir, "--run-dir", runDir, "--syslog", "unixgram:"+sock, pfPath)
	default:
		cmd = exec.Command(self, stateDir, runDir, sock, pfPath)
		cmd.Env = append(os.Environ(), roleEnv+"=pcheck", "PCHECK_STALL_COST_GOROUTINES="+goroutines)
	}
	started := time.Now()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting pcheck: %w", err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	pid := cmd.Process.Pid
	for ups.Load() < int64(k) {
		if time.Since(started) > 2*time.Minute {
			return fmt.Errorf("only %d of %d servers Up after 2 minutes", ups.Load(), k)
		}
		time.Sleep(20 * time.Millisecond)
	}
	allUp := time.Since(started)
	time.Sleep(warm)

	answered := func() int64 {
		var sum int64
		for _, c := range counts {
			sum += readInt(c)
		}
		return sum
	}
	type sample struct{ fds, goroutines int64 }
	take := func() (sample, error) {
		fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		if err != nil {
			return sample{}, err
		}
		return sample{fds: int64(len(fds)), goroutines: readInt(goroutines)}, nil
	}
	cpu0, err := cpuTime(pid)
	if err != nil {
		return err
	}
	req0 := answered()
	first, err := take()
	if err != nil {
		return err
	}
	peak := first
	window := time.Now()
	for time.Since(window) < dur {
		time.Sleep(time.Second)
		s, err := take()
		if err != nil {
			return err
		}
		peak.fds, peak.goroutines = max(peak.fds, s.fds), max(peak.goroutines, s.goroutines)
	}
	elapsed := time.Since(window)
	cpu1, err := cpuTime(pid)
	if err != nil {
		return err
	}
	req1 := answered()
	last, err := take()
	if err != nil {
		return err
	}
	hwm, threads, err := memory(pid)
	if err != nil {
		return err
	}
	cpu := cpu1 - cpu0
	fmt.Printf("monitors            %d _bi_%s at interval 1 s, %d server processes\n", n, kind, k)
	fmt.Printf("all Up after        %v\n", allUp.Round(time.Millisecond))
	fmt.Printf("window              %v\n", elapsed.Round(time.Millisecond))
	if kind == "webserv" {
		fmt.Printf("attempts answered   %d (%.0f/s)\n", req1-req0, float64(req1-req0)/elapsed.Seconds())
	}
	fmt.Printf("CPU                 %.2f s = %.1f%% of one core\n", cpu.Seconds(), 100*cpu.Seconds()/elapsed.Seconds())
	fmt.Printf("peak RSS (VmHWM)    %.1f MB\n", float64(hwm)/1024)
	fmt.Printf("threads             %d\n", threads)
	fmt.Printf("descriptors         %d at start, %d at end, %d max\n", first.fds, last.fds, peak.fds)
	if floor {
		fmt.Println("measured            the floor: the same probes run one after another every second, no pcheck")
	}
	if pcheckBin == "" {
		fmt.Printf("goroutines          %d at start, %d at end, %d max\n", first.goroutines, last.goroutines, peak.goroutines)
	}
	if f := finds.Load(); f != 0 {
		return fmt.Errorf("%d stalls found: the servers answer, there must be none", f)
	}
	return nil
}

func waitFile(path string, timeout time.Duration) ([]byte, error) {
	deadline := time.Now().Add(timeout)
	for {
		b, err := os.ReadFile(path)
		if err == nil {
			return b, nil
		}
		if time.Now().After(deadline) {
			return nil, err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// cpuTime returns utime+stime of pid.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed stat")
	}
	f := strings.Fields(string(b[i+2:]))
	// After the command: state is field 3, utime 14, stime 15.
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("malformed stat times")
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// memory returns VmHWM in kB and the thread count of pid.
func memory(pid int) (hwm, threads int, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		fields := strings.Fields(v)
		if len(fields) == 0 {
			continue
		}
		n, _ := strconv.Atoi(fields[0])
		switch k {
		case "VmHWM":
			hwm = n
		case "Threads":
			threads = n
		}
	}
	return hwm, threads, nil
}
