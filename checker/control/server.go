package control

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pcheck/pcheck/checker/engine"
	"github.com/pcheck/pcheck/pfile"
)

// The deadlines of a server connection: a client that sends nothing for
// IdleTimeout, or does not read an answer within WriteTimeout, is
// dropped. Neither ever holds up monitoring: answers are computed first
// and written after every lock is released.
const (
	IdleTimeout  = 30 * time.Second
	WriteTimeout = 10 * time.Second
)

// maxConns bounds the connections served at once; more wait in the
// listen backlog.
const maxConns = 64

// Engine is what a Server controls; *engine.Instance is one.
type Engine interface {
	Snapshot() engine.Status
	File() *pfile.File
	Pause(process string) error
	Resume(process string) error
	RestartNow(process string, force bool) error
	Reset(process string) error
	DumpFile() error
}

// Target is the pfile a Server answers for.
type Target struct {
	// Engine runs the pfile's monitoring. Required.
	Engine Engine
	// Recorder holds its events and statistics. Required.
	Recorder *Recorder
	// Reload re-reads the pfile; a bad pfile returns its
	// *pfile.InvalidError and changes nothing. nil refuses reloads.
	Reload func() error
	// Monitors returns the stall monitors' states; nil when there are
	// none.
	Monitors func() []MonitorStatus
	// Reboots returns the auto-reboot count inside RebootWindow; ok is
	// false when AutoReboot is off. nil: never on.
	Reboots func() (n int, ok bool)
	// ResetReboots forgets the recorded reboots (padmin reset of the
	// whole pfile, with AutoReboot on). nil: nothing to forget.
	ResetReboots func() error
}

// Server answers the control socket of one pfile.
type Server struct {
	target   Target
	path     string
	pfileAbs string
	ln       *net.UnixListener
	sem      chan struct{}
	// allowed decides which peer uids are served: root and our own.
	allowed func(uid uint32) bool

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
	// dev and ino identify the socket file Listen created.
	dev, ino uint64
}

// ErrPathTooLong is returned by Listen for a socket path that does not
// fit a Unix socket address (108 bytes on Linux).
var ErrPathTooLong = errors.New("socket path too long")

// Listen creates the control socket at path (mode 0600, replacing a stale
// one, never a live one) for t. Serve answers it.
func Listen(path string, t Target) (*Server, error) {
	if len(path) >= len(unix.RawSockaddrUnix{}.Path) {
		return nil, fmt.Errorf("control socket %s: %w (%d bytes)", path, ErrPathTooLong, len(path))
	}
	if t.Engine == nil || t.Recorder == nil {
		return nil, errors.New("control: Target needs Engine and Recorder")
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	// The socket is removed by Close only while path still is this
	// socket: never one that another instance made there since.
	ln.SetUnlinkOnClose(false)
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	// Under the usual umask the socket is never writable by others, so
	// no one else can connect before this.
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		removeIfSame(path, st.Dev, st.Ino)
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	self := uint32(os.Getuid())
	abs, err := filepath.Abs(t.Engine.File().Path)
	if err != nil {
		abs = t.Engine.File().Path
	}
	return &Server{
		target:   t,
		path:     path,
		pfileAbs: abs,
		ln:       ln,
		sem:      make(chan struct{}, maxConns),
		allowed:  func(uid uint32) bool { return uid == 0 || uid == self },
		conns:    map[net.Conn]struct{}{},
		dev:      st.Dev,
		ino:      st.Ino,
	}, nil
}

// removeStale removes what is left at path by a pcheck that is gone. A
// socket that still accepts connections belongs to a live instance (a
// pcheck started with another state directory) and is not taken from it.
func removeStale(path string) error {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); errors.Is(err, unix.ENOENT) {
		return nil
	}
	if st.Mode&unix.S_IFMT == unix.S_IFSOCK {
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return fmt.Errorf("control socket %s is served by another running process; not replaced", path)
		}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("control socket %s: removing the old one: %w", path, err)
	}
	return nil
}

// removeIfSame removes path when it still is the file dev:ino.
func removeIfSame(path string, dev, ino uint64) {
	var st unix.Stat_t
	if unix.Lstat(path, &st) == nil && st.Dev == dev && st.Ino == ino {
		os.Remove(path)
	}
}

// Path returns the socket's path.
func (s *Server) Path() string { return s.path }

