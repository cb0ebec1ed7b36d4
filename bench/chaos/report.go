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
	receiver := "rsyslogd (stock imuxsock settings)"
	if s.rsyslog == nil {
		receiver = "chaos's own unixgram receiver (rsyslogd not installed)"
	}
	fmt.Fprintf(&b, `# Reliability: the fault-injection suite

Written by `+"`make chaos`"+` (bench/chaos) from its last run; do not edit by hand.

The suite runs the real pcheck binary (built from ./cmd/pcheck, in the foreground, with
`+"`--watch`"+`) over %d HTTP targets on loopback (bench/compare/cmd/target), each with a
restart script and a `+"`_bi_webserv`"+` stall monitor (interval %v, failover %v; every
fourth also a `+"`_bi_socket`"+` monitor). Syslog is a private rsyslogd with its stock
imuxsock settings (the receiver operators run; chaos falls back to a unixgram reader of its
own only where rsyslogd is not installed). The state directory is on a 2 MiB tmpfs the suite
mounts (as root; elsewhere the full-filesystem fault is skipped with a line saying so), the
run directory private. Chaos is the subreaper of everything it starts, and signals only the
processes it started (their command lines name its work directory).

Faults, one at a time, chosen at random from a printed seed: SIGKILL of a target; SIGSTOP
of a target for longer than failover (a hang pcheck must kill) and for less (pcheck must
leave it alone); kill -9 of pcheck and its restart, also with a target killed while pcheck
is down and while a slow restart script runs; SIGSTOP of pcheck; a second pcheck on the
pfile, plain and with `+"`--force`"+`; reloads by rename with a good and a bad pfile, and a
pfile written in place in two chunks 2 s apart; a deaf syslog (rsyslogd stopped, its queue
full, five targets killed at once); a full state filesystem; slow (2 s) and hung restart
scripts; floods of 200 raw control connections and 32 padmin runs.

After each fault chaos waits until every target is one process that serves and
`+"`padmin status`"+` is all Up, then checks:

- never two copies of a target (processes counted by their `+"`-id=`"+` argument), never
  two pchecks on the pfile;
- every death followed by exactly one restart: the target processes started and the
  restart-script runs equal the deaths chaos caused (a hung script adds one run);
- no healthy target killed: a target that served and that chaos neither killed nor
  stopped for longer than failover never dies and is never named by `+"`Killed Process`"+`;
  a target stopped for longer than failover is killed within failover plus 8 s;
- `+"`padmin status`"+` retries_used equal to the restart-script runs;
- pcheck's fds, threads and RSS do not grow beyond a bound over its first sample;
- a bad pfile is refused, a good one reloaded, a half-written one never read while open;
- a restart while syslog is deaf takes at most %v (some 30-70 ms otherwise).

SIGSTOP of pcheck is bounded at %v, below failover minus interval: longer freezes are a
known defect, scheduled as "freeze-proof failover" (`+"`-freeze-max`"+` allows them).

Repeat a run with `+"`make chaos CHAOS_TIME=%v CHAOS_SEED=%d`"+`; `+"`-faults`"+` applies a
subset (`+"`go run ./bench/chaos -h`"+`).

## Last run

- seed %d, %v of faults, %d targets
- machine: %d CPUs (%s), %s, %s memory, %s
- syslog: %s

`, len(s.targets), interval, failover, deafRestart, s.c.freezeMax, s.c.dur, s.c.seed,
		s.c.seed, s.ended.Sub(s.started).Round(time.Second), len(s.targets),
		m.NProc, m.CPU, m.Kernel, m.Memory, m.Go, receiver)
	s.table(&b)
	return b.String()
}
