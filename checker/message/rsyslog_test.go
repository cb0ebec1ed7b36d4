package message

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pcheck/pcheck/checker/syslogtest"
)

// rsyslogConf runs a private rsyslogd: no /dev/log, one socket in dir, and
// every message written to three files: with its <PRI> (so facility and
// severity can be checked), in RSYSLOG_FileFormat and in the traditional
// format. The socket input parses the timestamp and host go-syslog sends.
const rsyslogConf = `global(workDirectory="%[1]s")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="%[1]s/log.sock" ParseHostname="on" IgnoreTimestamp="off"
      UseSysTimeStamp="off" UseSpecialParser="off" RateLimit.Interval="0")
template(name="withpri" type="string"
         string="<%%PRI%%>%%TIMESTAMP:::date-rfc3339%% %%HOSTNAME%% %%syslogtag%%%%msg:::sp-if-no-1st-sp%%%%msg:::drop-last-lf%%\n")
action(type="omfile" file="%[1]s/pri.log" template="withpri")
action(type="omfile" file="%[1]s/file.log" template="RSYSLOG_FileFormat")
action(type="omfile" file="%[1]s/traditional.log" template="RSYSLOG_TraditionalFileFormat")
`

// startRsyslogd starts rsyslogd in the foreground on a private config and
// returns its socket path; it is stopped when the test ends.
func startRsyslogd(t *testing.T) (dir, socket string) {
	t.Helper()
	bin, err := exec.LookPath("rsyslogd")
	if err != nil {
		t.Skip("rsyslogd not installed (apt-get install -y rsyslog)")
	}
	dir, err = os.MkdirTemp("", "rsyslog") // short: the socket path must fit sun_path
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	conf := filepath.Join(dir, "rsyslog.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, rsyslogConf, dir), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(bin, "-n", "-f", conf, "-i", filepath.Join(dir, "rsyslogd.pid"))
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(wait):
			cmd.Process.Kill()
			<-exited
		}
	})

	socket = filepath.Join(dir, "log.sock")
	deadline := time.Now().Add(wait)
	for {
		if _, err := os.Stat(socket); err == nil {
			return dir, socket
		} else if !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		select {
		case err := <-exited:
			t.Fatalf("rsyslogd exited before creating %s: %v\n%s", socket, err, out.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("rsyslogd did not create %s within %v\n%s", socket, wait, out.String())
		}
	}
}

// TestRsyslog sends every catalogue line through a real rsyslogd and finds
// each byte for byte in the files it writes.
func TestRsyslog(t *testing.T) {
	dir, socket := startRsyslogd(t)
	pri := syslogtest.FileTail(t, filepath.Join(dir, "pri.log"))
	files := []*syslogtest.Receiver{
		syslogtest.FileTail(t, filepath.Join(dir, "file.log")),
		syslogtest.FileTail(t, filepath.Join(dir, "traditional.log")),
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
