package probe

import (
	"errors"
	"io"
	"net/netip"
	"os"
	"testing"
	"time"
)

func TestListen(t *testing.T) {
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
			r := Listen(tc.port, tc.address, tc.pids).Run(withTimeout(t, 30*time.Second))
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
	p := Listen(v4.port, "", pids(v4.pid()))
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
		inode uint64
		ok    bool
	}{
		{"   1: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 15035 1 0000000000000000 100 0 0 10 0",
			"127.0.0.1:8080", 0x0A, 15035, true},
		{"   0: 00000000000000000000000001000000:A117 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 15036 1 0000000000000000 100 0 0 10 0",
			"[::1]:41239", 0x0A, 15036, true},
		{"   2: 0000000000000000FFFF00000100007F:0050 00000000000000000000000000000000:0000 01 00000000:00000000 00:00000000 00000000  1000        0 7 1",
			"[::ffff:127.0.0.1]:80", 0x01, 7, true},
		{"  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode", "", 0, 0, false},
		{"   1: 0100007F:1F90 00000000:0000 0A", "", 0, 0, false},
		{"   1: 0100007:1F90 00000000:0000 0A 0:0 0:0 0 0 0 1", "", 0, 0, false},
	} {
		e, ok := parseTCPLine([]byte(tc.line))
		if ok != tc.ok {
			t.Errorf("parseTCPLine(%q) ok = %v, want %v", tc.line, ok, tc.ok)
			continue
		}
		if !ok {
			continue
		}
		if want := netip.MustParseAddrPort(tc.local); e.local != want || e.state != tc.state || e.inode != tc.inode {
			t.Errorf("parseTCPLine(%q) = %v %x %d, want %v %x %d", tc.line, e.local, e.state, e.inode, want, tc.state, tc.inode)
		}
	}
}
