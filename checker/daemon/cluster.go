package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/pcheck/pcheck/checker/cluster"
	"github.com/pcheck/pcheck/checker/engine"
	"github.com/pcheck/pcheck/checker/message"
	"github.com/pcheck/pcheck/pfile"
)

// newCluster returns the cluster side of p (ClusterNotify,
// ClusterHealthAttribute) under the rules of f until p's Instance runs.
func newCluster(p *runningPfile, f *pfile.File) *cluster.Cluster {
	return cluster.New(cluster.Options{
		Params: func() pfile.Params {
			if p.inst == nil {
				return f.Params
			}
			return p.inst.File().Params
		},
		States: func() []engine.State { return p.inst.States() },
		Log:    p.log,
	})
}

// clusterExit runs after a retry over with action exit ended p, before
// pcheck exits with status 3: it records the exit for the OCF agent's
// monitor and tells the cluster (ClusterNotify, ClusterHealthAttribute).
// Under the agent the retry counts of the process are cleared: the
// cluster restarts the resource here or moves it, Pacemaker's fail count
// is the count that matters from now on (migration-threshold ends a
// restart loop), and a pcheck restarted here with the old counts would at
// once be in retry over again.
func (d *daemon) clusterExit(ctx context.Context, p *runningPfile) {
	name, key := p.inst.ExitProcess()
	if err := cluster.WriteExitRecord(d.o.StateDir, p.path, name, ExitRetryOver, time.Now()); err != nil {
		p.log.Log(message.Err(fmt.Sprintf("pfile '%s': %v", p.path, err)))
	}
	p.cluster.RetryOver(ctx, name)
	if p.cluster.FromAgent() && p.store != nil {
		if err := p.store.SetAttempts(key, nil); err != nil {
			p.log.Log(message.Err(fmt.Sprintf("cluster: clearing the retry counts of '%s': %v", name, err)))
		}
	}
}
