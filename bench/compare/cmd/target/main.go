// Command target is the program the comparison benchmark (bench/compare)
// keeps alive: a small HTTP server on a loopback port that answers every
// request with its pid, and GET /conns with the number of connections it
// has accepted (so the harness can see the monitors' TCP checks arrive).
// First thing at start it appends the wall-clock time and its pid to a
// stamp file, so the harness can time "kill -> new process exec" for every
// monitor; once listening it writes its pid file (monit identifies
// processes by pid file).
//
//	target -id ID -port PORT [-stamp FILE] [-pidfile FILE]
//
// -id only names the process on its command line, where pcheck's args=
// option finds it.
package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"
)

func main() {
	started := time.Now() // before anything else: this is the exec time
	id := flag.String("id", "", "name of this target (for process matching only)")
	port := flag.Int("port", 0, "loopback port to serve HTTP on")
	stamp := flag.String("stamp", "", "file to append \"<unix-ns> <pid>\" to at start")
	pidfile := flag.String("pidfile", "", "file to write the pid to once listening")
	flag.Parse()
	if *id == "" || *port <= 0 || *port > 65535 {
		fmt.Fprintln(os.Stderr, "usage: target -id ID -port PORT [-stamp FILE] [-pidfile FILE]")
		os.Exit(2)
	}
	if err := run(started, *port, *stamp, *pidfile); err != nil {
		fmt.Fprintf(os.Stderr, "target %s: %v\n", *id, err)
		os.Exit(1)
	}
}

func run(started time.Time, port int, stamp, pidfile string) error {
	pid := os.Getpid()
	if stamp != "" {
		if err := appendStamp(stamp, started, pid); err != nil {
			return err
		}
	}
	ln, err := listen(port)
	if err != nil {
		return err
	}
	if pidfile != "" {
		if err := writePidFile(pidfile, pid); err != nil {
			return err
		}
	}
	counted := &countingListener{Listener: ln}
	body := []byte(strconv.Itoa(pid) + "\n")
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			if r.URL.Path == "/conns" {
				fmt.Fprintln(w, counted.n.Load())
				return
			}
			_, _ = w.Write(body)
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	return srv.Serve(counted)
}

// countingListener counts the connections it accepts.
type countingListener struct {
	net.Listener
	n atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// listen opens the port on 127.0.0.1. A restarted target may find its
// predecessor's socket not yet released by the kernel: it retries for a
// few seconds before giving up.
func listen(port int) (net.Listener, error) {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(5 * time.Second)
	for {
		ln, err := net.Listen("tcp", addr)
		if err == nil || time.Now().After(deadline) {
			return ln, err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// appendStamp appends "<unix-ns> <pid>" to path with one write, so lines of
// successive targets never interleave.
func appendStamp(path string, t time.Time, pid int) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("stamp file: %w", err)
	}
	_, err = fmt.Fprintf(f, "%d %d\n", t.UnixNano(), pid)
	return errors.Join(err, f.Close())
}

// writePidFile replaces path with the pid, atomically: a reader never sees
// an empty or half-written file.
func writePidFile(path string, pid int) error {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		return fmt.Errorf("pid file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("pid file: %w", err)
	}
	return nil
}
