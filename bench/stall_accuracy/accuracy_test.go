package stallaccuracy

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pcheck/pcheck/checker/daemon"
	"github.com/pcheck/pcheck/checker/proc"
	"github.com/pcheck/pcheck/checker/stall/stalltest"
	"github.com/pcheck/pcheck/checker/syslogtest"
)

// The monitor under test and the bound every figure must respect.
const (
	hangs    = 20
	interval = time.Second
	failover = 5 * time.Second
	timeout  = time.Second // the default attempt timeout: min(interval, 10 s)
	bound    = failover + interval + timeout
)

// pcheckRole makes the re-executed test binary run pcheck.
const pcheckRole = "STALL_ACCURACY_PCHECK"

func TestMain(m *testing.M) {
	stalltest.Serve()
	if os.Getenv(pcheckRole) == "1" {
		// argv: state-dir run-dir syslog-socket pfile
		a := os.Args[1:]
		os.Exit(daemon.Run(context.Background(), daemon.Options{
			StateDir: a[0], RunDir: a[1], SyslogNetwork: "unixgram", SyslogAddr: a[2],
			Pfiles: a[3:], Stderr: io.Discard,
		}))
	}
	os.Exit(m.Run())
}

// arrival is a syslog line and when it arrived (monotonic).
type arrival struct {
	at   time.Time
	text string
}

// lineReader reads syslog lines in order; a line can be put back.
type lineReader struct {
	c    <-chan arrival
	back []arrival
}

// receive collects syslog lines on a unixgram socket.
func receive(b *testing.B, path string) *lineReader {
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	out := make(chan arrival, 4096)
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(out)
				return
			}
			at := time.Now()
			if l, err := syslogtest.Parse(string(buf[:n])); err == nil {
				out <- arrival{at: at, text: l.Text}
			}
		}
	}()
	return &lineReader{c: out}
}

// next returns the first line that match accepts, dropping the others.
func (r *lineReader) next(b *testing.B, what string, match func(string) bool) arrival {
	b.Helper()
	for len(r.back) > 0 {
		a := r.back[0]
		r.back = r.back[1:]
		if match(a.text) {
			return a
		}
	}
	deadline := time.After(60 * time.Second)
	var skipped []string
	for {
		select {
		case a := <-r.c:
			if match(a.text) {
				return a
			}
			skipped = append(skipped, a.text)
		case <-deadline:
			b.Fatalf("no %s within 60 s; lines meanwhile:\n%s", what, strings.Join(skipped, "\n"))
		}
	}
}

// unread puts a back to be read first.
func (r *lineReader) unread(a arrival) { r.back = append([]arrival{a}, r.back...) }

