package compare

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/template"
)

// Target is one instance of the target program, as every monitor sees it:
// the same binary, port, restart script, stamp files and pid file.
type Target struct {
	ID   string // fixed width ("w3-0042"), so "-id=ID" never matches another
	Port int
	// Script is the restart script: pcheck's restart script and monit's
	// start program. Its first act is to append the time to ScriptStamp.
	Script      string
	ScriptStamp string
	Stamp       string // the target appends "<unix-ns> <pid>" at exec
	PidFile     string // the target writes its pid once listening
	Log         string // the target's output
}

// Check is the health check a workload adds to the process check.
type Check int

// The checks of the workloads.
const (
	CheckNone Check = iota // W1: death only
	CheckHTTP              // W2: HTTP every second, stalled after 5 s
	CheckTCP               // W3: TCP connect every second
)

// String names the check as the report and the -w3-checks flag do.
func (c Check) String() string {
	switch c {
	case CheckHTTP:
		return "http"
	case CheckTCP:
		return "tcp"
	default:
		return "none"
	}
}

// probe is pcheck's probe for the check, as the report names it.
func (c Check) probe() string {
	switch c {
	case CheckHTTP:
		return "_bi_webserv HEAD"
	case CheckTCP:
		return "_bi_socket TCP connect"
	default:
		return "no check"
	}
}

// ParseChecks reads the comma-separated checks of the -w3-checks flag
// ("tcp,http").
func ParseChecks(s string) ([]Check, error) {
	var out []Check
	for f := range strings.SplitSeq(s, ",") {
		switch strings.ToLower(strings.TrimSpace(f)) {
		case "tcp":
			out = append(out, CheckTCP)
		case "http":
			out = append(out, CheckHTTP)
		default:
			return nil, fmt.Errorf("W3 check %q: want tcp or http", f)
		}
	}
	return out, nil
}

// The settings every monitor is given: the fastest each supports.
const (
	// checkInterval is the cycle of every check (monit: set daemon 1).
	checkInterval = 1
	// stallAfter is the failover time of the stall checks (monit: for 5
	// cycles).
	stallAfter = 5
	// attemptTimeout bounds one check attempt.
	attemptTimeout = 1
	// killWait separates SIGTERM and SIGKILL when a monitor kills.
	killWait = 1
	// monitStartTimeout is monit's start program timeout: how long it
	// waits for the process to appear, and also how long after a
	// process's start monit holds back its connection tests. The target
	// is up within milliseconds; 1 s is the shortest monit accepts.
	monitStartTimeout = 1
)

// Layout is the run's work directory: everything the monitors read and
// write (configuration, pid files, state, sockets, logs) is under it,
// never the system's own files.
type Layout struct {
	Dir       string
	TargetBin string
	StopBin   string // monit's stop program (see stopScript)
}

// newLayout creates the directories of a run under dir.
func newLayout(dir, targetBin string) (*Layout, error) {
	l := &Layout{Dir: dir, TargetBin: targetBin, StopBin: filepath.Join(dir, "bin", "stop-target.sh")}
	for _, sub := range []string{"bin", "scripts", "stamps", "pids", "logs", "pcheck", "monit", "supervisord"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("work directory: %w", err)
		}
	}
	if err := os.WriteFile(l.StopBin, []byte(stopScript), 0o755); err != nil {
		return nil, fmt.Errorf("stop script: %w", err)
	}
	return l, nil
}

// NewTarget returns target id on port with its files in the layout, and
// writes its restart script.
func (l *Layout) NewTarget(id string, port int) (*Target, error) {
	t := &Target{
		ID:          id,
		Port:        port,
		Script:      filepath.Join(l.Dir, "scripts", id+".sh"),
		ScriptStamp: filepath.Join(l.Dir, "stamps", id+".script"),
		Stamp:       filepath.Join(l.Dir, "stamps", id+".exec"),
		PidFile:     filepath.Join(l.Dir, "pids", id+".pid"),
		Log:         filepath.Join(l.Dir, "logs", id+".log"),
	}
	var b strings.Builder
	if err := restartTmpl.Execute(&b, struct {
		*Target
		Bin string
	}{t, l.TargetBin}); err != nil {
		return nil, err
	}
	if err := os.WriteFile(t.Script, []byte(b.String()), 0o755); err != nil {
		return nil, fmt.Errorf("restart script of %s: %w", id, err)
	}
	return t, nil
}

