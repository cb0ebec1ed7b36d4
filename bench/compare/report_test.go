package compare

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func summaryOf(d ...time.Duration) Summary { return Summarize(d) }

func TestReportVerdicts(t *testing.T) {
	ms := time.Millisecond
	o := Options{}
	o.defaults()
	r := &Report{
		Date:     time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC),
		Machine:  Machine{NProc: 2, CPU: "Test CPU", Kernel: "Linux 6.1", Memory: "1.0 GiB", Go: "go1.26"},
		Versions: map[string]string{Pcheck: "pcheck 1.0", Monit: "This is Monit version 5.33.0", Supervisord: "4.2.5"},
		Opts:     o,
		Death: []DeathResult{
			{Monitor: Pcheck, Script: summaryOf(4*ms, 5*ms, 6*ms), Exec: summaryOf(8 * ms), Serve: summaryOf(10 * ms), Scripts: 3, Execs: 3, Early: 1},
			{Monitor: Monit, Script: summaryOf(500*ms, 600*ms), Exec: summaryOf(510 * ms), Serve: summaryOf(520 * ms), Scripts: 2, Execs: 2},
			{Monitor: Supervisord, Err: errors.New("supervisord: boom | pipe")},
		},
		Stall: []StallResult{
			{Monitor: Pcheck, Pending: "not wired"},
			{Monitor: Monit, Kill: summaryOf(9 * time.Second), Serve: summaryOf(10 * time.Second)},
			{Monitor: Supervisord, NA: "no built-in health check"},
		},
		Load: []LoadResult{
			{Monitor: Pcheck, Targets: 200, CPU: time.Second, Window: time.Minute, PeakRSS: 20 << 20, UpTime: 100 * ms},
			{Monitor: Monit, Targets: 200, CPU: 10 * time.Second, Window: time.Minute, PeakRSS: 10 << 20, UpTime: 900 * ms},
			{Monitor: Pcheck, Targets: 1000, CPU: 3 * time.Second, Window: time.Minute, PeakRSS: 30 << 20, UpTime: 300 * ms},
			{Monitor: Monit, Targets: 1000, CPU: 12 * time.Second, Window: time.Minute, PeakRSS: 40 << 20, UpTime: 1900 * ms, Checks: 1.01},
		},
	}
	md := r.Markdown()
	for _, want := range []string{
		"| date | 2026-01-02 03:04 UTC |",
		"2 CPUs (nproc), Test CPU, 1.0 GiB RAM",
		// W1: 550 / 5 = 110 times faster, 2.2 times the 50 asked.
		"5.00 ms vs 550.0 ms: 110× faster | met, with a margin of 2.2× |",
		"| W2: pcheck's hang → kill within failover + interval + attempt timeout (7s) | pending | not wired |",
		// W3 200: a tenth of monit's CPU, but twice its memory.
		"| W3 200 targets: pcheck's CPU at most 1/5 of monit's | 1.00 s vs 10.00 s: 0.100 of monit's | met, with a margin of 2.0× |",
		"| W3 200 targets: pcheck's peak RSS no more than monit's | 20.0 MiB vs 10.0 MiB: 2.00 of monit's | **not met**: 2.0× off |",
		"| W3 1000 targets: pcheck's CPU at most 1/5 of monit's | 3.00 s vs 12.00 s: 0.250 of monit's | **not met**",
		"| pcheck | 200 | 1.00 s (1.67%) | 20.0 MiB | 100.0 ms | 0.00 | 0 |",
		"| monit | 1000 | 12.00 s (20.00%) | 40.0 MiB | 1900 ms | 1.01 | 0 |",
		"**pcheck's TCP checks did not run in this build**",
		"| pcheck | 5.00 ms | 6.00 ms | 6.00 ms | 8.00 ms |",
		"| supervisord | failed: supervisord: boom / pipe |",
		"| 10.0 ms | 10.0 ms | 10.0 ms | 1 of 2 | 3 / 3 |",
		"pcheck 1 of 2 kills.",
		"| pcheck / monit | 0.0091 |",
		"| monit | 9000 ms | 9000 ms | 9000 ms | 10000 ms |",
		"| supervisord | n/a: no built-in health check |",
		"| pcheck / monit | 200 | 0.100 | 2.00 | 0.111 |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(md)
	}
}
