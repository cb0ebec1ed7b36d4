package stall

import (
	"time"

	"golang.org/x/sys/unix"
)

// Clock is the scheduler's time source. Now must return readings that carry
// a monotonic clock reading, as time.Now does: the scheduler only ever
// subtracts two of them (Sub), which Go does on the monotonic readings, so
// a step of the wall clock (date, NTP) can neither cause nor hide a stall.
// Tests replace it to move through intervals without waiting.
//
// Boot is CLOCK_BOOTTIME, which runs on while the node is suspended (the
// monotonic clock stops then): the failover compares the two to tell an
// attempt that overran its timeout because pcheck did not run.
type Clock interface {
	Now() time.Time
	Boot() time.Duration
	NewTimer(d time.Duration) Timer
}

// Timer is a one-shot timer of a Clock (time.Timer behind an interface).
type Timer interface {
	// C delivers the time once the timer fires.
	C() <-chan time.Time
	// Stop prevents the timer from firing; Reset rearms it. Both follow
	// time.Timer (Go 1.23 semantics: no stale value after either).
	Stop() bool
	Reset(d time.Duration) bool
}

// realClock is the system clock.
type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Boot() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0 // not on Linux: no suspend seen, the monotonic clock alone
	}
	return time.Duration(ts.Nano())
}

func (realClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time        { return r.t.C }
func (r realTimer) Stop() bool                 { return r.t.Stop() }
func (r realTimer) Reset(d time.Duration) bool { return r.t.Reset(d) }
