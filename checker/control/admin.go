package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pcheck/pcheck/checker/message"
	"github.com/pcheck/pcheck/checker/probe"
	"github.com/pcheck/pcheck/checker/states"
)

// Admin carries out padmin's commands against the pchecks whose sockets
// are in RunDir, writing aligned tables (or JSON) to Out. Each method
// returns nil when done, an error wrapping ErrNotServed when no pcheck
// serves the pfile, and any other error when the command was refused or
// failed.
type Admin struct {
	RunDir string
	// JSON selects machine-readable output.
	JSON bool
	// Long selects every column of padmin status (-l); the default
	// table fits 80 columns.
	Long bool
	// Timeout bounds each request (DefaultTimeout when 0).
	Timeout time.Duration
	Out     io.Writer
	// Warn receives problems that do not fail a command over every
	// pfile (a socket we may not open); nil discards them.
	Warn io.Writer
	// Log, when set, logs `Command execute. [...]` for every
	// state-changing command done, under the pfile's SyslogFacility.
	Log func(facility string, m message.Message)
}

// ErrNotHealthy is what Status returns, after printing the status in full,
// when an entry is not Up, a monitor is Stalled or Unknown or a pcheck
// does not answer: padmin status then exits 4, for scripts and cron.
var ErrNotHealthy = errors.New("not every process is Up and every monitor healthy")

// stateOrder is the order of the states in summaries.
var stateOrder = []string{states.Up.String(), states.Down.String(), states.Restarting.String(), states.Paused.String(), states.RetryOver.String()}

// call sends one request to the pcheck serving pfile.
func (a *Admin) call(pfile string, req Request, result any) (Response, error) {
	sv, err := Lookup(a.RunDir, pfile, a.Timeout)
	if err != nil {
		return Response{}, err
	}
	c, err := Dial(sv.Socket, a.Timeout)
	if err != nil {
		return Response{}, err
	}
	defer c.Close()
	resp, err := c.Call(req, result)
	if err != nil {
		return resp, fmt.Errorf("%s %s: %w", req.Command, sv.Info.Pfile, err)
	}
	return resp, nil
}

// each sends req to every pcheck (pfile "") or to the one serving pfile,
// calling fn with each answer. Over every pfile, a pcheck that does not
// answer (a socket we may not open, a pcheck that does not answer in
// time, one that refuses) does not stop the others: its error is in
// failed. A pcheck gone since the sockets were listed is skipped, as List
// skips it.
func (a *Admin) each(pfile string, req Request, fn func(Response) error) (failed []error, err error) {
	if pfile != "" {
		resp, err := a.call(pfile, req, nil)
		if err != nil {
			return nil, err
		}
		return nil, fn(resp)
	}
	served, errs := List(a.RunDir, a.Timeout)
	if len(served) == 0 {
		if len(errs) > 0 {
			return nil, errs[0]
		}
		return nil, fmt.Errorf("run directory %s: %w", a.RunDir, ErrNotServed)
	}
	for _, sv := range served {
		c, err := Dial(sv.Socket, a.Timeout)
		if err == nil {
			var resp Response
			resp, err = c.Do(req)
			c.Close()
			if err == nil {
				if err := fn(resp); err != nil {
					return errs, err
				}
				continue
			}
			err = fmt.Errorf("%s %s: %w", req.Command, sv.Info.Pfile, err)
		}
		if !errors.Is(err, ErrNotServed) {
			errs = append(errs, err)
		}
	}
	return errs, nil
}

func (a *Admin) warn(errs []error) {
	if a.Warn == nil {
		return
	}
	for _, err := range errs {
		fmt.Fprintln(a.Warn, "padmin:", err)
	}
}

