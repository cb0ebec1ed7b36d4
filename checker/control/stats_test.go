package control

import (
	"testing"
	"time"
)

// fakeNow is a clock the test moves.
type fakeNow struct{ t time.Time }

func (f *fakeNow) now() time.Time          { return f.t }
func (f *fakeNow) advance(d time.Duration) { f.t = f.t.Add(d) }
func newFakeStats(n int, size time.Duration) (*Stats, *fakeNow) {
	clk := &fakeNow{t: time.Date(2025, 1, 2, 3, 4, 0, 0, time.UTC)}
	s := &Stats{now: clk.now}
	s.Resize(n, size)
	return s, clk
}

// TestStatsBuckets: counts land in the bucket of their time, the newest
// first; old buckets are forgotten as time moves on.
func TestStatsBuckets(t *testing.T) {
	s, clk := newFakeStats(3, 10*time.Second)
	s.Add(Counts{Checks: 1})
	clk.advance(5 * time.Second)
	s.Add(Counts{Checks: 1, Failures: 1})
	clk.advance(10 * time.Second) // bucket 1
	s.Add(Counts{Restarts: 1})
	clk.advance(20 * time.Second) // bucket 3: bucket 0 is gone
	s.Add(Counts{Checks: 4})

	res := s.Snapshot()
	if res.BucketSeconds != 10 || len(res.Buckets) != 3 {
		t.Fatalf("got %v s buckets x %d, want 10 x 3", res.BucketSeconds, len(res.Buckets))
	}
	want := []Counts{{Checks: 4}, {}, {Restarts: 1}}
	for i, b := range res.Buckets {
		if b.Counts != want[i] {
			t.Errorf("bucket %d: %+v, want %+v", i, b.Counts, want[i])
		}
	}
	if start := res.Buckets[0].Start; !start.Equal(time.Date(2025, 1, 2, 3, 4, 30, 0, time.UTC)) {
		t.Errorf("newest bucket starts %v", start)
	}
	if res.Total != (Counts{Checks: 6, Failures: 1, Restarts: 1}) {
		t.Errorf("total %+v", res.Total)
	}
	if res.Peak != (Counts{Checks: 4, Restarts: 1}) {
		t.Errorf("peak %+v", res.Peak)
	}

	s.Reset()
	res = s.Snapshot()
	if res.Total != (Counts{}) || res.Buckets[0].Counts != (Counts{}) {
		t.Fatalf("after Reset: %+v", res)
	}
}

// TestStatsYoung: a fresh Stats lists only the buckets that have begun.
func TestStatsYoung(t *testing.T) {
	s, clk := newFakeStats(60, time.Minute)
	clk.advance(90 * time.Second)
	if n := len(s.Snapshot().Buckets); n != 2 {
		t.Fatalf("%d buckets after 90 s, want 2", n)
	}
	s.Resize(0, 0)
	if n, size := s.Config(); n != DefaultBuckets || size != DefaultBucketSize {
		t.Fatalf("defaults %d x %v", n, size)
	}
}
