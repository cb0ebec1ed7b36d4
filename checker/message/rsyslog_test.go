package message

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/pcheck/pcheck/checker/syslogtest"
)

// TestRsyslog sends every catalogue line through a real rsyslogd and finds
// each byte for byte in the files it writes.
func TestRsyslog(t *testing.T) {
	rs := syslogtest.StartRsyslogd(t)
	socket := rs.Socket
	pri := syslogtest.FileTail(t, rs.PriLog())
	files := []*syslogtest.Receiver{
		syslogtest.FileTail(t, rs.FileLog()),
		syslogtest.FileTail(t, rs.TraditionalLog()),
	}
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	// rsyslog drops the local domain unless PreserveFQDN is on.
	shortHost, _, _ := strings.Cut(host, ".")

	var stderr bytes.Buffer
	l, err := New(Options{Ident: IdentPcheck, Facility: "local3", Network: "unixgram", Addr: socket})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.fallback = &stderr

	for _, w := range wants {
		l.Log(w.msg)
		checkLine(t, pri.WaitText(t, w.text, wait), w, FacilityLocal3)
		for _, f := range files {
			got := f.WaitText(t, w.text, wait)
			if got.Ident != w.ident || got.Pid != os.Getpid() || (got.Host != host && got.Host != shortHost) {
				t.Errorf("%s in %s: %q parsed as %+v; want %s[%d] on %s", w.id, f.Addr(), got.Raw, got, w.ident, os.Getpid(), host)
			}
		}
	}
	if stderr.Len() != 0 {
		t.Errorf("lines fell back to stderr:\n%s", stderr.String())
	}
}
