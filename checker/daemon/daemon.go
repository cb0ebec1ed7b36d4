// Package daemon is the pcheck process: it loads the pfiles, takes a pid
// lock for each, runs one engine.Instance per pfile, and turns signals into
// stop (SIGTERM, SIGINT), reload (SIGHUP) and state dumps (SIGUSR1). It
// detaches from the terminal for -D and speaks sd_notify in the foreground.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pcheck/pcheck/checker/cluster"
	"github.com/pcheck/pcheck/checker/control"
	"github.com/pcheck/pcheck/checker/control/metrics"
	"github.com/pcheck/pcheck/checker/engine"
	"github.com/pcheck/pcheck/checker/message"
	"github.com/pcheck/pcheck/checker/pidlock"
	"github.com/pcheck/pcheck/checker/proc"
	"github.com/pcheck/pcheck/checker/sdnotify"
	"github.com/pcheck/pcheck/checker/stall"
	"github.com/pcheck/pcheck/checker/state"
	"github.com/pcheck/pcheck/checker/trust"
	"github.com/pcheck/pcheck/parser"
	"github.com/pcheck/pcheck/pfile"
)

// The exit statuses of pcheck (commands.md).
const (
	ExitOK        = 0 // stopped normally: SIGTERM, SIGINT, shutdown action
	ExitFailure   = 1 // runtime failure: lock held, state directory, ...
	ExitInvalid   = 2 // usage or invalid pfile
	ExitRetryOver = 3 // retry over with action exit
)

// Options are pcheck's command line.
type Options struct {
	// Pfiles are pfiles or directories of pfiles.
	Pfiles []string
	// Daemonize detaches from the terminal (-D).
	Daemonize bool
	// Force starts although a live pcheck holds a pfile's lock.
	Force bool
	// Watch reloads a pfile when it changes on disk.
	Watch bool
	// StateDir holds the retry counts and pid locks.
	StateDir string
	// RunDir is where control sockets go.
	RunDir string
	// SyslogNetwork and SyslogAddr name the syslog receiver; both empty
	// is the local /dev/log.
	SyslogNetwork, SyslogAddr string
	// FallbackLog, with Daemonize, receives the lines syslog cannot take
	// (message.Options.FallbackFile); empty: they are lost.
	FallbackLog string
	// Stderr receives errors and, in the foreground, a copy of every
	// message; nil is os.Stderr.
	Stderr io.Writer
	// MetricsAddr, when set, serves Prometheus metrics and the status
	// page on host:port.
	MetricsAddr string
	// Version is pcheck's version, for pcheck_build_info.
	Version string
}

// runningPfile is one loaded pfile.
type runningPfile struct {
	path  string
	inst  *engine.Instance
	lock  *pidlock.Lock
	log   *switchLogger
	store *state.Store // retry counts; nil when they cannot be kept
	done  chan engine.Result
	ended atomic.Bool
	// rec keeps the events and statistics behind padmin events and
	// stats; ctl serves the control socket (nil when it cannot).
	rec      *control.Recorder
	ctl      *control.Server
	cluster  *cluster.Cluster // ClusterNotify, ClusterHealthAttribute
	reloadMu sync.Mutex       // one reload at a time: padmin, SIGHUP, --watch
}

// daemon is one run of pcheck.
type daemon struct {
	o Options
	// stateOK and runOK say whether the state and run directories could
	// be written at start (checkDirs).
	stateOK, runOK bool
	stderr         io.Writer
	report         *startReport // set in the detached child
	loggers        map[string]*message.Logger
	logMu          sync.Mutex
	main           *message.Logger // messages not tied to one pfile
	pfiles         []*runningPfile
	metrics        *metrics.Server // --metrics, nil when off
	forced         map[string]int  // --force: the pcheck stopped, by pfile
}

// Run runs pcheck until it is stopped and returns its exit status.
func Run(ctx context.Context, o Options) int {
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	if o.Daemonize && !isDetachedChild() {
		return detach(o.Stderr)
	}
	d := &daemon{o: o, stderr: o.Stderr, loggers: map[string]*message.Logger{}}
	if isDetachedChild() {
		d.report = takeReport()
	}
	status := d.run(ctx)
	d.closeLoggers()
	return status
}

