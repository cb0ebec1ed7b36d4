// Command padmin is pcheck's admin command: it lists the running pcheck
// instances, shows their rules, status, events and statistics, and
// pauses, resumes, reloads, restarts, resets and dumps them through their
// control sockets. See padmin(8), docs/control.md and commands.md.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/pcheck/pcheck/checker/control"
	"github.com/pcheck/pcheck/checker/message"
)

// The exit statuses of padmin (commands.md).
const (
	exitOK        = 0 // done
	exitFailed    = 1 // refused or failed, the reason on stderr
	exitUsage     = 2
	exitNotServed = 3 // no pcheck serves that pfile
)

const usage = `usage: padmin [options] COMMAND [ARGS]

commands:
  list                          the running pcheck instances: pfile, pid, uptime, processes, state
  rule PFILE                    the effective rules: every entry with defaults filled in
  status [PFILE] [-l]           state, pid, uptime, CPU, memory, restarts and retries of every
                                process; stall monitors (-l: every column: start, CPU time,
                                threads, fds, children, grace, action, last reason)
  stop PFILE [PROC]             pause monitoring; processes keep running
  start PFILE [PROC]            resume monitoring; re-arms a process in RetryOver
  reload PFILE                  re-read the pfile; a bad one is refused and the old rules stay
  restart PFILE PROC [--force]  restart now; refused while the process is up unless --force
  events [PFILE] [-n N]         the most recent events, newest first
  stats [PFILE]                 checks, failures and restarts per time bucket
  reset PFILE [PROC]            zero retry counts (and, for the whole pfile, statistics and reboot count)
  dump PFILE                    write the state dump to DumpFileName
  config PFILE [--events N] [--buckets N] [--bucket-seconds S]
                                show or set the event ring size and the statistics buckets
  help                          this text

options:
  --run-dir DIR      where pcheck's control sockets are (default /run/pcheck)
  --json             machine-readable output
  --timeout DUR      bound on each request (default 30s)
  --syslog N:ADDR    syslog receiver for the command log (default: the local /dev/log)

exit status: 0 done; 1 refused or failed; 2 usage; 3 no pcheck serves that pfile
`

// options is the parsed command line.
type options struct {
	runDir, syslog            string
	json, force, long         bool
	timeout                   time.Duration
	n, events, buckets        int
	bucketSeconds             float64
	args                      []string
	set                       map[string]bool // flags given
	syslogNetwork, syslogAddr string
}

func parseArgs(args []string) (*options, error) {
	o := &options{set: map[string]bool{}}
	fs := flag.NewFlagSet("padmin", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.runDir, "run-dir", "/run/pcheck", "")
	fs.StringVar(&o.syslog, "syslog", "", "")
	fs.BoolVar(&o.json, "json", false, "")
	fs.BoolVar(&o.force, "force", false, "")
	fs.BoolVar(&o.long, "l", false, "")
	fs.DurationVar(&o.timeout, "timeout", control.DefaultTimeout, "")
	fs.IntVar(&o.n, "n", 0, "")
	fs.IntVar(&o.events, "events", 0, "")
	fs.IntVar(&o.buckets, "buckets", 0, "")
	fs.Float64Var(&o.bucketSeconds, "bucket-seconds", 0, "")
	// Options and arguments may come in any order.
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		o.args = append(o.args, args[0])
		args = args[1:]
	}
	fs.Visit(func(f *flag.Flag) { o.set[f.Name] = true })
	if o.syslog != "" {
		var ok bool
		o.syslogNetwork, o.syslogAddr, ok = strings.Cut(o.syslog, ":")
		if !ok || o.syslogNetwork == "" || o.syslogAddr == "" {
			return nil, fmt.Errorf("--syslog wants NETWORK:ADDRESS (unixgram:/dev/log, udp:127.0.0.1:514), not %q", o.syslog)
		}
	}
	return o, nil
}

