package probe

// Tests of the line between a failure (the service did not answer) and an
// Unknown attempt (pcheck's own side broke), with real files, processes and
// sockets.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pcheck/pcheck/checker/trust"
)

// exhaustedRole is the helper role that runs probes with its descriptor
// table full (see runExhausted).
const exhaustedRole = "exhausted"

// outcome is what the exhausted helper reports of one probe.
type outcome struct {
	Name    string `json:"name"`
	OK      bool   `json:"ok"`
	Unknown bool   `json:"unknown"`
	Detail  string `json:"detail"`
	EMFILE  bool   `json:"emfile"`
}

// runExhausted is the body of the exhausted helper: it lowers its
// RLIMIT_NOFILE, fills its descriptor table, runs one attempt of each probe
// that needs a descriptor against the live server at addr (its parent's,
// which holds the listener), and prints one JSON outcome per line.
func runExhausted(addr string) {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(1)
	}
	port, _ := strconv.Atoi(portText)
	parent := os.Getppid()
	probes := []struct {
		name string
		p    Prober
	}{
		{"tcp", TCP(host, port)},
		{"http", HTTP(host, port)},
		{"https", HTTPS(host, port, "/", TLSOptions{})},
		{"command", Command("/bin/true", nil, nil)},
		{"listen", Listen(port, "", func() ([]int, error) { return []int{parent}, nil })},
	}
	// Go's poller makes its epoll descriptor with the first timer: before
	// the table is full.
	time.Sleep(time.Millisecond)
	lim := syscall.Rlimit{Cur: 64, Max: 64}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		fmt.Fprintln(os.Stderr, "helper: setrlimit:", err)
		os.Exit(1)
	}
	var held []int
	for {
		fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			if !errors.Is(err, unix.EMFILE) {
				fmt.Fprintln(os.Stderr, "helper: open:", err)
				os.Exit(1)
			}
			break
		}
		held = append(held, fd)
	}
	enc := json.NewEncoder(os.Stdout)
	for _, pr := range probes {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		r := pr.p.Run(ctx)
		cancel()
		_ = enc.Encode(outcome{Name: pr.name, OK: r.OK, Unknown: r.Unknown, Detail: r.Detail, EMFILE: errors.Is(r.Err, syscall.EMFILE)})
	}
	for _, fd := range held {
		unix.Close(fd)
	}
}

// TestUnknownOutOfDescriptors: a probe run by a process whose descriptor
// table is full (EMFILE at socket(2), pipe(2), open(2)) is Unknown, not a
// failure, although the server it probes is healthy. The descriptors are
// exhausted in a helper process, not in this one whose other tests run in
// parallel.
func TestUnknownOutOfDescriptors(t *testing.T) {
	port := rawServer(t, "127.0.0.1:0", func(c net.Conn) {
		if _, err := readRequest(c); err == nil {
			_, _ = c.Write([]byte("HTTP/1.0 200 OK\r\n\r\n"))
		}
	})
	// The same probes, descriptors to spare: the server is healthy.
	for name, p := range map[string]Prober{"tcp": TCP("127.0.0.1", port), "http": HTTP("127.0.0.1", port)} {
		if r := p.Run(withTimeout(t, 30*time.Second)); !r.OK || r.Unknown {
			t.Fatalf("%s with descriptors to spare: %+v", name, r)
		}
	}

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+exhaustedRole, helperAddrEnv+"=127.0.0.1:"+strconv.Itoa(port))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait only once the output is read (os/exec's rule); a helper that
	// hangs is killed at the deadline, which ends the reading.
	timer := time.AfterFunc(60*time.Second, func() { _ = cmd.Process.Kill() })
	defer timer.Stop()
	got := map[string]outcome{}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		var o outcome
		if err := json.Unmarshal(sc.Bytes(), &o); err != nil {
			t.Errorf("helper line %q: %v", sc.Text(), err)
		}
		got[o.Name] = o
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}
	for _, name := range []string{"tcp", "http", "https", "command", "listen"} {
		o, ok := got[name]
		if !ok {
			t.Errorf("%s: no outcome from the helper", name)
			continue
		}
		if o.OK || !o.Unknown || !o.EMFILE {
			t.Errorf("%s out of descriptors: %+v, want Unknown with EMFILE", name, o)
		}
	}
}