// fail reports a start-up failure on stderr (and to the parent of a
// detached child) and returns status.
func (d *daemon) fail(status int, format string, args ...any) int {
	msg := fmt.Sprintf(format, args...)
	fmt.Fprintln(d.stderr, "pcheck: "+msg)
	d.report.failed(status, msg)
	return status
}

// logger returns the shared Logger of a facility. The Loggers of all
// facilities share the queues of the first one.
func (d *daemon) logger(facility string) (*message.Logger, error) {
	d.logMu.Lock()
	defer d.logMu.Unlock()
	f, err := message.ParseFacility(facility)
	if err != nil {
		return nil, err
	}
	key := f.String()
	if l := d.loggers[key]; l != nil {
		return l, nil
	}
	for _, first := range d.loggers {
		l, err := first.WithFacility(facility)
		if err != nil {
			return nil, err
		}
		d.loggers[key] = l
		return l, nil
	}
	o := message.Options{
		Ident:    message.IdentPcheck,
		Facility: facility,
		Network:  d.o.SyslogNetwork,
		Addr:     d.o.SyslogAddr,
	}
	if d.o.Daemonize {
		o.FallbackFile = d.o.FallbackLog
	} else if !stderrIsJournal(d.stderr) {
		o.Stderr = d.stderr
	}
	l, err := message.New(o)
	if err != nil {
		return nil, err
	}
	d.loggers[key] = l
	return l, nil
}

// closeLoggers flushes the loggers' queues (within message.FlushTimeout):
// nothing is logged after it.
func (d *daemon) closeLoggers() {
	d.logMu.Lock()
	defer d.logMu.Unlock()
	for _, l := range d.loggers {
		l.Close() // they share their queues: the first closes them all
		break
	}
}

func (d *daemon) run(ctx context.Context) int {
	// Signals are taken first: a SIGTERM during start-up stops pcheck
	// cleanly instead of killing it with its locks in place.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGUSR1)
	defer signal.Stop(sigs)

	main, err := d.logger("")
	if err != nil {
		return d.fail(ExitInvalid, "syslog: %v", err)
	}
	d.main = main

	paths, err := ExpandPfiles(d.o.Pfiles)
	if err != nil {
		return d.fail(ExitInvalid, "%v", err)
	}
	if len(paths) == 0 {
		return d.fail(ExitInvalid, "no pfile given")
	}
	files, ok := d.load(paths)
	if !ok {
		return d.fail(ExitInvalid, "invalid pfile: nothing started")
	}
	if status, err := d.checkDirs(); err != nil {
		return d.fail(status, "%v", err)
	}
	defer d.release()
	if d.o.Force {
		if err := d.force(files); err != nil {
			return d.fail(ExitFailure, "%v", err)
		}
	}
	for _, f := range files {
		if status, err := d.open(f); err != nil {
			return d.fail(status, "%v", err)
		}
	}

	var watcher engine.Watcher
	if w, err := proc.NewWatcher(); err != nil {
		d.main.Log(message.Warning(fmt.Sprintf("process deaths are seen every MonitorInterval only: %v", err)))
	} else {
		defer w.Close()
		watcher = w
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	// One scheduler for the stall monitors of every pfile.
	monitors := stall.NewRuntime(stall.RuntimeOptions{})
	// One set of /proc scans for every pfile too.
	scans := engine.NewScans()
	wg.Add(1)
	go func() { defer wg.Done(); monitors.Run(ctx) }()
	results := make(chan *runningPfile, len(d.pfiles))
	for _, p := range d.pfiles {
		p.store = d.openState(p)
		p.rec = control.NewRecorder(control.RecorderOptions{})
		p.cluster = newCluster(p, fileOf(files, p.path))
		inst, err := engine.New(engine.Options{
			File:    fileOf(files, p.path),
			Log:     p.log,
			Watcher: watcher,
			Store:   p.store,
			// Restart script output goes to a file in the state
			// directory: daemons the scripts leave writing to it must
			// not die of SIGPIPE when pcheck stops.
			ScriptOutputDir: d.outputDir(),
			// A previous pcheck may have written where this one cannot.
			ScriptRecordDirs: []string{d.o.StateDir, d.o.RunDir},
			OnEvent:          func(ev engine.Event) { p.rec.Event(ev); p.cluster.Event(ev) },
			Monitors:         monitors,
			Scans:            scans,
			OnAttempt:        p.attempt,
			DumpMonitors:     func() any { return p.monitorStatus() },
		})
		if err != nil {
			cancel()
			wg.Wait()
			return d.fail(ExitInvalid, "%v", err)
		}
		p.inst = inst
	}
	d.serveControl()
	defer d.closeControlAll() // after the instances have stopped
	for _, p := range d.pfiles {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The stall monitors are the entries': a pfile ended by
			// a shutdown action stops its own.
			res := p.inst.Run(ctx)
			p.done <- res
			results <- p
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.sweep(ctx, p)
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.cluster.Run(ctx)
		}()
	}
	defer wg.Wait()
	defer cancel()

	d.report.ok()
	notifier := d.notify(ctx)
	go d.settleMemory(ctx)
	if d.o.Watch {
		if err := d.watchFiles(ctx); err != nil {
			d.main.Log(message.Err(fmt.Sprintf("--watch: %v", err)))
		}
	}

	live := len(d.pfiles)
	for {
		select {
		case <-ctx.Done():
			return d.stop(cancel, &wg, notifier, ExitOK)
		case sig := <-sigs:
			switch sig {
			case unix.SIGHUP:
				d.reloadAll()
			case unix.SIGUSR1:
				d.dumpAll()
			default:
				return d.stop(cancel, &wg, notifier, ExitOK)
			}
		case p := <-results:
			res := <-p.done
			p.ended.Store(true)
			switch res {
			case engine.Exit:
				d.clusterExit(ctx, p)
				d.autoReboot(ctx, p)
				p.inst.LogStop() // the last line of this pfile
				return d.stop(cancel, &wg, notifier, ExitRetryOver)
			case engine.Shutdown:
				// Only this pfile stops; its lock and socket go now.
				p.closeControl()
				p.lock.Release()
				p.lock = nil
				live--
				if live == 0 {
					return d.stop(cancel, &wg, notifier, ExitOK)
				}
			}
		}
	}
}

