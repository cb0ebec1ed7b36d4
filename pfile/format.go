package pfile

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteRules writes the effective rules of f for an operator: every value
// with its default filled in, aligned.
func WriteRules(w io.Writer, f *File) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := f.Params
	fmt.Fprintf(tw, "pfile %s\n\n", f.Path)
	fmt.Fprintf(tw, "Global parameters\n")
	row := func(k, v string) { fmt.Fprintf(tw, "  %s\t%s\n", k, v) }
	row("MonitorInterval", secs(p.MonitorInterval))
	row("MsgCheckInterval", secs(p.MsgCheckInterval))
	row("RetryCount", fmt.Sprint(p.RetryCount))
	row("Grace", secs(p.Grace))
	row("retry_over_action", p.RetryOverAction.String())
	row("RestartTimeout", secs(p.RestartTimeout))
	row("StartWait", secs(p.StartWait))
	row("KillWait", secs(p.KillWait))
	row("DumpFileName", orNone(p.DumpFileName))
	row("SyslogFacility", p.SyslogFacility)
	row("AutoReboot", onOff(p.AutoReboot))
	row("RebootCommand", p.RebootCommand)
	row("RebootLimit", fmt.Sprint(p.RebootLimit))
	row("RebootWindow", secs(p.RebootWindow))
	row("RebootStateFile", orText(p.RebootStateFile, "(under the state directory)"))
	if len(p.Cleanup) == 0 {
		row("Cleanup", "none")
	}
	for _, c := range p.Cleanup {
		row("Cleanup", fmt.Sprintf("%q after %d min", c.Pattern, int64(c.Age/time.Minute)))
	}
	// pcheck's own restart policy, shown when the pfile turns it on.
	if p.Backoff.Delay > 0 {
		row("RestartDelay", secs(p.Backoff.Delay))
		row("RestartDelayMax", secs(p.Backoff.Max))
		row("RestartDelayReset", secs(p.Backoff.Reset))
	}
	if p.RetryOverRearm > 0 {
		row("RetryOverRearm", secs(p.RetryOverRearm))
	}
	fmt.Fprintf(tw, "\nCluster\n")
	row("ClusterNotify", orText(p.ClusterNotify, "off"))
	row("ClusterHealthAttribute", orText(p.ClusterHealthAttribute, "off"))
	for i, pr := range f.Processes {
		fmt.Fprintf(tw, "\nProcess %d: %s (line %d)\n", i+1, quoteName(pr), pr.Pos.Line)
		if pr.ByName {
			row("match", fmt.Sprintf("process name (comm or argv[0] base name) %q", pr.Name))
		} else {
			row("match", "executable or argv[0] "+pr.Name)
		}
		row("args", orText(pr.Args, "(any)"))
		row("user", orText(pr.User, "(any)"))
		row("pidfile", orNone(pr.PidFile))
		row("count", fmt.Sprint(pr.Count))
		row("restart script", pr.Script)
		row("retry", fmt.Sprintf("%d within grace %s, then %s", pr.Retry, secs(pr.Grace), pr.Action))
		row("restart timeout", secs(pr.Timeout))
		if bo := pr.Backoff; bo.Delay > 0 {
			row("restart delay", fmt.Sprintf("%s, doubled at each failure up to %s (jitter 20%%), back to %s after %s Up", secs(bo.Delay), secs(bo.Max), secs(bo.Delay), secs(bo.Reset)))
		}
		if pr.RetryOverRearm > 0 {
			row("retry over", fmt.Sprintf("re-armed after %s", secs(pr.RetryOverRearm)))
		}
		for _, b := range pr.Blocks {
			writeBlock(tw, b)
		}
	}
	return tw.Flush()
}

