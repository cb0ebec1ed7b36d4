package parser_test

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pcheck/pcheck/parser"
	"github.com/pcheck/pcheck/pfile"
)

func load(t *testing.T, text string) *pfile.File {
	t.Helper()
	f, diags := parser.LoadBytes("t.pfile", []byte(text))
	if f == nil {
		t.Fatalf("rejected:\n%s", diags.Err())
	}
	return f
}

func errorsOf(text string) []string {
	_, diags := parser.LoadBytes("t.pfile", []byte(text))
	var out []string
	for _, d := range diags.Errors() {
		out = append(out, d.String())
	}
	return out
}

const proc = "/usr/sbin/httpd /etc/pcheck/restart.sh\n"

// The guide writes the same entries two ways; both must read the same.
func TestEntrySpellingsAgree(t *testing.T) {
	block := func(init, action, quit string) string {
		return proc + "_bi_socket{\n" +
			"  PS_INIT DLL:/opt/HA/PSWE/lib/lib_bi_socket.so:" + init + "\n" +
			"  PS_EXEC DLL:/opt/HA/PSWE/lib/lib_bi_socket.so:DIRECT:-:60:-:2:600:8080\n" +
			"  PS_ACTION DLL:/opt/HA/PSWE/lib/lib_bi_socket.so:" + action + "\n" +
			"  PS_QUIT DLL:/opt/HA/PSWE/lib/lib_bi_socket.so:" + quit + "\n}\n"
	}
	a := load(t, block("DIRECT:-::-:0", "DIRECT:-::-:1:0", "DIRECT:-::-:0"))
	b := load(t, block("DIRECT:-:--:0", "DIRECT:-:--:1:0", "DIRECT:-:--:0"))
	for i := range a.Processes[0].Blocks[0].Entries {
		ea, eb := a.Processes[0].Blocks[0].Entries[i], b.Processes[0].Blocks[0].Entries[i]
		ea.Pos, eb.Pos = pfile.Pos{}, pfile.Pos{}
		ja, _ := ea.MarshalJSON()
		jb, _ := eb.MarshalJSON()
		if string(ja) != string(jb) {
			t.Errorf("entry %d differs:\n%s\n%s", i, ja, jb)
		}
	}
	act := a.Processes[0].Blocks[0].Entries[2]
	if act.Kind != pfile.EntryAction || act.Error != 1 || act.Argc != 0 {
		t.Errorf("PS_ACTION DIRECT:-::-:1:0 read as error %d argc %d, want error 1 argc 0 (the guide's table)", act.Error, act.Argc)
	}
	if !a.Processes[0].Blocks[0].Monitor.RetryOverOnKillFailure {
		t.Error("PS_ACTION error 1 must run retry_over_action when the kill fails")
	}
}

func TestActionErrorZero(t *testing.T) {
	f := load(t, proc+"_bi_socket{\n PS_EXEC DLL:/x/lib_bi_socket.so:DIRECT:-:60:-:2:600:8080\n PS_ACTION DLL:/x/lib_bi_socket.so:DIRECT:-::-:0:0\n}\n")
	if f.Processes[0].Blocks[0].Monitor.RetryOverOnKillFailure {
		t.Error("PS_ACTION error 0 must do nothing more when the kill fails")
	}
}

// The guide's PS_EXEC breaks after "lib_bi_webserv.so:"; fields keep their
// positions across the break.
func TestContinuationPositions(t *testing.T) {
	text := proc + "_bi_webserv{\n    PS_EXEC DLL:/opt/HA/PSWE/lib/lib_bi_webserv.so:\n          DIRECT:-:60:0:2:600:80800\n}\n"
	got := errorsOf(text)
	want := []string{`t.pfile:4:31: port (argv[1]) must be between 1 and 65535, not "80800"`}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q want %q", got, want)
	}
}

func TestBackslashContinuation(t *testing.T) {
	f := load(t, "/usr/bin/java \\\n   /etc/pcheck/restart.sh \\\n   args=\"-Dname=a\"\n")
	p := f.Processes[0]
	if p.Script != "/etc/pcheck/restart.sh" || p.Args != "-Dname=a" {
		t.Errorf("got script %q args %q", p.Script, p.Args)
	}
}

// A comment ending in ':' takes the next line only when that line cannot
// start a statement.
func TestCommentContinuation(t *testing.T) {
	f := load(t, "# template:\n  <timeout>:<path>\n# a note:\n/usr/sbin/httpd /etc/pcheck/r.sh\n")
	if len(f.Processes) != 1 || f.Processes[0].Name != "/usr/sbin/httpd" {
		t.Fatalf("process entry after a comment ending in ':' was lost: %+v", f.Processes)
	}
	_, diags := parser.LoadBytes("t.pfile", []byte("# template:\n<timeout>\n"+proc))
	if len(diags) != 1 || diags[0].String() != "t.pfile:2:1: warning: unknown parameter <timeout> (ignored)" {
		t.Errorf("an unindented line after a comment is a statement of its own; got %v", diags)
	}
}

