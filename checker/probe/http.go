package probe

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"time"

	"github.com/pcheck/pcheck/pfile"
)

// Version is the pcheck version sent in the User-Agent of HTTP probes. The
// main program sets it before building probers.
var Version = "dev"

// TLSOptions configure the TLS side of an HTTPS probe.
type TLSOptions struct {
	// Verify turns certificate verification on. Off, any certificate is
	// accepted: the probe checks liveness, not identity.
	Verify bool
	// CAFile, with Verify, names a PEM file holding the only roots
	// trusted; empty means the system roots.
	CAFile string
	// ServerName is sent as SNI and verified against the certificate;
	// empty means the probed host. SNI is never sent for an IP literal.
	ServerName string
	// ExpiryFailDays, when positive, fails an attempt whose server
	// certificate has fewer whole days left (DaysLeft) at the handshake
	// (TLSExpiryFail), whether or not it is verified.
	ExpiryFailDays int
}

// Expect is what an HTTP probe asks of the answer beyond a status line:
// the block options ExpectStatus, ExpectHeader and ExpectBody. The zero
// Expect asks nothing, and any status line is a success.
type Expect struct {
	// Status lists the status codes accepted; empty accepts any.
	Status []pfile.StatusRange
	// Headers must each be matched by a header of the answer.
	Headers []HeaderMatch
	// Body, when set, makes the probe send GET instead of HEAD and match
	// the first maxBody bytes of the body.
	Body *regexp.Regexp
}

// HeaderMatch is one expected header: Name (any case) with a value that
// Value matches; nil Value asks only that the header be present.
type HeaderMatch struct {
	Name  string
	Value *regexp.Regexp
}

// none reports whether e asks nothing of the answer.
func (e *Expect) none() bool { return len(e.Status) == 0 && len(e.Headers) == 0 && e.Body == nil }

// maxStatusLine bounds the status line read from a server.
const maxStatusLine = 512

// maxHeader and maxBody bound what an attempt with expectations reads of
// the answer: its status line and headers, then its body (ExpectBody).
const (
	maxHeader = 64 << 10
	maxBody   = 64 << 10
)

// httpProber sends one HEAD request and reads one status line, or with
// expectations the answer's headers and, for ExpectBody, a GET's body.
// Plain HTTP runs on the event loop (Start); over TLS it is an httpsProber.
type httpProber struct {
	target  *target
	addr    string // host:port, IPv6 literals bracketed
	method  string // HEAD, or GET for ExpectBody
	request []byte
	tls     *TLSOptions // nil for plain HTTP
	host    string
	expect  Expect
	// line is the last status line seen, kept so that the same line
	// again costs no allocation; the loop goroutine's.
	line string
}

// httpsProber is an HTTP probe over TLS: crypto/tls needs a net.Conn, so
// it runs on the caller's goroutine.
type httpsProber struct{ p *httpProber }

// HTTP returns the _bi_webserv probe: connect to host:port, send
// "HEAD / HTTP/1.0" and read one status line. Any well-formed status line is
// a success, 500 included: the server answered. A host name is resolved
// now and then in the background every 30 s (resolveTTL), never by an
// attempt.
func HTTP(host string, port int) Prober {
	return HTTPExpect(host, port, "/", nil, Expect{})
}

// HTTPS returns the _bi_webservs probe: HTTP over TLS, HEAD on path. The
// handshake is bounded by the attempt's deadline.
func HTTPS(host string, port int, path string, opts TLSOptions) Prober {
	return HTTPExpect(host, port, path, &opts, Expect{})
}

// HTTPExpect returns an HTTP probe whose answer must meet e: the
// _bi_webserv probe when opts is nil, else the _bi_webservs one. An answer
// that does not is a failed attempt whose Err (ErrUnexpectedReply) and
// Detail show the status line and what did not match.
func HTTPExpect(host string, port int, path string, opts *TLSOptions, e Expect) Prober {
	if opts != nil {
		return &httpsProber{p: newHTTP(host, port, path, opts, e)}
	}
	_, _ = theLoop()
	return newHTTP(host, port, path, nil, e)
}

func newHTTP(host string, port int, path string, opts *TLSOptions, e Expect) *httpProber {
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	method := http.MethodHead
	if e.Body != nil {
		method = http.MethodGet
	}
	req := fmt.Sprintf("%s %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: pcheck/%s (stall monitor)\r\nConnection: close\r\n\r\n",
		method, escapePath(path), addr, Version)
	return &httpProber{target: newTarget(host, port), addr: addr, method: method, request: []byte(req), tls: opts, host: host, expect: e}
}

// escapePath makes path a valid request target: it starts with "/" and
// bytes that may not appear in one (controls, space, non-ASCII) are
// percent-encoded.
func escapePath(path string) string {
	const hex = "0123456789ABCDEF"
	b := make([]byte, 0, len(path)+1)
	if len(path) == 0 || path[0] != '/' {
		b = append(b, '/')
	}
	for i := 0; i < len(path); i++ {
		c := path[i]
		if c <= ' ' || c >= 0x7f {
			b = append(b, '%', hex[c>>4], hex[c&15])
			continue
		}
		b = append(b, c)
	}
	return string(b)
}

