package probe

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// noSockDiag stands for a host where sock_diag cannot be used: the
// netlink socket is refused.
func noSockDiag(errno syscall.Errno) *listenDump {
	d, _ := countedNoSockDiag(errno)
	return d
}

// countedNoSockDiag is noSockDiag counting the sockets asked for.
func countedNoSockDiag(errno syscall.Errno) (d *listenDump, calls *atomic.Int64) {
	calls = new(atomic.Int64)
	return &listenDump{dump: func(buf []byte, _ time.Time, _ func(listener)) ([]byte, error) {
		calls.Add(1)
		return buf, os.NewSyscallError("socket", errno)
	}}, calls
}

// listenWith is Listen reading its listeners through d.
func listenWith(d *listenDump, port int, address string, pids func() ([]int, error)) Prober {
	p := Listen(port, address, pids)
	p.(*listenProber).dump = d
	return p
}

// The same answers whether the listeners come from sock_diag or, where it
// cannot be used, from /proc/net/tcp. sock_diag refused for good is asked
// for once, not at every attempt.
func TestListen(t *testing.T) {
	t.Run("sock_diag", func(t *testing.T) { testListen(t, &listenDump{}) })
	for _, errno := range []syscall.Errno{syscall.EPERM, syscall.EPROTONOSUPPORT} {
		t.Run(unix.ErrnoName(errno), func(t *testing.T) {
			d, calls := countedNoSockDiag(errno)
			testListen(t, d)
			if n := calls.Load(); n != 1 {
				t.Errorf("%d netlink sockets asked for, want 1: %v is for good", n, errno)
			}
		})
	}
}

func testListen(t *testing.T, dump *listenDump) {
	v4 := startHelper(t, "listen", "127.0.0.1:0")
	v6 := startHelper(t, "listen", "[::1]:0")
	any4 := startHelper(t, "listen", "0.0.0.0:0")
	pids := func(hs ...int) func() ([]int, error) { return func() ([]int, error) { return hs, nil } }
	self := os.Getpid()
	for _, tc := range []struct {
		name    string
		port    int
		address string
		pids    func() ([]int, error)
		ok      bool
	}{
		{"IPv4, any address", v4.port, "", pids(v4.pid()), true},
		{"IPv4, its address", v4.port, "127.0.0.1", pids(v4.pid()), true},
		{"IPv4, mapped address", v4.port, "::ffff:127.0.0.1", pids(v4.pid()), true},
		{"IPv4, another address", v4.port, "127.0.0.2", pids(v4.pid()), false},
		{"IPv4, an IPv6 address", v4.port, "::1", pids(v4.pid()), false},
		{"IPv6, any address", v6.port, "", pids(v6.pid()), true},
		{"IPv6, its address", v6.port, "::1", pids(v6.pid()), true},
		{"IPv6, an IPv4 address", v6.port, "127.0.0.1", pids(v6.pid()), false},
		{"wildcard covers an address", any4.port, "127.0.0.1", pids(any4.pid()), true},
		{"held by a descendant", v4.port, "", pids(self, v4.pid()), true},
		{"not held by these pids", v4.port, "", pids(self, v6.pid()), false},
		{"another port", v6.port, "", pids(v4.pid()), false},
		{"no pids", v4.port, "", pids(), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := listenWith(dump, tc.port, tc.address, tc.pids).Run(withTimeout(t, 30*time.Second))
			if r.OK != tc.ok {
				t.Fatalf("OK = %v, want %v (Detail %q, Err %v)", r.OK, tc.ok, r.Detail, r.Err)
			}
			if !tc.ok && !errors.Is(r.Err, ErrNotListening) {
				t.Errorf("Err = %v, want ErrNotListening", r.Err)
			}
		})
	}

	// After the listener closes, the process still runs but holds no
	// LISTEN socket.
	p := listenWith(dump, v4.port, "", pids(v4.pid()))
	if r := p.Run(withTimeout(t, 30*time.Second)); !r.OK {
		t.Fatalf("before close: OK=false (Detail %q, Err %v)", r.Detail, r.Err)
	}
	if _, err := io.WriteString(v4.stdin, "close\n"); err != nil {
		t.Fatal(err)
	}
	if line := v4.readLine(t); line != "closed" {
		t.Fatalf("helper answered %q, want closed", line)
	}
	r := p.Run(withTimeout(t, 30*time.Second))
	if r.OK || !errors.Is(r.Err, ErrNotListening) {
		t.Errorf("after close: got OK=%v Err=%v, want ErrNotListening", r.OK, r.Err)
	}
}

