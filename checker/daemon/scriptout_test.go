package daemon

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestScriptDaemonOutlivesPcheck: a restart script that starts its daemon
// in the background without redirecting its output leaves the daemon
// writing to the script's output. Stopping pcheck must not kill it (with
// a pipe, its next write would be a SIGPIPE); the script's own lines still
// reach syslog.
func TestScriptDaemonOutlivesPcheck(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	count := filepath.Join(e.dir, "chatty.count")
	svc := newService(t, e.dir, "chatty",
		`echo "starting the chatty service"`+"\n"+
			`CHATTY_COUNT='`+count+`' DAEMON_TEST_ROLE=chatty "$BIN" service "$TAG" </dev/null &`)
	pf := filepath.Join(e.dir, "a.pf")
	writeFile(t, pf, pfileHead+svc.entry(""))
	p := e.start(nil, pf)
	e.wait(tryLine)
	e.wait("restart script ('" + bin + "'): starting the chatty service")
	pid := svc.waitPid(0)
	e.wait(upLine(pid))

	p.stop(t, syscall.SIGTERM)
	// The daemon goes on writing after pcheck is gone.
	written := func() int {
		b, _ := os.ReadFile(count)
		n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return n
	}
	after := written()
	waitFor(t, "the service to write 10 more lines after pcheck stopped", func() bool { return written() >= after+10 })
	if !alive(pid) {
		t.Fatal("the service died after pcheck stopped")
	}
}
