package control

import (
	"slices"
	"sync"
	"time"

	"github.com/pcheck/pcheck/checker/message"
)

// DefaultEvents is how many events a pfile keeps by default.
const DefaultEvents = 1000

// Event is one entry of the event ring: a message pcheck logged for the
// pfile, a control it obeyed, or a stall monitor's finding.
type Event struct {
	// Seq numbers the events of a pfile from 1, in the order recorded.
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	Pfile   string    `json:"pfile"`
	Process string    `json:"process,omitempty"`
	// Kind is the catalogue ID of a message ("down", "try-restart") or a
	// control ("pause", "resume", "restart", "reset").
	Kind string `json:"kind"`
	Text string `json:"text,omitempty"`
	// Output, on a Down, holds the last lines of the output file of the
	// process's restart script (what the daemon it started wrote last).
	Output []string `json:"output,omitempty"`
	// Failure marks what went wrong (a message of priority warning or
	// worse): failures are kept longer.
	Failure bool `json:"failure"`
}

// failureKinds are the catalogue IDs at warning or worse.
var failureKinds = func() map[string]bool {
	m := map[string]bool{}
	for _, e := range message.Catalogue() {
		if e.Priority <= message.PriorityWarning {
			m[string(e.ID)] = true
		}
	}
	return m
}()

// IsFailure reports whether an event of kind is a failure: a catalogue
// message at priority warning or worse ("down", "set-pid-fail", the stall
// finds, "retry-over", ...).
func IsFailure(kind string) bool { return failureKinds[kind] }

// Events is a bounded history of a pfile's events that keeps failures
// longer than successes, in the manner of blackbox_exporter's history:
// one ring holds the last N events of any kind, a second the last N
// failures, so a burst of routine events cannot push the last failures
// out. It is safe for concurrent use.
type Events struct {
	mu       sync.Mutex
	seq      uint64
	all      ring
	failures ring
}

// NewEvents returns a history of size events (DefaultEvents when size <= 0)
// and as many failures.
func NewEvents(size int) *Events {
	if size <= 0 {
		size = DefaultEvents
	}
	return &Events{all: newRing(size), failures: newRing(size)}
}

// Add records ev, numbering it; Failure is set from its Kind.
func (h *Events) Add(ev Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq++
	ev.Seq = h.seq
	ev.Failure = IsFailure(ev.Kind)
	h.all.push(ev)
	if ev.Failure {
		h.failures.push(ev)
	}
}

// Newest returns up to n events (every one kept when n <= 0), newest
// first.
func (h *Events) Newest(n int) []Event {
	h.mu.Lock()
	all := h.all.items()
	fails := h.failures.items()
	h.mu.Unlock()
	// A failure newer than the oldest event of all is in all already.
	var oldest uint64 = 1<<64 - 1
	if len(all) > 0 {
		oldest = all[0].Seq
	}
	out := make([]Event, 0, len(all)+len(fails))
	for _, f := range fails {
		if f.Seq < oldest {
			out = append(out, f)
		}
	}
	out = append(out, all...)
	slices.Reverse(out)
	if n > 0 && len(out) > n {
		out = out[:n]
	}
	return out
}

// Size returns how many events (and failures) are kept.
func (h *Events) Size() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.all.buf)
}

// Resize keeps size events and failures from now on, dropping the oldest
// when it shrinks.
func (h *Events) Resize(size int) {
	if size <= 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.all = h.all.resized(size)
	h.failures = h.failures.resized(size)
}

// ring is a fixed-size circular buffer of events.
type ring struct {
	buf  []Event
	head int // next slot to write
	n    int // events held
}

func newRing(size int) ring { return ring{buf: make([]Event, size)} }

func (r *ring) push(ev Event) {
	r.buf[r.head] = ev
	r.head = (r.head + 1) % len(r.buf)
	if r.n < len(r.buf) {
		r.n++
	}
}

// items returns the events held, oldest first.
func (r *ring) items() []Event {
	out := make([]Event, 0, r.n)
	start := (r.head - r.n + len(r.buf)) % len(r.buf)
	for i := range r.n {
		out = append(out, r.buf[(start+i)%len(r.buf)])
	}
	return out
}

func (r *ring) resized(size int) ring {
	nr := newRing(size)
	items := r.items()
	if len(items) > size {
		items = items[len(items)-size:]
	}
	for _, ev := range items {
		nr.push(ev)
	}
	return nr
}
