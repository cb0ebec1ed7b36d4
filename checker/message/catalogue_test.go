package message

import (
	"strings"
	"testing"
	"time"
)

// want is one expected catalogue line, written out by hand from
// messages.md: the byte-exact contract the table must keep.
type want struct {
	id       ID
	msg      Message // built through the typed constructor
	ident    string
	priority Priority
	text     string
}

// wants covers every entry of the catalogue (TestWantsCoverCatalogue).
var wants = []want{
	{IDUp, Up("httpd", 1234), "pcheck", PriorityInfo, "('httpd' ,pid=1234) Up"},
	{IDDown, Down("/usr/sbin/httpd", 1234), "pcheck", PriorityErr, "Process ['/usr/sbin/httpd',pid=1234] Down"},
	{IDTryRestart, TryRestart("httpd"), "pcheck", PriorityNotice, "Try to restart ('httpd')"},
	{IDSetPidFail, SetPidFail("httpd"), "pcheck", PriorityErr, "Set pid fail ('httpd')"},
	{IDWebServerStall, WebServerStall(1234, 8080), "pcheck", PriorityErr, "Find Web Server Stall: pid = 1234 : port = 8080"},
	{IDSocketStall, SocketStall(1234, 25), "pcheck", PriorityErr, "Find Socket Service Stall: pid = 1234 : port = 25"},
	{IDKilled, Killed(1234), "pcheck", PriorityNotice, "Killed Process: pid= 1234"},
	{IDCannotKill, CannotKill(1234), "pcheck", PriorityErr, "Can not killed Process: pid= 1234"},
	{IDPadminCommand, PadminCommand("stop", "/etc/pcheck/web.pfile"), "padmin", PriorityNotice, "Command execute. [stop] pfile='/etc/pcheck/web.pfile'"},
	{IDPadminCommand, PadminCommand("start", "/etc/pcheck/web.pfile"), "padmin", PriorityNotice, "Command execute. [start] pfile='/etc/pcheck/web.pfile'"},
	{IDPadminCommand, PadminCommand("reload", "web.pfile"), "padmin", PriorityNotice, "Command execute. [reload] pfile='web.pfile'"},
	{IDPadminCommand, PadminCommand("reset", "web.pfile"), "padmin", PriorityNotice, "Command execute. [reset] pfile='web.pfile'"},
	{IDRetryOver, RetryOver("httpd", "exit"), "pcheck", PriorityErr, "Retry over ('httpd') action=exit"},
	{IDAutoReboot, AutoReboot("httpd", 2, 3), "pcheck", PriorityCrit, "Auto reboot ('httpd') count=2/3"},
	{IDAutoRebootSkipped, AutoRebootSkipped("httpd", 3), "pcheck", PriorityCrit, "Auto reboot skipped ('httpd'): limit 3 reached"},
	{IDHeartbeatStall, HeartbeatStall(1234, "/var/run/app.hb"), "pcheck", PriorityErr, "Find Heartbeat Stall: pid = 1234 : file = /var/run/app.hb"},
	{IDListenStall, ListenStall(1234, 5432), "pcheck", PriorityErr, "Find Listen Port Stall: pid = 1234 : port = 5432"},
	{IDChildStall, ChildStall(1234, "worker"), "pcheck", PriorityErr, "Find Child Process Stall: pid = 1234 : child = worker"},
	{IDCommandStall, CommandStall(1234, "/opt/check.sh"), "pcheck", PriorityErr, "Find Check Command Stall: pid = 1234 : command = /opt/check.sh"},
	{IDResourceStall, ResourceStall(1234, "rss", "530M", "512M"), "pcheck", PriorityErr, "Find Resource Stall: pid = 1234 : rss = 530M : limit = 512M"},
	{IDCleanupKilled, CleanupKilled(99, "java -jar old"), "pcheck", PriorityNotice, "Cleanup killed process: pid= 99 : pattern = 'java -jar old'"},
	{IDScriptFailed, ScriptFailed("httpd", "1"), "pcheck", PriorityWarning, "Restart script failed ('httpd') status=1"},
	{IDScriptFailed, ScriptFailed("httpd", "timeout"), "pcheck", PriorityWarning, "Restart script failed ('httpd') status=timeout"},
	{IDStart, Start("/etc/pcheck/web.pfile"), "pcheck", PriorityInfo, "pcheck start. pfile='/etc/pcheck/web.pfile'"},
	{IDStop, Stop("/etc/pcheck/web.pfile"), "pcheck", PriorityInfo, "pcheck stop. pfile='/etc/pcheck/web.pfile'"},
	{IDPfileError, PfileError("web.pfile:3:7: unknown parameter \"Foo\""), "pcheck", PriorityErr, "pfile error: web.pfile:3:7: unknown parameter \"Foo\""},
	{IDDropped, Dropped(37), "pcheck", PriorityWarning, "37 syslog messages dropped"},
	{IDTLSExpiresSoon, TLSExpiresSoon(8443, 3), "pcheck", PriorityWarning, "TLS certificate expires soon: port = 8443 : days = 3"},
	{IDMonitorUnknown, MonitorUnknown("/usr/sbin/httpd", "_bi_check", "check command /opt/check.sh: fork/exec /opt/check.sh: no such file or directory"), "pcheck", PriorityWarning,
		"Monitor unknown ('/usr/sbin/httpd') _bi_check: check command /opt/check.sh: fork/exec /opt/check.sh: no such file or directory"},
	{IDRestartDelayed, RestartDelayed("httpd", 4200*time.Millisecond), "pcheck", PriorityNotice, "Restart delayed ('httpd') seconds=4.2"},
	{IDRetryOverRearmed, RetryOverRearmed("httpd"), "pcheck", PriorityNotice, "Retry over rearmed ('httpd')"},
	{IDStallDiagnostics, StallDiagnostics("httpd", "/var/lib/pcheck/diag/web-0a1b2c3d-20260101T000000.000Z.txt"), "pcheck", PriorityNotice,
		"Stall diagnostics saved ('httpd'): /var/lib/pcheck/diag/web-0a1b2c3d-20260101T000000.000Z.txt"},
	{IDInfo, Info("restart.sh: httpd started"), "pcheck", PriorityInfo, "restart.sh: httpd started"},
	{IDWarning, Warning("state file unwritable"), "pcheck", PriorityWarning, "state file unwritable"},
	{IDErr, Err("cannot read /proc"), "pcheck", PriorityErr, "cannot read /proc"},
}