func TestCaseInsensitiveKeywords(t *testing.T) {
	f := load(t, "MONITORINTERVAL 7\nretry_OVER_action EXIT\nsyslogfacility LOCAL5\n"+proc+
		"_BI_WEBSERV{\n ps_exec dll:/x/LIB_BI_WEBSERV.SO:direct:-:20:0:2:40:81\n}\n")
	if f.Params.MonitorInterval != 7*time.Second || f.Params.RetryOverAction != pfile.ActionExit || f.Params.SyslogFacility != "local5" {
		t.Errorf("params: %+v", f.Params)
	}
	m := f.Processes[0].Blocks[0].Monitor
	if m.Kind != pfile.KindWebserv || m.Port != 81 || m.Interval != 20*time.Second || m.Failover != 40*time.Second {
		t.Errorf("monitor: %+v", m)
	}
}

func TestDefaultsFilled(t *testing.T) {
	f := load(t, "RetryCount 7\nGrace 60\nRestartTimeout 9\n"+proc+"/usr/sbin/sshd /etc/pcheck/r.sh retry=1 action=exit\n")
	a, b := f.Processes[0], f.Processes[1]
	if a.Retry != 7 || a.Grace != time.Minute || a.Timeout != 9*time.Second || a.Action != pfile.ActionContinue || a.Count != 1 {
		t.Errorf("entry defaults from params: %+v", a)
	}
	if b.Retry != 1 || b.Action != pfile.ActionExit || b.Grace != time.Minute {
		t.Errorf("per-entry values: %+v", b)
	}
	if f.Params.StartWait != 30*time.Second || f.Params.KillWait != 5*time.Second || f.Params.RebootCommand != "/sbin/shutdown -r now" {
		t.Errorf("PARAM defaults: %+v", f.Params)
	}
}

func TestAttemptTimeoutRule(t *testing.T) {
	f := load(t, proc+
		"_bi_socket{\n PS_EXEC DLL:/x/lib_bi_socket.so:DIRECT:3:20:-:2:40:1\n}\n"+
		"_bi_webservs{\n PS_EXEC DLL:/x/lib_bi_webservs.so:DIRECT:-:20:-:5:40:2:h:4:/p\n}\n"+
		"_bi_webserv{\n PS_EXEC DLL:/x/lib_bi_webserv.so:DIRECT:-:30:-:2:40:3\n}\n"+
		"_bi_listen{\n PS_EXEC DLL:/x/lib_bi_listen.so:DIRECT:-:2:-:2:4:4\n}\n")
	var got []time.Duration
	for _, b := range f.Processes[0].Blocks {
		got = append(got, b.Monitor.Timeout)
	}
	want := []time.Duration{3 * time.Second, 4 * time.Second, 10 * time.Second, 2 * time.Second}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("timeouts %v want %v (entry field, webservs argv, min(interval, 10 s))", got, want)
	}
}

func TestEveryErrorReported(t *testing.T) {
	text := "MonitorInterval x\n= 1\nRetryCount y\n" + proc + "}\n/usr/sbin/a /r count=0\n"
	got := errorsOf(text)
	if len(got) != 5 {
		t.Fatalf("want 5 errors, got %d:\n%s", len(got), strings.Join(got, "\n"))
	}
	for i, line := range []int{1, 2, 3, 5, 6} {
		if !strings.HasPrefix(got[i], fmt.Sprintf("t.pfile:%d:", line)) {
			t.Errorf("error %d not on line %d: %s", i, line, got[i])
		}
	}
}

func TestMissingFile(t *testing.T) {
	_, diags := parser.Load(filepath.Join(t.TempDir(), "nope.pfile"))
	if !diags.HasErrors() || !strings.Contains(diags[0].String(), "nope.pfile") || !strings.Contains(diags[0].Msg, "no such file") {
		t.Errorf("got %v", diags)
	}
}

