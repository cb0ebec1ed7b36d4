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

// version is set at build time with -ldflags "-X main.version=...", as
// pcheck's is.
var version = "0.1.0"

// The exit statuses of padmin (commands.md, padmin(8)).
const (
	exitOK        = 0 // done
	exitFailed    = 1 // refused or failed, the reason on stderr
	exitUsage     = 2
	exitNotServed = 3 // no pcheck serves that pfile
	exitUnhealthy = 4 // status: an entry is not Up, a monitor is Stalled or Unknown, a pcheck silent
)

// command is one padmin command: its arguments, its own flags and its
// help.
type command struct {
	name, args string
	min, max   int
	flags      []string
	brief      string // its line in the usage
	help       string // more, for padmin help CMD
}

// commandList is every command, in the order the usage lists them.
var commandList = []command{
	{"list", "", 0, 0, nil, "the running pcheck instances",
		"Asks every control socket in the run directory who serves it: pfile,\npcheck pid, uptime, processes, their states, reboots."},
	{"rule", "PFILE", 1, 1, nil, "the effective rules, defaults filled in",
		"The rules pcheck runs, as pcheck -n prints them."},
	{"status", "[PFILE] [-l]", 0, 1, []string{"l"}, "every process and stall monitor at a glance",
		"State, pid, uptime, CPU, memory, restarts and retries of every process\n" +
			"entry, and the stall monitors, of PFILE (of every pfile served without it).\n" +
			"  -l  every column: start, CPU time, threads, fds, children, grace,\n" +
			"      action, last reason; attempts and failures of the monitors\n" +
			"exit status 4 when an entry is not Up, a monitor is Stalled or Unknown or a\n" +
			"pcheck does not answer (the table is printed all the same, the entries at\n" +
			"fault named on stderr)."},
	{"stop", "PFILE [PROC]", 1, 2, nil, "pause monitoring; processes keep running",
		"Pauses monitoring of PROC (of every process without it)."},
	{"start", "PFILE [PROC]", 1, 2, nil, "resume monitoring; re-arms RetryOver",
		"Resumes monitoring of PROC (of every process without it); an entry in\nRetryOver is re-armed."},
	{"reload", "PFILE", 1, 1, nil, "re-read the pfile; a bad one is refused",
		"A pfile that fails validation is refused with its errors; the old rules\nstay in force."},
	{"restart", "PFILE PROC [--force]", 2, 2, []string{"force"}, "restart now (refused while Up unless --force)",
		"Runs PROC's restart script now.\n  --force  restart a process that is Up (it is killed first)"},
	{"events", "[PFILE] [-n N]", 0, 1, []string{"n"}, "the most recent events, newest first",
		"The events of PFILE (of every pfile, merged, without it).\n  -n N  the N newest (default every one kept)"},
	{"stats", "[PFILE]", 0, 1, nil, "checks, failures and restarts per time bucket",
		"The statistics of PFILE (of every pfile without it), newest bucket first."},
	{"reset", "PFILE [PROC]", 1, 2, nil, "zero retry counts (without PROC: all counts)",
		"Zeroes the retry counts of PROC; without PROC also the statistics and the\nreboot count."},
	{"dump", "PFILE", 1, 1, nil, "write the state dump to DumpFileName",
		"Makes pcheck write its state dump to the pfile's DumpFileName."},
	{"config", "PFILE [--events N] [--buckets N] [--bucket-seconds S]", 1, 1, []string{"events", "buckets", "bucket-seconds"},
		"show or set the event ring and buckets",
		"Without flags shows the sizes in force.\n  --events N          keep N events\n" +
			"  --buckets N         keep N statistics buckets (clears them)\n  --bucket-seconds S  of S seconds each (clears them)"},
	{"help", "[COMMAND]", 0, 1, nil, "this text, or the help of COMMAND",
		"padmin COMMAND --help says the same."},
}

// lookupCommand returns the command named name.
func lookupCommand(name string) (command, bool) {
	i := slices.IndexFunc(commandList, func(c command) bool { return c.name == name })
	if i < 0 {
		return command{}, false
	}
	return commandList[i], true
}

// names says how padmin names pfiles and processes, in the usage and in
// the help of every command that takes them.
const names = `PFILE is a pfile's path, file name or stem (apache: /etc/pcheck/apache.pfile);
PROC is a process as written in the pfile, its key or its program's base name.
`

// options is the help of padmin's options.
const optionsHelp = `options:
  --run-dir DIR      where pcheck's control sockets are
                     (default $PCHECK_RUN_DIR, else /run/pcheck)
  --json             machine-readable output
  --timeout DUR      bound on each request (default 30s)
  --syslog N:ADDR    syslog receiver for the command log (default: /dev/log)
  --version          print padmin's version
`

