package control

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/pcheck/pcheck/checker/engine"
	"github.com/pcheck/pcheck/checker/message"
)

// LatencyBounds are the upper bounds, in seconds, of the probe latency
// histogram buckets (the last bucket, +Inf, is implicit).
var LatencyBounds = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// Attempt is one stall monitor attempt, reported by the stall scheduler.
type Attempt struct {
	Process string
	Monitor string
	OK      bool
	// Unknown: the attempt could not be made (pcheck's side). It is
	// neither a check nor a failure in the statistics, nor a latency.
	Unknown bool
	Latency time.Duration
}

// Histogram is a probe latency distribution: Counts[i] attempts took at
// most LatencyBounds[i] seconds and more than the bound before it; the
// last element counts the slower ones.
type Histogram struct {
	Counts []uint64
	Count  uint64
	Sum    float64 // seconds
}

// Latency is the latency histogram of one monitor.
type Latency struct {
	Process, Monitor string
	Histogram
}

// RecorderOptions size a Recorder; zero values are the defaults.
type RecorderOptions struct {
	Events     int
	Buckets    int
	BucketSize time.Duration
}

// Recorder is what a pfile remembers for padmin events, padmin stats and
// the metrics: it takes the engine's events (engine.Options.OnEvent) and
// the stall monitors' attempts. It is safe for concurrent use and never
// blocks for long: its callers are the monitoring goroutines.
type Recorder struct {
	events *Events
	stats  *Stats

	mu        sync.Mutex
	latencies map[[2]string]*Histogram
}

// NewRecorder returns an empty Recorder.
func NewRecorder(o RecorderOptions) *Recorder {
	return &Recorder{
		events:    NewEvents(o.Events),
		stats:     NewStats(o.Buckets, o.BucketSize),
		latencies: map[[2]string]*Histogram{},
	}
}

// Events returns the event history.
func (r *Recorder) Events() *Events { return r.events }

// Stats returns the time-bucket statistics.
func (r *Recorder) Stats() *Stats { return r.stats }

// Event records an engine event (it is an engine.Options.OnEvent). A
// process found Up, Down or not found (Set pid fail) counts as a check,
// the last two as failures; Try to restart counts a restart.
func (r *Recorder) Event(ev engine.Event) {
	r.events.Add(Event{Time: ev.Time, Pfile: ev.Pfile, Process: ev.Process, Kind: ev.Kind, Text: ev.Text, Output: ev.Output})
	switch message.ID(ev.Kind) {
	case message.IDUp:
		r.stats.Add(Counts{Checks: 1})
	case message.IDDown, message.IDSetPidFail:
		r.stats.Add(Counts{Checks: 1, Failures: 1})
	case message.IDTryRestart:
		r.stats.Add(Counts{Restarts: 1})
	}
}

// Attempt records one stall monitor attempt: a check, a failure when it
// failed, and its latency.
func (r *Recorder) Attempt(a Attempt) {
	if a.Unknown {
		return
	}
	c := Counts{Checks: 1}
	if !a.OK {
		c.Failures = 1
	}
	r.stats.Add(c)
	secs := a.Latency.Seconds()
	i, _ := slices.BinarySearch(LatencyBounds, secs)
	key := [2]string{a.Process, a.Monitor}
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.latencies[key]
	if h == nil {
		h = &Histogram{Counts: make([]uint64, len(LatencyBounds)+1)}
		r.latencies[key] = h
	}
	h.Counts[i]++
	h.Count++
	h.Sum += secs
}

// Latencies returns a copy of every monitor's latency histogram, ordered
// by process and monitor.
func (r *Recorder) Latencies() []Latency {
	r.mu.Lock()
	out := make([]Latency, 0, len(r.latencies))
	for k, h := range r.latencies {
		out = append(out, Latency{Process: k[0], Monitor: k[1],
			Histogram: Histogram{Counts: slices.Clone(h.Counts), Count: h.Count, Sum: h.Sum}})
	}
	r.mu.Unlock()
	slices.SortFunc(out, func(a, b Latency) int {
		return cmp.Or(cmp.Compare(a.Process, b.Process), cmp.Compare(a.Monitor, b.Monitor))
	})
	return out
}

// Reset clears the statistics (not the events, which are history, nor
// the latencies, which are a Prometheus counter).
func (r *Recorder) Reset() { r.stats.Reset() }