// Run performs one attempt.
func (p *httpProber) Run(ctx context.Context) Result { return runOnLoop(ctx, p) }

// Start begins one attempt on the event loop.
func (p *httpProber) Start(deadline time.Time, done Completion) Handle {
	return startOnLoop(p.target, p, deadline, done)
}

// Run performs one attempt.
func (p *httpsProber) Run(ctx context.Context) Result { return p.p.runTLS(ctx, time.Now()) }

// statusError is the error of an attempt whose status line could not be
// read.
func (p *httpProber) statusError(err error) error {
	return fmt.Errorf("status line from %s: %w", p.addr, err)
}

// lineText returns line as a string, the one of the previous attempt when
// it is the same.
func (p *httpProber) lineText(line []byte) string {
	if string(line) != p.line {
		p.line = string(line)
	}
	return p.line
}

// runTLS performs one attempt over TLS, through a net.Conn. A CA file that
// cannot be used makes the attempt Unknown before anything is sent.
func (p *httpProber) runTLS(ctx context.Context, start time.Time) Result {
	cfg, err := p.tlsConfig()
	if err != nil {
		return failure(ctx, start, broken(err))
	}
	raw, err := p.target.dialConn(ctx)
	if err != nil {
		return failure(ctx, start, err)
	}
	defer raw.Close()
	release := bindDeadline(ctx, raw)
	defer release()

	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return failure(ctx, start, fmt.Errorf("TLS handshake with %s: %w", p.addr, err))
	}
	var notAfter time.Time
	if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 {
		notAfter = certs[0].NotAfter
	}
	r := p.exchange(ctx, start, tc, notAfter)
	r.NotAfter = notAfter
	return r
}

// exchange sends the request over an established TLS connection and reads
// the reply, unless the certificate ends too soon for TLSExpiryFail.
func (p *httpProber) exchange(ctx context.Context, start time.Time, tc *tls.Conn, notAfter time.Time) Result {
	if p.tls.ExpiryFailDays > 0 && !notAfter.IsZero() {
		if days := DaysLeft(notAfter, time.Now()); days < p.tls.ExpiryFailDays {
			return failure(ctx, start, fmt.Errorf("%w: %d days left (not after %s), fewer than %d",
				ErrCertExpiring, days, notAfter.UTC().Format(time.RFC3339), p.tls.ExpiryFailDays))
		}
	}
	if _, err := tc.Write(p.request); err != nil {
		return failure(ctx, start, err)
	}
	return p.reply(ctx, start, tc)
}

// reply reads the status line of the reply from conn, or with
// expectations the answer they need.
func (p *httpProber) reply(ctx context.Context, start time.Time, conn io.Reader) Result {
	if !p.expect.none() {
		return p.check(ctx, start, conn)
	}
	line, err := readStatusLine(conn)
	if err != nil {
		return failure(ctx, start, p.statusError(err))
	}
	return success(start, line)
}

// check reads the answer (at most maxHeader+maxBody bytes of it) and
// matches it against the expectations: status, then headers, then body.
func (p *httpProber) check(ctx context.Context, start time.Time, conn io.Reader) Result {
	br := bufio.NewReader(io.LimitReader(conn, maxHeader+maxBody))
	// Fail at once on a reply that cannot be HTTP, as readStatusLine does.
	if b, err := br.Peek(len("HTTP/")); err == nil && !canStartStatusLine(b) {
		return failure(ctx, start, fmt.Errorf("status line from %s: %w: %q", p.addr, ErrBadStatusLine, clip(string(b))))
	}
	resp, err := http.ReadResponse(br, &http.Request{Method: p.method})
	if err != nil {
		return failure(ctx, start, fmt.Errorf("reply from %s: %w", p.addr, err))
	}
	defer resp.Body.Close()
	line := resp.Proto + " " + resp.Status
	e := &p.expect
	if len(e.Status) > 0 && !statusIn(resp.StatusCode, e.Status) {
		return failure(ctx, start, mismatch(line, "status not in "+pfile.FormatStatusRanges(e.Status)))
	}
	for _, h := range e.Headers {
		values := resp.Header.Values(h.Name)
		if len(values) == 0 {
			return failure(ctx, start, mismatch(line, "no header "+h.Name))
		}
		if h.Value != nil && !anyMatch(h.Value, values) {
			return failure(ctx, start, mismatch(line, fmt.Sprintf("header %s %q does not match %q", h.Name, values[0], h.Value)))
		}
	}
	if e.Body != nil {
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
		if err != nil {
			return failure(ctx, start, fmt.Errorf("body from %s: %w", p.addr, err))
		}
		if !e.Body.Match(body) {
			return failure(ctx, start, mismatch(line, fmt.Sprintf("body does not match %q: %q", e.Body, clip(string(body)))))
		}
	}
	return success(start, line)
}

