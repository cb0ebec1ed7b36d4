package metrics

import (
	"testing"
	"time"

	"github.com/pcheck/pcheck/checker/control"
	"github.com/pcheck/pcheck/checker/engine"
)

// pcheck_monitor_tls_not_after_seconds is exported for a monitor that
// reports its certificate's end, and only for it.
func TestTLSNotAfterGauge(t *testing.T) {
	notAfter := time.Unix(1800000000, 0)
	src := Source{
		Engine: fakeEngine{engine.Status{Pfile: "/etc/pcheck/web.pf"}},
		Monitors: func() []control.MonitorStatus {
			return []control.MonitorStatus{
				{Process: "nginx", Monitor: "webservs https://127.0.0.1:443/", State: control.MonitorOk, TLSNotAfter: notAfter},
				{Process: "nginx", Monitor: "webserv 127.0.0.1:80", State: control.MonitorOk},
			}
		},
	}
	fams := scrape(t, NewCollector("test", func() []Source { return []Source{src} }))
	const name = "pcheck_monitor_tls_not_after_seconds"
	if got := value(t, fams, name, map[string]string{"process": "nginx", "monitor": "webservs https://127.0.0.1:443/"}); got != 1800000000 {
		t.Errorf("%s = %v, want 1800000000", name, got)
	}
	if n := len(fams[name].Metric); n != 1 {
		t.Errorf("%s has %d series, want 1 (none for a monitor without a certificate)", name, n)
	}
}
