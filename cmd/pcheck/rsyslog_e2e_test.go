package main

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pcheck/pcheck/checker/syslogtest"
)

// TestRsyslogLines: the lines of a death and a restart, sent by the pcheck
// binary to a real rsyslogd, are found byte for byte in its log files, with
// ident pcheck, pcheck's pid and the pfile's facility.
func TestRsyslogLines(t *testing.T) {
	t.Parallel()
	rs := syslogtest.StartRsyslogd(t)
	file := syslogtest.FileTail(t, rs.FileLog())
	pri := syslogtest.FileTail(t, rs.PriLog())
	e := setup(t, "start", 3, "continue")
	pid := e.startService()
	p := e.pcheck("--syslog", "unixgram:"+rs.Socket, e.pfile) // the last --syslog wins

	up := fmt.Sprintf("('%s' ,pid=%d) Up", self, pid)
	file.WaitText(t, up, 30*time.Second)
	syscall.Kill(pid, syscall.SIGKILL)
	newPid := e.servicePid(pid)
	want := []struct {
		text     string
		severity int
	}{
		{fmt.Sprintf("Process ['%s',pid=%d] Down", self, pid), 3},
		{fmt.Sprintf("Try to restart ('%s')", self), 5},
		{fmt.Sprintf("('%s' ,pid=%d) Up", self, newPid), 6},
	}
	for _, w := range want {
		l := file.WaitText(t, w.text, 30*time.Second)
		if l.Ident != "pcheck" || l.Pid != p.cmd.Process.Pid {
			t.Errorf("%q logged as %s[%d], want pcheck[%d]", w.text, l.Ident, l.Pid, p.cmd.Process.Pid)
		}
		pl := pri.WaitText(t, w.text, 30*time.Second)
		if pl.Severity != w.severity || pl.Facility != 3 { // daemon
			t.Errorf("%q at facility %d severity %d, want daemon(3) severity %d", w.text, pl.Facility, pl.Severity, w.severity)
		}
	}
	data, err := os.ReadFile(rs.FileLog())
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range want {
		if !strings.Contains(string(data), fmt.Sprintf("pcheck[%d]: %s\n", p.cmd.Process.Pid, w.text)) {
			t.Errorf("rsyslog's file lacks the exact line %q", w.text)
		}
	}
}