// Serve answers connections until Close; it returns nil after Close.
func (s *Server) Serve() error {
	for {
		s.sem <- struct{}{}
		c, err := s.ln.AcceptUnix()
		if err != nil {
			<-s.sem
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			// EMFILE and the like: wait a little rather than spin.
			time.Sleep(50 * time.Millisecond)
			continue
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			<-s.sem
			return nil
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer func() { <-s.sem }()
			s.serveConn(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// Close removes the socket (when its path still is the socket Listen
// made), drops every connection and waits for the requests in progress.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	err := s.ln.Close()
	removeIfSame(s.path, s.dev, s.ino)
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

// peerUID returns the uid of the process at the other end of c.
func peerUID(c *net.UnixConn) (uint32, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var cred *unix.Ucred
	var credErr error
	err = raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	})
	if err == nil {
		err = credErr
	}
	if err != nil {
		return 0, fmt.Errorf("SO_PEERCRED: %w", err)
	}
	return cred.Uid, nil
}

// serveConn answers the requests of one connection, one line each.
func (s *Server) serveConn(c *net.UnixConn) {
	defer c.Close()
	uid, err := peerUID(c)
	if err == nil && !s.allowed(uid) {
		err = fmt.Errorf("uid %d may not control pcheck (only root and uid %d)", uid, os.Getuid())
	}
	if err != nil {
		// A refused peer learns nothing about the pfile.
		s.write(c, Response{Error: &RemoteError{Code: "denied", Message: fmt.Sprintf("%v: %v", ErrDenied, err)}})
		return
	}
	r := bufio.NewReader(c)
	for {
		c.SetReadDeadline(time.Now().Add(IdleTimeout))
		line, err := readLine(r, MaxRequest)
		if errors.Is(err, ErrTooLarge) {
			s.write(c, s.fail(fmt.Errorf("%w: more than %d bytes", ErrTooLarge, MaxRequest)))
			return
		}
		if err != nil {
			return // EOF, deadline or a closed server
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if !s.write(c, s.handle(line)) {
			return
		}
	}
}

// write sends one answer line within WriteTimeout.
func (s *Server) write(c net.Conn, resp Response) bool {
	b, err := json.Marshal(resp)
	if err != nil {
		b, _ = json.Marshal(s.fail(fmt.Errorf("encoding the answer: %w", err)))
	}
	c.SetWriteDeadline(time.Now().Add(WriteTimeout))
	_, err = c.Write(append(b, '\n'))
	return err == nil
}

// readLine reads one line of at most max bytes, without its newline. A
// longer line is ErrTooLarge; what was read of it is lost.
func readLine(r *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		n := len(line) + len(chunk)
		if err == nil {
			n-- // the newline
		}
		if n > max {
			return nil, ErrTooLarge
		}
		line = append(line, chunk...)
		switch {
		case err == nil:
			return line[:n], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(line) > 0:
			return line, nil // a last request without its newline
		default:
			return nil, err
		}
	}
}

// handle answers one request line. It is the whole protocol: serveConn
// only frames it.
func (s *Server) handle(line []byte) (resp Response) {
	// A request must never take pcheck down: a bug behind one command
	// becomes an error answer, and monitoring goes on.
	defer func() {
		if p := recover(); p != nil {
			resp = s.fail(fmt.Errorf("%w: internal error: %v", ErrFailed, p))
		}
	}()
	var req Request
	if err := json.Unmarshal(line, &req); err != nil {
		return s.fail(fmt.Errorf("%w: %w", ErrMalformed, err))
	}
	result, err := s.dispatch(req)
	if err != nil {
		return s.fail(err)
	}
	resp = s.ok()
	if result != nil {
		b, err := json.Marshal(result)
		if err != nil {
			return s.fail(fmt.Errorf("encoding the %s answer: %w", req.Command, err))
		}
		resp.Result = b
	}
	return resp
}

func (s *Server) ok() Response {
	f := s.target.Engine.File()
	return Response{OK: true, Pfile: f.Path, Facility: f.Params.SyslogFacility}
}

// fail is the answer for err, with the code of its sentinel.
func (s *Server) fail(err error) Response {
	resp := s.ok()
	resp.OK = false
	re := &RemoteError{Code: codeOf(err), Message: err.Error()}
	var inv *pfile.InvalidError
	if errors.As(err, &inv) {
		re.Message = fmt.Sprintf("pfile '%s' has %d error(s); the old rules stay", resp.Pfile, len(inv.Diagnostics))
		for _, d := range inv.Diagnostics {
			re.Details = append(re.Details, d.String())
		}
	}
	resp.Error = re
	return resp
}

// engineErrors maps the engine's errors to the protocol's.
var engineErrors = []struct{ from, to error }{
	{engine.ErrUnknownProcess, ErrUnknownProcess},
	{engine.ErrHealthy, ErrHealthy},
	{engine.ErrBusy, ErrBusy},
	{engine.ErrStopped, ErrStopped},
}

// tagged is an error with the protocol sentinel that gives its code; its
// text is the error's own.
type tagged struct{ err, code error }

func (t tagged) Error() string   { return t.err.Error() }
func (t tagged) Unwrap() []error { return []error{t.err, t.code} }

// fromEngine tags an engine error with its protocol sentinel.
func fromEngine(err error) error {
	if err == nil {
		return nil
	}
	for _, m := range engineErrors {
		if errors.Is(err, m.from) {
			return tagged{err, m.to}
		}
	}
	return err
}

func (s *Server) dispatch(req Request) (any, error) {
	t := s.target
	switch req.Command {
	case CmdInfo:
		return s.info(time.Now(), t.Engine.Snapshot()), nil
	case CmdStatus:
		return s.status(), nil
	case CmdRules:
		return s.rules()
	case CmdStop:
		return nil, fromEngine(t.Engine.Pause(req.Process))
	case CmdStart:
		return nil, fromEngine(t.Engine.Resume(req.Process))
	case CmdRestart:
		if req.Process == "" {
			return nil, fmt.Errorf("%w: restart needs a process", ErrBadArgument)
		}
		return nil, fromEngine(t.Engine.RestartNow(req.Process, req.Force))
	case CmdReload:
		if t.Reload == nil {
			return nil, fmt.Errorf("%w: reload is not available", ErrFailed)
		}
		if err := t.Reload(); err != nil {
			var inv *pfile.InvalidError
			if errors.As(err, &inv) {
				return nil, tagged{err, ErrInvalidPfile}
			}
			return nil, fmt.Errorf("%w: %w", ErrFailed, fromEngine(err))
		}
		return nil, nil
	case CmdReset:
		if err := t.Engine.Reset(req.Process); err != nil {
			return nil, fromEngine(err)
		}
		if req.Process != "" {
			return nil, nil
		}
		t.Recorder.Reset()
		if t.ResetReboots != nil {
			if err := t.ResetReboots(); err != nil {
				return nil, fmt.Errorf("%w: reboot count: %w", ErrFailed, err)
			}
		}
		return nil, nil
	case CmdDump:
		name := t.Engine.File().Params.DumpFileName
		if name == "" {
			return nil, ErrNoDumpFile
		}
		if err := t.Engine.DumpFile(); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrFailed, err)
		}
		return DumpResult{File: name}, nil
	case CmdEvents:
		return t.Recorder.Events().Newest(req.N), nil
	case CmdStats:
		return t.Recorder.Stats().Snapshot(), nil
	case CmdConfig:
		return s.config(req.Config)
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownCommand, req.Command)
}