// stop ends every instance and returns status.
func (d *daemon) stop(cancel context.CancelFunc, wg *sync.WaitGroup, n *sdnotify.Notifier, status int) int {
	if n != nil {
		n.Notify(sdnotify.Stopping)
	}
	cancel()
	wg.Wait()
	return status
}

// load parses and checks every pfile (LoadPfile) and logs every problem;
// ok is false when any pfile has an error.
func (d *daemon) load(paths []string) ([]*pfile.File, bool) {
	var files []*pfile.File
	ok := true
	for _, path := range paths {
		f, diags := LoadPfile(path)
		for _, dg := range diags {
			if dg.Severity == pfile.Error {
				// In the foreground the logger mirrors it to stderr;
				// a detached child hands it to its parent.
				d.main.Log(message.PfileError(dg.String()))
				d.report.note(dg.String())
			} else {
				d.main.Log(message.Warning(dg.String()))
			}
		}
		if diags.HasErrors() {
			ok = false
			continue
		}
		files = append(files, f)
	}
	return files, ok
}

// LoadPfile reads and validates the pfile at path, and checks it and
// every file it names as pcheck trusts them (trust.CheckPfile): what a
// start, a reload and pcheck -n accept. The File is nil when the
// diagnostics hold an error.
func LoadPfile(path string) (*pfile.File, pfile.Diagnostics) {
	f, diags := parser.Load(path)
	if f == nil {
		return nil, diags
	}
	diags = append(diags, trust.CheckPfile(f)...)
	pfile.Sort(diags)
	if diags.HasErrors() {
		return nil, diags
	}
	return f, diags
}