func TestConstructors(t *testing.T) {
	for _, w := range wants {
		if w.msg.ID != w.id || w.msg.Ident != w.ident || w.msg.Priority != w.priority || w.msg.Text != w.text {
			t.Errorf("%s:\n got %+v\nwant {ID:%s Ident:%s Priority:%s Text:%s}", w.id, w.msg, w.id, w.ident, w.priority, w.text)
		}
	}
}

func TestWantsCoverCatalogue(t *testing.T) {
	covered := map[ID]bool{}
	for _, w := range wants {
		covered[w.id] = true
	}
	seen := map[ID]bool{}
	for _, e := range Catalogue() {
		if seen[e.ID] {
			t.Errorf("catalogue lists %s twice", e.ID)
		}
		seen[e.ID] = true
		if !covered[e.ID] {
			t.Errorf("catalogue entry %s (%q) has no expected text in this test", e.ID, e.Format)
		}
	}
	if len(seen) != len(covered) {
		t.Errorf("catalogue has %d entries, the test expects %d", len(seen), len(covered))
	}
}

func TestCatalogueProductStrings(t *testing.T) {
	// The ProcessSaver strings of messages.md, as outside tools match them.
	product := map[ID]string{
		IDUp:             "('<proc>' ,pid=<pid>) Up",
		IDDown:           "Process ['<proc>',pid=<pid>] Down",
		IDTryRestart:     "Try to restart ('<proc>')",
		IDSetPidFail:     "Set pid fail ('<proc>')",
		IDWebServerStall: "Find Web Server Stall: pid = <pid> : port = <port>",
		IDSocketStall:    "Find Socket Service Stall: pid = <pid> : port = <port>",
		IDKilled:         "Killed Process: pid= <pid>",
		IDCannotKill:     "Can not killed Process: pid= <pid>",
		IDPadminCommand:  "Command execute. [<command>] pfile='<pfile>'",
	}
	n := 0
	for _, e := range Catalogue() {
		if !e.Product {
			continue
		}
		n++
		if product[e.ID] != e.Format {
			t.Errorf("product string %s is %q; messages.md has %q", e.ID, e.Format, product[e.ID])
		}
	}
	if n != len(product) {
		t.Errorf("catalogue marks %d product strings; messages.md has %d", n, len(product))
	}
}

func TestPlaceholderValuesNotExpanded(t *testing.T) {
	m := Up("<pid>", 7)
	if m.Text != "('<pid>' ,pid=7) Up" {
		t.Errorf("Up(\"<pid>\", 7) = %q", m.Text)
	}
}

func TestCatalogueIsACopy(t *testing.T) {
	c := Catalogue()
	c[0].Format = "changed"
	if Catalogue()[0].Format == "changed" || Up("a", 1).Text != "('a' ,pid=1) Up" {
		t.Error("changing the slice Catalogue returned changed the table")
	}
}

func TestPriorityString(t *testing.T) {
	for p, s := range map[Priority]string{PriorityCrit: "crit", PriorityErr: "err", PriorityWarning: "warning", PriorityNotice: "notice", PriorityInfo: "info", Priority(9): "Priority(9)"} {
		if got := p.String(); got != s {
			t.Errorf("Priority(%d).String() = %q; want %q", int(p), got, s)
		}
	}
	for _, e := range Catalogue() {
		if strings.HasPrefix(e.Priority.String(), "Priority(") {
			t.Errorf("%s has priority %d outside syslog's", e.ID, e.Priority)
		}
	}
}