func TestListenBadAddress(t *testing.T) {
	r := Listen(80, "localhost", func() ([]int, error) { return []int{os.Getpid()}, nil }).Run(withTimeout(t, 30*time.Second))
	if r.OK || r.Err == nil || errors.Is(r.Err, ErrNotListening) {
		t.Errorf("got OK=%v Err=%v, want an address error", r.OK, r.Err)
	}
}

func TestParseTCPLine(t *testing.T) {
	for _, tc := range []struct {
		line  string
		local string
		state uint8
		rx    uint32
		inode uint64
		ok    bool
	}{
		{"   1: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 15035 1 0000000000000000 100 0 0 10 0",
			"127.0.0.1:8080", 0x0A, 0, 15035, true},
		{"   1: 0100007F:1F90 00000000:0000 0A 00000000:0000001C 00:00000000 00000000     0        0 15035 1 0000000000000000 100 0 0 10 0",
			"127.0.0.1:8080", 0x0A, 28, 15035, true},
		{"   1: 0100007F:1F90 00000000:0000 0A 00000000 00:00000000 00000000     0        0 15035 1 0000000000000000 100 0 0 10 0",
			"", 0, 0, 0, false},
		{"   0: 00000000000000000000000001000000:A117 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 15036 1 0000000000000000 100 0 0 10 0",
			"[::1]:41239", 0x0A, 0, 15036, true},
		{"   2: 0000000000000000FFFF00000100007F:0050 00000000000000000000000000000000:0000 01 00000000:00000000 00:00000000 00000000  1000        0 7 1",
			"[::ffff:127.0.0.1]:80", 0x01, 0, 7, true},
		{"  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode", "", 0, 0, 0, false},
		{"   1: 0100007F:1F90 00000000:0000 0A", "", 0, 0, 0, false},
		{"   1: 0100007:1F90 00000000:0000 0A 0:0 0:0 0 0 0 1", "", 0, 0, 0, false},
	} {
		e, ok := parseTCPLine([]byte(tc.line))
		if ok != tc.ok {
			t.Errorf("parseTCPLine(%q) ok = %v, want %v", tc.line, ok, tc.ok)
			continue
		}
		if !ok {
			continue
		}
		if want := netip.MustParseAddrPort(tc.local); e.local != want || e.state != tc.state || e.rxQueue != tc.rx || e.inode != tc.inode {
			t.Errorf("parseTCPLine(%q) = %v %x %d %d, want %v %x %d %d", tc.line, e.local, e.state, e.rxQueue, e.inode, want, tc.state, tc.rx, tc.inode)
		}
	}
}

// backlogListener listens on a loopback port with a backlog of 7 in this
// process, never accepting, and connects n clients to it. It returns the
// port.
func backlogListener(t *testing.T, n int) int {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 7); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	port := sa.(*syscall.SockaddrInet4).Port
	for range n {
		c, err := net.DialTimeout("tcp4", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)).String(), 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
	}
	return port
}

