// Command idle measures what pcheck costs while nothing fails: it starts N
// sleep processes, a pfile with one process entry for each, and pcheck on
// it; once every process is Up it lets pcheck idle for a while and reports
// pcheck's CPU time over that window (utime+stime from /proc/PID/stat) and
// its peak resident memory (VmHWM).
//
//	go run ./bench/idle                       # 1000 entries, 60 s, pcheck = this program
//	go run ./bench/idle -pcheck bin/pcheck    # the real binary
//
// Without -pcheck the program re-executes itself as pcheck (daemon.Run, the
// same code the pcheck binary runs).
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pcheck/pcheck/checker/daemon"
)

// asPcheck marks the re-executed copy that plays pcheck.
const asPcheck = "PCHECK_IDLE_BENCH_PCHECK"

// clockTicks is USER_HZ, 100 on every Linux architecture pcheck targets.
const clockTicks = 100

func main() {
	if os.Getenv(asPcheck) == "1" {
		args := os.Args[1:]
		network, addr, _ := strings.Cut(args[2], ":")
		wait := startProfiles()
		daemon.TuneGC()
		code := daemon.Run(context.Background(), daemon.Options{
			StateDir: args[0], RunDir: args[1], SyslogNetwork: network, SyslogAddr: addr,
			Pfiles: args[3:], Stderr: discard{},
		})
		wait()
		os.Exit(code)
	}
	n := flag.Int("n", 1000, "process entries (sleep processes)")
	dur := flag.Duration("duration", 60*time.Second, "how long pcheck idles while measured")
	interval := flag.Int("interval", 10, "MonitorInterval of the pfile, seconds")
	pcheck := flag.String("pcheck", "", "pcheck binary to measure (default: this program as pcheck)")
	flag.StringVar(&profile, "profile", "", "without -pcheck: write pcheck's CPU profile of the idle window to `prefix`.cpu and its heap profile at the end to prefix.heap")
	flag.Parse()
	if err := run(*n, *dur, *interval, *pcheck); err != nil {
		fmt.Fprintln(os.Stderr, "idle:", err)
		os.Exit(1)
	}
}

// profile is the -profile prefix, passed to the copy playing pcheck in
// profileEnv.
var profile string

const profileEnv = "PCHECK_IDLE_BENCH_PROFILE"