// BenchmarkStallAccuracy hangs the web server 20 times per iteration and
// reports the delays from each hang to the find message, the Killed
// Process line and the process's death.
func BenchmarkStallAccuracy(b *testing.B) {
	if testing.Short() {
		b.Skip("takes 2.5 minutes")
	}
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	port, err := stalltest.FreePort()
	if err != nil {
		b.Fatal(err)
	}
	tag := fmt.Sprintf("pcheck-stall-accuracy-%d", os.Getpid())
	svc := stalltest.Service{Role: "http", Port: port, Log: filepath.Join(dir, "requests")}
	script := filepath.Join(dir, "restart.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n"+svc.Script(self, tag)+"\n"), 0o755); err != nil {
		b.Fatal(err)
	}
	pf := filepath.Join(dir, "accuracy.pf")
	lib := "DLL:/opt/HA/PSWE/lib/lib_bi_webserv.so"
	text := fmt.Sprintf("MonitorInterval 10\nStartWait 10\nKillWait 1\nRetryCount 1000\n%s %s args=\"%s\"\n_bi_webserv{\n"+
		"  PS_INIT %s:DIRECT:-::-:0\n  PS_EXEC %s:DIRECT:-:%d:0:3:%d:%d:127.0.0.1\n"+
		"  PS_ACTION %s:DIRECT:-::-:1:0\n  PS_QUIT %s:DIRECT:-::-:0\n}\n",
		self, script, tag, lib, lib, int(interval/time.Second), int(failover/time.Second), port, lib, lib)
	if err := os.WriteFile(pf, []byte(text), 0o644); err != nil {
		b.Fatal(err)
	}
	// Unix socket paths are short: the receiver goes in its own
	// directory under /tmp.
	sockDir, err := os.MkdirTemp("", "stallacc")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(sockDir) })
	sock := filepath.Join(sockDir, "log.sock")
	lines := receive(b, sock)
	b.Cleanup(func() { killTagged(tag) })

	service := exec.Command(self, "service", tag)
	service.Env = append(os.Environ(), svc.Env()...)
	if err := service.Start(); err != nil {
		b.Fatal(err)
	}
	go service.Wait()
	pid := service.Process.Pid

	pcheck := exec.Command(self, filepath.Join(dir, "state"), filepath.Join(dir, "run"), sock, pf)
	pcheck.Env = append(os.Environ(), pcheckRole+"=1")
	if err := pcheck.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { pcheck.Process.Signal(syscall.SIGTERM); pcheck.Wait() })

	watcher, err := proc.NewWatcher()
	if err != nil {
		b.Fatal(err)
	}
	defer watcher.Close()

	upPrefix := fmt.Sprintf("('%s' ,pid=", self)
	var toFind, toKilled, toDeath []time.Duration
	b.ResetTimer()
	for range b.N {
		for range hangs {
			lines.next(b, fmt.Sprintf("Up of pid %d", pid), func(s string) bool { return s == fmt.Sprintf("%s%d) Up", upPrefix, pid) })
			// The monitor runs afresh: let it succeed twice, then hang
			// the server at a random point of its interval.
			seen, deadline := stalltest.Count(svc.Log, "HEAD /"), time.Now().Add(30*time.Second)
			for stalltest.Count(svc.Log, "HEAD /") < seen+2 {
				if time.Now().After(deadline) {
					b.Fatal("the monitor does not probe the server")
				}
				time.Sleep(10 * time.Millisecond)
			}
			time.Sleep(rand.N(interval))
			info, err := proc.Read(pid)
			if err != nil {
				b.Fatal(err)
			}
			died := make(chan time.Time, 1)
			cancel, err := watcher.Watch(info.ID, func(proc.Event) { died <- time.Now() })
			if err != nil {
				b.Fatal(err)
			}
			hung := time.Now()
			if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
				b.Fatal(err)
			}
			find := lines.next(b, "find message", func(s string) bool {
				return s == fmt.Sprintf("Find Web Server Stall: pid = %d : port = %d", pid, port)
			})
			killed := lines.next(b, "Killed Process", func(s string) bool { return s == fmt.Sprintf("Killed Process: pid= %d", pid) })
			var death time.Time
			select {
			case death = <-died:
			case <-time.After(30 * time.Second):
				b.Fatalf("pid %d did not die", pid)
			}
			cancel()
			toFind = append(toFind, find.at.Sub(hung))
			toKilled = append(toKilled, killed.at.Sub(hung))
			toDeath = append(toDeath, death.Sub(hung))
			// The restarted server's pid, from its Up line.
			up := lines.next(b, "Up after the restart", func(s string) bool {
				return strings.HasPrefix(s, upPrefix) && s != fmt.Sprintf("%s%d) Up", upPrefix, pid)
			})
			pid, err = strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(up.text, upPrefix), ") Up"))
			if err != nil {
				b.Fatalf("Up line %q: %v", up.text, err)
			}
			lines.unread(up) // the next round waits for it
		}
	}
	b.StopTimer()

	b.Logf("interval %v, failover %v, attempt timeout %v, KillWait 1 s: %d hangs", interval, failover, timeout, len(toKilled))
	b.Logf("%-24s %8s %8s %8s", "from SIGSTOP to", "min", "median", "max")
	for _, row := range []struct {
		name string
		d    []time.Duration
	}{{"find message", toFind}, {"Killed Process line", toKilled}, {"death (pidfd)", toDeath}} {
		lo, med, hi := summary(row.d)
		b.Logf("%-24s %8.3f %8.3f %8.3f", row.name, lo.Seconds(), med.Seconds(), hi.Seconds())
		for _, d := range row.d {
			if d < failover || d > bound {
				b.Errorf("%s after %v: outside [%v, %v]", row.name, d, failover, bound)
			}
		}
	}
	lo, med, hi := summary(toKilled)
	b.ReportMetric(lo.Seconds(), "min-s")
	b.ReportMetric(med.Seconds(), "median-s")
	b.ReportMetric(hi.Seconds(), "max-s")
}

// summary returns the min, median and max of ds.
func summary(ds []time.Duration) (lo, med, hi time.Duration) {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[0], s[len(s)/2], s[len(s)-1]
}

// killTagged kills the processes this benchmark started (tag in argv).
func killTagged(tag string) {
	all, _ := proc.Scan()
	for _, p := range all {
		if strings.Contains(strings.Join(p.Argv, " "), tag) {
			proc.Signal(p.ID, syscall.SIGKILL)
		}
	}
}