// TestUnknownSocketErrno: socket(2) failing is pcheck's side, whatever the
// errno; the same errno from connect(2), and what a peer answers, is the
// service's.
func TestUnknownSocketErrno(t *testing.T) {
	for _, tc := range []struct {
		err     error
		unknown bool
	}{
		{os.NewSyscallError("socket", syscall.EMFILE), true},
		{os.NewSyscallError("socket", syscall.ENFILE), true},
		{os.NewSyscallError("socket", syscall.ENOBUFS), true},
		{os.NewSyscallError("socket", syscall.ENOMEM), true},
		{&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("socket", syscall.EMFILE)}, true},
		{os.NewSyscallError("socket", syscall.EAFNOSUPPORT), true},
		{os.NewSyscallError("socket", syscall.EACCES), true},
		{os.NewSyscallError("connect", syscall.ENOBUFS), false},
		{os.NewSyscallError("connect", syscall.ECONNREFUSED), false},
		{fmt.Errorf("status line: %w", ErrBadStatusLine), false},
	} {
		if got := failure(context.Background(), time.Now(), tc.err); got.Unknown != tc.unknown || got.OK {
			t.Errorf("%v: Unknown = %v, want %v", tc.err, got.Unknown, tc.unknown)
		}
	}
}

// TestServiceSideIsFailure: what the service does is a failure, never
// Unknown: a refused connection, an attempt that times out, a bad status
// line, a missing heartbeat file, a missing child, no listener.
func TestServiceSideIsFailure(t *testing.T) {
	closed := closedPort(t)
	silent := rawServer(t, "127.0.0.1:0", func(c net.Conn) { _, _ = readRequest(c) })
	garbage := rawServer(t, "127.0.0.1:0", func(c net.Conn) { _, _ = c.Write([]byte("SSH-2.0-OpenSSH\r\n")) })
	self := func() ([]int, error) { return []int{os.Getpid()}, nil }
	for name, tc := range map[string]struct {
		p       Prober
		timeout time.Duration
	}{
		"refused":         {TCP("127.0.0.1", closed), 30 * time.Second},
		"http refused":    {HTTP("127.0.0.1", closed), 30 * time.Second},
		"https refused":   {HTTPS("127.0.0.1", closed, "/", TLSOptions{Verify: true}), 30 * time.Second},
		"timeout":         {HTTP("127.0.0.1", silent), 200 * time.Millisecond},
		"bad status":      {HTTP("127.0.0.1", garbage), 30 * time.Second},
		"no heartbeat":    {Heartbeat(filepath.Join(t.TempDir(), "alive")), 30 * time.Second},
		"heartbeat dir":   {Heartbeat("/etc/passwd/alive"), 30 * time.Second},
		"child missing":   {Children([]string{"no-such-child"}, func() ([]ProcName, error) { return nil, nil }), 30 * time.Second},
		"no listener":     {Listen(closed, "", self), 30 * time.Second},
		"check exits 1":   {Command(sh, []string{"-c", "exit 1"}, nil), 30 * time.Second},
		"check exits 127": {Command(sh, []string{"-c", "no-such-command-pcheck"}, nil), 30 * time.Second},
	} {
		r := tc.p.Run(withTimeout(t, tc.timeout))
		if r.OK || r.Unknown || r.Err == nil {
			t.Errorf("%s: got OK=%v Unknown=%v Err=%v, want a failure", name, r.OK, r.Unknown, r.Err)
		}
	}
}

// TestUnknownCommand: a check command that cannot be started is Unknown
// (ENOENT, EACCES, ENOEXEC at exec, a missing interpreter), with the errno
// and the path in Err.
func TestUnknownCommand(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string, mode os.FileMode) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), mode); err != nil {
			t.Fatal(err)
		}
		return path
	}
	ran := filepath.Join(dir, "ran")
	unsafe := write("check_unsafe", "#!/bin/sh\ntouch '"+ran+"'\nexit 0\n", 0o755)
	if err := os.Chmod(unsafe, 0o777); err != nil { // past the umask
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		path string
		want error
	}{
		{"vanished", filepath.Join(dir, "check_gone"), syscall.ENOENT},
		{"not executable", write("check_noexec", "#!/bin/sh\nexit 0\n", 0o644), syscall.EACCES},
		{"not an executable format", write("check_garbage", "\x7fELF\x00garbage", 0o755), syscall.ENOEXEC},
		{"missing interpreter", write("check_interp", "#!/nonexistent/pcheck-sh\nexit 0\n", 0o755), syscall.ENOENT},
		// Checked again before each run (trust.Recheck): never run.
		{"a directory", dir, trust.ErrNotRegular},
		{"made writable by others", unsafe, trust.ErrWritable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Command(tc.path, nil, nil).Run(withTimeout(t, 30*time.Second))
			if r.OK || !r.Unknown || !errors.Is(r.Err, tc.want) || !strings.Contains(r.Err.Error(), tc.path) {
				t.Errorf("got OK=%v Unknown=%v Err=%v, want Unknown with %v naming %s", r.OK, r.Unknown, r.Err, tc.want, tc.path)
			}
		})
	}
	if _, err := os.Stat(ran); !os.IsNotExist(err) {
		t.Errorf("the check command writable by others ran as root: %v", err)
	}
}