// open takes the lock of one pfile and prepares its logger.
func (d *daemon) open(f *pfile.File) (int, error) {
	lock, res, err := d.lock(f.Path)
	if err != nil {
		return ExitFailure, err
	}
	l, err := d.logger(f.Params.SyslogFacility)
	if err != nil {
		lock.Release()
		return ExitInvalid, fmt.Errorf("pfile '%s': %w", f.Path, err)
	}
	p := &runningPfile{path: f.Path, lock: lock, log: &switchLogger{}, done: make(chan engine.Result, 1)}
	p.log.set(l)
	d.pfiles = append(d.pfiles, p)
	if lock.Path() != d.statePath(f.Path, ".pid") {
		l.Log(warning("pfile '%s': pid lock in %s: the state directory cannot hold it", f.Path, lock.Path()))
	}
	if res.Unrecorded != nil {
		l.Log(warning("pfile '%s': the lock is held but pcheck's pid is not recorded in it: %v", f.Path, res.Unrecorded))
	}
	if res.StalePid != 0 {
		l.Log(message.Info(fmt.Sprintf("pfile '%s': stale pid file of pcheck pid %d (not running) taken over", f.Path, res.StalePid)))
	}
	if pid := d.forced[f.Path]; pid != 0 {
		l.Log(message.Warning(fmt.Sprintf("pfile '%s': --force: pcheck pid %d stopped, its lock taken over", f.Path, pid)))
	}
	return ExitOK, nil
}

// statePath is the file of pfile with suffix in the state directory.
func (d *daemon) statePath(pfilePath, suffix string) string {
	return filepath.Join(d.o.StateDir, state.Name(pfilePath)+suffix)
}

// runPath is the file of pfile with suffix in the run directory.
func (d *daemon) runPath(pfilePath, suffix string) string {
	return filepath.Join(d.o.RunDir, state.Name(pfilePath)+suffix)
}

// lock takes the pid lock of a pfile: in the state directory, or in the
// run directory when the state directory cannot hold it (read-only, and
// no pid file there to lock read-only). A pcheck that locks in the state
// directory also takes over and drops such a fallback lock, so that a
// pcheck that fell back is never missed: there is one pcheck per pfile
// whichever directory each could use.
func (d *daemon) lock(pfilePath string) (*pidlock.Lock, pidlock.Result, error) {
	statePath := d.statePath(pfilePath, ".pid")
	runPath := d.runPath(pfilePath, ".pid")
	lock, res, err := pidlock.Acquire(statePath)
	// A live holder or an unsafe directory is final; only a state
	// directory that cannot be written falls back.
	fallback := err != nil && !d.stateOK && d.runOK &&
		!errors.Is(err, pidlock.ErrHeld) && !errors.Is(err, trust.ErrUnsafeWriteDir)
	if fallback {
		lock, res, err = pidlock.Acquire(runPath)
	}
	if err == nil && !fallback && d.runOK {
		if _, serr := os.Lstat(runPath); serr == nil {
			other, _, oerr := pidlock.Acquire(runPath)
			if oerr == nil {
				other.Release()
			} else {
				lock.Release()
				lock, err = nil, oerr
			}
		}
	}
	if err != nil {
		var held *pidlock.HeldError
		if errors.As(err, &held) {
			return nil, res, fmt.Errorf("pfile '%s' is already watched by pcheck pid %d (lock %s); use --force to stop that pcheck and start this one", pfilePath, held.Pid, held.Path)
		}
		return nil, res, fmt.Errorf("pfile '%s': %w", pfilePath, err)
	}
	return lock, res, nil
}

// checkDirs checks the state and run directories at start, creating them
// (0755) when missing. One that is not safe to write in (a symbolic link,
// another owner, writable by group or other) stops pcheck. A state
// directory that cannot be written (read-only or full file system) does
// not: monitoring starts with the retry counts kept in memory, and the
// pid locks go to the run directory.
func (d *daemon) checkDirs() (int, error) {
	if d.o.RunDir != "" {
		dir, err := trust.MkWriteDir(d.o.RunDir)
		if errors.Is(err, trust.ErrUnsafeWriteDir) {
			return ExitFailure, fmt.Errorf("run directory: %w", err)
		}
		if err != nil {
			d.main.Log(message.Err(fmt.Sprintf("control sockets: run directory: %v", err)))
		} else {
			d.runOK = true
			dir.Close()
		}
	}
	dir, err := trust.MkWriteDir(d.o.StateDir)
	if errors.Is(err, trust.ErrUnsafeWriteDir) {
		return ExitFailure, fmt.Errorf("state directory: %w", err)
	}
	if err == nil {
		err = dir.CheckWritable()
		dir.Close()
	}
	if err != nil {
		where := "go to the run directory " + d.o.RunDir
		if !d.runOK {
			where = "have no other place (no usable --run-dir)"
		}
		d.main.Log(message.Err(fmt.Sprintf("state directory %s: %v; retry counts are kept in memory only and not saved, pid locks that cannot be made there %s", d.o.StateDir, err, where)))
		return ExitOK, nil
	}
	d.stateOK = true
	return ExitOK, nil
}

