// Command compare runs the side-by-side benchmark of pcheck against monit
// and supervisord and writes docs/benchmarks.md (see package compare and
// `make bench-compare`, which installs monit and supervisor and builds the
// binaries first).
//
//	compare -pcheck BIN -target BIN [-out docs/benchmarks.md] [flags]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/pcheck/pcheck/bench/compare"
)

func main() {
	var o compare.Options
	var only, workloads, checks string
	flag.StringVar(&o.PcheckBin, "pcheck", "", "pcheck binary")
	flag.StringVar(&o.TargetBin, "target", "", "target binary (bench/compare/cmd/target)")
	flag.StringVar(&o.FloorBin, "floor", "", "floor binary (bench/compare/cmd/floor); none: no W3 floor rows")
	flag.StringVar(&o.MonitBin, "monit", "monit", "monit binary")
	flag.StringVar(&o.SupervisordBin, "supervisord", "supervisord", "supervisord binary")
	flag.StringVar(&o.Out, "out", "docs/benchmarks.md", "the report to write")
	flag.StringVar(&o.WorkDir, "workdir", "", "directory to make the run's work directory in (default: $TMPDIR)")
	flag.BoolVar(&o.Keep, "keep", false, "keep the work directory (configs, logs)")
	flag.IntVar(&o.Kills, "kills", 20, "W1: SIGKILLs per monitor")
	flag.IntVar(&o.Stalls, "stalls", 3, "W2: SIGSTOPs per monitor")
	flag.IntVar(&o.Small, "small", 200, "W3/W4: the small set of targets")
	flag.IntVar(&o.Large, "large", 1000, "W3: the large set of targets")
	flag.DurationVar(&o.Warmup, "warmup", compare.DefaultWarmup, "W3: warm-up before the window")
	flag.DurationVar(&o.Window, "window", compare.DefaultWindow, "W3: the measurement window")
	flag.StringVar(&checks, "w3-checks", "tcp,http", "W3: comma-separated checks, each run at -small and -large targets (tcp: _bi_socket, http: _bi_webserv)")
	flag.StringVar(&only, "only", "", "comma-separated monitors to run (default all: floor,pcheck,monit,supervisord)")
	flag.StringVar(&workloads, "workloads", "", "comma-separated workloads to run (default all: W1,W2,W3; W4 comes with W3)")
	flag.Parse()
	if flag.NArg() > 0 || o.PcheckBin == "" || o.TargetBin == "" {
		fmt.Fprintln(os.Stderr, "usage: compare -pcheck BIN -target BIN [flags]")
		flag.PrintDefaults()
		os.Exit(2)
	}
	var err error
	if o.Checks, err = compare.ParseChecks(checks); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(2)
	}
	if only != "" {
		o.Only = strings.Split(only, ",")
	}
	if workloads != "" {
		o.Workloads = strings.Split(workloads, ",")
	}
	o.Progress = os.Stderr
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := compare.Run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}
