// Command floor is the floor of the comparison benchmark's W3 (bench/compare):
// the checks the monitors do, and nothing else. It connects to N targets on
// consecutive loopback ports once per second each, spread evenly over the
// second (check i of a round at i/N s), from one goroutine: socket,
// SO_LINGER 0, connect and close, as pcheck's _bi_socket probe does
// (checker/probe/dial.go), and with -check http a "HEAD / HTTP/1.0" request
// and its status line in between, as _bi_webserv does. The harness measures
// its CPU and peak RSS as it does a monitor's; a monitor's CPU over the
// floor's is what it costs beyond the checks themselves.
//
//	floor -check tcp|http -port FIRST -n N [-timeout 1s] [-duration D]
//
// It runs until SIGTERM or SIGINT, or for -duration, and then prints the
// checks done, those that failed, its CPU and peak RSS on standard error.
// Each failed check is reported there too (the first 10).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	check := flag.String("check", "tcp", "the check: tcp (connect) or http (HEAD request)")
	port := flag.Int("port", 0, "the first target's port on 127.0.0.1; the others follow it")
	n := flag.Int("n", 0, "the number of targets")
	timeout := flag.Duration("timeout", time.Second, "bound of one check")
	duration := flag.Duration("duration", 0, "stop after this long (default: at SIGTERM)")
	flag.Parse()
	if flag.NArg() > 0 || (*check != "tcp" && *check != "http") || *port <= 0 || *n <= 0 || *port+*n-1 > 65535 || *timeout <= 0 {
		fmt.Fprintln(os.Stderr, "usage: floor -check tcp|http -port FIRST -n N [-timeout D] [-duration D]")
		flag.PrintDefaults()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	l := &loop{port: *port, n: *n, timeout: *timeout}
	if *check == "http" {
		l.request = []byte("HEAD / HTTP/1.0\r\nHost: 127.0.0.1\r\nUser-Agent: floor\r\nConnection: close\r\n\r\n")
		l.buf = make([]byte, 512)
	}
	start := time.Now()
	l.run(ctx)
	var ru unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	fmt.Fprintf(os.Stderr, "floor: %s to %d targets: %d checks, %d failed in %v; CPU %.3f s, peak RSS %s\n",
		*check, *n, l.done, l.failed, time.Since(start).Round(time.Millisecond), cpu.Seconds(), peakRSS())
}

// peakRSS is VmHWM of /proc/self/status, as the harness reads it: it
// starts again at exec, where getrusage's ru_maxrss keeps the peak of the
// process that forked this one.
func peakRSS() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "unknown"
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// loop is the one goroutine doing the checks.
type loop struct {
	port, n int
	timeout time.Duration
	request []byte // the HTTP request, nil for TCP checks
	buf     []byte // where the HTTP answer is read

	done, failed int
}

// run does round after round until ctx ends: check i of round r is due at
// start + r s + i/N s. A check found late runs at once; none is skipped.
func (l *loop) run(ctx context.Context) {
	start := time.Now()
	step := time.Second / time.Duration(l.n)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for k := 0; ; k++ {
		round, i := k/l.n, k%l.n
		due := start.Add(time.Duration(round)*time.Second + time.Duration(i)*step)
		if d := time.Until(due); d > 0 {
			timer.Reset(d)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		} else if ctx.Err() != nil {
			return
		}
		l.done++
		if err := l.check(l.port + i); err != nil {
			l.failed++
			if l.failed <= 10 {
				fmt.Fprintf(os.Stderr, "floor: port %d: %v\n", l.port+i, err)
			}
		}
	}
}

// check does one check of the target on port.
func (l *loop) check(port int) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd) // a reset: SO_LINGER 0
	if err := unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0}); err != nil {
		return fmt.Errorf("setsockopt SO_LINGER: %w", err)
	}
	deadline := time.Now().Add(l.timeout)
	switch err := unix.Connect(fd, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}); err {
	case nil:
	case unix.EINPROGRESS, unix.EINTR:
		if err := wait(fd, unix.POLLOUT, deadline); err != nil {
			return fmt.Errorf("connect: %w", err)
		}
		if errno, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR); err != nil || errno != 0 {
			return fmt.Errorf("connect: %w", errors.Join(err, syscall.Errno(errno)))
		}
	default:
		return fmt.Errorf("connect: %w", err)
	}
	if l.request == nil {
		return nil
	}
	if _, err := unix.Write(fd, l.request); err != nil { // a fresh socket's buffer holds it all
		return fmt.Errorf("write: %w", err)
	}
	got := 0
	for {
		m, err := unix.Read(fd, l.buf[got:])
		switch {
		case err == unix.EAGAIN || err == unix.EINTR:
			if err := wait(fd, unix.POLLIN, deadline); err != nil {
				return fmt.Errorf("read: %w", err)
			}
			continue
		case err != nil:
			return fmt.Errorf("read: %w", err)
		case m == 0:
			return fmt.Errorf("closed after %q", l.buf[:got])
		}
		got += m
		if statusLine(l.buf[:got]) {
			return nil
		}
		if got == len(l.buf) {
			return fmt.Errorf("no status line in %q", l.buf[:got])
		}
	}
}

// statusLine tells whether b starts with a whole HTTP status line.
func statusLine(b []byte) bool {
	const prefix = "HTTP/1."
	if len(b) < len(prefix) || string(b[:len(prefix)]) != prefix {
		return false
	}
	for _, c := range b {
		if c == '\n' {
			return true
		}
	}
	return false
}

// wait blocks in poll(2) until fd is ready for events or deadline passes.
func wait(fd int, events int16, deadline time.Time) error {
	fds := []unix.PollFd{{Fd: int32(fd), Events: events}}
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return os.ErrDeadlineExceeded
		}
		n, err := unix.Poll(fds, int(left.Milliseconds())+1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("poll: %w", err)
		}
		if n > 0 {
			return nil
		}
	}
}