func (a *Admin) printJSON(v any) error {
	enc := json.NewEncoder(a.Out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (a *Admin) table() *tabwriter.Writer {
	return tabwriter.NewWriter(a.Out, 0, 0, 2, ' ', 0)
}

// List prints the pfiles served: pfile, pcheck pid, uptime, processes,
// their states and the reboot count.
func (a *Admin) List() error {
	served, errs := List(a.RunDir, a.Timeout)
	if len(served) == 0 && len(errs) > 0 {
		return errs[0]
	}
	a.warn(errs)
	if a.JSON {
		infos := make([]InfoResult, 0, len(served))
		for _, sv := range served {
			infos = append(infos, sv.Info)
		}
		return a.printJSON(infos)
	}
	tw := a.table()
	fmt.Fprintln(tw, "PFILE\tPID\tUPTIME\tPROCESSES\tSTATE\tREBOOTS")
	for _, sv := range served {
		in := sv.Info
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\t%s\n", in.Pfile, in.Pid, seconds(in.UptimeSeconds),
			in.Processes, summary(in.States), reboots(in.Reboots))
	}
	return tw.Flush()
}

// summary is "2 Up, 1 Down".
func summary(states map[string]int) string {
	var parts []string
	for _, s := range stateOrder {
		if n := states[s]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, s))
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

func reboots(n *int) string {
	if n == nil {
		return "-"
	}
	return fmt.Sprint(*n)
}

// seconds formats whole seconds as a duration: 1h2m3s.
func seconds(s int64) string { return (time.Duration(s) * time.Second).String() }

// Rule prints the effective rules of pfile.
func (a *Admin) Rule(pfile string) error {
	var r RulesResult
	if _, err := a.call(pfile, Request{Command: CmdRules}, &r); err != nil {
		return err
	}
	if a.JSON {
		var v any
		if err := json.Unmarshal(r.Rules, &v); err != nil {
			return fmt.Errorf("rules of %s: %w", pfile, err)
		}
		return a.printJSON(v)
	}
	_, err := io.WriteString(a.Out, r.Text)
	return err
}

// Status prints the state of every process and monitor of pfile (of
// every pfile served for ""). It returns an error wrapping ErrNotHealthy,
// naming each entry not Up, each monitor Stalled or Unknown and each
// pcheck that did not answer, when there are any.
func (a *Admin) Status(pfile string) error {
	var all []StatusResult
	failed, err := a.each(pfile, Request{Command: CmdStatus}, func(resp Response) error {
		var st StatusResult
		if err := json.Unmarshal(resp.Result, &st); err != nil {
			return fmt.Errorf("status of %s: %w", resp.Pfile, err)
		}
		all = append(all, st)
		return nil
	})
	if err != nil {
		return err
	}
	if a.JSON {
		if pfile != "" {
			err = a.printJSON(all[0])
		} else {
			err = a.printJSON(all)
		}
	} else {
		for i, st := range all {
			if i > 0 {
				fmt.Fprintln(a.Out)
			}
			if err = a.writeStatus(st); err != nil {
				break
			}
		}
	}
	if err != nil {
		return err
	}
	return unhealthy(all, failed)
}

// unhealthy returns an error wrapping ErrNotHealthy that names every entry
// not Up, every monitor Stalled or Unknown and every pcheck whose status
// failed, nil when there is none.
func unhealthy(all []StatusResult, failed []error) error {
	var bad []string
	for _, err := range failed {
		bad = append(bad, "no status: "+err.Error())
	}
	for _, st := range all {
		for _, p := range st.ProcessList {
			if p.State != states.Up.String() {
				bad = append(bad, fmt.Sprintf("%s: process '%s' is %s", st.Pfile, p.Name, p.State))
			}
		}
		for _, m := range st.Monitors {
			if m.State == MonitorStalled || m.State == MonitorUnknown {
				bad = append(bad, fmt.Sprintf("%s: monitor %s of '%s' is %s", st.Pfile, m.Monitor, m.Process, m.State))
			}
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrNotHealthy, strings.Join(bad, "; "))
}

func (a *Admin) writeStatus(st StatusResult) error {
	fmt.Fprintf(a.Out, "pfile %s: pcheck pid %d, up %s", st.Pfile, st.Pid, seconds(st.UptimeSeconds))
	if st.Reboots != nil {
		fmt.Fprintf(a.Out, ", reboots %d", *st.Reboots)
	}
	fmt.Fprintln(a.Out)
	tw := a.table()
	if a.Long {
		fmt.Fprintln(tw, "PROCESS\tSTATE\tPID\tUPTIME\tSTARTED\tCPU\tCPU TIME\tRSS\tTHREADS\tFDS\tCHILDREN\tRESTARTS\tRETRIES\tGRACE\tACTION\tLAST REASON")
	} else {
		fmt.Fprintln(tw, "PROCESS\tSTATE\tPID\tUPTIME\tCPU\tRSS\tRESTARTS\tRETRIES")
	}
	for _, p := range st.ProcessList {
		pids := p.PidsText()
		up := "-"
		if p.State == states.Up.String() {
			up = ShortDuration(p.UptimeSeconds)
			if a.Long {
				up = seconds(p.UptimeSeconds)
			}
		}
		u := p.UsageText()
		if a.Long {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d/%d\t%s\t%s\t%s\n", p.Name, p.State, pids, up,
				u.Started, u.CPU, u.CPUTime, u.RSS, u.Threads, u.FDs, u.Children, p.Restarts,
				p.RetriesUsed, p.RetriesAllowed, seconds(p.GraceSeconds), p.Action, dash(p.LastReason))
		} else {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d/%d\n", p.Name, p.State, pids, up, u.CPU, u.RSS, p.Restarts,
				p.RetriesUsed, p.RetriesAllowed)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, p := range st.ProcessList {
		if !p.NextAttempt.IsZero() {
			// RestartDelay or RetryOverRearm: when the entry acts next.
			fmt.Fprintf(a.Out, "%s: next attempt at %s (in %s)\n", p.Name, p.NextAttempt.Format(time.DateTime),
				max(time.Until(p.NextAttempt), 0).Round(time.Second))
		}
	}
	if len(st.Monitors) == 0 {
		return nil
	}
	fmt.Fprintln(a.Out)
	tw = a.table()
	// The CERT column (days left of a watched certificate) is there only
	// when a monitor watches one, so that pfiles without TLSExpiryWarn or
	// TLSExpiryFail keep the table as it was.
	certs := false
	for _, m := range st.Monitors {
		certs = certs || !m.TLSNotAfter.IsZero()
	}
	head := "PROCESS\tMONITOR\tSTATE\tLAST OK\t"
	if a.Long {
		head += "ATTEMPTS\tFAILURES\t"
	}
	head += "LATENCY\t"
	if certs {
		head += "CERT\t"
	}
	fmt.Fprintln(tw, head+"LAST ERROR")
	now := time.Now()
	for _, m := range st.Monitors {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t", m.Process, m.Monitor, m.State, m.LastOKText())
		if a.Long {
			fmt.Fprintf(tw, "%d\t%d\t", m.Attempts, m.Failures)
		}
		fmt.Fprintf(tw, "%s\t", m.LatencyText())
		if certs {
			fmt.Fprintf(tw, "%s\t", certDays(m.TLSNotAfter, now))
		}
		fmt.Fprintf(tw, "%s\n", dash(m.LastError))
	}
	return tw.Flush()
}

// certDays shows the days left of a certificate ending at notAfter:
// "3 days", "expired", or "-" when none is known.
func certDays(notAfter, now time.Time) string {
	if notAfter.IsZero() {
		return "-"
	}
	if !now.Before(notAfter) {
		return "expired"
	}
	n := probe.DaysLeft(notAfter, now)
	if n == 1 {
		return "1 day"
	}
	return fmt.Sprintf("%d days", n)
}

// PidsText is the watched pids as status tables print them: "12,34",
// "-" for none.
func (p ProcessStatus) PidsText() string {
	if len(p.Pids) == 0 {
		return "-"
	}
	return strings.Trim(strings.Join(strings.Fields(fmt.Sprint(p.Pids)), ","), "[]")
}

// UsageText is a process entry's engine.Usage as padmin status and the
// status page print it; "-" where there is none.
type UsageText struct {
	Started, CPU, CPUTime, RSS, Threads, FDs, Children string
}

// UsageText returns the entry's usage as text.
func (p ProcessStatus) UsageText() UsageText {
	u := p.Usage
	if u == nil {
		return UsageText{"-", "-", "-", "-", "-", "-", "-"}
	}
	t := UsageText{
		Started:  u.Started.Local().Format("2006-01-02T15:04:05"),
		CPU:      fmt.Sprintf("%.1f%%", u.CPUPercent),
		CPUTime:  time.Duration(u.CPUSeconds * float64(time.Second)).Round(10 * time.Millisecond).String(),
		RSS:      Bytes(u.RSSBytes),
		Threads:  fmt.Sprint(u.Threads),
		FDs:      "-",
		Children: fmt.Sprint(u.Children),
	}
	if u.FDs >= 0 {
		t.FDs = fmt.Sprint(u.FDs)
	}
	return t
}

// LastOKText is how long ago the monitor last succeeded ("4s ago"), "-"
// while it is not monitoring.
func (m MonitorStatus) LastOKText() string {
	if m.State == MonitorOk || m.State == MonitorInDoubt || m.State == MonitorStalled || m.State == MonitorUnknown {
		return fmt.Sprintf("%ds ago", int64(m.SinceSuccessSeconds))
	}
	return "-"
}

// LatencyText is the duration of the last attempt, "-" before any.
func (m MonitorStatus) LatencyText() string {
	if m.Attempts == 0 {
		return "-"
	}
	return time.Duration(m.LastLatencySeconds * float64(time.Second)).Round(10 * time.Microsecond).String()
}

// AcceptQueueText is the listener's accept queue and its size ("3/4096"),
// "-" where not known.
func (m MonitorStatus) AcceptQueueText() string {
	switch {
	case m.AcceptQueue == nil:
		return "-"
	case m.Backlog == nil:
		return fmt.Sprint(*m.AcceptQueue)
	}
	return fmt.Sprintf("%d/%d", *m.AcceptQueue, *m.Backlog)
}

// Bytes writes a size in binary units, three figures at most: 512B,
// 12.5K, 300M, 1.2G.
func Bytes(n int64) string {
	const units = "KMGTPE"
	if n < 1024 {
		return fmt.Sprintf("%dB", n)
	}
	v := float64(n)
	i := -1
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if v < 10 {
		return fmt.Sprintf("%.1f%c", v, units[i])
	}
	return fmt.Sprintf("%.0f%c", v, units[i])
}

// ShortDuration writes seconds in two units at most, for narrow
// columns: 45s, 12m05s, 3h25m, 2d03h.
func ShortDuration(s int64) string {
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	case s < 86400:
		return fmt.Sprintf("%dh%02dm", s/3600, s%3600/60)
	}
	return fmt.Sprintf("%dd%02dh", s/86400, s%86400/3600)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// act sends a state-changing command, logs it, and reports it done.
func (a *Admin) act(pfile string, req Request, done string) (Response, error) {
	resp, err := a.call(pfile, req, nil)
	if err != nil {
		return resp, err
	}
	if a.Log != nil {
		a.Log(resp.Facility, message.PadminCommand(req.Command, resp.Pfile))
	}
	if a.JSON {
		return resp, a.printJSON(resp)
	}
	_, err = fmt.Fprintf(a.Out, "%s: %s\n", resp.Pfile, done)
	return resp, err
}

// what names the processes a command acts on.
func what(process string) string {
	if process == "" {
		return "every process"
	}
	return fmt.Sprintf("process '%s'", process)
}

// processName returns the name to send for process of pfile: process
// itself when it is "", has a slash or is an entry's name or key as
// written; else the name of the entries whose program has that base name
// (httpd for /usr/sbin/httpd), when they are all one. Several programs of
// that base name, or an entry named process beside a program of that base
// name, are ErrAmbiguous; none leaves process as it is, for pcheck to
// refuse.
func (a *Admin) processName(pfile, process string) (string, error) {
	if process == "" || strings.Contains(process, "/") {
		return process, nil
	}
	var st StatusResult
	if _, err := a.call(pfile, Request{Command: CmdStatus}, &st); err != nil {
		return "", err
	}
	exact := false
	var names []string
	for _, p := range st.ProcessList {
		if p.Name == process || p.Key == process {
			exact = true
			continue
		}
		if programBase(p.Name) == process && !slices.Contains(names, p.Name) {
			names = append(names, p.Name)
		}
	}
	switch {
	case exact && len(names) == 0:
		return process, nil
	case exact:
		return "", fmt.Errorf("process %s of %s: %w: it names the entry %s and %s; give the path, or the entry's key",
			process, st.Pfile, ErrAmbiguous, process, strings.Join(names, ", "))
	case len(names) == 0:
		return process, nil
	case len(names) == 1:
		return names[0], nil
	}
	return "", fmt.Errorf("process %s of %s: %w: it names %s; give the path", process, st.Pfile, ErrAmbiguous, strings.Join(names, ", "))
}

// programBase is the base name of the program an entry names.
func programBase(name string) string {
	if f := strings.Fields(name); len(f) > 0 {
		return path.Base(f[0])
	}
	return name
}

// PfileNames returns the pfiles served, for completion: each path, then
// each stem (file name when it has none) that names one pfile alone.
func (a *Admin) PfileNames() []string {
	served, _ := List(a.RunDir, a.Timeout)
	var paths []string
	count := map[string]int{}
	for _, sv := range served {
		paths = append(paths, sv.Info.PfileAbs)
		for _, n := range ShortNames(sv.Info.PfileAbs) {
			count[n]++
		}
	}
	out := slices.Clone(paths)
	for _, p := range paths {
		// The stem (the file name when there is none) is what users type.
		short := ShortNames(p)
		if n := short[len(short)-1]; count[n] == 1 {
			out = append(out, n)
		}
	}
	return out
}

// ProcessNames returns the processes of pfile, for completion: each name
// as written, then each program base name that names one program alone.
func (a *Admin) ProcessNames(pfile string) ([]string, error) {
	var st StatusResult
	if _, err := a.call(pfile, Request{Command: CmdStatus}, &st); err != nil {
		return nil, err
	}
	var names []string
	count := map[string]int{}
	for _, p := range st.ProcessList {
		if !slices.Contains(names, p.Name) {
			names = append(names, p.Name)
			count[programBase(p.Name)]++
		}
	}
	out := slices.Clone(names)
	for _, n := range names {
		if b := programBase(n); b != n && count[b] == 1 {
			out = append(out, b)
		}
	}
	return out, nil
}

// Stop pauses monitoring of process ("" every process) of pfile.
func (a *Admin) Stop(pfile, process string) error {
	process, err := a.processName(pfile, process)
	if err != nil {
		return err
	}
	_, err = a.act(pfile, Request{Command: CmdStop, Process: process}, "monitoring of "+what(process)+" paused")
	return err
}

// Start resumes monitoring of process ("" every process), re-arming an
// entry in RetryOver.
func (a *Admin) Start(pfile, process string) error {
	process, err := a.processName(pfile, process)
	if err != nil {
		return err
	}
	_, err = a.act(pfile, Request{Command: CmdStart, Process: process}, "monitoring of "+what(process)+" resumed")
	return err
}

// Reload makes pcheck re-read pfile; a bad pfile is refused with its
// errors (in the error) and the old rules stay.
func (a *Admin) Reload(pfile string) error {
	_, err := a.act(pfile, Request{Command: CmdReload}, "reloaded")
	return err
}

// Restart restarts process now through its restart script; pcheck
// refuses while the process is Up unless force.
func (a *Admin) Restart(pfile, process string, force bool) error {
	process, err := a.processName(pfile, process)
	if err != nil {
		return err
	}
	_, err = a.act(pfile, Request{Command: CmdRestart, Process: process, Force: force},
		fmt.Sprintf("restart of process '%s' started", process))
	return err
}

// Reset zeroes the retry counts of process ("" every process, and then
// the statistics and the reboot count too).
func (a *Admin) Reset(pfile, process string) error {
	process, err := a.processName(pfile, process)
	if err != nil {
		return err
	}
	done := "retry counts of " + what(process) + " reset"
	if process == "" {
		done = "retry counts, statistics and reboot count reset"
	}
	_, err = a.act(pfile, Request{Command: CmdReset, Process: process}, done)
	return err
}

// Dump makes pcheck write its state dump to DumpFileName.
func (a *Admin) Dump(pfile string) error {
	var d DumpResult
	resp, err := a.call(pfile, Request{Command: CmdDump}, &d)
	if err != nil {
		return err
	}
	if a.JSON {
		return a.printJSON(d)
	}
	_, err = fmt.Fprintf(a.Out, "%s: state dump written to %s\n", resp.Pfile, d.File)
	return err
}

// Config resizes the event ring or the statistics buckets of pfile (zero
// fields unchanged) and prints the sizes in force.
func (a *Admin) Config(pfile string, c Config) error {
	req := Request{Command: CmdConfig}
	if c != (Config{}) {
		req.Config = &c
	}
	var res ConfigResult
	resp, err := a.call(pfile, req, &res)
	if err != nil {
		return err
	}
	if req.Config != nil && a.Log != nil {
		a.Log(resp.Facility, message.PadminCommand(CmdConfig, resp.Pfile))
	}
	if a.JSON {
		return a.printJSON(res)
	}
	_, err = fmt.Fprintf(a.Out, "%s: events %d, buckets %d of %s\n", resp.Pfile, res.Events, res.Buckets,
		time.Duration(res.BucketSeconds*float64(time.Second)))
	return err
}

// Events prints the n newest events (n <= 0: every one kept) of pfile,
// or of every pfile merged for "", newest first.
func (a *Admin) Events(pfile string, n int) error {
	var all []Event
	failed, err := a.each(pfile, Request{Command: CmdEvents, N: n}, func(resp Response) error {
		var evs []Event
		if err := json.Unmarshal(resp.Result, &evs); err != nil {
			return fmt.Errorf("events of %s: %w", resp.Pfile, err)
		}
		all = append(all, evs...)
		return nil
	})
	a.warn(failed)
	if err != nil {
		return err
	}
	slices.SortStableFunc(all, func(x, y Event) int { return y.Time.Compare(x.Time) })
	if n > 0 && len(all) > n {
		all = all[:n]
	}
	if a.JSON {
		if all == nil {
			all = []Event{}
		}
		return a.printJSON(all)
	}
	tw := a.table()
	fmt.Fprintln(tw, "TIME\tPFILE\tPROCESS\tKIND\tTEXT")
	for _, ev := range all {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", ev.Time.Local().Format("2006-01-02 15:04:05.000"),
			ev.Pfile, dash(ev.Process), ev.Kind, dash(ev.Text))
		// A Down's last output lines follow it, indented.
		for _, line := range ev.Output {
			fmt.Fprintf(tw, "\t\t\t\t  %s\n", line)
		}
	}
	return tw.Flush()
}

// Stats prints the checks, failures and restarts per time bucket of
// pfile (of every pfile for ""), newest bucket first.
func (a *Admin) Stats(pfile string) error {
	type named struct {
		Pfile string `json:"pfile"`
		StatsResult
	}
	var all []named
	failed, err := a.each(pfile, Request{Command: CmdStats}, func(resp Response) error {
		var st StatsResult
		if err := json.Unmarshal(resp.Result, &st); err != nil {
			return fmt.Errorf("stats of %s: %w", resp.Pfile, err)
		}
		all = append(all, named{resp.Pfile, st})
		return nil
	})
	a.warn(failed)
	if err != nil {
		return err
	}
	if a.JSON {
		if pfile != "" {
			return a.printJSON(all[0])
		}
		return a.printJSON(all)
	}
	for i, st := range all {
		if i > 0 {
			fmt.Fprintln(a.Out)
		}
		size := time.Duration(st.BucketSeconds * float64(time.Second))
		fmt.Fprintf(a.Out, "pfile %s: %d buckets of %s since %s\n", st.Pfile, len(st.Buckets), size,
			st.Since.Local().Format("2006-01-02 15:04:05"))
		fmt.Fprintf(a.Out, "total: %d checks, %d failures, %d restarts; peak bucket: %d checks, %d failures, %d restarts\n",
			st.Total.Checks, st.Total.Failures, st.Total.Restarts, st.Peak.Checks, st.Peak.Failures, st.Peak.Restarts)
		tw := a.table()
		fmt.Fprintln(tw, "BUCKET START\tCHECKS\tFAILURES\tRESTARTS")
		for _, b := range st.Buckets {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\n", b.Start.Local().Format("15:04:05"), b.Checks, b.Failures, b.Restarts)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}
