// Package metrics is pcheck's optional HTTP endpoint (pcheck --metrics
// ADDR): Prometheus metrics at /metrics, from a collector that reads, at
// each scrape, the state of every pfile a pcheck serves — process up,
// restarts, retry-window usage, resource use, stall monitor states and
// totals (attempts, failures, stalls), probe latency histograms, the
// reboot count — so nothing is counted twice and nothing is kept twice;
// and a read-only status page at / (status.json: its data) read from the
// same state.
// docs/metrics.md lists the metrics; rc/prometheus/pcheck-rules.yml holds
// the alert rules over them.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pcheck/pcheck/checker/control"
	"github.com/pcheck/pcheck/checker/engine"
	"github.com/pcheck/pcheck/checker/stall"
	"github.com/pcheck/pcheck/checker/states"
)

// Source is one pfile as the metrics see it.
type Source struct {
	// Engine gives the process entries. Required.
	Engine interface{ Snapshot() engine.Status }
	// Recorder gives the probe latency histograms. Optional.
	Recorder *control.Recorder
	// Monitors gives the stall monitors' states. Optional.
	Monitors func() []control.MonitorStatus
	// Reboots gives the auto-reboot count; ok false when AutoReboot is
	// off (the gauge is then 0). Optional.
	Reboots func() (n int, ok bool)
}

// processStates and monitorStates are the values of the state labels;
// both are package states' lists.
var (
	processStates = states.Processes()
	monitorStates = func() []string {
		var out []string
		for _, s := range stall.States() {
			out = append(out, s.String())
		}
		return out
	}()
)

var (
	procLabels = []string{"pfile", "process", "key"}
	monLabels  = []string{"pfile", "process", "monitor"}

	descStart          = prometheus.NewDesc("pcheck_start_time_seconds", "When monitoring of the pfile started, in seconds since the epoch.", []string{"pfile"}, nil)
	descReboots        = prometheus.NewDesc("pcheck_reboots", "Auto-reboots recorded inside RebootWindow (0 when AutoReboot is off).", []string{"pfile"}, nil)
	descUp             = prometheus.NewDesc("pcheck_process_up", "1 when the process entry is Up, else 0.", procLabels, nil)
	descState          = prometheus.NewDesc("pcheck_process_state", "1 for the state the process entry is in (Up, Down, Restarting, Paused, RetryOver), 0 for the others.", append(procLabels, "state"), nil)
	descRestarts       = prometheus.NewDesc("pcheck_process_restarts_total", "Restart scripts run for the process entry since pcheck started (reset by padmin reset).", procLabels, nil)
	descRetriesUsed    = prometheus.NewDesc("pcheck_process_retries_used", "Restart attempts inside the Grace window.", procLabels, nil)
	descRetriesAllowed = prometheus.NewDesc("pcheck_process_retries_allowed", "Restart attempts allowed inside the Grace window (RetryCount).", procLabels, nil)
	descCPU            = prometheus.NewDesc("pcheck_process_cpu_seconds_total", "CPU time of the Up entry's processes and their descendants (user, system, and of the children they waited for).", procLabels, nil)
	descRSS            = prometheus.NewDesc("pcheck_process_resident_memory_bytes", "Resident memory of the Up entry's processes and their descendants (shared pages counted in each).", procLabels, nil)
	descFDs            = prometheus.NewDesc("pcheck_process_open_fds", "Open file descriptors of the Up entry's processes and their descendants.", procLabels, nil)
	descProcStart      = prometheus.NewDesc("pcheck_process_start_time_seconds", "When the Up entry's oldest watched process started, in seconds since the epoch.", procLabels, nil)
	descBuild          = prometheus.NewDesc("pcheck_build_info", "pcheck's version and the Go version it was built with; the value is 1.", []string{"version", "goversion"}, nil)
	descMonState       = prometheus.NewDesc("pcheck_monitor_state", "1 for the state the stall monitor is in ("+strings.Join(monitorStates, ", ")+"), 0 for the others.", append(monLabels, "state"), nil)
	descMonAttempts    = prometheus.NewDesc("pcheck_monitor_attempts_total", "Stall monitor attempts.", monLabels, nil)
	descMonFailures    = prometheus.NewDesc("pcheck_monitor_failures_total", "Failed stall monitor attempts.", monLabels, nil)
	descMonStalls      = prometheus.NewDesc("pcheck_monitor_stalls_total", "Stalls the stall monitor found.", monLabels, nil)
	descMonSince       = prometheus.NewDesc("pcheck_monitor_seconds_since_success", "Seconds since the stall monitor's last successful attempt.", monLabels, nil)
	descMonTLSNotAfter = prometheus.NewDesc("pcheck_monitor_tls_not_after_seconds", "End of validity of the server certificate a _bi_webservs monitor with TLSExpiryWarn or TLSExpiryFail last saw, in seconds since the epoch.", monLabels, nil)
	descLatency        = prometheus.NewDesc("pcheck_probe_latency_seconds", "How long stall monitor attempts took.", monLabels, nil)
)