func TestGuideSamplesMeaning(t *testing.T) {
	cases := []struct {
		file string
		want pfile.Monitor
	}{
		{"guide_webserv", pfile.Monitor{Kind: pfile.KindWebserv, Interval: 60 * time.Second, Failover: 600 * time.Second, Timeout: 10 * time.Second, Port: 8080, Host: "localhost", RetryOverOnKillFailure: true}},
		{"guide_webservs", pfile.Monitor{Kind: pfile.KindWebservs, Interval: 60 * time.Second, Failover: 600 * time.Second, Timeout: 5 * time.Second, Port: 433, Host: "localhost", Path: "/", RetryOverOnKillFailure: true}},
		{"guide_socket", pfile.Monitor{Kind: pfile.KindSocket, Interval: 60 * time.Second, Failover: 600 * time.Second, Timeout: 10 * time.Second, Port: 8080, Host: "localhost", RetryOverOnKillFailure: true}},
	}
	for _, c := range cases {
		f, diags := parser.Load("../testdata/valid/" + c.file + ".pfile")
		if f == nil {
			t.Fatalf("%s: %v", c.file, diags.Err())
		}
		if len(diags) != 0 {
			t.Errorf("%s: guide sample gives diagnostics: %v", c.file, diags)
		}
		got := f.Processes[0].Blocks[0].Monitor
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", c.file, got, c.want)
		}
	}
}

// No input may panic or hang the parser: every corpus file cut at every
// byte still returns.
func TestTruncatedInputs(t *testing.T) {
	files, _ := filepath.Glob("../testdata/*/*.pfile")
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i <= len(data); i += 7 {
			_, diags := parser.LoadBytes("cut.pfile", data[:i])
			for _, d := range diags {
				if d.Pos.Line < 0 || d.Msg == "" {
					t.Fatalf("%s cut at %d: bad diagnostic %+v", path, i, d)
				}
			}
		}
	}
}

// TestFilePositions: the fields that name a file pcheck runs or trusts
// carry their position, for the errors of package trust.
func TestFilePositions(t *testing.T) {
	f := load(t, "AutoReboot  on\nRebootCommand /sbin/reboot -f\n"+
		"DumpFileName  /var/lib/pcheck/web.dump\nRebootStateFile /var/lib/pcheck/reboots\n"+
		"/usr/sbin/httpd   /etc/pcheck/restart.sh\n"+
		"_bi_check{\n  PS_EXEC CMD:/usr/lib/check:DIRECT:-:10:0:1:30\n}\n"+
		"_bi_webservs{\n  PS_INIT DLL:/opt/lib_bi_webservs.so:DIRECT:-::-:0\n"+
		"  PS_EXEC DLL:/opt/lib_bi_webservs.so:DIRECT:-:10:0:2:30:443\n"+
		"  PS_ACTION DLL:/opt/lib_bi_webservs.so:DIRECT:-::-:1:0\n"+
		"  PS_QUIT DLL:/opt/lib_bi_webservs.so:DIRECT:-::-:0\n"+
		"  TLSCAFile /etc/ssl/ca.pem\n}\n")
	p := f.Processes[0]
	got := []pfile.Pos{f.Params.AutoRebootPos, f.Params.RebootCommandPos, p.ScriptPos, p.Blocks[0].Entries[0].FilePos, p.Blocks[1].TLSCAFilePos,
		f.Params.DumpFileNamePos, f.Params.RebootStateFilePos}
	want := []pfile.Pos{{File: "t.pfile", Line: 1, Col: 13}, {File: "t.pfile", Line: 2, Col: 15}, {File: "t.pfile", Line: 5, Col: 19},
		{File: "t.pfile", Line: 7, Col: 15}, {File: "t.pfile", Line: 14, Col: 13}, {File: "t.pfile", Line: 3, Col: 15}, {File: "t.pfile", Line: 4, Col: 17}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("positions %v, want %v", got, want)
	}
}

// A misspelt parameter, process option or block option is named with the
// nearest known one, at its own file:line:col.
func TestUnknownNameHint(t *testing.T) {
	src := "MonitorIntervall 7\nFrobnicate 1\n" +
		"/usr/sbin/httpd /etc/pcheck/restart.sh pidfil=/run/httpd.pid\n" +
		"_bi_webserv{\n TLSVerfy on\n PS_EXEC DLL:/x/lib_bi_webserv.so:DIRECT:-:20:0:2:40:81\n}\n"
	_, diags := parser.LoadBytes("t.pfile", []byte(src))
	want := []string{
		"t.pfile:1:1: warning: unknown parameter MonitorIntervall; did you mean MonitorInterval? (ignored)",
		"t.pfile:2:1: warning: unknown parameter Frobnicate (ignored)",
		"t.pfile:3:40: warning: unknown option pidfil; did you mean pidfile? (ignored)",
		"t.pfile:5:2: warning: unknown block option TLSVerfy; did you mean TLSVerify? (ignored)",
	}
	var got []string
	for _, d := range diags {
		got = append(got, d.String())
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("missing %q in\n%s", w, strings.Join(got, "\n"))
		}
	}
}
