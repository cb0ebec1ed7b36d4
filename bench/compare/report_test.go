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
			{Monitor: Floor, Targets: 200, Check: CheckTCP, CPU: 800 * ms, Window: time.Minute, PeakRSS: 2 << 20, Checks: 1},
			{Monitor: Pcheck, Targets: 200, Check: CheckTCP, CPU: time.Second, Window: time.Minute, PeakRSS: 20 << 20, AnonRSS: 6 << 20, FileRSS: 12 << 20, UpTime: 100 * ms},
			{Monitor: Monit, Targets: 200, Check: CheckTCP, CPU: 10 * time.Second, Window: time.Minute, PeakRSS: 10 << 20, UpTime: 900 * ms},
			{Monitor: Floor, Targets: 200, Check: CheckHTTP, CPU: 1200 * ms, Window: time.Minute, PeakRSS: 3 << 20, Checks: 0.99},
			{Monitor: Pcheck, Targets: 200, Check: CheckHTTP, CPU: 1800 * ms, Window: time.Minute, PeakRSS: 21 << 20, UpTime: 110 * ms, Checks: 1},
			{Monitor: Monit, Targets: 200, Check: CheckHTTP, Err: errors.New("monit: 3 of 200 services OK")},
			{Monitor: Floor, Targets: 1000, Check: CheckTCP, CPU: 2 * time.Second, Window: time.Minute, PeakRSS: 4 << 20, Checks: 1},
			{Monitor: Pcheck, Targets: 1000, Check: CheckTCP, CPU: 3 * time.Second, Window: time.Minute, PeakRSS: 7 << 20, UpTime: 300 * ms, Checks: 1},
			{Monitor: Monit, Targets: 1000, Check: CheckTCP, CPU: 12 * time.Second, Window: time.Minute, PeakRSS: 40 << 20, UpTime: 1900 * ms, Checks: 1.01},
			// No HTTP floor at 1000 targets: its ratios are not measured.
			{Monitor: Pcheck, Targets: 1000, Check: CheckHTTP, CPU: 4 * time.Second, Window: time.Minute, PeakRSS: 31 << 20, UpTime: 320 * ms, Checks: 1},
			{Monitor: Monit, Targets: 1000, Check: CheckHTTP, CPU: 16 * time.Second, Window: time.Minute, PeakRSS: 41 << 20, UpTime: 2000 * ms, Checks: 0.9},
			{Monitor: Supervisord, Targets: 200, Check: CheckNone, CPU: 400 * ms, Window: time.Minute, PeakRSS: 27 << 20, UpTime: 5 * time.Second},
		},
	}
	md := r.Markdown()
	for _, want := range []string{
		"| date | 2026-01-02 03:04 UTC |",
		"2 CPUs (nproc), Test CPU, 1.0 GiB RAM",
		// W1: 550 / 5 = 110 times faster, 2.2 times the 50 asked.
		"5.00 ms vs 550.0 ms: 110× faster | met, with a margin of 2.2× |",
		"| W2: pcheck's hang → kill within failover + interval + attempt timeout (7s) | pending | not wired |",
		// The cost issue's targets: W1 at most 10 ms (5 ms: met twice
		// over), cadence, and peak RSS at 200 and 1000 targets.
		"| W1: pcheck's median kill → restart script at most 10ms | 5.00 ms | met, with a margin of 2.0× |",
		"| W3 200 targets, _bi_socket TCP connect: pcheck's cadence at least 0.99 checks per target per second | 0.00 | **not met**",
		"| W3 1000 targets, _bi_socket TCP connect: pcheck's cadence at least 0.99 checks per target per second | 1.00 | met, with a margin of 1.0× |",
		"| W3 200 targets, _bi_socket TCP connect: pcheck's peak RSS at most 10.0 MiB | 20.0 MiB (at the end: 6.0 MiB anonymous, 12.0 MiB file-backed) | **not met**: 2.0× off |",
		"| W3 1000 targets, _bi_socket TCP connect: pcheck's peak RSS at most 14.0 MiB | 7.0 MiB (at the end: — anonymous, — file-backed) | met, with a margin of 2.0× |",
		// W3 200: a tenth of monit's CPU, but twice its memory.
		"| W3 200 targets, _bi_socket TCP connect: pcheck's CPU at most 1/5 of monit's | 1.00 s vs 10.00 s: 0.100 of monit's | met, with a margin of 2.0× |",
		"| W3 200 targets, _bi_socket TCP connect: pcheck's peak RSS no more than monit's | 20.0 MiB vs 10.0 MiB: 2.00 of monit's | **not met**: 2.0× off |",
		"| W3 1000 targets, _bi_socket TCP connect: pcheck's CPU at most 1/5 of monit's | 3.00 s vs 12.00 s: 0.250 of monit's | **not met**",
		// The floor targets: 1 / 0.8 = 1.25 met exactly, 1.8 / 1.2 = 1.5
		// not, 3 / 2 = 1.5 not; none measured without the floor.
		"| W3 200 targets, _bi_socket TCP connect: pcheck's CPU at most 1.25× the floor's | 1.00 s vs 0.80 s: 1.25× floor | met, with a margin of 1.0× |",
		"| W3 200 targets, _bi_webserv HEAD: pcheck's CPU at most 1.25× the floor's | 1.80 s vs 1.20 s: 1.50× floor | **not met**: 1.2× off |",
		"| W3 1000 targets, _bi_socket TCP connect: pcheck's CPU at most 1.25× the floor's | 3.00 s vs 2.00 s: 1.50× floor | **not met**: 1.2× off |",
		"| W3 1000 targets, _bi_webserv HEAD: pcheck's CPU at most 1.25× the floor's | incomplete | not measured |",
		"| W3 200 targets, _bi_webserv HEAD: pcheck's CPU at most 1/5 of monit's, RSS no more | incomplete | not measured |",
		"| W3 1000 targets, _bi_webserv HEAD: pcheck's CPU at most 1/5 of monit's | 4.00 s vs 16.00 s: 0.250 of monit's | **not met**",
		// The W3 tables, one per check, with every CPU as a multiple of
		// the floor's at the same size and check.
		"### W3 with a _bi_socket TCP connect check every 1 s",
		"### W3 with a _bi_webserv HEAD check every 1 s",
		"| floor | 200 | 0.80 s (1.33%) | 1.00× floor | 2.0 MiB | — + — | — | 1.00 | — |",
		"| pcheck | 200 | 1.00 s (1.67%) | 1.25× floor | 20.0 MiB | 6.0 MiB + 12.0 MiB | 100.0 ms | 0.00 | 0 |",
		"| monit | 200 | 10.00 s (16.67%) | 12.50× floor | 10.0 MiB | — + — | 900.0 ms | 0.00 | 0 |",
		"| monit | 1000 | 12.00 s (20.00%) | 6.00× floor | 40.0 MiB | — + — | 1900 ms | 1.01 | 0 |",
		"| floor | 200 | 1.20 s (2.00%) | 1.00× floor | 3.0 MiB | — + — | — | 0.99 | — |",
		"| pcheck | 200 | 1.80 s (3.00%) | 1.50× floor | 21.0 MiB | — + — | 110.0 ms | 1.00 | 0 |",
		"| monit | 200 | failed: monit: 3 of 200 services OK |",
		"| pcheck | 1000 | 4.00 s (6.67%) | — | 31.0 MiB | — + — | 320.0 ms | 1.00 | 0 |",
		"| monit | 1000 | 16.00 s (26.67%) | — | 41.0 MiB | — + — | 2000 ms | 0.90 | 0 |",
		// supervisord, without checks, against each check's floor.
		"| supervisord (no check) | 200 | 0.40 s (0.67%) | 0.50× floor | 27.0 MiB | — + — | 5000 ms | 0.00 | 0 |",
		"| supervisord (no check) | 200 | 0.40 s (0.67%) | 0.33× floor | 27.0 MiB | — + — | 5000 ms | 0.00 | 0 |",
		"**pcheck's TCP checks did not run in this build**",
		"W3 10s warm-up after all targets are up, then 1m0s measured, at each of tcp and http checks",
		"| pcheck | 5.00 ms | 6.00 ms | 6.00 ms | 8.00 ms |",
		"| supervisord | failed: supervisord: boom / pipe |",
		"| 10.0 ms | 10.0 ms | 10.0 ms | 1 of 2 | 3 / 3 |",
		"pcheck 1 of 2 kills.",
		"| pcheck / monit | 0.0091 |",
		"| monit | 9000 ms | 9000 ms | 9000 ms | 10000 ms |",
		"| supervisord | n/a: no built-in health check |",
		"| pcheck / monit | 200 | 0.100 | 2.00 | 0.111 |",
		"| pcheck / monit | 1000 | 0.250 | 0.175 | 0.158 |",
		"| pcheck / monit | 1000 | 0.250 | 0.756 | 0.160 |",
		"| pcheck / supervisord | 200 | 2.50 | 0.741 | 0.020 |",
		"| pcheck / supervisord | 200 | 4.50 | 0.778 | 0.022 |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	// Only the TCP table has pcheck's checks missing; the HTTP one has
	// them (1 per target per second).
	if n := strings.Count(md, "checks did not run in this build"); n != 1 {
		t.Errorf("%d warnings that pcheck's checks did not run, want 1 (TCP)", n)
	}
	// The table of each check has that check's rows and supervisord's.
	_, httpPart, _ := strings.Cut(md, "### W3 with a _bi_webserv HEAD check")
	httpPart, _, _ = strings.Cut(httpPart, "## What differs")
	if strings.Contains(httpPart, "| 0.80 s (1.33%)") || !strings.Contains(httpPart, "| supervisord (no check) |") {
		t.Errorf("the HTTP table holds a TCP row or lacks supervisord's:\n%s", httpPart)
	}
	if t.Failed() {
		t.Log(md)
	}
}
