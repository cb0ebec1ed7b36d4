package metrics

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pcheck/pcheck/checker/control"
	"github.com/pcheck/pcheck/checker/engine"
)

func get(t *testing.T, method, url string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// TestStatusPage: / is an HTML page with every process, monitor and the
// newest events, whose text from the pfile and the processes is escaped;
// it refreshes itself, loads nothing from elsewhere and is read-only;
// /status.json holds the same data.
func TestStatusPage(t *testing.T) {
	rec := control.NewRecorder(control.RecorderOptions{})
	evil := `<script>alert("x")</script>`
	rec.Event(engine.Event{Time: time.Now(), Pfile: "/etc/pcheck/web.pf", Process: "httpd", Kind: "down", Text: "Down " + evil})
	queue, backlog := 3, 511
	src := Source{
		Engine: fakeEngine{engine.Status{Pfile: "/etc/pcheck/web.pf", Started: time.Now().Add(-time.Hour), Processes: []engine.ProcessStatus{
			{Name: "httpd", Key: "httpd /r.sh", State: engine.StateUp, Pids: []int{4242}, Since: time.Now().Add(-time.Minute), Restarts: 2, RetriesUsed: 1, RetriesAllowed: 3,
				Usage: &engine.Usage{Started: time.Now().Add(-90 * time.Second), CPUPercent: 12.25, RSSBytes: 5 << 20, Threads: 4, FDs: 17, Children: 2}},
			{Name: evil, Key: "x", State: engine.StateRetryOver, RetriesUsed: 3, RetriesAllowed: 3},
		}}},
		Recorder: rec,
		Monitors: func() []control.MonitorStatus {
			return []control.MonitorStatus{
				{Process: "httpd", Monitor: "listen *:80", State: control.MonitorOk, Attempts: 4, SinceSuccessSeconds: 2, LastLatencySeconds: 0.0015, AcceptQueue: &queue, Backlog: &backlog},
				{Process: "httpd", Monitor: "webserv http://127.0.0.1/", State: control.MonitorInDoubt, Attempts: 4, Failures: 1, LastError: "refused"},
			}
		},
	}
	srv, err := Listen("127.0.0.1:0", NewCollector("9.9.9", func() []Source { return []Source{src} }))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	base := "http://" + srv.Addr()

	resp, page := get(t, "GET", base+"/")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" ||
		!strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Fatalf("GET /: %s %v", resp.Status, resp.Header)
	}
	for _, want := range []string{
		`<meta http-equiv="refresh" content="5">`,
		"pcheck 9.9.9",
		"pfile /etc/pcheck/web.pf",
		`<td>httpd</td><td class="good">Up</td><td class="nw">4242</td><td class="nw">1m30s</td><td class="num">2</td><td class="num">1/3</td><td class="num">12.2%</td><td class="num">5.0M</td><td class="num">4</td><td class="num">17</td><td class="num">2</td>`,
		`<td class="bad">RetryOver</td>`,
		`<td>listen *:80</td><td class="good">Ok</td><td class="nw">2s ago</td><td class="num">1.5ms</td><td class="num">3/511</td>`,
		// No accept queue for a monitor that has none.
		`<td>webserv http://127.0.0.1/</td><td class="warn">In doubt</td><td class="nw">0s ago</td><td class="num">0s</td><td class="num">-</td>`,
		"&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %s\n%s", want, page)
		}
	}
	if strings.Contains(page, "<script") || regexp.MustCompile(`(src|href)="(https?:)?//`).MatchString(page) {
		t.Errorf("the page has a script or an external asset:\n%s", page)
	}

	resp, body := get(t, "GET", base+"/status.json")
	var pg Page
	if err := json.Unmarshal([]byte(body), &pg); err != nil || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status.json: %v %v\n%s", err, resp.Header, body)
	}
	if pg.Version != "9.9.9" || len(pg.Pfiles) != 1 || len(pg.Pfiles[0].Processes) != 2 || pg.Pfiles[0].Processes[0].Usage.RSSBytes != 5<<20 ||
		len(pg.Pfiles[0].Monitors) != 2 || *pg.Pfiles[0].Monitors[0].AcceptQueue != 3 || len(pg.Pfiles[0].Events) != 1 ||
		pg.Pfiles[0].Events[0].Kind != "down" || pg.Pfiles[0].Processes[1].Name != evil {
		t.Fatalf("status.json: %+v", pg)
	}

	// Read-only: nothing but GET (and HEAD); no other page.
	for _, c := range []struct {
		method, path string
		code         int
	}{{"POST", "/", 405}, {"PUT", "/status.json", 405}, {"DELETE", "/", 405}, {"GET", "/nosuch", 404}, {"HEAD", "/", 200}} {
		if resp, _ := get(t, c.method, base+c.path); resp.StatusCode != c.code {
			t.Errorf("%s %s: %s, want %d", c.method, c.path, resp.Status, c.code)
		}
	}
}