// usage is padmin's help: every command, the options and the exit
// statuses.
var usage = func() string {
	var b strings.Builder
	b.WriteString("usage: padmin [options] COMMAND [ARGS]\n\ncommands:\n")
	for _, c := range commandList {
		syn := strings.TrimSpace(c.name + " " + c.args)
		if len(syn) > 28 {
			fmt.Fprintf(&b, "  %s\n  %-30s%s\n", syn, "", c.brief)
		} else {
			fmt.Fprintf(&b, "  %-30s%s\n", syn, c.brief)
		}
	}
	b.WriteString("\n" + names + "\n" + optionsHelp)
	b.WriteString("\nexit status: 0 done; 1 refused or failed; 2 usage; 3 no pcheck serves that\n" +
		"pfile; 4 status found an entry not Up, a monitor Stalled or Unknown, or a\npcheck that did not answer\n")
	return b.String()
}()

// commandHelp is the help of one command.
func commandHelp(c command) string {
	var b strings.Builder
	fmt.Fprintf(&b, "usage: padmin %s\n\n%s\n", strings.TrimSpace(c.name+" "+c.args), c.brief)
	if c.help != "" {
		b.WriteString("\n" + c.help + "\n")
	}
	if strings.Contains(c.args, "PFILE") {
		b.WriteString("\n" + names)
	}
	b.WriteString("\n" + optionsHelp)
	return b.String()
}

// options is the parsed command line.
type options struct {
	runDir, syslog             string
	json, force, version, long bool
	timeout                    time.Duration
	n, events, buckets         int
	bucketSeconds              float64
	args                       []string
	set                        map[string]bool // flags given
	syslogNetwork, syslogAddr  string
}

// defaultRunDir is the run directory without --run-dir: $PCHECK_RUN_DIR,
// else /run/pcheck.
func defaultRunDir() string {
	if d := os.Getenv("PCHECK_RUN_DIR"); d != "" {
		return d
	}
	return "/run/pcheck"
}

// parseArgs parses the command line. On -h or --help it returns
// flag.ErrHelp with the options read so far (the command, if given).
func parseArgs(args []string) (*options, error) {
	o := &options{set: map[string]bool{}}
	fs := flag.NewFlagSet("padmin", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.runDir, "run-dir", defaultRunDir(), "")
	fs.StringVar(&o.syslog, "syslog", "", "")
	fs.BoolVar(&o.json, "json", false, "")
	fs.BoolVar(&o.force, "force", false, "")
	fs.BoolVar(&o.version, "version", false, "")
	fs.BoolVar(&o.long, "l", false, "")
	fs.DurationVar(&o.timeout, "timeout", control.DefaultTimeout, "")
	fs.IntVar(&o.n, "n", 0, "")
	fs.IntVar(&o.events, "events", 0, "")
	fs.IntVar(&o.buckets, "buckets", 0, "")
	fs.Float64Var(&o.bucketSeconds, "bucket-seconds", 0, "")
	// Options and arguments may come in any order.
	for {
		if err := fs.Parse(args); err != nil {
			return o, err
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

// commandFlags are the flags that belong to one command.
var commandFlags = []string{"force", "l", "n", "events", "buckets", "bucket-seconds"}

// check validates the command and its arguments.
func (o *options) check() error {
	if len(o.args) == 0 {
		return errors.New("no command given")
	}
	cmd, args := o.args[0], o.args[1:]
	spec, ok := lookupCommand(cmd)
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
	if cmd == "help" && len(args) == 1 {
		if _, ok := lookupCommand(args[0]); !ok {
			return fmt.Errorf("unknown command %q", args[0])
		}
	}
	return nil
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(argv []string, stdout, stderr io.Writer) int {
	if len(argv) > 0 && argv[0] == completeCommand {
		return complete(argv[1:], stdout, stderr)
	}
	o, err := parseArgs(argv)
	if err == flag.ErrHelp {
		// padmin CMD --help is padmin help CMD.
		if len(o.args) > 0 {
			if c, ok := lookupCommand(o.args[0]); ok && c.name != "help" {
				fmt.Fprint(stdout, commandHelp(c))
				return exitOK
			}
		}
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	if err == nil && o.version {
		fmt.Fprintln(stdout, "padmin", version)
		return exitOK
	}
	if err == nil {
		err = o.check()
	}
	if err != nil {
		fmt.Fprintf(stderr, "padmin: %v\n%s", err, usage)
		return exitUsage
	}
	a := o.admin(stdout, stderr)
	if err := dispatch(a, o); err != nil {
		fmt.Fprintf(stderr, "padmin: %v\n", err)
		switch {
		case errors.Is(err, control.ErrNotServed):
			return exitNotServed
		case errors.Is(err, control.ErrNotHealthy):
			return exitUnhealthy
		}
		return exitFailed
	}
	return exitOK
}

// admin is the control.Admin the options ask for.
func (o *options) admin(stdout, stderr io.Writer) *control.Admin {
	return &control.Admin{
		RunDir:  o.runDir,
		JSON:    o.json,
		Long:    o.long,
		Timeout: o.timeout,
		Out:     stdout,
		Warn:    stderr,
		Log:     o.logCommand,
	}
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
	// help
	if c, ok := lookupCommand(arg(0)); ok && c.name != "help" {
		_, err := fmt.Fprint(a.Out, commandHelp(c))
		return err
	}
	_, err := fmt.Fprint(a.Out, usage)
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
