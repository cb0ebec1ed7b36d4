package daemon

import (
	"context"
	"runtime/debug"
)

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