// TestUnknownTLSCAFile: with TLSVerify, a TLSCAFile that is missing, not a
// file, or holds no certificate makes the attempt Unknown, before any
// connection is made; a valid CA file that does not vouch for the server is
// a failure (the server's certificate).
func TestUnknownTLSCAFile(t *testing.T) {
	dir := t.TempDir()
	cert, caFile := selfSigned(t, dir)
	_, otherCA := selfSigned(t, t.TempDir())
	port, seen := startHTTPServer(t, "tcp4", "127.0.0.1:0", 200, &cert)
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		ca   string
		err  error
	}{
		{"missing", caFile + ".missing", fs.ErrNotExist},
		{"a directory", dir, syscall.EISDIR},
		{"garbage", garbage, errNoCertificate},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := HTTPS("127.0.0.1", port, "/", TLSOptions{Verify: true, CAFile: tc.ca}).Run(withTimeout(t, 30*time.Second))
			if r.OK || !r.Unknown || !errors.Is(r.Err, tc.err) || !strings.Contains(r.Err.Error(), "TLSCAFile") {
				t.Errorf("got OK=%v Unknown=%v Err=%v, want Unknown with %v", r.OK, r.Unknown, r.Err, tc.err)
			}
		})
	}
	if len(seen) != 0 {
		t.Errorf("%d requests reached the server with a broken CA file", len(seen))
	}
	r := HTTPS("127.0.0.1", port, "/", TLSOptions{Verify: true, CAFile: otherCA}).Run(withTimeout(t, 30*time.Second))
	if r.OK || r.Unknown {
		t.Errorf("a CA that does not vouch for the server: got OK=%v Unknown=%v Err=%v, want a failure", r.OK, r.Unknown, r.Err)
	}
	// The file is read at each attempt: a repaired one is used at once.
	if r := HTTPS("127.0.0.1", port, "/", TLSOptions{Verify: true, CAFile: caFile}).Run(withTimeout(t, 30*time.Second)); !r.OK {
		t.Errorf("the good CA file: %s (%v)", r.Detail, r.Err)
	}
}

// TestUnknownHeartbeat: a heartbeat file pcheck cannot look at (a symlink
// loop, a name too long) is Unknown; a missing one is a failure
// (TestServiceSideIsFailure).
func TestUnknownHeartbeat(t *testing.T) {
	dir := t.TempDir()
	loop := filepath.Join(dir, "loop")
	if err := os.Symlink(loop, loop); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		path  string
		errno syscall.Errno
	}{
		"symlink loop":  {loop, syscall.ELOOP},
		"name too long": {filepath.Join(dir, strings.Repeat("x", 300)), syscall.ENAMETOOLONG},
	} {
		r := Heartbeat(tc.path).Run(withTimeout(t, 30*time.Second))
		if r.OK || !r.Unknown || !errors.Is(r.Err, tc.errno) {
			t.Errorf("%s: got OK=%v Unknown=%v Err=%v, want Unknown with %v", name, r.OK, r.Unknown, r.Err, tc.errno)
		}
	}
}

// TestUnknownTree: a process tree that cannot be read (pcheck's /proc scan
// failed) makes listen and children attempts Unknown: no child is called
// missing, no listener absent, because pcheck could not look.
func TestUnknownTree(t *testing.T) {
	h := startHelper(t, "listen", "127.0.0.1:0")
	scanErr := fmt.Errorf("scan /proc: %w", syscall.EMFILE)
	for name, p := range map[string]Prober{
		"listen":   Listen(h.port, "", func() ([]int, error) { return nil, scanErr }),
		"children": Children([]string{"httpd"}, func() ([]ProcName, error) { return nil, scanErr }),
	} {
		r := p.Run(withTimeout(t, 30*time.Second))
		if r.OK || !r.Unknown || !errors.Is(r.Err, syscall.EMFILE) {
			t.Errorf("%s: got OK=%v Unknown=%v Err=%v, want Unknown with EMFILE", name, r.OK, r.Unknown, r.Err)
		}
	}
}