// outputDir is where restart script output files go: the state
// directory, or the run directory when the state directory cannot be
// written ("" when neither can: the output then goes through a pipe).
func (d *daemon) outputDir() string {
	switch {
	case d.stateOK:
		return d.o.StateDir
	case d.runOK:
		return d.o.RunDir
	}
	return ""
}

// openState opens the retry counts of a pfile; a corrupt file is logged
// and replaced, and attempts in the future are logged and not counted.
func (d *daemon) openState(p *runningPfile) *state.Store {
	// While the state directory cannot be written (full, read-only),
	// the counts are saved in the run directory (tmpfs) instead, so a
	// pcheck restarted meanwhile does not lose them.
	spare := ""
	if d.runOK {
		spare = filepath.Join(d.o.RunDir, state.Name(p.path)+".state")
	}
	s, err := state.OpenWithSpare(d.statePath(p.path, ".state"), spare, p.path)
	if err != nil {
		p.log.Log(message.Warning(fmt.Sprintf("pfile '%s': retry counts start from zero: %v", p.path, err)))
	}
	for _, dr := range s.Dropped() {
		p.log.Log(warning("pfile '%s': state file %s: %s", p.path, s.Path(), dr))
	}
	return s
}

// release drops the locks still held.
func (d *daemon) release() {
	for _, p := range d.pfiles {
		if p.lock != nil {
			p.lock.Release()
			p.lock = nil
		}
	}
}

// reloadAll re-reads every running pfile (SIGHUP).
func (d *daemon) reloadAll() {
	for _, p := range d.pfiles {
		if !p.ended.Load() {
			d.reload(p)
		}
	}
}

// failReload, set by tests only, fails a reload at a step ("engine",
// "logger"), after that step's real work: it shows that a failure at any
// step changes nothing.
var failReload func(step string) error

// reload re-reads one pfile. A pfile with errors changes nothing: each
// error is logged and the old rules stay.
func (d *daemon) reload(p *runningPfile) error {
	p.reloadMu.Lock()
	defer p.reloadMu.Unlock()
	f, diags := LoadPfile(p.path)
	for _, dg := range diags {
		if dg.Severity == pfile.Error {
			p.log.Log(message.PfileError(dg.String()))
		} else {
			p.log.Log(message.Warning(dg.String()))
		}
	}
	if err := diags.Err(); err != nil {
		p.log.Log(message.Err(fmt.Sprintf("pfile '%s': reload refused, the old rules stay", p.path)))
		return err
	}
	// Everything that can fail is done first (the engine's Prepare builds
	// the entries and their stall monitors); then they switch in one
	// step: a failure changes nothing.
	er, err := p.inst.Prepare(f)
	if err == nil && failReload != nil {
		err = failReload("engine")
	}
	if err != nil {
		p.log.Log(message.Err(fmt.Sprintf("pfile '%s': reload refused: %v", p.path, err)))
		return err
	}
	l, lerr := d.logger(f.Params.SyslogFacility)
	if lerr == nil && failReload != nil {
		lerr = failReload("logger")
	}
	if lerr != nil {
		p.log.Log(message.Err(fmt.Sprintf("pfile '%s': reload refused: syslog: %v", p.path, lerr)))
		return lerr
	}
	// Reloads are serialised (reloadMu): the commit cannot find the
	// rules changed since its Prepare.
	if err := er.Commit(); err != nil {
		p.log.Log(message.Err(fmt.Sprintf("pfile '%s': reload refused: %v", p.path, err)))
		return err
	}
	p.log.set(l)
	p.log.Log(message.Info(fmt.Sprintf("pfile '%s' reloaded", p.path)))
	return nil
}

