package daemon

import (
	"context"
	"os"
	"runtime/debug"
)

// GCPercent is the garbage collector's GOGC for pcheck, unless the
// environment sets GOGC. pcheck's live heap is small (about 4 MB with
// 1,000 entries) and, once started, it allocates little: at Go's default
// of 100 the heap grows to twice the live one before a collection, and the
// start (parsing, the first /proc scan, every entry's first look) peaks at
// several times the idle heap. At 25 the start's peak resident memory with
// 1,000 entries is 4-7 MB lower (33-35 -> 26-30 MB in bench/idle) for ~0.1 s more
// CPU at start; idle and under steady probing the collector runs no more
// often than before but for its garbage. No memory limit is set: a limit
// makes the collector work harder as the heap nears it, and a monitor must
// not spend its CPU collecting (GOMEMLIMIT in the environment still
// applies).
const GCPercent = 25

// TuneGC sets the collector for a pcheck process: GOGC GCPercent unless
// the environment sets GOGC. It is the main program's to call, once, before
// Run.
func TuneGC() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(GCPercent)
	}
}

// settleMemory returns the memory of pcheck's start to the system once
// every pfile's first look for its processes is over: parsing, the first
// full /proc scan and matching every entry against it leave a heap several
// times the size pcheck then idles with, and the goroutines' stacks grown
// meanwhile. One collection now (debug.FreeOSMemory) shrinks the stacks of
// the idle entries and gives the free heap back at once, instead of over
// the minutes the background scavenger would take; it costs a few
// milliseconds once.
func (d *daemon) settleMemory(ctx context.Context) {
	for _, p := range d.pfiles {
		select {
		case <-p.inst.Adopted():
		case <-ctx.Done():
			return
		}
	}
	debug.FreeOSMemory()
}
