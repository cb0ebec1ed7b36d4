package stall

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// TestStopCancelsLoopAttempt: stopping a monitor whose attempt is in flight
// on the probe event loop closes the attempt's connection at once (not at
// its 60 s timeout), and its result is dropped; the Runtime's end does the
// same for the attempt of a monitor still running.
func TestStopCancelsLoopAttempt(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	accepted, closed := make(chan struct{}, 2), make(chan struct{}, 2)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- struct{}{}
			go func() {
				_, _ = io.Copy(io.Discard, c) // never answers; ends when the probe closes
				c.Close()
				closed <- struct{}{}
			}()
		}
	}()
	port := l.Addr().(*net.TCPAddr).Port
	wait := func(what string, ch chan struct{}) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: not within 30 s", what)
		}
	}
	for _, stop := range []string{"Stop", "Runtime end"} {
		t.Run(stop, func(t *testing.T) {
			clk := newFakeClock()
			target := &fakeTarget{pids: []int{4242}}
			f := loadPfile(t, fmt.Sprintf("%s /bin/true\n%s", testProc, block("webserv", fmt.Sprintf("60:120:0:3:600:%d:127.0.0.1", port), 1)))
			s, err := newHarness(harnessOptions{File: f, Log: newRecorder(), Clock: clk})
			if err != nil {
				t.Fatal(err)
			}
			s.rt.stagger = func(time.Duration) time.Duration { return 0 }
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); s.Run(ctx, target) }()
			defer func() { cancel(); <-done }()
			up(s, f, 4242)
			wait("the attempt's connection", accepted)
			if stop == "Stop" {
				s.down()
			} else {
				cancel()
				<-done
			}
			wait("the attempt's close", closed)
			if st := status(t, s); st.Attempts != 0 {
				t.Errorf("%d attempts recorded, want the cancelled one dropped", st.Attempts)
			}
		})
	}
}

// TestWorkersBounded: attempts off the probe event loop run on at most
// maxWorkers workers; those beyond wait their turn, and all run.
func TestWorkersBounded(t *testing.T) {
	rt := NewRuntime(RuntimeOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); rt.Run(ctx) }()
	defer func() { cancel(); <-done }()
	n := 3 * maxWorkers
	release := make(chan struct{})
	started, finished := make(chan struct{}, n), make(chan struct{}, n)
	var mu sync.Mutex
	running, most := 0, 0
	for range n {
		rt.dispatch(func() {
			mu.Lock()
			running++
			most = max(most, running)
			mu.Unlock()
			started <- struct{}{}
			<-release
			mu.Lock()
			running--
			mu.Unlock()
			finished <- struct{}{}
		})
	}
	timeout := time.After(30 * time.Second)
	for range maxWorkers {
		select {
		case <-started:
		case <-timeout:
			t.Fatal("the first attempts did not start")
		}
	}
	select {
	case <-started:
		t.Fatalf("an attempt beyond the %d workers started while they were all busy", maxWorkers)
	case <-time.After(10 * time.Millisecond): // a worker beyond the bound would have started one by now
	}
	close(release)
	for range n {
		select {
		case <-finished:
		case <-timeout:
			t.Fatal("not every queued attempt ran")
		}
	}
	if most != maxWorkers {
		t.Errorf("%d attempts at once, want at most (and here exactly) %d", most, maxWorkers)
	}
}
