package probe

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The test binary re-executes itself as a helper process when these
// variables are set: PROBE_TEST_HELPER names the role, PROBE_TEST_ADDR the
// address to listen on.
const (
	helperEnv     = "PROBE_TEST_HELPER"
	helperAddrEnv = "PROBE_TEST_ADDR"
)

func TestMain(m *testing.M) {
	if role := os.Getenv(helperEnv); role != "" {
		runHelper(role, os.Getenv(helperAddrEnv))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runHelper is the body of a helper process. It prints "ready <port>" once
// listening and exits when its stdin reaches EOF.
//
//	http:   an HTTP server answering 200 to everything
//	listen: a bare listener; the stdin line "close" closes it and the
//	        helper answers "closed"
//	exhausted: no listener; runs probes against addr with its
//	        descriptors exhausted (runExhausted)
func runHelper(role, addr string) {
	if role == exhaustedRole {
		runExhausted(addr)
		return
	}
	network := "tcp4"
	if strings.HasPrefix(addr, "[") {
		network = "tcp6"
	}
	l, err := net.Listen(network, addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(1)
	}
	fmt.Printf("ready %d\n", l.Addr().(*net.TCPAddr).Port)
	switch role {
	case "http":
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			os.Exit(0)
		}()
		_ = http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	case "listen":
		in := bufio.NewScanner(os.Stdin)
		for in.Scan() {
			if in.Text() == "close" {
				l.Close()
				fmt.Println("closed")
			}
		}
	default:
		fmt.Fprintln(os.Stderr, "helper: unknown role", role)
		os.Exit(1)
	}
}

// helper is a running helper process.
type helper struct {
	cmd   *exec.Cmd
	port  int
	stdin io.WriteCloser
	out   *os.File
	lines *bufio.Reader
}

// startHelper starts the test binary as a helper process and waits for it
// to listen. It is killed and reaped when the test ends.
func startHelper(t testing.TB, role, addr string) *helper {
	t.Helper()
	return startHelperWith(t, role, addr, nil)
}

// startHelperWith is startHelper with the child's SysProcAttr (a network
// namespace of its own).
func startHelperWith(t testing.TB, role, addr string, attr *syscall.SysProcAttr) *helper {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.SysProcAttr = attr
	cmd.Env = append(os.Environ(), helperEnv+"="+role, helperAddrEnv+"="+addr)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &helper{cmd: cmd, stdin: stdin, out: stdout.(*os.File)}
	h.lines = bufio.NewReader(h.out)
	t.Cleanup(func() {
		stdin.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	line := h.readLine(t)
	port, err := strconv.Atoi(strings.TrimPrefix(line, "ready "))
	if err != nil {
		t.Fatalf("helper %s: bad first line %q", role, line)
	}
	h.port = port
	return h
}

// readLine reads one line from the helper, failing the test after a
// deadline.
func (h *helper) readLine(t testing.TB) string {
	t.Helper()
	if err := h.out.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	line, err := h.lines.ReadString('\n')
	if err != nil {
		t.Fatalf("helper: %v", err)
	}
	return strings.TrimSuffix(line, "\n")
}

// pid returns the helper's pid.
func (h *helper) pid() int { return h.cmd.Process.Pid }

// rawServer accepts connections on addr and hands each to handle in its own
// goroutine; it is closed, and its goroutines awaited, when the test ends.
func rawServer(tb testing.TB, addr string, handle func(net.Conn)) (port int) {
	tb.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				handle(c)
			}()
		}
	}()
	tb.Cleanup(func() {
		l.Close()
		wg.Wait()
	})
	return l.Addr().(*net.TCPAddr).Port
}

// readRequest reads an HTTP request head (up to the blank line).
func readRequest(c net.Conn) (string, error) {
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	var b strings.Builder
	for {
		line, err := r.ReadString('\n')
		b.WriteString(line)
		if err != nil {
			return b.String(), err
		}
		if line == "\r\n" {
			return b.String(), nil
		}
	}
}

// closedPort returns a loopback port that nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// withTimeout returns a context that expires after d.
func withTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// selfSigned writes a self-signed certificate for localhost, 127.0.0.1 and
// ::1 to dir and returns it with the path of its PEM file.
func selfSigned(t testing.TB, dir string) (tls.Certificate, string) {
	t.Helper()
	return certUntil(t, dir, time.Now().Add(time.Hour))
}

// certUntil is selfSigned with a certificate valid until notAfter.
func certUntil(t testing.TB, dir string, notAfter time.Time) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "pcheck probe test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, path
}
