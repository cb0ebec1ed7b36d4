package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/pcheck/pcheck/checker/cleanup"
	"github.com/pcheck/pcheck/checker/message"
	"github.com/pcheck/pcheck/checker/proc"
)

// sweep applies p's cleanup list every MonitorInterval until ctx ends.
// The rules and the interval are read again at every turn, so a reload
// takes effect at the next one; a pfile without Cleanup lines costs a
// timer only.
func (d *daemon) sweep(ctx context.Context, p *runningPfile) {
	s := &cleanup.Sweeper{Log: p.log, Protected: p.inst.Protected,
		Scan: func() ([]proc.Info, error) { return p.inst.Procs(ctx) }}
	defer s.Wait()
	for {
		prm := p.inst.File().Params
		t := time.NewTimer(prm.MonitorInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if p.ended.Load() {
			return // this pfile was shut down
		}
		prm = p.inst.File().Params
		s.Rules, s.KillWait = prm.Cleanup, prm.KillWait
		if err := s.Sweep(ctx); err != nil {
			p.log.Log(message.Warning(fmt.Sprintf("cleanup: %v", err)))
		}
	}
}
