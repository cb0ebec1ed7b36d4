package syslogtest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// RequireRsyslogEnv, when set in the environment (CI sets it), makes
// StartRsyslogd fail the test instead of skipping it where rsyslogd is not
// installed, so a missing package cannot pass unnoticed.
const RequireRsyslogEnv = "PCHECK_REQUIRE_RSYSLOG"

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

// Rsyslog is a private rsyslogd started for one test.
type Rsyslog struct {
	// Dir holds its configuration and log files.
	Dir string
	// Socket is the unixgram socket it reads (give it to pcheck as
	// --syslog unixgram:<Socket>).
	Socket string
}

// PriLog, FileLog and TraditionalLog are its three output files: with the
// <PRI> prefix, in RSYSLOG_FileFormat and in the traditional format.
func (r *Rsyslog) PriLog() string         { return filepath.Join(r.Dir, "pri.log") }
func (r *Rsyslog) FileLog() string        { return filepath.Join(r.Dir, "file.log") }
func (r *Rsyslog) TraditionalLog() string { return filepath.Join(r.Dir, "traditional.log") }

// StartRsyslogd starts rsyslogd in the foreground on a private
// configuration; it is stopped when the test ends. Without rsyslogd the
// test is skipped, or fails when RequireRsyslogEnv is set.
func StartRsyslogd(t testing.TB) *Rsyslog {
	t.Helper()
	const wait = 10 * time.Second
	bin, err := exec.LookPath("rsyslogd")
	if err != nil {
		if os.Getenv(RequireRsyslogEnv) != "" {
			t.Fatalf("rsyslogd not installed but %s is set (apt-get install -y rsyslog)", RequireRsyslogEnv)
		}
		t.Skip("rsyslogd not installed (apt-get install -y rsyslog)")
	}
	dir, err := os.MkdirTemp("", "rsyslog") // short: the socket path must fit sun_path
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

	r := &Rsyslog{Dir: dir, Socket: filepath.Join(dir, "log.sock")}
	deadline := time.Now().Add(wait)
	for {
		if _, err := os.Stat(r.Socket); err == nil {
			return r
		} else if !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		select {
		case err := <-exited:
			t.Fatalf("rsyslogd exited before creating %s: %v\n%s", r.Socket, err, out.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("rsyslogd did not create %s within %v\n%s", r.Socket, wait, out.String())
		}
	}
}