func writeBlock(tw io.Writer, b *Block) {
	m := b.Monitor
	fmt.Fprintf(tw, "  %s (line %d)\t%s\n", b.Name, b.Pos.Line, describeMonitor(m))
	row := func(k, v string) { fmt.Fprintf(tw, "    %s\t%s\n", k, v) }
	row("interval", secs(m.Interval))
	row("failover", secs(m.Failover))
	row("attempt timeout", secs(m.Timeout))
	if m.StopAfterStall {
		row("on stall", "kill, then stop stall monitoring (PS_EXEC error 1)")
	} else {
		row("on stall", "kill, keep stall monitoring (PS_EXEC error 0)")
	}
	if m.RetryOverOnKillFailure {
		row("kill fails", "run retry_over_action (PS_ACTION error 1)")
	} else {
		row("kill fails", "nothing more (PS_ACTION error 0)")
	}
	if len(m.ExpectStatus) > 0 {
		row("expect status", FormatStatusRanges(m.ExpectStatus))
	}
	for _, h := range m.ExpectHeaders {
		if h.Pattern == "" {
			row("expect header", h.Name+" present")
		} else {
			row("expect header", fmt.Sprintf("%s matching %q", h.Name, h.Pattern))
		}
	}
	if m.ExpectBody != "" {
		row("expect body", fmt.Sprintf("matching %q in its first 64 KiB", m.ExpectBody))
	}
	if m.TLSExpiryWarnDays > 0 {
		row("certificate", fmt.Sprintf("warn when fewer than %d days are left (once a day)", m.TLSExpiryWarnDays))
	}
	if m.TLSExpiryFailDays > 0 {
		row("certificate", fmt.Sprintf("attempt fails when fewer than %d days are left", m.TLSExpiryFailDays))
	}
	if m.StallDiagnostics {
		d := "save diagnostics under <state-dir>/diag"
		if m.StallSignal != "" {
			d = fmt.Sprintf("send SIG%s, wait %s, then %s", m.StallSignal, secs(m.StallSignalWait), d)
		}
		row("before the kill", d)
	}
	for i := range b.Entries {
		e := &b.Entries[i]
		row(string(e.Kind), describeEntry(e))
	}
}

func describeMonitor(m Monitor) string {
	switch m.Kind {
	case KindWebserv:
		return fmt.Sprintf("HTTP %s / to %s port %d", httpMethod(m), m.Host, m.Port)
	case KindWebservs:
		verify := "certificate not verified"
		if m.TLSVerify {
			verify = "certificate verified"
			if m.TLSCAFile != "" {
				verify += " against " + m.TLSCAFile
			}
		}
		return fmt.Sprintf("HTTPS %s %s to %s port %d, %s", httpMethod(m), m.Path, m.Host, m.Port, verify)
	case KindSocket:
		return fmt.Sprintf("TCP connect to %s port %d", m.Host, m.Port)
	case KindHeartbeat:
		return "heartbeat file " + m.File
	case KindListen:
		return fmt.Sprintf("LISTEN socket on %s port %d held by the process tree", orText(m.Address, "any address"), m.Port)
	case KindChildren:
		return "children present: " + strings.Join(m.Children, ", ")
	case KindCommand:
		return "check command " + strings.TrimSpace(m.File+" "+strings.Join(m.Args, " "))
	case KindResource:
		return describeResource(m)
	}
	return string(m.Kind)
}

// httpMethod is the request an HTTP monitor sends: GET when it reads the
// body (ExpectBody), else HEAD.
func httpMethod(m Monitor) string {
	if m.ExpectBody != "" {
		return "GET"
	}
	return "HEAD"
}

func describeEntry(e *Entry) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s timeout %s interval %s error %s argc %d",
		e.Type, e.File, e.Call, dashSecs(e.Timeout), dashSecs(e.Interval), dashInt(e.Error), e.Argc)
	if len(e.Argv) > 0 {
		fmt.Fprintf(&b, " argv %s", strings.Join(e.Argv, " "))
	}
	return b.String()
}

func quoteName(p *Process) string {
	if p.ByName {
		return fmt.Sprintf("%q", p.Name)
	}
	return p.Name
}

func dashSecs(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return fmt.Sprint(int64(d / time.Second))
}

func dashInt(n int) string {
	if n < 0 {
		return "-"
	}
	return fmt.Sprint(n)
}

func orNone(s string) string { return orText(s, "none") }

func orText(s, none string) string {
	if s == "" {
		return none
	}
	return s
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
