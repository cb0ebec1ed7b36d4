package probe

import (
	"io"
	"net"
	"os"
	"runtime"
	"testing"
	"time"
)

// Thousands of probes, succeeding and failing, leave no descriptor and no
// goroutine behind. The server runs in another process so that only the
// probes' own descriptors are counted here.
func TestNoLeaks(t *testing.T) {
	h := startHelper(t, "http", "127.0.0.1:0")
	refused := closedPort(t)
	probes := []Prober{HTTP("127.0.0.1", h.port), TCP("127.0.0.1", h.port), HTTP("127.0.0.1", refused)}
	// Warm up: lazily created runtime state (resolver, poller) is not a leak.
	for _, p := range probes {
		p.Run(withTimeout(t, 30*time.Second))
	}
	fds, goroutines := openFDs(t), runtime.NumGoroutine()
	const n = 2000
	for i := 0; i < n; i++ {
		p := probes[i%len(probes)]
		r := p.Run(withTimeout(t, 30*time.Second))
		if r.OK != (p != probes[2]) {
			t.Fatalf("probe %d: OK=%v Detail=%q Err=%v", i, r.OK, r.Detail, r.Err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for openFDs(t) > fds || runtime.NumGoroutine() > goroutines { // fewer is not a leak: another test's goroutine may end meanwhile
		if time.Now().After(deadline) {
			t.Fatalf("after %d probes: %d descriptors (was %d), %d goroutines (was %d)",
				n, openFDs(t), fds, runtime.NumGoroutine(), goroutines)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The same for probes that time out against a server that never answers.
func TestNoLeaksOnTimeout(t *testing.T) {
	port := rawServer(t, "127.0.0.1:0", func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
	// Built first: the first probe built starts the event loop, whose
	// descriptors and goroutine are no leak.
	probes := make([]Prober, 20)
	for i := range probes {
		probes[i] = HTTP("127.0.0.1", port)
		if i%2 == 1 {
			probes[i] = HTTPS("127.0.0.1", port, "/", TLSOptions{})
		}
	}
	fds, goroutines := openFDs(t), runtime.NumGoroutine()
	for _, p := range probes {
		if r := p.Run(withTimeout(t, 20*time.Millisecond)); r.OK {
			t.Fatal("probe of a silent server succeeded")
		}
	}
	// The server side of each connection ends when the probe resets it.
	deadline := time.Now().Add(10 * time.Second)
	for openFDs(t) > fds || runtime.NumGoroutine() > goroutines { // fewer is not a leak: another test's goroutine may end meanwhile
		if time.Now().After(deadline) {
			t.Fatalf("%d descriptors (was %d), %d goroutines (was %d)", openFDs(t), fds, runtime.NumGoroutine(), goroutines)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// openFDs counts this process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries) - 1 // the directory being read
}
