package probe

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestTCP(t *testing.T) {
	for _, tc := range []struct{ name, listen, host, want string }{
		{"IPv4", "127.0.0.1:0", "127.0.0.1", "connected to 127.0.0.1:"},
		{"IPv6", "[::1]:0", "::1", "connected to [::1]:"},
		{"localhost", "127.0.0.1:0", "localhost", "connected to 127.0.0.1:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			accepted := make(chan struct{}, 1)
			port := rawServer(t, tc.listen, func(c net.Conn) {
				accepted <- struct{}{}
				_, _ = io.Copy(io.Discard, c)
			})
			r := TCP(tc.host, port).Run(withTimeout(t, 30*time.Second))
			if !r.OK {
				t.Fatalf("TCP probe failed: %s (%v)", r.Detail, r.Err)
			}
			if want := tc.want + strconv.Itoa(port); r.Detail != want {
				t.Errorf("Detail = %q, want %q", r.Detail, want)
			}
			select {
			case <-accepted:
			case <-time.After(30 * time.Second):
				t.Error("the server never accepted the probe's connection")
			}
		})
	}
}

// Probes close with a reset (SO_LINGER 0): no socket is left in TIME_WAIT
// on either side, however many probes run.
func TestNoTimeWait(t *testing.T) {
	const n = 50
	handled := make(chan struct{}, n)
	port := rawServer(t, "127.0.0.1:0", func(c net.Conn) {
		defer func() { handled <- struct{}{} }()
		if _, err := readRequest(c); err == nil {
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\n\r\n")
			_, _ = io.Copy(io.Discard, c) // let the probe close first
		}
	})
	for i := 0; i < n; i++ {
		p := TCP("127.0.0.1", port)
		if i%2 == 1 {
			p = HTTP("127.0.0.1", port)
		}
		if r := p.Run(withTimeout(t, 30*time.Second)); !r.OK {
			t.Fatalf("probe %d failed: %s (%v)", i, r.Detail, r.Err)
		}
	}
	for i := 0; i < n; i++ {
		select {
		case <-handled:
		case <-time.After(30 * time.Second):
			t.Fatalf("the server handled %d of %d connections", i, n)
		}
	}
	if tw := timeWait(t, port); tw != 0 {
		t.Errorf("%d sockets to or from port %d in TIME_WAIT, want 0", tw, port)
	}
}

// timeWait counts the IPv4 sockets in TIME_WAIT whose local or remote port
// is port.
func timeWait(t *testing.T, port int) int {
	t.Helper()
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	hexPort := strings.ToUpper(strconv.FormatInt(int64(port)|0x10000, 16)[1:])
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 3 && fields[3] == "06" &&
			(strings.HasSuffix(fields[1], ":"+hexPort) || strings.HasSuffix(fields[2], ":"+hexPort)) {
			n++
		}
	}
	return n
}

// Every probe fails at once, as a timeout, when its context is already done.
func TestExpiredContext(t *testing.T) {
	port := rawServer(t, "127.0.0.1:0", func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
	dir := t.TempDir()
	self := func() ([]int, error) { return []int{os.Getpid()}, nil }
	tree := func() ([]ProcName, error) { return []ProcName{{Pid: 1, Comm: "x"}}, nil }
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	for name, p := range map[string]Prober{
		"http":      HTTP("127.0.0.1", port),
		"https":     HTTPS("127.0.0.1", port, "/", TLSOptions{}),
		"tcp":       TCP("127.0.0.1", port),
		"command":   Command("/bin/true", nil, nil),
		"heartbeat": Heartbeat(dir),
		"listen":    Listen(port, "", self),
		"children":  Children([]string{"x"}, tree),
	} {
		r := p.Run(ctx)
		if r.OK || r.Detail != "timeout" || !errors.Is(r.Err, context.DeadlineExceeded) {
			t.Errorf("%s: got OK=%v Detail=%q Err=%v, want a timeout", name, r.OK, r.Detail, r.Err)
		}
	}
}
