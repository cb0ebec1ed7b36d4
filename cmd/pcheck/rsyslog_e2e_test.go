package main

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/pcheck/pcheck/checker/syslogtest"
)

// TestRsyslogLines: the lines of a death and a restart, sent by the pcheck
// binary to a real rsyslogd on its stock settings, are found as whole
// lines in the files it writes with its stock templates: ident pcheck,
// pcheck's pid, this host, the time of reception, and the pfile's
// facility with each line's severity.
func TestRsyslogLines(t *testing.T) {
	t.Parallel()
	rs := syslogtest.StartRsyslogd(t)
	traditional := syslogtest.FileTail(t, rs.TraditionalLog())
	pri := syslogtest.FileTail(t, rs.PriLog())
	e := setup(t, "start", 3, "continue")
	pid := e.startService()
	from := time.Now()
	p := e.pcheck("--syslog", "unixgram:"+rs.Socket, e.pfile) // the last --syslog wins

	up := fmt.Sprintf("('%s' ,pid=%d) Up", self, pid)
	tl := []syslogtest.Line{traditional.WaitText(t, up, 30*time.Second)}
	syscall.Kill(pid, syscall.SIGKILL)
	newPid := e.servicePid(pid)
	want := []struct {
		text     string
		severity int
	}{
		{up, 6},
		{fmt.Sprintf("Process ['%s',pid=%d] Down", self, pid), 3},
		{fmt.Sprintf("Try to restart ('%s')", self), 5},
		{fmt.Sprintf("('%s' ,pid=%d) Up", self, newPid), 6},
	}
	var pl []syslogtest.Line
	for i, w := range want {
		if i > 0 {
			tl = append(tl, traditional.WaitText(t, w.text, 30*time.Second))
		}
		pl = append(pl, pri.WaitText(t, w.text, 30*time.Second))
	}
	to := time.Now()
	for i, w := range want {
		syslogtest.CheckTraditional(t, tl[i].Raw, "pcheck", p.cmd.Process.Pid, w.text, from, to)
		syslogtest.CheckProtocol(t, pl[i].Raw, 3, w.severity, "pcheck", p.cmd.Process.Pid, w.text, from, to) // daemon
	}
}
