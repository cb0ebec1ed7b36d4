package main

// End-to-end tests of the metrics endpoint with the real Prometheus tools
// (Debian's prometheus package, through checker/control/metrics/promtest):
// promtool lints a real pcheck's scrape, and a real prometheus scrapes two
// pcheck instances. Each pcheck watches a web service of its own (the test
// binary in the role of checker/stall/stalltest) with a _bi_webserv stall
// monitor, so that every metric family, the latency histogram among them,
// is in the scrape.

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/pcheck/pcheck/checker/control/metrics/promtest"
	"github.com/pcheck/pcheck/checker/stall/stalltest"
)

// metered is a pcheck serving metrics on addr for its pfile.
type metered struct {
	e    *e2e
	pc   *running
	addr string
}

// startMetered starts, in a directory of its own, a web service, and a
// pcheck watching it with a _bi_webserv block and serving metrics on a
// free loopback port.
func startMetered(t *testing.T, name string) *metered {
	t.Helper()
	dir := t.TempDir()
	s := newWebService(t, dir, name, "http", 200)
	e := stallSetup(t, dir, "continue", s.entry("webserv.blk"))
	port, err := stalltest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	s.start()
	m := &metered{e: e, addr: "127.0.0.1:" + strconv.Itoa(port)}
	m.pc = e.pcheck("--metrics", m.addr, e.pfile)
	return m
}

