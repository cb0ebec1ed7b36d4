package templates

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"syscall"
	"time"
)

// The test binary, copied under a product's name (apache2, nginx, java,
// webservd), plays that product for the restart scripts. Its role and
// settings come from the environment, which the scripts pass on:
//
//	FAKE_ROLE     launch: the daemon's start command ("apache2 -k start",
//	              "nginx -c conf", "nginx -t" tests the configuration);
//	              it starts a master in a new session and returns.
//	              Masters and workers keep the command line they were
//	              started with, as forked processes do.
//	              master: writes FAKE_PIDFILE, listens on FAKE_ADDR, starts
//	              FAKE_WORKERS workers in its process group that hold the
//	              listening socket (as httpd's workers do) and serves HTTP
//	              (HTTPS with FAKE_TLS=1) until killed.
//	              worker, other: wait until killed.
//	FAKE_FAIL=1   the start command fails.
//	FAKE_DEAF=1   the master runs but never listens.
const roleEnv = "FAKE_ROLE"

// fakeMain runs the role named in the environment and exits.
func fakeMain(role string) {
	switch role {
	case "launch":
		os.Exit(launch())
	case "master":
		os.Exit(master())
	case "worker", "other":
		waitForever()
	}
	fmt.Fprintf(os.Stderr, "fake: unknown role %q\n", role)
	os.Exit(2)
}

func launch() int {
	if os.Getenv("FAKE_FAIL") == "1" {
		fmt.Fprintln(os.Stderr, "fake: configuration error (FAKE_FAIL)")
		return 1
	}
	if slices.Contains(os.Args[1:], "-t") {
		return 0 // nginx -t: the configuration is fine
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake:", err)
		return 1
	}
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Env = append(os.Environ(), roleEnv+"=master")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "fake:", err)
		return 1
	}
	return 0
}

func master() int {
	if f := os.Getenv("FAKE_PIDFILE"); f != "" {
		if err := os.WriteFile(f, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "fake:", err)
			return 1
		}
	}
	if os.Getenv("FAKE_DEAF") == "1" {
		waitForever()
	}
	ln, err := net.Listen("tcp", os.Getenv("FAKE_ADDR"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake:", err)
		return 1
	}
	n, _ := strconv.Atoi(os.Getenv("FAKE_WORKERS"))
	if n > 0 {
		lf, err := ln.(*net.TCPListener).File()
		if err != nil {
			fmt.Fprintln(os.Stderr, "fake:", err)
			return 1
		}
		exe, _ := os.Executable()
		for range n {
			w := exec.Command(exe, os.Args[1:]...) // a fork: the same command line
			w.Env = append(os.Environ(), roleEnv+"=worker")
			w.ExtraFiles = []*os.File{lf}
			if err := w.Start(); err != nil {
				fmt.Fprintln(os.Stderr, "fake:", err)
				return 1
			}
		}
		lf.Close()
	}
	if os.Getenv("FAKE_TLS") == "1" {
		cert, err := selfSigned()
		if err != nil {
			fmt.Fprintln(os.Stderr, "fake:", err)
			return 1
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}})
	}
	srv := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }),
		ReadHeaderTimeout: 5 * time.Second,
	}
	fmt.Fprintln(os.Stderr, "fake:", srv.Serve(ln))
	return 1
}

// waitForever blocks until the process is killed. (A bare select{} would
// end the program: the runtime sees every goroutine asleep.)
func waitForever() {
	for {
		time.Sleep(time.Hour)
	}
}

func selfSigned() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
