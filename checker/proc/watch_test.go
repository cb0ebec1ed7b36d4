package proc

import (
	"errors"
	"os/exec"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// newWatcher starts a watcher closed at the end of the test.
func newWatcher(t testing.TB) *Watcher {
	t.Helper()
	if !PidfdSupported() {
		t.Skip("no pidfd on this kernel")
	}
	w, err := NewWatcher()
	if err != nil {
		t.Fatalf("NewWatcher: %v", err)
	}
	t.Cleanup(func() {
		if err := w.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return w
}

// watchChan watches id and returns the channel its event arrives on.
func watchChan(t *testing.T, w *Watcher, id ID) (<-chan Event, func()) {
	t.Helper()
	ch := make(chan Event, 1)
	cancel, err := w.Watch(id, func(ev Event) { ch <- ev })
	if err != nil {
		t.Fatalf("Watch(%v): %v", id, err)
	}
	return ch, cancel
}

// event waits for the event on ch.
func event(t *testing.T, ch <-chan Event) Event {
	t.Helper()
	select {
	case ev := <-ch:
		return ev
	case <-time.After(waitLimit):
		t.Fatalf("no death event in %v", waitLimit)
		return Event{}
	}
}

// grandchild starts a helper of mode parent or noreap with one sleep child
// and returns the child: a process the test did not start.
func grandchild(t *testing.T, mode string) (parent *helper, child Info) {
	t.Helper()
	h, line := startHelper(t, spec{mode: mode, env: []string{countEnv + "=1"}})
	ps := pids(t, line)
	if len(ps) != 1 {
		t.Fatalf("helper %s printed %v, want one pid", mode, ps)
	}
	child = mustRead(t, ps[0])
	if child.PPid != h.id.Pid {
		t.Fatalf("grandchild %d has parent %d, want the helper %d", child.Pid, child.PPid, h.id.Pid)
	}
	return h, child
}

func TestWatcherDeathOfNonChild(t *testing.T) {
	w := newWatcher(t)
	_, child := grandchild(t, "parent")
	ch, _ := watchChan(t, w, child.ID)
	if n := w.Len(); n != 1 {
		t.Errorf("Len = %d, want 1", n)
	}
	if err := Signal(child.ID, unix.SIGKILL); err != nil {
		t.Fatalf("Signal: %v", err)
	}
	if ev := event(t, ch); ev.ID != child.ID {
		t.Errorf("event for %+v, want %+v", ev.ID, child.ID)
	}
	if n := w.Len(); n != 0 {
		t.Errorf("Len after the event = %d, want 0", n)
	}
}

func TestWatcherZombie(t *testing.T) {
	w := newWatcher(t)
	_, child := grandchild(t, "noreap")
	ch, _ := watchChan(t, w, child.ID)
	if err := Signal(child.ID, unix.SIGKILL); err != nil {
		t.Fatalf("Signal: %v", err)
	}
	ev := event(t, ch)
	if ev.ID != child.ID || !ev.Zombie {
		t.Errorf("event %+v, want a zombie event for %+v", ev, child.ID)
	}
	if info := mustRead(t, child.Pid); info.State != 'Z' {
		t.Errorf("state %c after the event, want Z (the parent does not reap)", info.State)
	}
	if _, ok := Current(child.ID); ok {
		t.Error("Current is true for a zombie")
	}
	// A process that is a zombie already fires at once.
	ch2, _ := watchChan(t, w, child.ID)
	if ev := event(t, ch2); !ev.Zombie {
		t.Errorf("watch of a zombie: %+v, want Zombie", ev)
	}
	if got := (Matcher{Target: "sleep", ByName: true, UID: -1}).Match([]Info{mustRead(t, child.Pid)}); len(got) != 0 {
		t.Errorf("Match lists the zombie %v", pidsOf(got))
	}
}

func TestWatcherCancel(t *testing.T) {
	w := newWatcher(t)
	cmd := exec.Command("sleep", "3600")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	id := mustRead(t, cmd.Process.Pid).ID

	var mu sync.Mutex
	cancelledFired := 0
	cancel, err := w.Watch(id, func(Event) { mu.Lock(); cancelledFired++; mu.Unlock() })
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	cancel()
	cancel() // idempotent
	ch, cancel2 := watchChan(t, w, id)
	if err := Signal(id, unix.SIGKILL); err != nil {
		t.Fatalf("Signal: %v", err)
	}
	// Both watches would fire on the same death, handled by the one loop:
	// once the live one has fired, the cancelled one would have too.
	event(t, ch)
	cancel2() // after delivery: nothing to do
	mu.Lock()
	defer mu.Unlock()
	if cancelledFired != 0 {
		t.Errorf("cancelled watch fired %d times", cancelledFired)
	}
}

func TestWatchGoneProcess(t *testing.T) {
	w := newWatcher(t)
	h, _ := startHelper(t, spec{mode: "sleep"})
	reused := ID{Pid: h.id.Pid, Start: h.id.Start + 1}
	if _, err := w.Watch(reused, func(Event) {}); !errors.Is(err, ErrNotFound) {
		t.Errorf("Watch(%+v): err = %v, want ErrNotFound", reused, err)
	}
	h.stop()
	if _, err := w.Watch(h.id, func(Event) {}); !errors.Is(err, ErrNotFound) {
		t.Errorf("Watch of a reaped process: err = %v, want ErrNotFound", err)
	}
	if n := w.Len(); n != 0 {
		t.Errorf("Len = %d after failed watches, want 0", n)
	}
}

func TestWatcherClose(t *testing.T) {
	if !PidfdSupported() {
		t.Skip("no pidfd on this kernel")
	}
	w, err := NewWatcher()
	if err != nil {
		t.Fatal(err)
	}
	h, _ := startHelper(t, spec{mode: "sleep"})
	cancel, err := w.Watch(h.id, func(Event) {})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	cancel() // after Close: nothing to do
	if n := w.Len(); n != 0 {
		t.Errorf("Len after Close = %d", n)
	}
	if _, err := w.Watch(h.id, func(Event) {}); !errors.Is(err, ErrClosed) {
		t.Errorf("Watch after Close: err = %v, want ErrClosed", err)
	}
}

// Watching a thousand processes costs descriptors, not goroutines.
func TestWatcherManyOneGoroutine(t *testing.T) {
	const n = 1000
	cmds := make([]*exec.Cmd, 0, n)
	t.Cleanup(func() {
		for _, c := range cmds {
			c.Process.Kill()
			c.Wait()
		}
	})
	ids := make([]ID, 0, n)
	for range n {
		c := exec.Command("sleep", "3600")
		if err := c.Start(); err != nil {
			t.Fatalf("start sleep %d: %v", len(cmds), err)
		}
		cmds = append(cmds, c)
		ids = append(ids, mustRead(t, c.Process.Pid).ID)
	}

	before := runtime.NumGoroutine()
	w := newWatcher(t)
	events := make(chan Event, n)
	for _, id := range ids {
		if _, err := w.Watch(id, func(ev Event) { events <- ev }); err != nil {
			t.Fatalf("Watch(%v): %v", id, err)
		}
	}
	if grew := runtime.NumGoroutine() - before; grew > 3 {
		t.Errorf("watching %d processes added %d goroutines, want at most 3", n, grew)
	}
	if got := w.Len(); got != n {
		t.Errorf("Len = %d, want %d", got, n)
	}

	for _, id := range ids {
		if err := Signal(id, unix.SIGKILL); err != nil {
			t.Fatalf("Signal(%v): %v", id, err)
		}
	}
	var got []ID
	deadline := time.After(waitLimit)
	for len(got) < n {
		select {
		case ev := <-events:
			got = append(got, ev.ID)
		case <-deadline:
			t.Fatalf("%d of %d death events in %v", len(got), n, waitLimit)
		}
	}
	cmp := func(a, b ID) int { return a.Pid - b.Pid }
	slices.SortFunc(got, cmp)
	slices.SortFunc(ids, cmp)
	if !slices.Equal(got, ids) {
		t.Error("the events are not one for each watched process")
	}
}

// BenchmarkDeathLatency measures the time from kill(SIGKILL) to the
// watcher's callback.
func BenchmarkDeathLatency(b *testing.B) {
	w := newWatcher(b)
	var lat []time.Duration
	fired := make(chan time.Time, 1)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		c := exec.Command("sleep", "3600")
		if err := c.Start(); err != nil {
			b.Fatal(err)
		}
		info, err := Read(c.Process.Pid)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := w.Watch(info.ID, func(Event) { fired <- time.Now() }); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		if err := unix.Kill(c.Process.Pid, unix.SIGKILL); err != nil {
			b.Fatal(err)
		}
		end := <-fired
		b.StopTimer()
		lat = append(lat, end.Sub(start))
		c.Wait()
		b.StartTimer()
	}
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / float64(time.Microsecond) }
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}

// A callback may cancel its own watch and start another one.
func TestWatcherReentrantCallback(t *testing.T) {
	w := newWatcher(t)
	first := exec.Command("sleep", "3600")
	second := exec.Command("sleep", "3600")
	for _, c := range []*exec.Cmd{first, second} {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Process.Kill(); c.Wait() })
	}
	firstID := mustRead(t, first.Process.Pid).ID
	secondID := mustRead(t, second.Process.Pid).ID

	done := make(chan Event, 1)
	var cancel func()
	var mu sync.Mutex
	mu.Lock()
	cancel, err := w.Watch(firstID, func(Event) {
		mu.Lock()
		cancel()
		mu.Unlock()
		if _, err := w.Watch(secondID, func(ev Event) { done <- ev }); err != nil {
			t.Errorf("Watch from a callback: %v", err)
		}
		if err := Signal(secondID, unix.SIGKILL); err != nil {
			t.Errorf("Signal: %v", err)
		}
	})
	mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if err := Signal(firstID, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if ev := event(t, done); ev.ID != secondID {
		t.Errorf("event for %v, want %v", ev.ID, secondID)
	}
}