// scrape GETs /metrics once.
func (m *metered) scrape() ([]byte, error) {
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get("http://" + m.addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return io.ReadAll(resp.Body)
}

// parseExposition parses a scrape in the text format.
func parseExposition(body []byte) (map[string]*dto.MetricFamily, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(strings.NewReader(string(body)))
}

// waitFull waits for a scrape where the process is Up and its monitor's
// latency histogram has counted an attempt, and returns it.
func (m *metered) waitFull(t *testing.T) ([]byte, map[string]*dto.MetricFamily) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last string
	for {
		body, err := m.scrape()
		if err == nil {
			fams, perr := parseExposition(body)
			if perr != nil {
				t.Fatalf("parsing the scrape: %v\n%s", perr, body)
			}
			up, hist := fams["pcheck_process_up"], fams["pcheck_probe_latency_seconds"]
			if up != nil && len(up.Metric) == 1 && up.Metric[0].GetGauge().GetValue() == 1 &&
				hist != nil && len(hist.Metric) == 1 && hist.Metric[0].GetHistogram().GetSampleCount() > 0 {
				return body, fams
			}
			last = string(body)
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			t.Fatalf("no scrape of %s with the process Up and a probe attempt within 60 s; last:\n%s\npcheck stderr:\n%s", m.addr, last, m.pc.stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestMetricsPromtool: the scrape of a real pcheck (a process Up, a stall
// monitor that has made attempts) passes `promtool check metrics` without
// a remark, and pcheck sets neither instance nor job, the labels the
// scraping Prometheus owns.
func TestMetricsPromtool(t *testing.T) {
	t.Parallel()
	promtest.Look(t, "promtool")
	m := startMetered(t, "lint")
	body, fams := m.waitFull(t)
	out, err := promtest.Promtool(t, "", body, "check", "metrics")
	if err != nil || strings.TrimSpace(out) != "" {
		t.Fatalf("promtool check metrics: %v\n%s\nthe scrape:\n%s", err, out, body)
	}
	want := []string{"pcheck_process_up", "pcheck_process_state", "pcheck_process_restarts_total",
		"pcheck_process_retries_used", "pcheck_process_retries_allowed", "pcheck_monitor_state",
		"pcheck_monitor_attempts_total", "pcheck_monitor_failures_total", "pcheck_monitor_stalls_total",
		"pcheck_monitor_seconds_since_success", "pcheck_probe_latency_seconds", "pcheck_reboots",
		"pcheck_start_time_seconds", "pcheck_process_cpu_seconds_total", "pcheck_process_resident_memory_bytes",
		"pcheck_process_open_fds", "pcheck_process_start_time_seconds", "pcheck_build_info"}
	for _, name := range want {
		if fams[name] == nil {
			t.Errorf("the scrape has no %s", name)
		}
	}
	for name, f := range fams {
		for _, s := range f.Metric {
			for _, l := range s.Label {
				if l.GetName() == "instance" || l.GetName() == "job" {
					t.Errorf("%s has a %s label: the scraping Prometheus sets it", name, l.GetName())
				}
			}
		}
	}
	t.Logf("promtool check metrics on %d families: no remark", len(fams))
}

// TestPrometheusScrapesTwo: a real prometheus on loopback scrapes two
// pcheck instances (each with its own pfile, state and run directories
// and metrics port); its HTTP API answers pcheck_process_up of both, with
// the labels a fleet view groups by (pfile, process, instance, job), and
// /federate passes them on unchanged.
func TestPrometheusScrapesTwo(t *testing.T) {
	t.Parallel()
	promtest.Look(t, "prometheus")
	pchecks := []*metered{startMetered(t, "one"), startMetered(t, "two")}
	var targets []string
	for _, m := range pchecks {
		m.waitFull(t)
		targets = append(targets, fmt.Sprintf("%q", m.addr))
	}
	srv := promtest.Start(t, fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: pcheck
    static_configs:
      - targets: [%s]
`, strings.Join(targets, ", ")))

	want := map[string]map[string]string{} // by instance
	for _, m := range pchecks {
		want[m.addr] = map[string]string{"__name__": "pcheck_process_up", "job": "pcheck", "instance": m.addr,
			"pfile": m.e.pfile, "process": self}
	}
	deadline := time.Now().Add(60 * time.Second)
	var got []promtest.Sample
	for {
		var err error
		got, err = srv.Query("pcheck_process_up")
		if err != nil {
			t.Fatal(err)
		}
		if matchUp(got, want) == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus: pcheck_process_up within 60 s: %s\nlast answer: %v\nprometheus log:\n%s", matchUp(got, want), got, srv.Log())
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, s := range got {
		t.Logf("pcheck_process_up%v = %s", s.Labels, s.Value)
	}

	// What a global Prometheus federating this one receives.
	body, err := srv.Get("/federate?match[]=" + "pcheck_process_up")
	if err != nil {
		t.Fatal(err)
	}
	fams, err := parseExposition(body)
	if err != nil {
		t.Fatalf("parsing /federate: %v\n%s", err, body)
	}
	var fed []promtest.Sample
	for _, s := range fams["pcheck_process_up"].GetMetric() {
		l := map[string]string{"__name__": "pcheck_process_up"}
		for _, p := range s.Label {
			l[p.GetName()] = p.GetValue()
		}
		// /federate gives no TYPE for what it passes on: untyped.
		fed = append(fed, promtest.Sample{Labels: l, Value: strconv.FormatFloat(s.GetUntyped().GetValue(), 'g', -1, 64)})
	}
	if msg := matchUp(fed, want); msg != "" {
		t.Fatalf("/federate: %s\n%s", msg, body)
	}
}

// matchUp says how samples differ from one series of value 1 per instance
// of want, whose labels include want's; "" when they do not.
func matchUp(samples []promtest.Sample, want map[string]map[string]string) string {
	if len(samples) != len(want) {
		return fmt.Sprintf("%d series, want %d", len(samples), len(want))
	}
	var seen []string
	for _, s := range samples {
		inst := s.Labels["instance"]
		w, ok := want[inst]
		if !ok || slices.Contains(seen, inst) {
			return fmt.Sprintf("unexpected series %v", s.Labels)
		}
		seen = append(seen, inst)
		for k, v := range w {
			if s.Labels[k] != v {
				return fmt.Sprintf("series %v: %s=%q, want %q", s.Labels, k, s.Labels[k], v)
			}
		}
		if s.Value != "1" {
			return fmt.Sprintf("series %v = %s, want 1", s.Labels, s.Value)
		}
	}
	return ""
}
