package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/pcheck/pcheck/bench/compare"
)

// invariantKinds are the violation kinds, in the table's order.
var invariantKinds = []string{
	"two copies", "two pchecks", "restarts per death", "script runs per death",
	"healthy target killed", "hang not killed", "death not logged", "retry count",
	"retry over", "resource growth", "not recovered", "half-written pfile read",
	"bad pfile not refused", "reload not applied", "restart held up by syslog",
	"restart with full state fs", "restart held up by control flood", "second pcheck",
}

// table is the run's result as Markdown tables.
func (s *suite) table(w io.Writer) {
	fmt.Fprintf(w, "| fault | applied |\n|---|---:|\n")
	total := 0
	for _, f := range faults {
		n := s.faults[f.name]
		total += n
		cell := fmt.Sprint(n)
		if f.name == "full state filesystem" && s.fullSkip != "" {
			cell = "skipped: " + s.fullSkip
		}
		fmt.Fprintf(w, "| %s | %s |\n", f.name, cell)
	}
	fmt.Fprintf(w, "| **total** | **%d** |\n\n", total)

	fmt.Fprintf(w, "| invariant | violations | first details |\n|---|---:|---|\n")
	kinds := append([]string(nil), invariantKinds...)
	for k := range s.viol {
		if !slices.Contains(kinds, k) {
			kinds = append(kinds, k)
		}
	}
	for _, k := range kinds {
		v := s.viol[k]
		var first []string
		for i, d := range v {
			if i == 3 {
				break
			}
			first = append(first, strings.ReplaceAll(d, "|", "\\|"))
		}
		fmt.Fprintf(w, "| %s | %d | %s |\n", k, len(v), strings.Join(first, "<br>"))
	}
	fmt.Fprintf(w, "| **total** | **%d** | |\n\n", s.violations())

	fmt.Fprintf(w, "| detection | worst | samples |\n|---|---:|---:|\n")
	var ms []string
	for k := range s.worst {
		ms = append(ms, k)
	}
	slices.Sort(ms)
	for _, k := range ms {
		fmt.Fprintf(w, "| %s | %v | %d |\n", k, s.worst[k].Round(time.Millisecond), s.samples[k])
	}
	fmt.Fprintf(w, "\npcheck's resources at rest: first %d fds, %d threads, %d MiB RSS; peak %d fds, %d threads, %d MiB RSS (allowed growth %d fds, %d threads, %d MiB).\n",
		s.base0.fds, s.base0.threads, s.base0.rss>>20, s.peak.fds, s.peak.threads, s.peak.rss>>20, fdGrowth, threadGrowth, rssGrowth>>20)
}

// printTable prints the result.
func (s *suite) printTable(w io.Writer) {
	fmt.Fprintf(w, "\nchaos: seed %d, %v of faults, %d targets\n\n", s.c.seed, s.ended.Sub(s.started).Round(time.Second), len(s.targets))
	s.table(w)
	if n := s.violations(); n > 0 {
		fmt.Fprintf(w, "\nchaos: %d invariant violations (CHAOS_SEED=%d to repeat)\n", n, s.c.seed)
	} else {
		fmt.Fprintln(w, "\nchaos: no invariant violated")
	}
}

// markdown is docs/reliability.md.
func (s *suite) markdown() string {
	var b strings.Builder
	m := compare.MachineInfo()
	receiver := "a private rsyslogd with its stock imuxsock settings"
	if s.rsyslog == nil {
		receiver = "chaos's own unixgram receiver (rsyslogd not installed)"
	}
	fmt.Fprintf(&b, `# Reliability: the fault-injection suite

Written by `+"`make chaos`"+` (bench/chaos) from its last run; do not edit by hand.

The suite runs the real pcheck binary (built from ./cmd/pcheck, foreground, `+"`--watch`"+`)
over %d HTTP targets on loopback (bench/compare/cmd/target), each with a restart script
and a `+"`_bi_webserv`"+` stall monitor (interval %v, failover %v; every fourth also a
`+"`_bi_socket`"+` monitor), with %s as syslog, and a private state directory
(on a 2 MiB tmpfs it mounts, as root) and run directory. It applies random faults one at a
time, seeded, waits until every target is up and serving and `+"`padmin status`"+` is all Up,
and checks the invariants after each fault:

- never two copies of a target (target processes counted by their `+"`-id=`"+` argument),
  never two pchecks on the pfile;
- every death followed by exactly one restart: the target processes started and the
  restart-script runs equal the deaths chaos caused (a hung script adds one run);
- no healthy target killed: a target that served and that chaos neither killed nor
  stopped for longer than failover never dies and is never named by `+"`Killed Process`"+`;
  a target stopped for longer than failover is killed;
- `+"`padmin status`"+` retries_used equal to the restart-script runs;
- pcheck's fds, threads and RSS do not grow beyond a bound over its first sample;
- a bad pfile is refused, a good one reloaded, a half-written one never read while open.

SIGSTOP of pcheck is bounded at %v (below failover minus interval): longer freezes are a
known defect, scheduled as "freeze-proof failover" (`+"`-freeze-max`"+` allows them).

Repeat with `+"`make chaos CHAOS_TIME=%v CHAOS_SEED=%d`"+`.

## Last run

- seed %d, %v of faults, %d targets
- machine: %d CPUs (%s), %s, %s memory, %s
- syslog: %s

`, len(s.targets), interval, failover, receiver, s.c.freezeMax, s.c.dur, s.c.seed,
		s.c.seed, s.ended.Sub(s.started).Round(time.Second), len(s.targets),
		m.NProc, m.CPU, m.Kernel, m.Memory, m.Go, receiver)
	s.table(&b)
	return b.String()
}