// dumpAll writes the state dump of every pfile that names a
// DumpFileName (SIGUSR1).
func (d *daemon) dumpAll() {
	for _, p := range d.pfiles {
		if p.ended.Load() {
			continue
		}
		name := p.inst.File().Params.DumpFileName
		if name == "" {
			continue
		}
		if err := p.inst.DumpFile(); err != nil {
			p.log.Log(message.Err(fmt.Sprintf("pfile '%s': %v", p.path, err)))
		} else {
			p.log.Log(message.Info(fmt.Sprintf("pfile '%s': state dump written to %s", p.path, name)))
		}
	}
}

// notify tells systemd that pcheck is ready once every pfile's adoption
// scan is over, and then feeds its watchdog from the engine's own loops,
// in the foreground when NOTIFY_SOCKET is set.
func (d *daemon) notify(ctx context.Context) *sdnotify.Notifier {
	if d.o.Daemonize {
		return nil
	}
	n, err := sdnotify.New()
	if errors.Is(err, sdnotify.ErrNoSocket) {
		return nil
	}
	if err != nil {
		d.main.Log(message.Warning(fmt.Sprintf("sd_notify: %v", err)))
		return nil
	}
	go func() {
		for _, p := range d.pfiles {
			select {
			case <-p.inst.Adopted():
			case <-ctx.Done():
				return
			}
		}
		if err := n.Notify(sdnotify.Ready); err != nil {
			d.main.Log(message.Warning(fmt.Sprintf("sd_notify: %v", err)))
		}
		if every, ok := sdnotify.WatchdogInterval(); ok {
			d.watchdog(ctx, n, every)
		}
	}()
	return n
}

// watchdog sends WATCHDOG=1 every interval while every running pfile's
// Instance is Alive within that interval: a wedged engine loop (a death
// never handled, a re-check never made) stops the pings and systemd's
// WatchdogSec restarts pcheck. Withholding a ping is logged once, until
// the pings resume.
func (d *daemon) watchdog(ctx context.Context, n *sdnotify.Notifier, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	withheld := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		wctx, cancel := context.WithTimeout(ctx, every)
		var failed error
		for _, p := range d.pfiles {
			if p.ended.Load() {
				continue
			}
			if err := p.inst.Alive(wctx); err != nil && !errors.Is(err, engine.ErrStopped) {
				failed = err
				break
			}
		}
		cancel()
		if ctx.Err() != nil {
			return
		}
		switch {
		case failed == nil:
			n.Notify(sdnotify.Watchdog)
			withheld = false
		case !withheld:
			d.main.Log(message.Warning(fmt.Sprintf("sd_notify: WATCHDOG=1 withheld: %v", failed)))
			withheld = true
		}
	}
}

// ExpandPfiles turns pfile arguments into pfiles: a directory stands for
// the regular, non-hidden files in it (not editor backups ending in ~),
// in name order; a path given twice is taken once.
func ExpandPfiles(args []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	add := func(p string) {
		abs, err := filepath.Abs(p)
		if err != nil {
			abs = p
		}
		if !seen[abs] {
			seen[abs] = true
			out = append(out, p)
		}
	}
	for _, a := range args {
		st, err := os.Stat(a)
		if err != nil || !st.IsDir() {
			add(a) // a missing file is reported by the parser
			continue
		}
		ents, err := os.ReadDir(a)
		if err != nil {
			return nil, fmt.Errorf("pfile directory %s: %w", a, err)
		}
		var names []string
		for _, e := range ents {
			n := e.Name()
			if strings.HasPrefix(n, ".") || strings.HasSuffix(n, "~") || !e.Type().IsRegular() {
				continue
			}
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			add(filepath.Join(a, n))
		}
	}
	return out, nil
}

func fileOf(files []*pfile.File, path string) *pfile.File {
	i := slices.IndexFunc(files, func(f *pfile.File) bool { return f.Path == path })
	return files[i]
}

// switchLogger is a pfile's Logger; a reload that changes SyslogFacility
// switches it to the Logger of the new facility.
type switchLogger struct {
	l atomic.Pointer[message.Logger]
}

func (s *switchLogger) set(l *message.Logger) { s.l.Store(l) }

// Log sends m through the current Logger.
func (s *switchLogger) Log(m message.Message) { s.l.Load().Log(m) }

func warning(format string, args ...any) message.Message {
	return message.Warning(fmt.Sprintf(format, args...))
}
