package parser_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/pcheck/pcheck/parser"
	"github.com/pcheck/pcheck/pfile"
)

const (
	webservExec  = "  PS_EXEC DLL:/opt/HA/PSWE/lib/lib_bi_webserv.so:DIRECT:-:60:0:2:600:8080\n"
	webservsExec = "  PS_EXEC DLL:/opt/HA/PSWE/lib/lib_bi_webservs.so:DIRECT:-:60:0:5:600:443:localhost:5:/health\n"
	socketExec   = "  PS_EXEC DLL:/opt/HA/PSWE/lib/lib_bi_socket.so:DIRECT:-:60:0:2:600:25\n"
)

// block is a pfile with one process and one block of name holding exec
// then the option lines.
func block(name, exec string, opts ...string) string {
	var b strings.Builder
	b.WriteString(proc + name + "{\n" + exec)
	for _, o := range opts {
		b.WriteString("  " + o + "\n")
	}
	b.WriteString("}\n")
	return b.String()
}

// The HTTP block options read into the monitor.
func TestHTTPOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		text string
		want pfile.Monitor // only the option fields are compared
	}{
		{"none", block("_bi_webserv", webservExec), pfile.Monitor{}},
		{"status range", block("_bi_webserv", webservExec, "ExpectStatus 200-399"),
			pfile.Monitor{ExpectStatus: []pfile.StatusRange{{Lo: 200, Hi: 399}}}},
		{"codes and ranges", block("_bi_webservs", webservsExec, `expectstatus "200,204,301-302"`),
			pfile.Monitor{ExpectStatus: []pfile.StatusRange{{Lo: 200, Hi: 200}, {Lo: 204, Hi: 204}, {Lo: 301, Hi: 302}}}},
		{"option = value", block("_bi_webserv", webservExec, "ExpectStatus = 200"),
			pfile.Monitor{ExpectStatus: []pfile.StatusRange{{Lo: 200, Hi: 200}}}},
		{"headers", block("_bi_webserv", webservExec, `ExpectHeader "Content-Type: ^application/json"`, `ExpectHeader "X-Ready:"`),
			pfile.Monitor{ExpectHeaders: []pfile.HeaderExpect{{Name: "Content-Type", Pattern: "^application/json"}, {Name: "X-Ready", Pattern: ""}}}},
		{"body", block("_bi_webservs", webservsExec, `ExpectBody "\"status\":\\s*\"ok\""`),
			pfile.Monitor{ExpectBody: `"status":\s*"ok"`}},
		{"expiry", block("_bi_webservs", webservsExec, "TLSExpiryWarn 30", "TLSExpiryFail 7"),
			pfile.Monitor{TLSExpiryWarnDays: 30, TLSExpiryFailDays: 7}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := load(t, tc.text).Processes[0].Blocks[0].Monitor
			got := pfile.Monitor{ExpectStatus: m.ExpectStatus, ExpectHeaders: m.ExpectHeaders, ExpectBody: m.ExpectBody,
				TLSExpiryWarnDays: m.TLSExpiryWarnDays, TLSExpiryFailDays: m.TLSExpiryFailDays}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("options %+v, want %+v", got, tc.want)
			}
			if want := tc.want.TLSExpiryWarnDays > 0 || tc.want.TLSExpiryFailDays > 0; m.WatchesExpiry() != want {
				t.Errorf("WatchesExpiry() = %v, want %v", m.WatchesExpiry(), want)
			}
		})
	}
}

// Bad values of the HTTP block options are errors naming file:line:col.
func TestHTTPOptionErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		text string
		want string
	}{
		{"range ends before it starts", block("_bi_webserv", webservExec, "ExpectStatus 200,399-200"),
			`t.pfile:4:20: ExpectStatus: range "399-200" ends before it starts`},
		{"code out of range", block("_bi_webserv", webservExec, "ExpectStatus 200-700"),
			`t.pfile:4:16: ExpectStatus: "200-700" is outside the status codes 100-599`},
		{"not a code", block("_bi_webserv", webservExec, `ExpectStatus "2xx"`),
			`t.pfile:4:17: ExpectStatus: "2xx" is not a status code or a range of codes such as 200-399`},
		{"empty part", block("_bi_webserv", webservExec, "ExpectStatus 200,"),
			`t.pfile:4:20: ExpectStatus: "" is not a status code or a range of codes such as 200-399`},
		{"two values", block("_bi_webserv", webservExec, "ExpectStatus 200 404"),
			`t.pfile:4:3: ExpectStatus takes one value`},
		{"twice", block("_bi_webserv", webservExec, "ExpectStatus 200", "ExpectStatus 404"),
			`t.pfile:5:3: ExpectStatus appears twice in _bi_webserv (first at line 4)`},
		{"bad body regexp", block("_bi_webserv", webservExec, `ExpectBody "ok("`),
			`t.pfile:4:14: ExpectBody: bad regular expression "ok(": missing closing ) in "ok("`},
		{"empty body regexp", block("_bi_webserv", webservExec, `ExpectBody ""`),
			`t.pfile:4:14: ExpectBody needs a regular expression`},
		{"bad header regexp", block("_bi_webservs", webservsExec, `ExpectHeader "Server: [a-"`),
			`t.pfile:4:16: ExpectHeader Server: bad regular expression "[a-": missing closing ] in "[a-"`},
		{"header without colon", block("_bi_webserv", webservExec, `ExpectHeader "Server nginx"`),
			`t.pfile:4:16: ExpectHeader must be "Name: regex" (a header name, a colon, a regular expression), not "Server nginx"`},
		{"bad header name", block("_bi_webserv", webservExec, `ExpectHeader "X Y: z"`),
			`t.pfile:4:16: ExpectHeader must be "Name: regex" (a header name, a colon, a regular expression), not "X Y: z"`},
		{"expect on socket", block("_bi_socket", socketExec, "ExpectStatus 200"),
			`t.pfile:4:3: ExpectStatus applies to _bi_webserv and _bi_webservs only`},
		{"expiry on webserv", block("_bi_webserv", webservExec, "TLSExpiryWarn 30"),
			`t.pfile:4:3: TLSExpiryWarn applies to _bi_webservs only`},
		{"expiry not a number", block("_bi_webservs", webservsExec, "TLSExpiryFail soon"),
			`t.pfile:4:17: TLSExpiryFail days must be a whole number, not "soon"`},
		{"expiry zero", block("_bi_webservs", webservsExec, "TLSExpiryWarn 0"),
			`t.pfile:4:17: TLSExpiryWarn days must be between 1 and 3650, not 0`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := errorsOf(tc.text)
			if len(got) != 1 || got[0] != tc.want {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), tc.want)
			}
		})
	}
}

// A warning threshold that is not above the failing one is a warning.
func TestExpiryWarnNotAboveFail(t *testing.T) {
	text := block("_bi_webservs", webservsExec, "TLSExpiryWarn 5", "TLSExpiryFail 7")
	f, diags := parser.LoadBytes("t.pfile", []byte(text))
	if f == nil {
		t.Fatalf("rejected:\n%s", diags.Err())
	}
	want := "t.pfile:4:3: warning: TLSExpiryWarn 5 is not above TLSExpiryFail 7: attempts fail before any warning"
	found := false
	for _, d := range diags.Warnings() {
		found = found || d.String() == want
	}
	if !found {
		t.Errorf("warnings %v, want %q", diags.Warnings(), want)
	}
}
