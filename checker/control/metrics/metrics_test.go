package metrics

import (
	"fmt"
	"io"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/pcheck/pcheck/checker/control"
	"github.com/pcheck/pcheck/checker/engine"
)

type fakeEngine struct{ st engine.Status }

func (f fakeEngine) Snapshot() engine.Status { return f.st }

// scrape serves c on a loopback port and parses one scrape.
func scrape(t *testing.T, c *Collector) map[string]*dto.MetricFamily {
	t.Helper()
	srv, err := Listen("127.0.0.1:0", c)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	resp, err := http.Get("http://" + srv.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parsing the scrape: %v\n%s", err, body)
	}
	return fams
}

// value returns the value of the series of name whose labels include
// want.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	t.Helper()
	f := fams[name]
	if f == nil {
		t.Fatalf("no metric %s", name)
	}
next:
	for _, m := range f.Metric {
		got := map[string]string{}
		for _, l := range m.Label {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	t.Fatalf("no series %s%v", name, want)
	return 0
}

func TestCollector(t *testing.T) {
	rec := control.NewRecorder(control.RecorderOptions{})
	rec.Attempt(control.Attempt{Process: "httpd", Monitor: "webserv :80", OK: true, Latency: 2 * time.Millisecond})
	rec.Attempt(control.Attempt{Process: "httpd", Monitor: "webserv :80", OK: false, Latency: 3 * time.Second})
	src := Source{
		Engine: fakeEngine{engine.Status{Pfile: "/etc/pcheck/web.pf", Started: time.Unix(1700000000, 0), Processes: []engine.ProcessStatus{
			{Name: "httpd", Key: "httpd /r.sh", State: engine.StateUp, Restarts: 2, RetriesUsed: 1, RetriesAllowed: 3,
				Usage: &engine.Usage{Started: time.Unix(1700000100, 500e6), CPUSeconds: 12.5, RSSBytes: 3 << 20, FDs: 17, Threads: 4, Children: 2}},
			{Name: "db", Key: "db /r.sh", State: engine.StateRetryOver, RetriesUsed: 3, RetriesAllowed: 3},
		}}},
		Recorder: rec,
		Monitors: func() []control.MonitorStatus {
			return []control.MonitorStatus{
				{Process: "httpd", Monitor: "webserv :80", State: control.MonitorInDoubt, Attempts: 2, Failures: 1, Stalls: 5, SinceSuccessSeconds: 4},
				{Process: "httpd", Monitor: "webserv :80", State: control.MonitorOk},
			}
		},
		Reboots: func() (int, bool) { return 1, true },
	}
	fams := scrape(t, NewCollector("test", func() []Source { return []Source{src} }))
	pf := "/etc/pcheck/web.pf"
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"pcheck_process_up", map[string]string{"pfile": pf, "process": "httpd"}, 1},
		{"pcheck_process_up", map[string]string{"process": "db"}, 0},
		{"pcheck_process_state", map[string]string{"process": "db", "state": "RetryOver"}, 1},
		{"pcheck_process_state", map[string]string{"process": "db", "state": "Up"}, 0},
		{"pcheck_process_restarts_total", map[string]string{"process": "httpd"}, 2},
		{"pcheck_process_retries_used", map[string]string{"process": "db"}, 3},
		{"pcheck_process_retries_allowed", map[string]string{"process": "db"}, 3},
		{"pcheck_monitor_state", map[string]string{"monitor": "webserv :80", "state": "In doubt"}, 1},
		{"pcheck_monitor_state", map[string]string{"monitor": "webserv :80 #2", "state": "Ok"}, 1},
		{"pcheck_monitor_attempts_total", map[string]string{"monitor": "webserv :80"}, 2},
		{"pcheck_monitor_failures_total", map[string]string{"monitor": "webserv :80"}, 1},
		{"pcheck_monitor_stalls_total", map[string]string{"monitor": "webserv :80"}, 5},
		{"pcheck_monitor_stalls_total", map[string]string{"monitor": "webserv :80 #2"}, 0},
		{"pcheck_monitor_seconds_since_success", map[string]string{"monitor": "webserv :80"}, 4},
		{"pcheck_probe_latency_seconds", map[string]string{"process": "httpd", "monitor": "webserv :80"}, 2},
		{"pcheck_reboots", map[string]string{"pfile": pf}, 1},
		{"pcheck_start_time_seconds", map[string]string{"pfile": pf}, 1700000000},
		{"pcheck_process_cpu_seconds_total", map[string]string{"pfile": pf, "process": "httpd", "key": "httpd /r.sh"}, 12.5},
		{"pcheck_process_resident_memory_bytes", map[string]string{"process": "httpd"}, 3 << 20},
		{"pcheck_process_open_fds", map[string]string{"process": "httpd"}, 17},
		{"pcheck_process_start_time_seconds", map[string]string{"process": "httpd"}, 1700000100.5},
		{"pcheck_build_info", map[string]string{"version": "test", "goversion": runtime.Version()}, 1},
	}
	for _, c := range checks {
		if got := value(t, fams, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	h := fams["pcheck_probe_latency_seconds"].Metric[0].Histogram
	var le5ms, le5s uint64
	for _, b := range h.Bucket {
		switch b.GetUpperBound() {
		case 0.005:
			le5ms = b.GetCumulativeCount()
		case 5:
			le5s = b.GetCumulativeCount()
		}
	}
	if le5ms != 1 || le5s != 2 || fmt.Sprintf("%.3f", h.GetSampleSum()) != "3.002" {
		t.Errorf("histogram: <=5ms %d, <=5s %d, sum %v", le5ms, le5s, h.GetSampleSum())
	}
	// An entry not Up has no resource figures.
	for _, name := range []string{"pcheck_process_cpu_seconds_total", "pcheck_process_resident_memory_bytes", "pcheck_process_open_fds", "pcheck_process_start_time_seconds"} {
		if n := len(fams[name].GetMetric()); n != 1 {
			t.Errorf("%s has %d series, want httpd's alone", name, n)
		}
	}
	if fams["process_resident_memory_bytes"] == nil {
		t.Error("pcheck's own process metrics are missing")
	}
}

// TestRebootsOff: with AutoReboot off the reboot gauge is 0.
func TestRebootsOff(t *testing.T) {
	src := Source{Engine: fakeEngine{engine.Status{Pfile: "a.pf"}}, Reboots: func() (int, bool) { return 0, false }}
	fams := scrape(t, NewCollector("test", func() []Source { return []Source{src} }))
	if v := value(t, fams, "pcheck_reboots", map[string]string{"pfile": "a.pf"}); v != 0 {
		t.Fatalf("pcheck_reboots %v", v)
	}
	if _, ok := fams["pcheck_start_time_seconds"]; ok {
		t.Fatal("start time of a pfile not started")
	}
}

func TestListenBusyAddress(t *testing.T) {
	srv, err := Listen("127.0.0.1:0", NewCollector("test", func() []Source { return nil }))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if _, err := Listen(srv.Addr(), NewCollector("test", func() []Source { return nil })); err == nil {
		t.Fatal("a second endpoint on the same address")
	}
}

// TestMonitorStateNames: the state label takes every stall state, Unknown
// included, by the names the control protocol (and padmin) use; a
// monitor Unknown is 1 for Unknown only, and an Unknown attempt is no
// check, failure or latency sample.
func TestMonitorStateNames(t *testing.T) {
	protocol := []string{control.MonitorPaused, control.MonitorOk, control.MonitorInDoubt, control.MonitorStalled, control.MonitorStopped, control.MonitorUnknown}
	if !slices.Equal(monitorStates, protocol) {
		t.Fatalf("stall's state names %q, the control protocol's %q", monitorStates, protocol)
	}
	rec := control.NewRecorder(control.RecorderOptions{})
	rec.Attempt(control.Attempt{Process: "httpd", Monitor: "cmd /opt/check", Unknown: true, Latency: time.Millisecond})
	src := Source{
		Engine:   fakeEngine{engine.Status{Pfile: "a.pf"}},
		Recorder: rec,
		Monitors: func() []control.MonitorStatus {
			return []control.MonitorStatus{{Process: "httpd", Monitor: "cmd /opt/check", State: control.MonitorUnknown, Attempts: 3,
				LastError: "check command /opt/check: fork/exec /opt/check: no such file or directory"}}
		},
	}
	fams := scrape(t, NewCollector("test", func() []Source { return []Source{src} }))
	for _, state := range monitorStates {
		want := 0.0
		if state == control.MonitorUnknown {
			want = 1
		}
		if got := value(t, fams, "pcheck_monitor_state", map[string]string{"monitor": "cmd /opt/check", "state": state}); got != want {
			t.Errorf("pcheck_monitor_state{state=%q} = %v, want %v", state, got, want)
		}
	}
	if got := value(t, fams, "pcheck_monitor_failures_total", map[string]string{"monitor": "cmd /opt/check"}); got != 0 {
		t.Errorf("failures %v, want 0", got)
	}
	if c := rec.Stats().Snapshot(); c.Total.Checks != 0 || c.Total.Failures != 0 {
		t.Errorf("an Unknown attempt counted in the statistics: %+v", c.Total)
	}
	if len(rec.Latencies()) != 0 {
		t.Errorf("an Unknown attempt has a latency sample: %+v", rec.Latencies())
	}
}
