package control

import (
	"sync"
	"time"
)

// The default statistics: an hour in minutes.
const (
	DefaultBuckets    = 60
	DefaultBucketSize = time.Minute
)

// Counts are what a pfile's statistics count: checks (stall monitor
// attempts and process checks), failures among them, and restart
// scripts run.
type Counts struct {
	Checks   int64 `json:"checks"`
	Failures int64 `json:"failures"`
	Restarts int64 `json:"restarts"`
}

func (c *Counts) add(d Counts) {
	c.Checks += d.Checks
	c.Failures += d.Failures
	c.Restarts += d.Restarts
}

// Bucket is the counts of one time bucket.
type Bucket struct {
	Start time.Time `json:"start"`
	Counts
}

// StatsResult is the answer to CmdStats.
type StatsResult struct {
	BucketSeconds float64 `json:"bucket_seconds"`
	// Buckets are the last NumBuckets buckets, newest (the current, still
	// filling) first.
	Buckets []Bucket `json:"buckets"`
	// Total counts everything since Since (start or the last reset);
	// Peak is the largest count of each kind in one bucket of those kept.
	Since time.Time `json:"since"`
	Total Counts    `json:"total"`
	Peak  Counts    `json:"peak"`
}

// Stats counts checks, failures and restarts per time bucket, like
// isectd's throughput buckets: NumBuckets buckets of BucketSize each, the
// oldest forgotten as time moves on. Buckets are numbered on the
// monotonic clock, so a change of the date neither empties nor merges
// them. It is safe for concurrent use.
type Stats struct {
	now func() time.Time

	mu      sync.Mutex
	size    time.Duration
	origin  time.Time // start of bucket 0
	buckets []slot
	since   time.Time
	total   Counts
}

// slot is one bucket of the ring and the bucket number it holds.
type slot struct {
	n int64
	Counts
}

// NewStats returns statistics of n buckets of size each (the defaults
// for values <= 0).
func NewStats(n int, size time.Duration) *Stats {
	s := &Stats{now: time.Now}
	s.Resize(n, size)
	return s
}

// Resize sets the number and size of the buckets and clears them; the
// totals are kept.
func (s *Stats) Resize(n int, size time.Duration) {
	if n <= 0 {
		n = DefaultBuckets
	}
	if size <= 0 {
		size = DefaultBucketSize
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.size = size
	s.origin = now
	s.buckets = make([]slot, n)
	for i := range s.buckets {
		s.buckets[i].n = -1
	}
	if s.since.IsZero() {
		s.since = now
	}
}

// Config returns the number and size of the buckets.
func (s *Stats) Config() (int, time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.buckets), s.size
}

// Add counts c in the current bucket.
func (s *Stats) Add(c Counts) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	n := int64(now.Sub(s.origin) / s.size)
	b := &s.buckets[n%int64(len(s.buckets))]
	if b.n != n {
		*b = slot{n: n}
	}
	b.add(c)
	s.total.add(c)
}

// Reset zeroes every bucket and the totals (padmin reset).
func (s *Stats) Reset() {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.buckets {
		s.buckets[i] = slot{n: -1}
	}
	s.total = Counts{}
	s.since = now
}

// Snapshot returns the buckets, newest first, and the totals.
func (s *Stats) Snapshot() StatsResult {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	res := StatsResult{BucketSeconds: s.size.Seconds(), Since: s.since, Total: s.total}
	cur := int64(now.Sub(s.origin) / s.size)
	for i := range int64(len(s.buckets)) {
		n := cur - i
		if n < 0 {
			break
		}
		b := Bucket{Start: s.origin.Add(time.Duration(n) * s.size)}
		if sl := s.buckets[n%int64(len(s.buckets))]; sl.n == n {
			b.Counts = sl.Counts
		}
		res.Peak.Checks = max(res.Peak.Checks, b.Checks)
		res.Peak.Failures = max(res.Peak.Failures, b.Failures)
		res.Peak.Restarts = max(res.Peak.Restarts, b.Restarts)
		res.Buckets = append(res.Buckets, b)
	}
	return res
}