// startProfiles, in the copy playing pcheck with a profile prefix, starts
// the CPU profile at the first SIGUSR2 (sent once every process is Up)
// and at the second (sent at the end of the idle window) stops it and
// writes the heap profile, so that both show the idle pcheck alone. The
// returned func waits for the profiles to be written.
func startProfiles() (wait func()) {
	prefix := os.Getenv(profileEnv)
	if prefix == "" {
		return func() {}
	}
	usr2 := make(chan os.Signal, 2)
	signal.Notify(usr2, syscall.SIGUSR2)
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-usr2
		f, err := os.Create(prefix + ".cpu")
		if err == nil {
			// 1 kHz, not pprof's 100 Hz: an idle window has few samples.
			// (StartCPUProfile then warns that the rate is set already.)
			runtime.SetCPUProfileRate(1000)
			err = pprof.StartCPUProfile(f)
		}
		<-usr2
		if err == nil {
			pprof.StopCPUProfile()
			f.Close()
			if f, err = os.Create(prefix + ".heap"); err == nil {
				// debug 1: text, with runtime.MemStats at its end.
				err = pprof.Lookup("heap").WriteTo(f, 1)
				f.Close()
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "idle: profile:", err)
		}
	}()
	return func() {
		select {
		case <-done:
		case <-time.After(10 * time.Second):
		}
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func run(n int, dur time.Duration, interval int, pcheckBin string) error {
	dir, err := os.MkdirTemp("", "pcheck-idle")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	// The monitored processes: sleeps with distinct, same-width
	// arguments, so that args="3000042s" matches exactly one.
	var pf bytes.Buffer
	fmt.Fprintf(&pf, "MonitorInterval %d\nStartWait 30\n", interval)
	var sleeps []*exec.Cmd
	defer func() {
		for _, c := range sleeps {
			c.Process.Kill()
			c.Wait()
		}
	}()
	for i := range n {
		arg := fmt.Sprintf("%07ds", 3000000+i)
		c := exec.Command("/usr/bin/sleep", arg)
		if err := c.Start(); err != nil {
			return fmt.Errorf("starting sleep %d: %w", i, err)
		}
		sleeps = append(sleeps, c)
		fmt.Fprintf(&pf, "/usr/bin/sleep /bin/true args=\"%s\"\n", arg)
	}
	pfPath := filepath.Join(dir, "idle.pf")
	if err := os.WriteFile(pfPath, pf.Bytes(), 0o644); err != nil {
		return err
	}

	// A syslog receiver that counts Up and Down lines.
	sock := filepath.Join(dir, "log.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer conn.Close()
	var ups, downs atomic.Int64
	go func() {
		buf := make([]byte, 4096)
		for {
			k, err := conn.Read(buf)
			if err != nil {
				return
			}
			line := string(buf[:k])
			switch {
			case strings.HasSuffix(strings.TrimSpace(line), ") Up"):
				ups.Add(1)
			case strings.HasSuffix(strings.TrimSpace(line), "] Down"):
				downs.Add(1)
			}
		}
	}()

	stateDir, runDir := filepath.Join(dir, "state"), filepath.Join(dir, "run")
	var cmd *exec.Cmd
	if pcheckBin != "" {
		cmd = exec.Command(pcheckBin, "--state-dir", stateDir, "--run-dir", runDir, "--syslog", "unixgram:"+sock, pfPath)
	} else {
		self, err := os.Executable()
		if err != nil {
			return err
		}
		cmd = exec.Command(self, stateDir, runDir, "unixgram:"+sock, pfPath)
		cmd.Env = append(os.Environ(), asPcheck+"=1", profileEnv+"="+profile)
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

	for ups.Load() < int64(n) {
		if time.Since(started) > 5*time.Minute {
			return fmt.Errorf("only %d of %d processes Up after 5 minutes", ups.Load(), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	allUp := time.Since(started)
	cpuStart, err := cpuTime(pid)
	if err != nil {
		return err
	}
	if profile != "" {
		cmd.Process.Signal(syscall.SIGUSR2) // start the CPU profile
	}
	time.Sleep(dur)
	cpuEnd, err := cpuTime(pid)
	if err != nil {
		return err
	}
	hwm, rss, threads, err := memory(pid)
	if err != nil {
		return err
	}
	if profile != "" {
		cmd.Process.Signal(syscall.SIGUSR2) // stop the CPU profile, write the heap's
	}
	fmt.Printf("entries             %d (MonitorInterval %d s)\n", n, interval)
	fmt.Printf("all Up after        %v (CPU %.2f s)\n", allUp.Round(time.Millisecond), cpuStart.Seconds())
	fmt.Printf("idle CPU            %.3f s over %v\n", (cpuEnd - cpuStart).Seconds(), dur)
	fmt.Printf("peak RSS (VmHWM)    %.1f MB\n", float64(hwm)/1024)
	fmt.Printf("RSS now (VmRSS)     %.1f MB\n", float64(rss)/1024)
	fmt.Printf("threads             %d\n", threads)
	if d := downs.Load(); d != 0 {
		return fmt.Errorf("%d Down lines while idle: the processes must stay up", d)
	}
	return nil
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

// memory returns VmHWM and VmRSS in kB and the thread count of pid.
func memory(pid int) (hwm, rss, threads int, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		fields := strings.Fields(v)
		if len(fields) == 0 {
			continue
		}
		n, _ := strconv.Atoi(fields[0])
		switch k {
		case "VmHWM":
			hwm = n
		case "VmRSS":
			rss = n
		case "Threads":
			threads = n
		}
	}
	return hwm, rss, threads, sc.Err()
}
