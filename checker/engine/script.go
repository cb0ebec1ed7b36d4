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
	"github.com/pcheck/pcheck/checker/proc"
	"github.com/pcheck/pcheck/checker/trust"
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
	// record, when set, is where the running script is recorded while it
	// runs, so that a pcheck started after this one died finds it (see
	// scriptRecord).
	record func() string
	// group kills what is left of the script at its timeout, sparing the
	// entry's processes.
	group groupKill
}

// maxScriptOutput bounds how much of a script's output file is sent to
// syslog after each run.
const maxScriptOutput = 64 << 10

// scriptResult is how a restart script ended.
type scriptResult struct {
	// status is the exit status ("0", "1", ..., 128+signal for a script
	// killed by a signal), "timeout", or, for a script that could not be
	// started, what a shell reports for a command it cannot execute:
	// "127" when it is not found, "126" otherwise.
	status  string
	timeout bool
	err     error // why it could not start
	// out is how far the output file has been logged.
	out outMark
}

// startError is the result of a script that could not be started: the
// reason without the Go wrapping, and the status a shell would give.
func startError(script string, err error) scriptResult {
	status, reason := "126", err.Error()
	var errno syscall.Errno
	if errors.As(err, &errno) {
		reason = errno.Error()
		if errno == syscall.ENOENT || errno == syscall.ENOTDIR {
			status = "127"
			if _, serr := os.Stat(script); serr == nil {
				reason += " (the script exists: the interpreter on its #! line does not)"
			}
		}
	}
	return scriptResult{status: status, err: fmt.Errorf("restart script %s cannot be executed: %s", script, reason)}
}

// untrusted checks the script again just before it runs as root
// (trust.Recheck).
func untrusted(script string) error {
	if err := trust.Recheck(script, trust.RestartScript); err != nil {
		return fmt.Errorf("restart script refused, not run: %w", err)
	}
	return nil
}

// start runs the script in its own process group with stdin /dev/null and
// its output sent to syslog line by line. The result arrives on the
// returned channel; the script is always waited for, so it never stays a
// zombie, even when the caller stops listening. After timeout what is
// left of its process group, but the entry's processes, is killed (see
// groupKill).
//
// With outFile set, the output goes to that file (a new one at each run,
// the previous one kept as outFile.1) and is sent to syslog when the
// script ends. A daemon the script starts without redirecting its output
// inherits the file: with a pipe it would die of SIGPIPE on its next
// write once pcheck is gone (stopped, or restarted by systemd), although
// pcheck must leave monitored processes running.
func (s scriptRun) start() <-chan scriptResult {
	res := make(chan scriptResult, 1)
	if err := untrusted(s.script); err != nil {
		res <- scriptResult{status: "126", err: err}
		return res
	}
	if s.outFile != "" {
		return s.startToFile(res)
	}
	r, w, err := os.Pipe()
	if err != nil {
		res <- startError(s.script, err)
		return res
	}
	cmd := s.command(w)
	err = cmd.Start()
	w.Close()
	if err != nil {
		r.Close()
		res <- startError(s.script, err)
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
// output once the script has ended. An output file that cannot be made
// does not stop the restart: the output is lost (/dev/null), and said so.
func (s scriptRun) startToFile(res chan scriptResult) <-chan scriptResult {
	f, err := createOutput(s.outFile)
	var out *os.File // to read the output back
	if err == nil {
		out, err = trust.OpenNoFollow(s.outFile, os.O_RDONLY, 0)
		if err == nil && fileMark(out, 0) != fileMark(f, 0) {
			out.Close()
			out, err = nil, errors.New("replaced while being opened")
		}
	}
	if err != nil {
		s.log(message.Err(fmt.Sprintf("('%s'): restart script output file %s: %v; this run's output is not kept", s.proc, s.outFile, err)))
		if f != nil {
			f.Close()
		}
		if f, err = os.OpenFile(os.DevNull, os.O_WRONLY, 0); err != nil {
			res <- startError(s.script, err)
			return res
		}
	}
	cmd := s.command(f)
	err = cmd.Start()
	f.Close()
	if err != nil {
		if out != nil {
			out.Close()
		}
		res <- startError(s.script, err)
		return res
	}
	go func() {
		r := s.wait(cmd)
		if out != nil {
			r.out = s.forwardOutput(out)
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

// wait waits for the script, recording it while it runs, and kills what
// is left of its group after the timeout. The exit is first awaited
// without reaping (WNOWAIT): while the script is a zombie its pid, and so
// its process group id, cannot be reused.
func (s scriptRun) wait(cmd *exec.Cmd) scriptResult {
	pid := cmd.Process.Pid
	// Not reaped yet, the script is in /proc whatever it does.
	leader := proc.ID{Pid: pid}
	if info, err := proc.Read(pid); err == nil {
		leader = info.ID
	}
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
	timer := time.NewTimer(s.timeout)
	if s.record != nil && s.record() != "" {
		boot, _ := proc.BootID() // without it the record is never trusted
		rec := scriptRecord{Pid: pid, Start: leader.Start, Pgid: pid, Attempt: s.attempt, Reason: s.reason, Boot: boot}
		// The path is asked for when written and when removed: a
		// reload that renames the entry moves the record with it.
		if err := rec.write(s.record()); err != nil {
			s.log(message.Warning(fmt.Sprintf("('%s'): the running restart script is not recorded (a pcheck started after this one dies would not wait for it): %v", s.proc, err)))
		}
		defer func() { rec.remove(s.record()) }()
	}
	select {
	case <-exited:
		timer.Stop()
	case <-timer.C:
		if s.group.stop(leader, pid, exited, s.killWait) {
			// The script became the entry's process (exec): it runs
			// on, and is reaped when it ends.
			go cmd.Wait()
			return scriptResult{status: "timeout", timeout: true}
		}
		<-exited
		cmd.Wait()
		return scriptResult{status: "timeout", timeout: true}
	}
	err := cmd.Wait()
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
