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
}

// scriptResult is how a restart script ended.
type scriptResult struct {
	// status is the exit status ("0", "1", ..., 128+signal for a script
	// killed by a signal), "timeout", or "" when it could not start.
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
func (s scriptRun) start() <-chan scriptResult {
	res := make(chan scriptResult, 1)
	r, w, err := os.Pipe()
	if err != nil {
		res <- scriptResult{err: fmt.Errorf("restart script %s: %w", s.script, err)}
		return res
	}
	cmd := &exec.Cmd{
		Path:   s.script,
		Args:   []string{s.script, s.proc, strconv.Itoa(s.oldPid), s.reason},
		Env:    s.env(),
		Stdout: w,
		Stderr: w,
		// Stdin nil: /dev/null.
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
	}
	err = cmd.Start()
	w.Close()
	if err != nil {
		r.Close()
		res <- scriptResult{err: fmt.Errorf("restart script %s: %w", s.script, err)}
		return res
	}
	// The output is read until every holder of the pipe is gone: a
	// daemon that the script left with its stdout on the pipe keeps
	// logging through it instead of dying of SIGPIPE.
	go s.forward(r)
	go func() { res <- s.wait(cmd) }()
	return res
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