// An OK attempt reports the listener's accept queue and, from sock_diag,
// its backlog; /proc/net/tcp shows the queue only (Backlog 0).
func TestListenAcceptQueue(t *testing.T) {
	port := backlogListener(t, 3)
	self := func() ([]int, error) { return []int{os.Getpid()}, nil }
	for _, tc := range []struct {
		name    string
		dump    *listenDump
		backlog int
	}{
		{"sock_diag", &listenDump{}, 7},
		{"/proc", noSockDiag(syscall.EPERM), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := listenWith(tc.dump, port, "127.0.0.1", self)
			// The server side of a connection joins the accept queue when
			// the client's ACK is processed, just after connect returns.
			deadline := time.Now().Add(10 * time.Second)
			for {
				r := p.Run(withTimeout(t, 30*time.Second))
				if !r.OK {
					t.Fatalf("OK = false (Detail %q, Err %v)", r.Detail, r.Err)
				}
				if r.AcceptQueue == 3 && r.Backlog == tc.backlog {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("AcceptQueue %d, Backlog %d; want 3, %d", r.AcceptQueue, r.Backlog, tc.backlog)
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
}

// The attempts of the same few milliseconds share one sock_diag dump, and
// a listener that came up since is still found: "not listening" is
// decided on a dump of the attempt's own.
func TestListenSharedDump(t *testing.T) {
	a := startHelper(t, "listen", "127.0.0.1:0")
	b := startHelper(t, "listen", "[::1]:0")
	pids := func(h *helper) func() ([]int, error) { return func() ([]int, error) { return []int{h.pid()}, nil } }
	d := &listenDump{}
	dumps := func() int { d.mu.Lock(); defer d.mu.Unlock(); return d.dumps }
	// Until two attempts fit in one dump's life: a loaded machine may
	// stall between them.
	deadline := time.Now().Add(30 * time.Second)
	for {
		before := dumps()
		start := time.Now()
		ra := listenWith(d, a.port, "", pids(a)).Run(withTimeout(t, 30*time.Second))
		rb := listenWith(d, b.port, "", pids(b)).Run(withTimeout(t, 30*time.Second))
		if !ra.OK || !rb.OK {
			t.Fatalf("OK = %v, %v (%v, %v)", ra.OK, rb.OK, ra.Err, rb.Err)
		}
		n := dumps() - before
		if time.Since(start) < listenDumpAge {
			if n != 1 {
				t.Fatalf("two attempts within %v made %d dumps, want 1", listenDumpAge, n)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no two attempts within one dump's life")
		}
	}

	// A listener opened after the dump: the reused dump lacks it, a new
	// one is made.
	self := func() ([]int, error) { return []int{os.Getpid()}, nil }
	for {
		d.mu.Lock()
		d.at = time.Time{} // the next attempt dumps
		d.mu.Unlock()
		before := dumps()
		start := time.Now()
		if r := listenWith(d, a.port, "", pids(a)).Run(withTimeout(t, 30*time.Second)); !r.OK {
			t.Fatal(r.Err)
		}
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		r := listenWith(d, l.Addr().(*net.TCPAddr).Port, "", self).Run(withTimeout(t, 30*time.Second))
		if !r.OK {
			t.Fatalf("new listener: OK = false (Detail %q, Err %v)", r.Detail, r.Err)
		}
		if time.Since(start) < listenDumpAge {
			if n := dumps() - before; n != 2 {
				t.Fatalf("%d dumps, want 2: the second attempt's miss is checked on a new dump", n)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no two attempts within one dump's life")
		}
	}
}

// A process in another network namespace is looked up in its own
// /proc/PID/net/tcp: pcheck's sock_diag socket sees only its namespace.
func TestListenOtherNetns(t *testing.T) {
	h := startHelperWith(t, "listen", "0.0.0.0:0", &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET})
	d := &listenDump{}
	r := listenWith(d, h.port, "", func() ([]int, error) { return []int{h.pid()}, nil }).Run(withTimeout(t, 30*time.Second))
	if !r.OK {
		t.Fatalf("OK = false (Detail %q, Err %v)", r.Detail, r.Err)
	}
	if d.dumps != 0 {
		t.Errorf("%d sock_diag dumps for a process of another namespace, want 0", d.dumps)
	}
}

// A sock_diag dump can miss a listener that never went away (the kernel
// resumes a dump of the listening hash by a count within a bucket, so a
// close in the same bucket between two batches skips a socket): "not
// listening" is confirmed in /proc/PID/net/tcp before it is reported.
func TestListenConfirmedByProc(t *testing.T) {
	port := backlogListener(t, 0)
	self := func() ([]int, error) { return []int{os.Getpid()}, nil }
	var dumps atomic.Int64
	missed := &listenDump{dump: func(buf []byte, _ time.Time, _ func(listener)) ([]byte, error) {
		dumps.Add(1)
		return buf, nil // a complete-looking dump without the listener
	}}
	r := listenWith(missed, port, "127.0.0.1", self).Run(withTimeout(t, 30*time.Second))
	if !r.OK {
		t.Fatalf("a listener missing from the dump: OK = false (Detail %q, Err %v), want OK from /proc", r.Detail, r.Err)
	}
	if dumps.Load() == 0 {
		t.Fatal("no dump made: the test did not go through sock_diag")
	}
	// /proc confirms a real absence.
	r = listenWith(missed, closedPort(t), "127.0.0.1", self).Run(withTimeout(t, 30*time.Second))
	if r.OK || !errors.Is(r.Err, ErrNotListening) {
		t.Errorf("a closed port: OK=%v Err=%v, want ErrNotListening", r.OK, r.Err)
	}
}

// listen6 listens on [::]:0 in this process with IPV6_V6ONLY set to
// v6only and returns the port.
func listen6(t *testing.T, v6only int) int {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET6, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.SetsockoptInt(fd, syscall.IPPROTO_IPV6, syscall.IPV6_V6ONLY, v6only); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet6{}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 8); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return sa.(*syscall.SockaddrInet6).Port
}

// A [::] listener with IPV6_V6ONLY serves no IPv4 address; a dual-stack
// one serves both. sock_diag tells them apart (INET_DIAG_SKV6ONLY).
func TestListenV6Only(t *testing.T) {
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	l.Close()
	only, dual := listen6(t, 1), listen6(t, 0)
	self := func() ([]int, error) { return []int{os.Getpid()}, nil }
	for _, tc := range []struct {
		name    string
		port    int
		address string
		ok      bool
	}{
		{"v6only, an IPv4 address", only, "127.0.0.1", false},
		{"v6only, a mapped IPv4 address", only, "::ffff:127.0.0.1", false},
		{"v6only, an IPv6 address", only, "::1", true},
		{"v6only, any address", only, "", true},
		{"dual stack, an IPv4 address", dual, "127.0.0.1", true},
		{"dual stack, an IPv6 address", dual, "::1", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := listenWith(&listenDump{}, tc.port, tc.address, self).Run(withTimeout(t, 30*time.Second))
			if r.OK != tc.ok {
				t.Fatalf("OK = %v, want %v (Detail %q, Err %v)", r.OK, tc.ok, r.Detail, r.Err)
			}
			if !tc.ok && !errors.Is(r.Err, ErrNotListening) {
				t.Errorf("Err = %v, want ErrNotListening", r.Err)
			}
		})
	}
}

// sock_diag failing for a while (no descriptor, no memory) is tried again
// at the next attempt; meanwhile /proc answers.
func TestListenTransientDiagError(t *testing.T) {
	port := backlogListener(t, 0)
	self := func() ([]int, error) { return []int{os.Getpid()}, nil }
	d, calls := countedNoSockDiag(syscall.EMFILE)
	for i := range 2 {
		if r := listenWith(d, port, "", self).Run(withTimeout(t, 30*time.Second)); !r.OK {
			t.Fatalf("attempt %d: OK = false (Detail %q, Err %v)", i, r.Detail, r.Err)
		}
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("%d netlink sockets asked for in 2 attempts, want 2: EMFILE passes", n)
	}
}
