package daemon

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// detachEnv marks the re-executed child of `pcheck -D`; its start report
// goes to file descriptor 3, a pipe to the parent.
const detachEnv = "PCHECK_DETACHED"

func isDetachedChild() bool { return os.Getenv(detachEnv) == "1" }

// detach re-executes pcheck in a new session with its standard files on
// /dev/null and waits for the child to report: 0 once it has started, its
// failure status (with its messages on stderr) otherwise.
func detach(stderr io.Writer) int {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "pcheck: -D: %v\n", err)
		return ExitFailure
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		fmt.Fprintf(stderr, "pcheck: -D: %v\n", err)
		return ExitFailure
	}
	defer devnull.Close()
	r, w, err := os.Pipe()
	if err != nil {
		fmt.Fprintf(stderr, "pcheck: -D: %v\n", err)
		return ExitFailure
	}
	defer r.Close()
	cmd := &exec.Cmd{
		Path:        exe,
		Args:        os.Args,
		Env:         append(os.Environ(), detachEnv+"=1"),
		Stdin:       devnull,
		Stdout:      devnull,
		Stderr:      devnull,
		ExtraFiles:  []*os.File{w},
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	err = cmd.Start()
	w.Close()
	if err != nil {
		fmt.Fprintf(stderr, "pcheck: -D: %v\n", err)
		return ExitFailure
	}

	sc := bufio.NewScanner(r)
	for sc.Scan() {
		kind, rest, _ := strings.Cut(sc.Text(), " ")
		switch kind {
		case "note":
			fmt.Fprintln(stderr, rest)
		case "ok":
			cmd.Process.Release()
			return ExitOK
		case "fail":
			st, msg, _ := strings.Cut(rest, " ")
			fmt.Fprintln(stderr, "pcheck: "+msg)
			cmd.Wait()
			status, err := strconv.Atoi(st)
			if err != nil {
				return ExitFailure
			}
			return status
		}
	}
	// No verdict: the child died before it could give one.
	err = cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() > 0 {
		fmt.Fprintf(stderr, "pcheck: -D: the detached pcheck exited with status %d before starting\n", ee.ExitCode())
		return ee.ExitCode()
	}
	fmt.Fprintf(stderr, "pcheck: -D: the detached pcheck ended before starting (%v)\n", err)
	return ExitFailure
}

// startReport is the detached child's end of the pipe to its parent.
// Its methods do nothing on a nil report (pcheck in the foreground).
type startReport struct {
	f *os.File
}

// takeReport returns the report pipe of a detached child and clears the
// marker, so that restart scripts do not inherit it.
func takeReport() *startReport {
	os.Unsetenv(detachEnv)
	if _, err := unix.FcntlInt(3, unix.F_GETFD, 0); err != nil {
		return nil
	}
	unix.CloseOnExec(3)
	return &startReport{f: os.NewFile(3, "pcheck-start-report")}
}

func (r *startReport) send(line string) {
	if r == nil || r.f == nil {
		return
	}
	fmt.Fprintln(r.f, strings.ReplaceAll(line, "\n", " "))
}

// note passes a message (a pfile diagnostic) to the parent's stderr.
func (r *startReport) note(text string) { r.send("note " + text) }

// ok tells the parent that pcheck has started.
func (r *startReport) ok() {
	if r == nil || r.f == nil {
		return
	}
	r.send("ok")
	r.f.Close()
	r.f = nil
}

// failed tells the parent that pcheck could not start, and why.
func (r *startReport) failed(status int, msg string) {
	if r == nil || r.f == nil {
		return
	}
	r.send(fmt.Sprintf("fail %d %s", status, msg))
	r.f.Close()
	r.f = nil
}
