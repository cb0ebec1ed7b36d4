package daemon

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/pcheck/pcheck/checker/message"
	"github.com/pcheck/pcheck/checker/reboot"
	"github.com/pcheck/pcheck/checker/state"
)

// rebooter returns the auto-reboot of p under its current rules; the
// count lives in RebootStateFile, by default <state-dir>/<name>.reboot.
func (d *daemon) rebooter(p *runningPfile) *reboot.Rebooter {
	prm := p.inst.File().Params
	file := prm.RebootStateFile
	if file == "" {
		file = filepath.Join(d.o.StateDir, state.Name(p.path)+".reboot")
	}
	return &reboot.Rebooter{
		File: file, Limit: prm.RebootLimit, Window: prm.RebootWindow,
		Command: prm.RebootCommand, Log: p.log,
	}
}

// autoReboot runs after a retry over with action exit ended p: with
// AutoReboot on, the node is rebooted unless the reboot-count threshold
// is reached, and the retry counts of the process are cleared for the
// rebooted node. pcheck exits with status 3 either way.
func (d *daemon) autoReboot(ctx context.Context, p *runningPfile) {
	if !p.inst.File().Params.AutoReboot {
		return
	}
	name, key := p.inst.ExitProcess()
	rebooted, err := d.rebooter(p).Trigger(ctx, name)
	if err != nil {
		p.log.Log(message.Err(fmt.Sprintf("auto reboot: %v", err)))
	}
	if rebooted && p.store != nil {
		// The node starts afresh: the retries that led to this reboot
		// must not turn the first failure after it into another retry
		// over. RebootLimit still ends a reboot loop.
		if err := p.store.SetAttempts(key, nil); err != nil {
			p.log.Log(message.Err(fmt.Sprintf("auto reboot: clearing the retry counts: %v", err)))
		}
	}
}
