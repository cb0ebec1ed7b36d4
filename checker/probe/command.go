package probe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pcheck/pcheck/checker/trust"
)

// maxOutput caps the output kept from a check command; the rest is read and
// discarded so that the command never blocks on a full pipe.
const maxOutput = 4 << 10

// pipeGrace is how long Run waits, after the command's process group is
// gone, for a process that left the group to release the output pipe.
const pipeGrace = 250 * time.Millisecond

// commandProber runs an external check command.
type commandProber struct {
	path string
	args []string
	env  []string
}

// Command returns the CMD probe: run path with args in the convention of
// the monitoring plugins (exit 0 healthy, anything else a failure; a
// command that cannot be started, ENOENT, EACCES or ENOEXEC at exec, is
// Unknown: it is pcheck's check that is broken, not the service). env is
// the command's environment; nil means pcheck's own. Stdin is /dev/null and
// stdout and stderr are captured together, capped at 4 KiB.
//
// The command runs in a process group of its own. When the deadline passes
// the whole group is killed with SIGKILL; when the command exits, whatever
// it left running in its group is killed too. Run returns after the command
// has been reaped: no zombie, no overlap with the next attempt.
func Command(path string, args []string, env []string) Prober {
	return &commandProber{path: path, args: args, env: env}
}

// Run performs one attempt.
func (c *commandProber) Run(ctx context.Context) Result {
	start := time.Now()
	// Checked again before each run as root (trust.Recheck): refused,
	// it is pcheck's side that cannot run the check, never a stall.
	if err := trust.Recheck(c.path, trust.CommandFile); err != nil {
		return failure(ctx, start, broken(fmt.Errorf("check command %s refused, not run: %w", c.path, err)))
	}
	out := &cappedBuffer{max: maxOutput}
	cmd := exec.CommandContext(ctx, c.path, c.args...)
	cmd.Env = c.env
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid) }
	cmd.WaitDelay = pipeGrace
	if err := cmd.Start(); err != nil {
		err = fmt.Errorf("check command %s: %w", c.path, err)
		if ctx.Err() == nil {
			// Not started (missing, not executable, not an
			// executable format, no fork or pipe): pcheck's side.
			err = broken(err)
		}
		return failure(ctx, start, err)
	}
	// Wait for the leader to exit without reaping it: while it is a
	// zombie its pid, the group id, cannot be given to another process,
	// so killing the group cannot hit a stranger.
	pid := cmd.Process.Pid
	waitExited(pid)
	_ = killGroup(pid)
	err := cmd.Wait()

	state := cmd.ProcessState
	if state == nil {
		return failure(ctx, start, broken(fmt.Errorf("check command %s: %w", c.path, err)))
	}
	first := out.firstLine()
	status := state.Sys().(syscall.WaitStatus)
	switch {
	case status.Exited() && status.ExitStatus() == 0:
		return success(start, withOutput("exit 0", first))
	case ctx.Err() != nil && !status.Exited():
		return failure(ctx, start, fmt.Errorf("check command %s: killed at the deadline: %w", c.path, ctx.Err()))
	}
	var detail string
	if status.Exited() {
		detail = "exit " + strconv.Itoa(status.ExitStatus())
	} else {
		detail = "signal " + unix.SignalName(status.Signal())
	}
	return Result{
		Latency: time.Since(start),
		Detail:  clip(withOutput(detail, first)),
		Err:     fmt.Errorf("check command %s: %w", c.path, &exec.ExitError{ProcessState: state}),
	}
}

// waitExited blocks until the child pid has exited, leaving it unreaped.
func waitExited(pid int) {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, unix.EINTR) {
			return
		}
	}
}

// killGroup sends SIGKILL to the process group pgid.
func killGroup(pgid int) error {
	err := unix.Kill(-pgid, unix.SIGKILL)
	if errors.Is(err, unix.ESRCH) {
		return os.ErrProcessDone
	}
	return err
}

// withOutput appends the first output line to a status, if there is one.
func withOutput(status, line string) string {
	if line == "" {
		return status
	}
	return status + ": " + line
}

// cappedBuffer keeps the first max bytes written to it and discards the
// rest, never failing a write.
type cappedBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

// Write implements io.Writer.
func (b *cappedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - len(b.buf); room > 0 {
		b.buf = append(b.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// firstLine returns the first non-blank line of the output, trimmed.
func (b *cappedBuffer) firstLine() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, line := range bytes.Split(b.buf, []byte("\n")) {
		if line = bytes.TrimSpace(line); len(line) > 0 {
			return string(line)
		}
	}
	return ""
}
