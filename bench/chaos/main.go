// Command chaos is pcheck's fault-injection suite (make chaos). For a fixed
// time it runs the real pcheck binary over 20+ real HTTP targets on
// loopback, each with a restart script and a _bi_webserv stall monitor
// (some also _bi_socket), with a real syslog receiver, and applies random,
// seeded faults one after the other: SIGKILL and SIGSTOP of targets, kill -9
// and SIGSTOP of pcheck, reloads with good, bad and half-written pfiles, a
// deaf syslog, a full state filesystem, slow and hung restart scripts and
// control-socket floods. After every fault it waits for the system to
// settle and checks its invariants; at the end it prints a table, writes
// docs/reliability.md and exits non-zero on any violation.
//
//	chaos [-time 10m] [-seed N] [-targets 22] [-freeze-max 3s] [-report docs/reliability.md] [-keep]
//
// CHAOS_TIME and CHAOS_SEED stand for -time and -seed. Run as root for the
// full-state-filesystem fault (it mounts a small tmpfs); elsewhere that
// fault is skipped with a line saying so.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

// config is the command line.
type config struct {
	dur       time.Duration
	seed      int64
	targets   int
	freezeMax time.Duration
	report    string
	keep      bool
	pcheckSrc string // the module root to build pcheck from
	only      string // comma-separated fault names to apply (all when empty)
}

func main() { os.Exit(run()) }

func run() int {
	var c config
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	defDur := 10 * time.Minute
	if v := os.Getenv("CHAOS_TIME"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			fmt.Fprintf(os.Stderr, "chaos: CHAOS_TIME=%q: %v\n", v, err)
			return 2
		}
		defDur = d
	}
	defSeed := time.Now().UnixNano()
	if v := os.Getenv("CHAOS_SEED"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			fmt.Fprintf(os.Stderr, "chaos: CHAOS_SEED=%q: %v\n", v, err)
			return 2
		}
		defSeed = n
	}
	fs.DurationVar(&c.dur, "time", defDur, "how long to apply faults (CHAOS_TIME)")
	fs.Int64Var(&c.seed, "seed", defSeed, "random seed (CHAOS_SEED); printed at start")
	fs.IntVar(&c.targets, "targets", 22, "number of targets")
	fs.DurationVar(&c.freezeMax, "freeze-max", 3*time.Second,
		"longest SIGSTOP of pcheck; keep it below failover minus interval (4 s): longer freezes are a known defect (freeze-proof failover, next issue)")
	fs.StringVar(&c.report, "report", "docs/reliability.md", "file to write the report to (\"\" for none)")
	fs.BoolVar(&c.keep, "keep", false, "keep the work directory (it is kept anyway on a violation)")
	fs.StringVar(&c.pcheckSrc, "src", ".", "the pcheck module to build pcheck, padmin and the target from")
	fs.StringVar(&c.only, "faults", "", "apply only these faults: comma-separated words of their names (e.g. \"half,hang\")")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
	}
	if c.targets < 2 {
		fmt.Fprintln(os.Stderr, "chaos: -targets must be at least 2")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	fmt.Printf("chaos: seed %d (CHAOS_SEED=%d reproduces the fault sequence), %v, %d targets\n", c.seed, c.seed, c.dur, c.targets)
	s, err := newSuite(ctx, c)
	if s != nil {
		defer s.close()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "chaos: setup: %v\n", err)
		return 2
	}
	s.loop(ctx)
	s.finish()
	s.printTable(os.Stdout)
	if ctx.Err() == nil && c.report != "" {
		if err := os.WriteFile(c.report, []byte(s.markdown()), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "chaos: %v\n", err)
		} else {
			fmt.Printf("chaos: report written to %s\n", c.report)
		}
	}
	if ctx.Err() != nil {
		fmt.Println("chaos: interrupted")
		return 130
	}
	if s.violations() > 0 {
		s.keepDir = true
		return 1
	}
	return 0
}