// Argv is the target's command line.
func (l *Layout) Argv(t *Target) []string {
	return []string{l.TargetBin, "-id=" + t.ID, fmt.Sprintf("-port=%d", t.Port), "-stamp=" + t.Stamp, "-pidfile=" + t.PidFile}
}

// The restart script. pcheck runs it as <script> <proc> <old-pid> <reason>,
// monit as its start program without arguments: it ignores them. Bash's
// EPOCHREALTIME is `date +%s%N` without a fork (microseconds); the target
// is detached in a session of its own, so the script ends at once.
var restartTmpl = template.Must(template.New("restart").Parse(`#!/bin/bash
# Restart script of {{.ID}} (bench/compare, generated).
t=${EPOCHREALTIME/[.,]/}
printf '%s\n' "$t" >>{{.ScriptStamp}}
exec setsid -f {{.Bin}} -id={{.ID}} -port={{.Port}} -stamp={{.Stamp}} -pidfile={{.PidFile}} </dev/null >>{{.Log}} 2>&1
`))

// stopScript is monit's stop program, "stop-target.sh PIDFILE ID
// KILLWAIT": it kills as pcheck does (SIGTERM and SIGCONT, then SIGKILL
// after KILLWAIT seconds), and only a process whose command line names the
// target.
const stopScript = `#!/bin/bash
# monit's stop program (bench/compare, generated): stop-target.sh PIDFILE ID KILLWAIT
pid=$(cat "$1" 2>/dev/null) || exit 0
tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "-id=$2 " || exit 0
kill -TERM "$pid" 2>/dev/null || exit 0
kill -CONT "$pid" 2>/dev/null
for ((i = 0; i < $3 * 100; i++)); do
	[ -d "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null || exit 0
	sleep 0.01
done
kill -KILL "$pid" 2>/dev/null
exit 0
`

// pcheckPfile is the pfile of a pcheck run: every target by executable and
// -id argument, with a _bi_webserv (CheckHTTP) or _bi_socket (CheckTCP)
// block at a 1 s interval, 1 s attempt timeout and 5 s failover.
func pcheckPfile(l *Layout, targets []*Target, check Check) string {
	var b strings.Builder
	fmt.Fprintf(&b, `# bench/compare (generated)
MonitorInterval %d
StartWait 10
RestartTimeout 10
KillWait %d
RetryCount 100000
Grace 1
retry_over_action continue
`, checkInterval, killWait)
	for _, t := range targets {
		fmt.Fprintf(&b, "%s %s args=\"-id=%s \"\n", l.TargetBin, t.Script, t.ID)
		var lib, argv string
		switch check {
		case CheckHTTP:
			lib, argv = "webserv", fmt.Sprintf("3:%d:%d:127.0.0.1", stallAfter, t.Port)
		case CheckTCP:
			lib, argv = "socket", fmt.Sprintf("2:%d:%d", stallAfter, t.Port)
		default:
			continue
		}
		so := "DLL:/opt/HA/PSWE/lib/lib_bi_" + lib + ".so:DIRECT:"
		fmt.Fprintf(&b, "_bi_%s{\n", lib)
		fmt.Fprintf(&b, "    PS_INIT   %s-::-:0\n", so)
		fmt.Fprintf(&b, "    PS_EXEC   %s%d:%d:0:%s\n", so, attemptTimeout, checkInterval, argv)
		fmt.Fprintf(&b, "    PS_ACTION %s-::-:1:0\n", so)
		fmt.Fprintf(&b, "    PS_QUIT   %s-::-:0\n", so)
		b.WriteString("}\n")
	}
	return b.String()
}