// Collector is a prometheus.Collector over the pfiles sources returns,
// called at every scrape (pfiles come and go with shutdown actions).
type Collector struct {
	version string
	sources func() []Source
}

// NewCollector returns a Collector over sources for pcheck version
// (pcheck_build_info).
func NewCollector(version string, sources func() []Source) *Collector {
	return &Collector{version: version, sources: sources}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descBuild, descStart, descReboots, descUp, descState, descRestarts,
		descRetriesUsed, descRetriesAllowed, descCPU, descRSS, descFDs, descProcStart, descMonState, descMonAttempts, descMonFailures, descMonStalls, descMonSince, descMonTLSNotAfter, descLatency} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(descBuild, prometheus.GaugeValue, 1, c.version, runtime.Version())
	for _, s := range c.sources() {
		collect(ch, s)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func collect(ch chan<- prometheus.Metric, s Source) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	st := s.Engine.Snapshot()
	pf := st.Pfile
	if !st.Started.IsZero() {
		gauge(descStart, float64(st.Started.UnixNano())/1e9, pf)
	}
	reboots := 0
	if s.Reboots != nil {
		if n, ok := s.Reboots(); ok {
			reboots = n
		}
	}
	gauge(descReboots, float64(reboots), pf)
	for _, p := range st.Processes {
		l := []string{pf, p.Name, p.Key}
		gauge(descUp, b2f(p.State == engine.StateUp), l...)
		for _, state := range processStates {
			gauge(descState, b2f(p.State == state), append(l, state.String())...)
		}
		counter(descRestarts, float64(p.Restarts), l...)
		gauge(descRetriesUsed, float64(p.RetriesUsed), l...)
		gauge(descRetriesAllowed, float64(p.RetriesAllowed), l...)
		if u := p.Usage; u != nil {
			counter(descCPU, u.CPUSeconds, l...)
			gauge(descRSS, float64(u.RSSBytes), l...)
			if u.FDs >= 0 {
				gauge(descFDs, float64(u.FDs), l...)
			}
			gauge(descProcStart, float64(u.Started.UnixNano())/1e9, l...)
		}
	}
	if s.Monitors != nil {
		seen := map[[2]string]int{}
		for _, m := range s.Monitors() {
			// Two identical blocks on one process would repeat a label
			// set, which Prometheus rejects: number the repeats.
			name := m.Monitor
			k := [2]string{m.Process, m.Monitor}
			if seen[k]++; seen[k] > 1 {
				name += " #" + strconv.Itoa(seen[k])
			}
			l := []string{pf, m.Process, name}
			for _, state := range monitorStates {
				gauge(descMonState, b2f(m.State == state), append(l, state)...)
			}
			counter(descMonAttempts, float64(m.Attempts), l...)
			counter(descMonFailures, float64(m.Failures), l...)
			counter(descMonStalls, float64(m.Stalls), l...)
			gauge(descMonSince, m.SinceSuccessSeconds, l...)
			if !m.TLSNotAfter.IsZero() {
				gauge(descMonTLSNotAfter, float64(m.TLSNotAfter.Unix()), l...)
			}
		}
	}
	if s.Recorder != nil {
		for _, lat := range s.Recorder.Latencies() {
			buckets := make(map[float64]uint64, len(control.LatencyBounds))
			var cum uint64
			for i, bound := range control.LatencyBounds {
				cum += lat.Counts[i]
				buckets[bound] = cum
			}
			ch <- prometheus.MustNewConstHistogram(descLatency, lat.Count, lat.Sum, buckets, pf, lat.Process, lat.Monitor)
		}
	}
}

// Handler returns the /metrics handler: c, and pcheck's own process and
// Go runtime metrics.
func Handler(c *Collector) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(c, collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collectors.NewGoCollector())
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError, Timeout: 10 * time.Second})
}

// Server is the metrics HTTP endpoint.
type Server struct {
	ln   net.Listener
	http *http.Server
	done chan error
}

// Listen starts serving c on addr (host:port) at /metrics, and the status
// page at / and /status.json; an address in use is an error now rather
// than later.
func Listen(addr string, c *Collector) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics endpoint: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", Handler(c))
	mux.HandleFunc("GET /{$}", c.servePage)
	mux.HandleFunc("GET /status.json", c.serveJSON)
	s := &Server{
		ln: ln,
		http: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: 5 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       60 * time.Second,
		},
		done: make(chan error, 1),
	}
	go func() {
		err := s.http.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.done <- err
	}()
	return s, nil
}

// Addr returns the address served (useful with port 0).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the endpoint, letting scrapes in progress finish for up to
// a few seconds.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	err := s.http.Shutdown(ctx)
	if e := <-s.done; err == nil {
		err = e
	}
	return err
}
