// Command pcheck is the process monitor: it reads pfiles, watches the
// processes they name, restarts them through their restart scripts and
// detects stalls. See pcheck(8) and docs/.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/pcheck/pcheck/checker/message"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0"

const usage = `usage: pcheck [options] PFILE...

  -n, --check        parse and validate, check the files the pfile names (restart scripts, CMD files,
                     TLSCAFile, RebootCommand) as pcheck would trust them, print problems and the
                     effective rules; exit 0 valid, 2 invalid
      --syntax-only  with -n: the language alone, not the files (templates, staging boxes)
      --json         with -n: machine-readable output
  -D, --daemon       detach from the terminal (rc scripts)
      --force        stop the live pcheck that watches this pfile (SIGTERM, 10 s), then start
      --watch        reload when a pfile changes on disk
      --state-dir    retry and reboot counts, pid locks (default /var/lib/pcheck)
      --run-dir      control sockets (default /run/pcheck)
      --syslog       NETWORK:ADDRESS of the syslog receiver (default: the local /dev/log)
      --fallback-log with -D: where lines go that syslog cannot take (default /var/log/pcheck.log)
      --metrics      HOST:PORT to serve Prometheus metrics on /metrics and a status page on /
                     (default: off; 127.0.0.1:PORT for the loopback only)
      --version      print the version
`

// options is the parsed command line.
type options struct {
	check, syntaxOnly, json, daemon, force, watch, version bool
	stateDir, runDir, syslog, metrics, fallbackLog         string
	pfiles                                                 []string
}

func parseArgs(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("pcheck", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.BoolVar(&o.check, "n", false, "")
	fs.BoolVar(&o.check, "check", false, "")
	fs.BoolVar(&o.syntaxOnly, "syntax-only", false, "")
	fs.BoolVar(&o.json, "json", false, "")
	fs.BoolVar(&o.daemon, "D", false, "")
	fs.BoolVar(&o.daemon, "daemon", false, "")
	fs.BoolVar(&o.force, "force", false, "")
	fs.BoolVar(&o.watch, "watch", false, "")
	fs.BoolVar(&o.version, "version", false, "")
	fs.StringVar(&o.stateDir, "state-dir", "/var/lib/pcheck", "")
	fs.StringVar(&o.runDir, "run-dir", "/run/pcheck", "")
	fs.StringVar(&o.syslog, "syslog", "", "")
	fs.StringVar(&o.fallbackLog, "fallback-log", message.DefaultFallbackFile, "")
	fs.StringVar(&o.metrics, "metrics", "", "")
	// Options and pfiles may come in any order.
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		o.pfiles = append(o.pfiles, args[0])
		args = args[1:]
	}
	return o, nil
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	o, err := parseArgs(args, stderr)
	if err == flag.ErrHelp {
		fmt.Fprint(stdout, usage)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "pcheck: %v\n%s", err, usage)
		return 2
	}
	if o.version {
		fmt.Fprintln(stdout, "pcheck", version)
		return 0
	}
	if len(o.pfiles) == 0 {
		fmt.Fprintf(stderr, "pcheck: no pfile given\n%s", usage)
		return 2
	}
	if o.syntaxOnly && !o.check {
		fmt.Fprintf(stderr, "pcheck: --syntax-only goes with -n\n%s", usage)
		return 2
	}
	if o.check {
		return check(stdout, stderr, o.pfiles, o.json, o.syntaxOnly)
	}
	return serve(o, stderr)
}