// statusIn reports whether code is in one of the ranges.
func statusIn(code int, ranges []pfile.StatusRange) bool {
	for _, r := range ranges {
		if r.Lo <= code && code <= r.Hi {
			return true
		}
	}
	return false
}

// anyMatch reports whether re matches one of the values.
func anyMatch(re *regexp.Regexp, values []string) bool {
	for _, v := range values {
		if re.MatchString(v) {
			return true
		}
	}
	return false
}

// mismatchError is an answer that does not meet the expectations: its
// status line and what did not match. It wraps ErrUnexpectedReply.
type mismatchError struct{ text string }

func (e *mismatchError) Error() string { return e.text }
func (e *mismatchError) Unwrap() error { return ErrUnexpectedReply }

// mismatch builds the error of an answer with status line line that does
// not meet an expectation, why.
func mismatch(line, why string) error { return &mismatchError{text: line + ": " + why} }

// tlsConfig builds the client configuration of one attempt. The CA file is
// read each time so that a renewed file is picked up; while it cannot be
// read or holds no certificate the attempts are Unknown (pcheck cannot
// verify, which says nothing of the server), never verified against an
// older copy that a renewed server certificate would fail.
func (p *httpProber) tlsConfig() (*tls.Config, error) {
	cfg := &tls.Config{ServerName: p.tls.ServerName}
	if cfg.ServerName == "" {
		cfg.ServerName = p.host
	}
	if !p.tls.Verify {
		// A liveness probe must not call a healthy legacy server stalled
		// because it only speaks old protocol versions or ciphers.
		cfg.InsecureSkipVerify = true
		cfg.MinVersion = tls.VersionTLS10
		for _, s := range tls.CipherSuites() {
			cfg.CipherSuites = append(cfg.CipherSuites, s.ID)
		}
		for _, s := range tls.InsecureCipherSuites() {
			cfg.CipherSuites = append(cfg.CipherSuites, s.ID)
		}
		return cfg, nil
	}
	if p.tls.CAFile != "" {
		pem, err := os.ReadFile(p.tls.CAFile)
		if err != nil {
			return nil, fmt.Errorf("TLSCAFile: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("TLSCAFile %s: %w", p.tls.CAFile, errNoCertificate)
		}
	}
	return cfg, nil
}

// errNoCertificate reports a CA file without a PEM certificate.
var errNoCertificate = errors.New("no PEM certificate found")

// readStatusLine reads up to the first line feed and checks that the line is
// an HTTP status line. It gives up as soon as the reply cannot be one, so a
// server answering garbage fails at once rather than at the deadline.
func readStatusLine(r io.Reader) (string, error) {
	var buf [maxStatusLine]byte
	n := 0
	for {
		m, err := r.Read(buf[n:])
		n += m
		line, serr := statusLine(buf[:n], err == io.EOF)
		if serr != errMore {
			return string(line), serr
		}
		if err != nil {
			return "", err
		}
	}
}

// statusLine returns the status line at the start of b, the reply received
// so far (all of it when eof), without its line ending, or errMore while
// more of the reply is needed. It gives up as soon as the reply cannot be
// a status line, or holds no line feed in its first maxStatusLine bytes.
func statusLine(b []byte, eof bool) ([]byte, error) {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		line := bytes.TrimSuffix(b[:i], []byte("\r"))
		if !isStatusLine(line) {
			return nil, fmt.Errorf("%w: %q", ErrBadStatusLine, clip(string(line)))
		}
		return line, nil
	}
	if !canStartStatusLine(b) {
		return nil, fmt.Errorf("%w: %q", ErrBadStatusLine, clip(string(b)))
	}
	if len(b) >= maxStatusLine {
		return nil, fmt.Errorf("%w: no line feed in the first %d bytes", ErrBadStatusLine, maxStatusLine)
	}
	if eof {
		return nil, fmt.Errorf("connection closed after %d bytes: %w", len(b), io.ErrUnexpectedEOF)
	}
	return nil, errMore
}

// canStartStatusLine reports whether b could be the beginning of a status
// line: it agrees with "HTTP/" so far.
func canStartStatusLine(b []byte) bool {
	const prefix = "HTTP/"
	if len(b) < len(prefix) {
		return prefix[:len(b)] == string(b)
	}
	return string(b[:len(prefix)]) == prefix
}

// isStatusLine reports whether line (without its line ending) is
// "HTTP/<digit>.<digit> <3 digits>" optionally followed by " <reason>".
func isStatusLine(line []byte) bool {
	if len(line) < 12 || string(line[:5]) != "HTTP/" {
		return false
	}
	digit := func(c byte) bool { return '0' <= c && c <= '9' }
	if !digit(line[5]) || line[6] != '.' || !digit(line[7]) || line[8] != ' ' {
		return false
	}
	if !digit(line[9]) || !digit(line[10]) || !digit(line[11]) {
		return false
	}
	return len(line) == 12 || line[12] == ' '
}
