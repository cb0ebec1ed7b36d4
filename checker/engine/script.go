package engine

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pcheck/pcheck/checker/message"
)

// maxScriptLine bounds one line of restart script output sent to syslog;
// longer lines are cut into pieces of this size.
const maxScriptLine = 2048

// scriptRun describes one run of a restart script.
type scriptRun struct {
	script  string
	proc    string // the process name, argv[1]
	oldPid  int
	reason  string
	attempt int
	pfile   string
	timeout time.Duration
	// killWait separates SIGTERM and SIGKILL when the script times out.
	killWait time.Duration
	log      func(message.Message)
	// outFile, when set, receives the script's output instead of a pipe
	// (see start).
	outFile string
}

// notRun is the status of a script that could not be run at all, as a
// shell reports a command it cannot execute.
const notRun = "127"

// maxScriptOutput bounds how much of a script's output file is sent to
// syslog after each run.
const maxScriptOutput = 64 << 10

// scriptResult is how a restart script ended.
type scriptResult struct {
	// status is the exit status ("0", "1", ..., 128+signal for a script
	// killed by a signal), "timeout", or notRun when it could not start.
	status  string
	timeout bool
	err     error // why it could not start
}

// failed reports whether the attempt failed outright (timeout or no start),
// so StartWait is not worth waiting.
func (r scriptResult) failed() bool { return r.timeout || r.err != nil }

// start runs the script in its own process group with stdin /dev/null and
// its output sent to syslog line by line. The result arrives on the
// returned channel; the script is always waited for, so it never stays a
// zombie, even when the caller stops listening. After timeout its whole
// process group gets SIGTERM, then SIGKILL after killWait.
//
// With outFile set, the output goes to that file (truncated at each run,
// opened for appending) and is sent to syslog when the script ends. A
// daemon the script starts without redirecting its output inherits the
// file: with a pipe it would die of SIGPIPE on its next write once pcheck
// is gone (stopped, or restarted by systemd), although pcheck must leave
// monitored processes running.
func (s scriptRun) start() <-chan scriptResult {
	res := make(chan scriptResult, 1)
	if s.outFile != "" {
		return s.startToFile(res)
	}
	r, w, err := os.Pipe()
	if err != nil {
		res <- scriptResult{status: notRun, err: fmt.Errorf("restart script %s: %w", s.script, err)}
		return res
	}
	cmd := s.command(w)
	err = cmd.Start()
	w.Close()
	if err != nil {
		r.Close()
		res <- scriptResult{status: notRun, err: fmt.Errorf("restart script %s: %w", s.script, err)}
		return res
	}
	// The output is read until every holder of the pipe is gone, so a
	// daemon that the script left on the pipe keeps logging through it
	// while pcheck runs.
	go s.forward(r)
	go func() { res <- s.wait(cmd) }()
	return res
}

// startToFile runs the script with its output in s.outFile and logs that
// output once the script has ended.
func (s scriptRun) startToFile(res chan scriptResult) <-chan scriptResult {
	f, err := os.OpenFile(s.outFile, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o640)
	if err != nil {
		res <- scriptResult{status: notRun, err: fmt.Errorf("restart script %s: output file: %w", s.script, err)}
		return res
	}
	cmd := s.command(f)
	err = cmd.Start()
	f.Close()
	if err != nil {
		res <- scriptResult{status: notRun, err: fmt.Errorf("restart script %s: %w", s.script, err)}
		return res
	}
	go func() {
		r := s.wait(cmd)
		if out, err := os.Open(s.outFile); err == nil {
			s.forward(io.NopCloser(io.LimitReader(out, maxScriptOutput)))
			out.Close()
		}
		res <- r
	}()
	return res
}

// command is the exec.Cmd of one run with its output to out.
func (s scriptRun) command(out *os.File) *exec.Cmd {
	return &exec.Cmd{
		Path:   s.script,
		Args:   []string{s.script, s.proc, strconv.Itoa(s.oldPid), s.reason},
		Env:    s.env(),
		Stdout: out,
		Stderr: out,
		// Stdin nil: /dev/null.
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
	}
}

func (s scriptRun) env() []string {
	return append(os.Environ(),
		"PCHECK_PROCESS="+s.proc,
		"PCHECK_PID="+strconv.Itoa(s.oldPid),
		"PCHECK_REASON="+s.reason,
		"PCHECK_ATTEMPT="+strconv.Itoa(s.attempt),
		"PCHECK_PFILE="+s.pfile,
	)
}

// wait waits for the script, killing its group after the timeout. The
// exit is first awaited without reaping (WNOWAIT): while the script is a
// zombie its pid, and so its process group id, cannot be reused, which
// makes signalling the group safe.
func (s scriptRun) wait(cmd *exec.Cmd) scriptResult {
	pid := cmd.Process.Pid
	exited := make(chan struct{})
	go func() {
		var info unix.Siginfo
		for {
			err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
			if !errors.Is(err, unix.EINTR) {
				break
			}
		}
		close(exited)
	}()
	timedOut := false
	timer := time.NewTimer(s.timeout)
	select {
	case <-exited:
		timer.Stop()
	case <-timer.C:
		timedOut = true
		unix.Kill(-pid, unix.SIGTERM)
		kill := time.NewTimer(s.killWait)
		select {
		case <-exited:
			kill.Stop()
		case <-kill.C:
		}
		// Whatever is left of the group goes, the script included.
		unix.Kill(-pid, unix.SIGKILL)
		<-exited
	}
	err := cmd.Wait()
	if timedOut {
		return scriptResult{status: "timeout", timeout: true}
	}
	if err == nil {
		return scriptResult{status: "0"}
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return scriptResult{status: strconv.Itoa(128 + int(ws.Signal()))}
		}
		return scriptResult{status: strconv.Itoa(ee.ExitCode())}
	}
	return scriptResult{status: "-1", err: fmt.Errorf("restart script %s: %w", s.script, err)}
}

// forward sends each line the script writes to syslog as an info message.
func (s scriptRun) forward(r io.ReadCloser) {
	defer r.Close()
	br := bufio.NewReaderSize(r, maxScriptLine)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			text := string(trimEOL(line))
			if text != "" {
				s.log(message.Info(fmt.Sprintf("restart script ('%s'): %s", s.proc, text)))
			}
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}

func trimEOL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