// monitrc is the control file of a monit run: a 1 s cycle, pid, id, state
// and log files in dir and a Unix-socket HTTP interface for the CLI;
// every target by pid file, started by its restart script and stopped by
// stop-target.sh, with an HTTP or TCP check that restarts after 5 failed
// cycles.
func monitrc(dir string, l *Layout, targets []*Target, check Check) string {
	var b strings.Builder
	fmt.Fprintf(&b, `# bench/compare (generated)
set daemon %d
set pidfile %s/monit.pid
set idfile %s/monit.id
set statefile %s/monit.state
set logfile %s/monit.log
set httpd unixsocket %s/monit.sock
    allow localhost
`, checkInterval, dir, dir, dir, dir, dir)
	for _, t := range targets {
		fmt.Fprintf(&b, "\ncheck process %s with pidfile %s\n", t.ID, t.PidFile)
		fmt.Fprintf(&b, "    start program = \"%s\" with timeout %d seconds\n", t.Script, monitStartTimeout)
		fmt.Fprintf(&b, "    stop program = \"%s %s %s %d\" with timeout 10 seconds\n", l.StopBin, t.PidFile, t.ID, killWait)
		switch check {
		case CheckHTTP:
			fmt.Fprintf(&b, "    if failed host 127.0.0.1 port %d protocol http with timeout %d seconds for %d cycles then restart\n", t.Port, attemptTimeout, stallAfter)
		case CheckTCP:
			fmt.Fprintf(&b, "    if failed host 127.0.0.1 port %d type tcp with timeout %d seconds for %d cycles then restart\n", t.Port, attemptTimeout, stallAfter)
		}
	}
	return b.String()
}

// floorArgs is the floor's command line (cmd/floor) for targets with
// check: it connects to consecutive ports, which targets must be on.
func floorArgs(targets []*Target, check Check) ([]string, error) {
	if check != CheckTCP && check != CheckHTTP {
		return nil, fmt.Errorf("floor: no %s check", check)
	}
	if len(targets) == 0 {
		return nil, errors.New("floor: no targets")
	}
	for i, t := range targets {
		if t.Port != targets[0].Port+i {
			return nil, fmt.Errorf("floor: target %s on port %d, not %d: the ports are not consecutive", t.ID, t.Port, targets[0].Port+i)
		}
	}
	return []string{"-check=" + check.String(), fmt.Sprintf("-port=%d", targets[0].Port), fmt.Sprintf("-n=%d", len(targets)),
		fmt.Sprintf("-timeout=%ds", attemptTimeout)}, nil
}

// supervisordConf is the configuration of a supervisord run: its own
// children (it cannot watch anything else), autorestart=true, startsecs=0,
// output discarded; log and pid files in dir, no control server.
func supervisordConf(dir string, l *Layout, targets []*Target) string {
	var b strings.Builder
	fmt.Fprintf(&b, `; bench/compare (generated)
[supervisord]
nodaemon=true
logfile=%s/supervisord.log
pidfile=%s/supervisord.pid
childlogdir=%s
loglevel=info
user=root
minfds=%d
minprocs=%d
`, dir, dir, dir, 4*len(targets)+1024, len(targets)+200)
	for _, t := range targets {
		fmt.Fprintf(&b, "\n[program:%s]\n", t.ID)
		fmt.Fprintf(&b, "command=%s\n", strings.Join(l.Argv(t), " "))
		b.WriteString("autostart=true\nautorestart=true\nstartsecs=0\nstartretries=100\n")
		fmt.Fprintf(&b, "stopsignal=TERM\nstopwaitsecs=%d\n", killWait)
		b.WriteString("stdout_logfile=NONE\nstderr_logfile=NONE\n")
	}
	return b.String()
}
