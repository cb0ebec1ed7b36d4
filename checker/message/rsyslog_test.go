package message

import (
	"os"
	"testing"
	"time"

	"github.com/pcheck/pcheck/checker/syslogtest"
)

// TestRsyslog sends every catalogue line through a real rsyslogd on its
// stock settings and finds each, as a whole line, in the files it writes
// with its stock templates: the traditional format, RSYSLOG_FileFormat and
// the protocol-23 format with the <PRI>.
func TestRsyslog(t *testing.T) {
	rs := syslogtest.StartRsyslogd(t)
	traditional := syslogtest.FileTail(t, rs.TraditionalLog())
	file := syslogtest.FileTail(t, rs.FileLog())
	pri := syslogtest.FileTail(t, rs.PriLog())

	fallback := &syncBuffer{}
	l, err := New(Options{Ident: IdentPcheck, Facility: "local3", Network: "unixgram", Addr: rs.Socket, fallbackTo: fallback})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	pid := os.Getpid()
	for _, w := range wants {
		from := time.Now()
		l.Log(w.msg)
		tl := traditional.WaitText(t, w.text, wait)
		fl := file.WaitText(t, w.text, wait)
		pl := pri.WaitText(t, w.text, wait)
		to := time.Now()
		syslogtest.CheckTraditional(t, tl.Raw, w.ident, pid, w.text, from, to)
		syslogtest.CheckFileFormat(t, fl.Raw, w.ident, pid, w.text, from, to)
		syslogtest.CheckProtocol(t, pl.Raw, int(FacilityLocal3), int(w.priority), w.ident, pid, w.text, from, to)
	}
	if s := fallback.String(); s != "" {
		t.Errorf("lines fell back to stderr:\n%s", s)
	}
}

// TestRsyslogUDP: over udp a line carries the time and this host's name,
// and a stock rsyslog's imudp records it as a whole line with both.
func TestRsyslogUDP(t *testing.T) {
	rs := syslogtest.StartRsyslogd(t)
	traditional := syslogtest.FileTail(t, rs.TraditionalLog())
	pri := syslogtest.FileTail(t, rs.PriLog())
	l, err := New(Options{Ident: IdentPcheck, Facility: "local3", Network: "udp", Addr: rs.UDP, fallbackTo: &syncBuffer{}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	from := time.Now()
	for _, m := range []Message{Down("httpd", 42), PadminCommand("stop", "w.pfile")} {
		l.Log(m)
		tl := traditional.WaitText(t, m.Text, wait)
		pl := pri.WaitText(t, m.Text, wait)
		to := time.Now()
		syslogtest.CheckTraditional(t, tl.Raw, m.Ident, os.Getpid(), m.Text, from, to)
		syslogtest.CheckProtocol(t, pl.Raw, int(FacilityLocal3), int(m.Priority), m.Ident, os.Getpid(), m.Text, from, to)
	}
}
