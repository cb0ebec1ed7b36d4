package daemon

import (
	"fmt"

	"github.com/pcheck/pcheck/checker/control"
	"github.com/pcheck/pcheck/checker/control/metrics"
	"github.com/pcheck/pcheck/checker/message"
	"github.com/pcheck/pcheck/checker/stall"
	"github.com/pcheck/pcheck/pfile"
)

// serveControl opens the control socket of every pfile in the run
// directory and, with --metrics, the Prometheus endpoint. A socket or an
// endpoint that cannot be opened is logged and monitoring goes on
// without it: padmin then says no pcheck serves the pfile.
func (d *daemon) serveControl() {
	if d.runOK { // checked at start
		for _, p := range d.pfiles {
			d.openControl(p)
		}
	}
	if d.o.MetricsAddr != "" {
		m, err := metrics.Listen(d.o.MetricsAddr, metrics.NewCollector(d.o.Version, d.metricSources))
		if err != nil {
			d.main.Log(message.Err(fmt.Sprintf("--metrics: %v", err)))
			return
		}
		d.metrics = m
	}
}

// openControl opens and serves the control socket of p.
func (d *daemon) openControl(p *runningPfile) {
	srv, err := control.Listen(control.SocketPath(d.o.RunDir, p.path), control.Target{
		Engine:   p.inst,
		Recorder: p.rec,
		Reload:   func() error { return d.reload(p) },
		Monitors: p.monitorStatus,
		Reboots:  func() (int, bool) { return d.rebootCount(p) },
		ResetReboots: func() error {
			if !p.inst.File().Params.AutoReboot {
				return nil
			}
			return d.rebooter(p).Reset()
		},
	})
	if err != nil {
		p.log.Log(message.Err(fmt.Sprintf("pfile '%s': %v; padmin cannot reach it", p.path, err)))
		return
	}
	p.ctl = srv
	go srv.Serve()
}

// closeControl closes the control socket of p (its pfile stopped).
func (p *runningPfile) closeControl() {
	if p.ctl != nil {
		p.ctl.Close()
		p.ctl = nil
	}
}

// closeControlAll closes every control socket and the metrics endpoint.
func (d *daemon) closeControlAll() {
	for _, p := range d.pfiles {
		p.closeControl()
	}
	if d.metrics != nil {
		d.metrics.Close()
		d.metrics = nil
	}
}

// rebootCount is the auto-reboot count of p; ok is false when AutoReboot
// is off or the count cannot be read.
func (d *daemon) rebootCount(p *runningPfile) (int, bool) {
	if !p.inst.File().Params.AutoReboot {
		return 0, false
	}
	n, err := d.rebooter(p).Count()
	return n, err == nil
}

// attempt feeds one stall-monitor attempt to the statistics and the
// latency histogram, under the monitor name status and the metrics use.
func (p *runningPfile) attempt(a stall.Attempt) {
	p.rec.Attempt(control.Attempt{Process: a.Process, Monitor: monitorName(a.Kind, a.Target), OK: a.OK, Unknown: a.Unknown, Latency: a.Latency})
}

// monitorName names a monitor "<kind> <target>" in status and metrics.
func monitorName(kind pfile.Kind, target string) string { return fmt.Sprintf("%s %s", kind, target) }

// monitorStatus is the state of p's stall monitors for padmin status and
// the metrics.
func (p *runningPfile) monitorStatus() []control.MonitorStatus {
	if p.inst == nil {
		return nil
	}
	ms := p.inst.Monitors()
	out := make([]control.MonitorStatus, 0, len(ms))
	for _, m := range ms {
		out = append(out, control.MonitorStatus{
			Process:             m.Process,
			Key:                 m.Key,
			Monitor:             monitorName(m.Kind, m.Target),
			State:               m.State.String(),
			SinceSuccessSeconds: m.SinceSuccess.Seconds(),
			Attempts:            int64(m.Attempts),
			Failures:            int64(m.Failures),
			Stalls:              int64(m.Stalls),
			LastLatencySeconds:  m.LastLatency.Seconds(),
			LastError:           m.LastError,
			TLSNotAfter:         m.TLSNotAfter,
			AcceptQueue:         m.AcceptQueue,
			Backlog:             m.Backlog,
		})
	}
	return out
}

// metricSources are the pfiles still monitored, for a scrape.
func (d *daemon) metricSources() []metrics.Source {
	var out []metrics.Source
	for _, p := range d.pfiles {
		if p.ended.Load() || p.inst == nil {
			continue
		}
		out = append(out, metrics.Source{
			Engine:   p.inst,
			Recorder: p.rec,
			Monitors: p.monitorStatus,
			Reboots:  func() (int, bool) { return d.rebootCount(p) },
		})
	}
	return out
}
