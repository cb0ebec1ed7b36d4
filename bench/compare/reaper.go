package compare

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Reaper makes the harness the init of everything it starts. The monitors
// under test start targets through restart scripts that detach them
// (setsid -f), and on this kind of machine pid 1 does not reap orphans: a
// killed target would stay a zombie, which monit takes for a live process.
// So the harness is a child subreaper, and one goroutine reaps every child,
// orphans included, on SIGCHLD. Children started with spawn get their exit
// status from it; nothing here calls exec.Cmd.Wait, which would race it.
type Reaper struct {
	mu      sync.Mutex
	waiters map[int]chan unix.WaitStatus
	sig     chan os.Signal
	stop    chan struct{}
	done    chan struct{}
}

// ErrExited reports a child that exited while it was expected to keep
// running, or with a failure status.
var ErrExited = errors.New("exited")

// NewReaper makes the calling process a child subreaper and starts reaping.
func NewReaper() (*Reaper, error) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return nil, fmt.Errorf("reaper: PR_SET_CHILD_SUBREAPER: %w", err)
	}
	r := &Reaper{
		waiters: make(map[int]chan unix.WaitStatus),
		sig:     make(chan os.Signal, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	signal.Notify(r.sig, syscall.SIGCHLD)
	go r.loop()
	return r, nil
}

func (r *Reaper) loop() {
	defer close(r.done)
	for {
		select {
		case <-r.stop:
			return
		case <-r.sig:
			r.reapAll()
		}
	}
}

// reapAll reaps every child that has exited and hands the statuses of
// spawned children to their waiters.
func (r *Reaper) reapAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		if ch, ok := r.waiters[pid]; ok {
			delete(r.waiters, pid)
			ch <- ws
		}
	}
}

// close stops reaping and leaves the subreaper role.
func (r *Reaper) close() {
	signal.Stop(r.sig)
	close(r.stop)
	<-r.done
	_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
}

// Child is a process started by Spawn.
type Child struct {
	Pid  int
	name string
	proc *os.Process          // signals go through its pidfd: never to a reused pid
	exit chan unix.WaitStatus // receives the status once
	done chan struct{}        // closed when the child has been reaped
	ws   unix.WaitStatus
}

// Spawn starts cmd (whose Stdin, Stdout and Stderr must be nil or
// *os.File, so that exec starts no copying goroutines that only Wait
// would join) and registers it with the reaper before the reaper can
// reap it.
func (r *Reaper) Spawn(cmd *exec.Cmd) (*Child, error) {
	for _, f := range []any{cmd.Stdin, cmd.Stdout, cmd.Stderr} {
		switch f.(type) {
		case nil, *os.File:
		default:
			return nil, fmt.Errorf("spawn %s: stdio must be *os.File", cmd.Path)
		}
	}
	r.mu.Lock()
	err := cmd.Start()
	if err != nil {
		r.mu.Unlock()
		return nil, fmt.Errorf("spawn %s: %w", cmd.Path, err)
	}
	c := &Child{Pid: cmd.Process.Pid, name: cmd.Path, proc: cmd.Process, exit: make(chan unix.WaitStatus, 1), done: make(chan struct{})}
	r.waiters[c.Pid] = c.exit
	r.mu.Unlock()
	go func() {
		c.ws = <-c.exit
		close(c.done)
	}()
	return c, nil
}

// Signal sends sig to the child unless it has exited.
func (c *Child) Signal(sig os.Signal) error {
	if err := c.proc.Signal(sig); err != nil {
		return fmt.Errorf("signal %s (pid %d): %w", c.name, c.Pid, err)
	}
	return nil
}

// Stop sends SIGTERM and waits up to grace for the child to end, then
// kills it.
func (c *Child) Stop(grace time.Duration) error {
	_ = c.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
		return c.Err()
	case <-time.After(grace):
	}
	_ = c.Signal(syscall.SIGKILL)
	<-c.done
	return fmt.Errorf("%s (pid %d): did not stop within %v of SIGTERM", c.name, c.Pid, grace)
}

// Done is closed when the child has exited and been reaped.
func (c *Child) Done() <-chan struct{} { return c.done }

// Err describes how the child ended: nil for exit status 0, else an error
// wrapping ErrExited. Call it after Done.
func (c *Child) Err() error {
	switch {
	case c.ws.Signaled():
		return fmt.Errorf("%s (pid %d): killed by %v: %w", c.name, c.Pid, c.ws.Signal(), ErrExited)
	case c.ws.ExitStatus() != 0:
		return fmt.Errorf("%s (pid %d): exit status %d: %w", c.name, c.Pid, c.ws.ExitStatus(), ErrExited)
	}
	return nil
}

// wait waits for the child to end, or for ctx.
func (c *Child) wait(ctx context.Context) error {
	select {
	case <-c.done:
		return c.Err()
	case <-ctx.Done():
		return fmt.Errorf("waiting for %s (pid %d): %w", c.name, c.Pid, ctx.Err())
	}
}

// Output runs a short command and returns its standard output; its
// standard error is kept for the error message.
func (r *Reaper) Output(ctx context.Context, name string, args ...string) ([]byte, error) {
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer outR.Close()
	errR, errW, err := os.Pipe()
	if err != nil {
		outW.Close()
		return nil, err
	}
	defer errR.Close()
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = outW, errW
	c, err := r.Spawn(cmd)
	outW.Close()
	errW.Close()
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { _ = unix.Kill(c.Pid, unix.SIGKILL) })
	defer stop()
	var stderr []byte
	errDone := make(chan struct{})
	go func() {
		stderr, _ = io.ReadAll(io.LimitReader(errR, 64<<10))
		_, _ = io.Copy(io.Discard, errR)
		close(errDone)
	}()
	out, _ := io.ReadAll(outR)
	<-errDone
	<-c.Done()
	if err := c.Err(); err != nil {
		return out, fmt.Errorf("%w: %s", err, trimOutput(stderr))
	}
	return out, nil
}

// trimOutput shortens command output for an error message.
func trimOutput(b []byte) string {
	const max = 400
	if len(b) > max {
		b = b[:max]
	}
	return string(b)
}
