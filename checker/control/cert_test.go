package control

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"
)

// padmin status shows a CERT column with the days left only when a
// monitor reports a certificate; the table is otherwise unchanged (here
// the -l table, with every column).
func TestStatusCertColumn(t *testing.T) {
	base := StatusResult{Monitors: []MonitorStatus{
		{Process: "nginx", Monitor: "webserv 127.0.0.1:80", State: MonitorOk, Attempts: 1},
	}}
	var out bytes.Buffer
	if err := (&Admin{Out: &out, Long: true}).writeStatus(base); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^PROCESS +MONITOR +STATE +LAST OK +ATTEMPTS +FAILURES +LATENCY +LAST ERROR$`).MatchString(out.String()) {
		t.Errorf("status without certificates changed its monitor table:\n%s", out.String())
	}

	withCert := base
	withCert.Monitors = append([]MonitorStatus{
		{Process: "nginx", Monitor: "webservs https://127.0.0.1:443/", State: MonitorOk, Attempts: 1, TLSNotAfter: time.Now().Add(3*24*time.Hour + time.Hour)},
		{Process: "nginx", Monitor: "webservs https://127.0.0.1:8443/", State: MonitorInDoubt, Attempts: 1, Failures: 1,
			TLSNotAfter: time.Now().Add(-time.Hour), LastError: "TLS certificate expires too soon"},
	}, base.Monitors...)
	out.Reset()
	if err := (&Admin{Out: &out, Long: true}).writeStatus(withCert); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, re := range []string{
		`(?m)^PROCESS +MONITOR +STATE +LAST OK +ATTEMPTS +FAILURES +LATENCY +CERT +LAST ERROR$`,
		`(?m)^nginx +webservs https://127\.0\.0\.1:443/ +Ok +\S+ ago +1 +0 +\S+ +3 days +-$`,
		`(?m)^nginx +webservs https://127\.0\.0\.1:8443/ +In doubt +\S+ ago +1 +1 +\S+ +expired +TLS certificate expires too soon$`,
		`(?m)^nginx +webserv 127\.0\.0\.1:80 +Ok +\S+ ago +1 +0 +\S+ +- +-$`,
	} {
		if !regexp.MustCompile(re).MatchString(s) {
			t.Errorf("status has no line matching %s:\n%s", re, s)
		}
	}
	if strings.Count(s, "CERT") != 1 {
		t.Errorf("want one CERT header:\n%s", s)
	}
}