func (s *Server) info(now time.Time, st engine.Status) InfoResult {
	res := InfoResult{
		Pfile:     st.Pfile,
		PfileAbs:  s.pfileAbs,
		Pid:       os.Getpid(),
		Started:   st.Started,
		Processes: len(st.Processes),
		States:    map[string]int{},
	}
	if !st.Started.IsZero() {
		res.UptimeSeconds = int64(now.Sub(st.Started) / time.Second)
	}
	for _, p := range st.Processes {
		res.States[p.State.String()]++
	}
	if s.target.Reboots != nil {
		if n, ok := s.target.Reboots(); ok {
			res.Reboots = &n
		}
	}
	return res
}

func (s *Server) status() StatusResult {
	now := time.Now()
	st := s.target.Engine.Snapshot()
	res := StatusResult{InfoResult: s.info(now, st), ProcessList: ProcessList(st, now), Monitors: []MonitorStatus{}}
	if s.target.Monitors != nil {
		if m := s.target.Monitors(); m != nil {
			res.Monitors = m
		}
	}
	return res
}

func (s *Server) rules() (RulesResult, error) {
	f := s.target.Engine.File()
	b, err := json.Marshal(f)
	if err != nil {
		return RulesResult{}, fmt.Errorf("%w: encoding the rules: %w", ErrFailed, err)
	}
	var text strings.Builder
	if err := pfile.WriteRules(&text, f); err != nil {
		return RulesResult{}, fmt.Errorf("%w: %w", ErrFailed, err)
	}
	return RulesResult{Rules: b, Text: text.String()}, nil
}

// The largest sizes padmin config may set: enough for any history an
// operator reads, small enough that a typo cannot exhaust memory.
const (
	MaxEvents        = 100000
	MaxBuckets       = 10000
	MaxBucketSeconds = 86400
)

func (s *Server) config(c *Config) (ConfigResult, error) {
	rec := s.target.Recorder
	if c != nil {
		if c.Events < 0 || c.Buckets < 0 || c.BucketSeconds < 0 {
			return ConfigResult{}, fmt.Errorf("%w: sizes must be positive", ErrBadArgument)
		}
		if c.Events > MaxEvents || c.Buckets > MaxBuckets {
			return ConfigResult{}, fmt.Errorf("%w: at most %d events and %d buckets", ErrBadArgument, MaxEvents, MaxBuckets)
		}
		if c.BucketSeconds != 0 && (c.BucketSeconds < 1 || c.BucketSeconds > MaxBucketSeconds) {
			return ConfigResult{}, fmt.Errorf("%w: a bucket is 1 to %d seconds", ErrBadArgument, MaxBucketSeconds)
		}
		if c.Events > 0 {
			rec.Events().Resize(c.Events)
		}
		if c.Buckets > 0 || c.BucketSeconds > 0 {
			n, size := rec.Stats().Config()
			if c.Buckets > 0 {
				n = c.Buckets
			}
			if c.BucketSeconds > 0 {
				size = time.Duration(c.BucketSeconds * float64(time.Second))
			}
			rec.Stats().Resize(n, size)
		}
	}
	n, size := rec.Stats().Config()
	return ConfigResult{Events: rec.Events().Size(), Buckets: n, BucketSeconds: size.Seconds()}, nil
}
