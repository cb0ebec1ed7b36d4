package engine

import (
	"slices"
	"time"
)

// window holds the restart attempts of one process entry and answers
// whether another is allowed: at most retry attempts inside the last grace.
type window struct {
	attempts []time.Time // oldest first
}

// prune forgets the attempts older than grace before now.
func (w *window) prune(now time.Time, grace time.Duration) {
	cut := now.Add(-grace)
	i := 0
	for i < len(w.attempts) && !w.attempts[i].After(cut) {
		i++
	}
	w.attempts = slices.Delete(w.attempts, 0, i)
}

// used returns the attempts inside the window ending at now.
func (w *window) used(now time.Time, grace time.Duration) int {
	w.prune(now, grace)
	return len(w.attempts)
}

// allow reports whether another attempt may be made at now.
func (w *window) allow(now time.Time, retry int, grace time.Duration) bool {
	return w.used(now, grace) < retry
}

// record adds an attempt made at now.
func (w *window) record(now time.Time) { w.attempts = append(w.attempts, now) }

// reset forgets every attempt.
func (w *window) reset() { w.attempts = nil }
