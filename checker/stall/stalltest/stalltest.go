// Package stalltest is the monitored web service of the stall monitor tests
// (checker/stall and the pcheck end-to-end tests): a test binary
// re-executes itself as the service, which serves HTTP or HTTPS (with a
// self-signed certificate) on a loopback port, answers every request with
// a fixed status and appends "METHOD PATH" to a request log, so that a test
// can wait for attempts to have happened instead of sleeping.
//
// A test binary calls Serve at the very start of TestMain (or in an init
// function); it returns at once unless the environment names a role.
package stalltest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The environment of the service.
const (
	// RoleEnv is "http" or "https"; empty, Serve returns.
	RoleEnv = "PCHECK_STALLTEST_ROLE"
	// PortEnv is the loopback port to serve on.
	PortEnv = "PCHECK_STALLTEST_PORT"
	// StatusEnv is the HTTP status of every answer (default 200).
	StatusEnv = "PCHECK_STALLTEST_STATUS"
	// LogEnv is the request log (no log when empty).
	LogEnv = "PCHECK_STALLTEST_LOG"
	// CertEnv, for https, is where the service writes its self-signed
	// certificate (PEM) once it listens, for a TLSCAFile (none when empty).
	CertEnv = "PCHECK_STALLTEST_CERT"
	// DelayEnv is how long the service takes to answer a request it has
	// logged (a time.Duration; none when empty): the window in which a
	// test sees an attempt in flight.
	DelayEnv = "PCHECK_STALLTEST_DELAY"
	// ValidEnv is how long the https certificate is valid (a
	// time.Duration; 24 hours when empty).
	ValidEnv = "PCHECK_STALLTEST_VALID"
)

// Service describes one service for Env and Script.
type Service struct {
	Role   string // "http" or "https"
	Port   int
	Status int           // 0 is 200
	Log    string        // request log path
	Cert   string        // https: where to write the certificate (CertEnv)
	Delay  time.Duration // time from logging a request to answering it (DelayEnv)
	// ValidFor is how long the https certificate stays valid from the
	// service's start (ValidEnv); 0 is 24 hours.
	ValidFor time.Duration
}

// Env returns the service's environment as NAME=value strings.
func (s Service) Env() []string {
	status := s.Status
	if status == 0 {
		status = http.StatusOK
	}
	return []string{
		RoleEnv + "=" + s.Role,
		PortEnv + "=" + strconv.Itoa(s.Port),
		StatusEnv + "=" + strconv.Itoa(status),
		LogEnv + "=" + s.Log,
		CertEnv + "=" + s.Cert,
		DelayEnv + "=" + s.Delay.String(),
		ValidEnv + "=" + s.ValidFor.String(),
	}
}

// Script returns a shell command that starts bin as the service in the
// background with argv [bin, "service", tag]: the body of a restart script.
func (s Service) Script(bin, tag string) string {
	return fmt.Sprintf("%s '%s' service '%s' </dev/null >/dev/null 2>&1 &", strings.Join(s.Env(), " "), bin, tag)
}

// Serve runs the service when RoleEnv is set, and never returns then; it
// returns at once otherwise.
func Serve() {
	role := os.Getenv(RoleEnv)
	if role == "" {
		return
	}
	if err := serve(role); err != nil {
		fmt.Fprintln(os.Stderr, "stalltest:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func serve(role string) error {
	syscall.Setsid() // a daemon of its own, as the engine expects
	port, err := strconv.Atoi(os.Getenv(PortEnv))
	if err != nil {
		return fmt.Errorf("%s: %w", PortEnv, err)
	}
	status := http.StatusOK
	if s := os.Getenv(StatusEnv); s != "" {
		if status, err = strconv.Atoi(s); err != nil {
			return fmt.Errorf("%s: %w", StatusEnv, err)
		}
	}
	l, err := listen(port)
	if err != nil {
		return err
	}
	if role == "https" {
		valid := 24 * time.Hour
		if v, err := time.ParseDuration(os.Getenv(ValidEnv)); err == nil && v > 0 {
			valid = v
		}
		cert, err := selfSigned(valid)
		if err != nil {
			return err
		}
		if p := os.Getenv(CertEnv); p != "" {
			if err := writeCert(p, cert); err != nil {
				return err
			}
		}
		l = tls.NewListener(l, &tls.Config{Certificates: []tls.Certificate{cert}})
	} else if role != "http" {
		return fmt.Errorf("unknown role %q", role)
	}
	var delay time.Duration
	if s := os.Getenv(DelayEnv); s != "" {
		if delay, err = time.ParseDuration(s); err != nil {
			return fmt.Errorf("%s: %w", DelayEnv, err)
		}
	}
	var logf *os.File
	if p := os.Getenv(LogEnv); p != "" {
		if logf, err = os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err != nil {
			return err
		}
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if logf != nil {
			logf.WriteString(r.Method + " " + r.URL.Path + "\n")
		}
		time.Sleep(delay)
		w.WriteHeader(status)
	})
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	srv.SetKeepAlivesEnabled(false)
	return srv.Serve(l)
}

// listen binds 127.0.0.1:port, waiting a little for a killed predecessor
// to let go of it.
func listen(port int) (net.Listener, error) {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(10 * time.Second)
	for {
		l, err := net.Listen("tcp4", addr)
		if err == nil || !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
			return l, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// selfSigned makes a certificate for 127.0.0.1 and localhost, valid for
// valid from now.
func selfSigned(valid time.Duration) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "pcheck stall test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(valid),
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// writeCert writes cert's certificate to path as PEM, by rename so that a
// reader never sees half of it.
func writeCert(path string, cert tls.Certificate) error {
	tmp := path + ".tmp"
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Requests returns the lines of a request log ("HEAD /", ...).
func Requests(log string) []string {
	b, _ := os.ReadFile(log)
	s := strings.TrimSpace(string(b))
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// Count returns how many lines of a request log are line.
func Count(log, line string) int {
	n := 0
	for _, l := range Requests(log) {
		if l == line {
			n++
		}
	}
	return n
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