// commands gives each command its argument counts and its own flags.
var commands = map[string]struct {
	min, max int
	flags    []string
}{
	"list":    {0, 0, nil},
	"rule":    {1, 1, nil},
	"status":  {0, 1, []string{"l"}},
	"stop":    {1, 2, nil},
	"start":   {1, 2, nil},
	"reload":  {1, 1, nil},
	"restart": {2, 2, []string{"force"}},
	"events":  {0, 1, []string{"n"}},
	"stats":   {0, 1, nil},
	"reset":   {1, 2, nil},
	"dump":    {1, 1, nil},
	"config":  {1, 1, []string{"events", "buckets", "bucket-seconds"}},
	"help":    {0, 0, nil},
}

// commandFlags are the flags that belong to one command.
var commandFlags = []string{"force", "l", "n", "events", "buckets", "bucket-seconds"}

// check validates the command and its arguments.
func (o *options) check() error {
	if len(o.args) == 0 {
		return errors.New("no command given")
	}
	cmd, args := o.args[0], o.args[1:]
	spec, ok := commands[cmd]
	if !ok {
		return fmt.Errorf("unknown command %q", cmd)
	}
	if len(args) < spec.min || len(args) > spec.max {
		return fmt.Errorf("%s: wrong number of arguments (%d)", cmd, len(args))
	}
	for _, f := range commandFlags {
		if o.set[f] && !slices.Contains(spec.flags, f) {
			return fmt.Errorf("%s does not take --%s", cmd, f)
		}
	}
	if o.n < 0 || o.events < 0 || o.buckets < 0 || o.bucketSeconds < 0 {
		return errors.New("sizes and counts must not be negative")
	}
	return nil
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(argv []string, stdout, stderr io.Writer) int {
	o, err := parseArgs(argv)
	if err == flag.ErrHelp {
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	if err == nil {
		err = o.check()
	}
	if err != nil {
		fmt.Fprintf(stderr, "padmin: %v\n%s", err, usage)
		return exitUsage
	}
	a := &control.Admin{
		RunDir:  o.runDir,
		JSON:    o.json,
		Long:    o.long,
		Timeout: o.timeout,
		Out:     stdout,
		Warn:    stderr,
		Log:     o.logCommand,
	}
	if err := dispatch(a, o); err != nil {
		fmt.Fprintf(stderr, "padmin: %v\n", err)
		if errors.Is(err, control.ErrNotServed) {
			return exitNotServed
		}
		return exitFailed
	}
	return exitOK
}

func dispatch(a *control.Admin, o *options) error {
	cmd, args := o.args[0], o.args[1:]
	arg := func(i int) string {
		if i < len(args) {
			return args[i]
		}
		return ""
	}
	switch cmd {
	case "list":
		return a.List()
	case "rule":
		return a.Rule(arg(0))
	case "status":
		return a.Status(arg(0))
	case "stop":
		return a.Stop(arg(0), arg(1))
	case "start":
		return a.Start(arg(0), arg(1))
	case "reload":
		return a.Reload(arg(0))
	case "restart":
		return a.Restart(arg(0), arg(1), o.force)
	case "events":
		return a.Events(arg(0), o.n)
	case "stats":
		return a.Stats(arg(0))
	case "reset":
		return a.Reset(arg(0), arg(1))
	case "dump":
		return a.Dump(arg(0))
	case "config":
		return a.Config(arg(0), control.Config{Events: o.events, Buckets: o.buckets, BucketSeconds: o.bucketSeconds})
	}
	_, err := fmt.Fprint(a.Out, usage) // help
	return err
}

// logCommand logs a state-changing command under ident padmin, with
// padmin's own pid, at the pfile's facility.
func (o *options) logCommand(facility string, m message.Message) {
	l, err := message.New(message.Options{
		Ident:    message.IdentPadmin,
		Facility: facility,
		Network:  o.syslogNetwork,
		Addr:     o.syslogAddr,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "padmin: syslog: %v\n", err)
		return
	}
	l.Log(m)
	l.Close()
}
