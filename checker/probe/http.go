package probe

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
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
}

// maxStatusLine bounds the status line read from a server.
const maxStatusLine = 512

// httpProber sends one HEAD request and reads one status line.
type httpProber struct {
	target  *target
	addr    string // host:port, IPv6 literals bracketed
	request []byte
	tls     *TLSOptions // nil for plain HTTP
	host    string
}

// HTTP returns the _bi_webserv probe: connect to host:port, send
// "HEAD / HTTP/1.0" and read one status line. Any well-formed status line is
// a success, 500 included: the server answered. A host name is resolved at
// most every 30 s (resolveTTL).
func HTTP(host string, port int) Prober {
	return newHTTP(host, port, "/", nil)
}

// HTTPS returns the _bi_webservs probe: HTTP over TLS, HEAD on path. The
// handshake is bounded by the attempt's deadline.
func HTTPS(host string, port int, path string, opts TLSOptions) Prober {
	return newHTTP(host, port, path, &opts)
}

func newHTTP(host string, port int, path string, opts *TLSOptions) *httpProber {
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	req := fmt.Sprintf("HEAD %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: pcheck/%s (stall monitor)\r\nConnection: close\r\n\r\n",
		escapePath(path), addr, Version)
	return &httpProber{target: newTarget(host, port), addr: addr, request: []byte(req), tls: opts, host: host}
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
func (p *httpProber) Run(ctx context.Context) Result {
	start := time.Now()
	if p.tls != nil {
		return p.runTLS(ctx, start)
	}
	conn, err := p.target.dial(ctx)
	if err != nil {
		return failure(ctx, start, err)
	}
	defer conn.Close()
	if _, err := conn.Write(p.request); err != nil {
		return failure(ctx, start, err)
	}
	// The reply is seldom there the moment the request has gone: wait
	// before the first read rather than pay for a read that finds nothing.
	if _, err := conn.wait(unix.POLLIN); err != nil {
		return failure(ctx, start, err)
	}
	return p.reply(ctx, start, conn)
}

// runTLS performs one attempt over TLS, through a net.Conn. A CA file that
// cannot be used makes the attempt Unknown before anything is sent.
func (p *httpProber) runTLS(ctx context.Context, start time.Time) Result {
	cfg, err := p.tlsConfig()
	if err != nil {
		return failure(ctx, start, broken(err))
	}
	raw, err := dialer.DialContext(ctx, "tcp", p.addr)
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
	if _, err := tc.Write(p.request); err != nil {
		return failure(ctx, start, err)
	}
	return p.reply(ctx, start, tc)
}

// reply reads the status line of the reply from conn.
func (p *httpProber) reply(ctx context.Context, start time.Time, conn io.Reader) Result {
	line, err := readStatusLine(conn)
	if err != nil {
		return failure(ctx, start, fmt.Errorf("status line from %s: %w", p.addr, err))
	}
	return success(start, line)
}

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
		if i := bytes.IndexByte(buf[n-m:n], '\n'); i >= 0 {
			line := bytes.TrimSuffix(buf[:n-m+i], []byte("\r"))
			if !isStatusLine(line) {
				return "", fmt.Errorf("%w: %q", ErrBadStatusLine, clip(string(line)))
			}
			return string(line), nil
		}
		if !canStartStatusLine(buf[:n]) {
			return "", fmt.Errorf("%w: %q", ErrBadStatusLine, clip(string(buf[:n])))
		}
		if n == len(buf) {
			return "", fmt.Errorf("%w: no line feed in the first %d bytes", ErrBadStatusLine, len(buf))
		}
		if err == io.EOF {
			return "", fmt.Errorf("connection closed after %d bytes: %w", n, io.ErrUnexpectedEOF)
		}
		if err != nil {
			return "", err
		}
	}
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
