package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"
)

// DefaultTimeout bounds one request of a Client, answer included.
const DefaultTimeout = 30 * time.Second

// ErrNotServed: no pcheck answers for that pfile (no socket, or a socket
// left by a pcheck that is gone).
var ErrNotServed = errors.New("no pcheck serves it")

// ErrAmbiguous: a short name (a pfile's file name or stem, a process's
// base name) fits more than one.
var ErrAmbiguous = errors.New("ambiguous name")

// Client is a connection to one control socket. It is not safe for
// concurrent use: open one per goroutine.
type Client struct {
	conn    *net.UnixConn
	dec     *json.Decoder
	path    string
	timeout time.Duration
}

// Dial connects to the control socket at path; timeout bounds every
// request (DefaultTimeout when <= 0). A missing socket or one nobody
// listens on is ErrNotServed; a socket we may not open is ErrDenied.
func Dial(path string, timeout time.Duration) (*Client, error) {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	d := net.Dialer{Timeout: timeout}
	c, err := d.Dial("unix", path)
	if err != nil {
		switch {
		case errors.Is(err, os.ErrNotExist), errors.Is(err, syscall.ECONNREFUSED):
			return nil, fmt.Errorf("control socket %s: %w", path, ErrNotServed)
		case errors.Is(err, os.ErrPermission):
			return nil, fmt.Errorf("control socket %s: %w (%w)", path, ErrDenied, err)
		}
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	uc := c.(*net.UnixConn)
	return &Client{conn: uc, dec: json.NewDecoder(uc), path: path, timeout: timeout}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Do sends req and returns the answer. A refused request is a
// *RemoteError (errors.Is finds its sentinel), returned with the answer.
func (c *Client) Do(req Request) (Response, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return Response{}, fmt.Errorf("%s request: %w", req.Command, err)
	}
	c.conn.SetDeadline(time.Now().Add(c.timeout))
	var resp Response
	if _, err := c.conn.Write(append(b, '\n')); err != nil {
		// A server that refuses a peer answers at once and hangs up,
		// maybe before our request: its answer may still be there.
		if c.dec.Decode(&resp) == nil && resp.Error != nil {
			return resp, resp.Error
		}
		return Response{}, fmt.Errorf("control socket %s: sending %s: %w", c.path, req.Command, err)
	}
	if err := c.dec.Decode(&resp); err != nil {
		return Response{}, fmt.Errorf("control socket %s: reading the %s answer: %w", c.path, req.Command, err)
	}
	if !resp.OK {
		if resp.Error == nil {
			resp.Error = &RemoteError{Code: "failed", Message: "refused without a reason"}
		}
		return resp, resp.Error
	}
	return resp, nil
}

// Call sends req and decodes the answer's result into result (nil: ignore
// it).
func (c *Client) Call(req Request, result any) (Response, error) {
	resp, err := c.Do(req)
	if err != nil || result == nil || len(resp.Result) == 0 {
		return resp, err
	}
	if err := json.Unmarshal(resp.Result, result); err != nil {
		return resp, fmt.Errorf("control socket %s: decoding the %s answer: %w", c.path, req.Command, err)
	}
	return resp, nil
}

// Served is a pfile that a pcheck serves: its socket and who answers.
type Served struct {
	Socket   string
	Facility string
	Info     InfoResult
}

// Query opens the socket, asks who serves it, and closes it.
func Query(socket string, timeout time.Duration) (Served, error) {
	c, err := Dial(socket, timeout)
	if err != nil {
		return Served{}, err
	}
	defer c.Close()
	var info InfoResult
	resp, err := c.Call(Request{Command: CmdInfo}, &info)
	if err != nil {
		return Served{}, err
	}
	return Served{Socket: socket, Facility: resp.Facility, Info: info}, nil
}

// Sockets returns the control sockets in runDir, in name order. A missing
// run directory is an error wrapping ErrNotServed that says so.
func Sockets(runDir string) ([]string, error) {
	ents, err := os.ReadDir(runDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: run directory %s does not exist (padmin --run-dir or PCHECK_RUN_DIR names the one pcheck --run-dir uses)", ErrNotServed, runDir)
	}
	if err != nil {
		return nil, fmt.Errorf("run directory: %w", err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".sock") && e.Type()&os.ModeSocket != 0 {
			out = append(out, filepath.Join(runDir, e.Name()))
		}
	}
	sort.Strings(out)
	return out, nil
}

// List asks every socket in runDir who serves it, ordered by pfile.
// Sockets nobody answers are skipped; errs holds the other failures (a
// socket we may not open, a pcheck that does not answer in time).
func List(runDir string, timeout time.Duration) (served []Served, errs []error) {
	socks, err := Sockets(runDir)
	if err != nil {
		return nil, []error{err}
	}
	for _, s := range socks {
		sv, err := Query(s, timeout)
		switch {
		case errors.Is(err, ErrNotServed):
		case err != nil:
			errs = append(errs, err)
		default:
			served = append(served, sv)
		}
	}
	sort.Slice(served, func(i, j int) bool { return served[i].Info.Pfile < served[j].Info.Pfile })
	return served, errs
}

// Lookup finds the pcheck serving pfile in runDir. pfile is matched
// against the paths pcheck serves as given to it and made absolute: the
// socket named after pfile is tried first, then every socket. A pfile
// without a slash also matches the file name (apache.pfile) or the stem
// (apache, as the unit pcheck@apache names /etc/pcheck/apache.pfile) of
// every pfile served: one that fits several, by path or short name, is
// ErrAmbiguous, and a short name is refused while a socket does not
// answer (it may be the one that fits too). It is ErrNotServed when none
// matches.
func Lookup(runDir, pfile string, timeout time.Duration) (Served, error) {
	abs, err := filepath.Abs(pfile)
	if err != nil {
		abs = pfile
	}
	match := func(sv Served) bool {
		return sv.Info.Pfile == pfile || sv.Info.PfileAbs == abs || sv.Info.Pfile == abs
	}
	bare := !strings.Contains(pfile, "/")
	direct := SocketPath(runDir, pfile)
	directSv, err := Query(direct, timeout)
	if err == nil && match(directSv) && !bare {
		return directSv, nil
	}
	if err != nil && !errors.Is(err, ErrNotServed) {
		return Served{}, err
	}
	directOK := err == nil
	socks, err := Sockets(runDir)
	if err != nil {
		return Served{}, err
	}
	var firstErr error
	var firstSock string // whose pcheck firstErr is
	var fits []Served    // by path, then (bare names only) by short name
	short := false
	for _, s := range socks {
		sv, err := directSv, error(nil)
		if s != direct || !directOK {
			sv, err = Query(s, timeout)
		}
		if err != nil {
			if !errors.Is(err, ErrNotServed) && firstErr == nil {
				firstErr, firstSock = err, s
			}
			continue
		}
		switch {
		case match(sv) && !bare:
			return sv, nil
		case match(sv):
			fits = append(fits, sv)
		case bare && slices.Contains(ShortNames(sv.Info.PfileAbs), pfile):
			fits = append(fits, sv)
			short = true
		}
	}
	switch {
	case len(fits) > 1:
		paths := make([]string, len(fits))
		for i, sv := range fits {
			paths[i] = sv.Info.PfileAbs
		}
		sort.Strings(paths)
		return Served{}, fmt.Errorf("pfile %s: %w: it names %s; give the path", pfile, ErrAmbiguous, strings.Join(paths, ", "))
	case len(fits) == 1 && short && firstErr != nil:
		// The pcheck that did not answer may serve a pfile of that
		// name too.
		return Served{}, fmt.Errorf("pfile %s: the pcheck on %s did not answer (%w); name the pfile by its path", pfile, firstSock, firstErr)
	case len(fits) == 1:
		return fits[0], nil
	case firstErr != nil:
		// A socket we could not ask may be the one: say why.
		return Served{}, fmt.Errorf("pfile %s: not among the sockets that answered: %w", pfile, firstErr)
	}
	return Served{}, fmt.Errorf("pfile %s: %w (run directory %s)", pfile, ErrNotServed, runDir)
}

// ShortNames returns the names padmin accepts for the pfile at path
// besides the path: its file name and its stem (the file name without its
// extension), once each.
func ShortNames(path string) []string {
	base := filepath.Base(path)
	stem := strings.TrimSuffix(base, filepath.Ext(base))
	if stem == base || stem == "" {
		return []string{base}
	}
	return []string{base, stem}
}
