package metrics

import (
	"bytes"
	"encoding/json"
	"html/template"
	"net/http"
	"runtime"
	"strings"
	"time"

	"github.com/pcheck/pcheck/checker/control"
)

// The status page refreshes itself every pageRefresh seconds and shows
// the pageEvents newest events of each pfile.
const (
	pageRefresh = 5
	pageEvents  = 20
)

// Page is what the status page (/) and /status.json show: the state of
// every pfile served, as padmin status shows it, and its newest events.
type Page struct {
	Version   string      `json:"version"`
	GoVersion string      `json:"goversion"`
	Time      time.Time   `json:"time"`
	Pfiles    []PagePfile `json:"pfiles"`
}

// PagePfile is one pfile on the status page.
type PagePfile struct {
	Pfile   string    `json:"pfile"`
	Started time.Time `json:"started"`
	// Reboots is the auto-reboot count; absent when AutoReboot is off.
	Reboots   *int                    `json:"reboots,omitempty"`
	Processes []control.ProcessStatus `json:"processes"`
	Monitors  []control.MonitorStatus `json:"monitors"`
	// Events are the newest events, newest first.
	Events []control.Event `json:"events"`
}

// page reads the state of every source now.
func (c *Collector) page() Page {
	now := time.Now()
	pg := Page{Version: c.version, GoVersion: runtime.Version(), Time: now, Pfiles: []PagePfile{}}
	for _, s := range c.sources() {
		st := s.Engine.Snapshot()
		pf := PagePfile{Pfile: st.Pfile, Started: st.Started, Processes: control.ProcessList(st, now),
			Monitors: []control.MonitorStatus{}, Events: []control.Event{}}
		if s.Reboots != nil {
			if n, ok := s.Reboots(); ok {
				pf.Reboots = &n
			}
		}
		if s.Monitors != nil {
			if m := s.Monitors(); m != nil {
				pf.Monitors = m
			}
		}
		if s.Recorder != nil {
			if ev := s.Recorder.Events().Newest(pageEvents); ev != nil {
				pf.Events = ev
			}
		}
		pg.Pfiles = append(pg.Pfiles, pf)
	}
	return pg
}

// securityHeaders are sent with every answer of the page: nothing is
// loaded from elsewhere (the page has no scripts, images or external
// style sheets), it is not framed and not cached.
func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
}

// servePage answers / with the status page.
func (c *Collector) servePage(w http.ResponseWriter, r *http.Request) {
	var b bytes.Buffer
	if err := pageTemplate.Execute(&b, c.page()); err != nil {
		http.Error(w, "status page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	securityHeaders(w.Header())
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(b.Bytes())
}

// serveJSON answers /status.json with the data of the status page.
func (c *Collector) serveJSON(w http.ResponseWriter, r *http.Request) {
	b, err := json.MarshalIndent(c.page(), "", "  ")
	if err != nil {
		http.Error(w, "status: "+err.Error(), http.StatusInternalServerError)
		return
	}
	securityHeaders(w.Header())
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(b, '\n'))
}

// stateClass gives a state its CSS class: a fixed name, whatever the
// state's text.
func stateClass(state string) string {
	switch state {
	case "Up", control.MonitorOk:
		return "good"
	case "Down", "RetryOver", control.MonitorStalled:
		return "bad"
	case "Restarting", control.MonitorInDoubt, control.MonitorUnknown:
		return "warn"
	}
	return "idle"
}

var pageTemplate = template.Must(template.New("page").Funcs(template.FuncMap{
	"class": stateClass,
	"uptime": func(p control.ProcessStatus) string {
		if p.State != "Up" {
			return "-"
		}
		return control.ShortDuration(p.UptimeSeconds)
	},
	"stamp":   func(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05") },
	"join":    func(lines []string) string { return strings.Join(lines, "\n") },
	"refresh": func() int { return pageRefresh },
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="{{refresh}}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>pcheck status</title>
<style>
body { font-family: sans-serif; margin: 1em 2em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.5em; } h3 { font-size: 1em; }
table { border-collapse: collapse; margin: 0.3em 0 1em; }
th, td { border: 1px solid #bbb; padding: 0.2em 0.6em; text-align: left; vertical-align: top; }
th, td.num, td.nw, td.good, td.bad, td.warn, td.idle { white-space: nowrap; }
th { background: #eee; }
td.num { text-align: right; }
.good { background: #d8f5d8; } .bad { background: #f8d0d0; } .warn { background: #fbefc0; } .idle { background: #e4e4f0; }
.meta { color: #555; }
pre { margin: 0; font-size: 0.85em; }
</style>
</head>
<body>
<h1>pcheck status</h1>
<p class="meta">pcheck {{.Version}} ({{.GoVersion}}), as of {{stamp .Time}}; this page refreshes every {{refresh}} seconds.
The same data: <a href="status.json">status.json</a>; Prometheus: <a href="metrics">metrics</a>.</p>
{{- if not .Pfiles}}
<p>No pfile is being monitored.</p>
{{- end}}
{{- range .Pfiles}}
<h2>pfile {{.Pfile}}</h2>
<p class="meta">monitored since {{stamp .Started}}{{with .Reboots}}; reboots {{.}}{{end}}</p>
<h3>Processes</h3>
<table>
<tr><th>Process</th><th>State</th><th>PID</th><th>Uptime</th><th>Restarts</th><th>Retries</th><th>CPU</th><th>RSS</th><th>Threads</th><th>FDs</th><th>Children</th><th>Last reason</th></tr>
{{- range .Processes}}{{$u := .UsageText}}
<tr><td>{{.Name}}</td><td class="{{class .State}}">{{.State}}</td><td class="nw">{{.PidsText}}</td><td class="nw">{{uptime .}}</td><td class="num">{{.Restarts}}</td><td class="num">{{.RetriesUsed}}/{{.RetriesAllowed}}</td><td class="num">{{$u.CPU}}</td><td class="num">{{$u.RSS}}</td><td class="num">{{$u.Threads}}</td><td class="num">{{$u.FDs}}</td><td class="num">{{$u.Children}}</td><td>{{or .LastReason "-"}}</td></tr>
{{- end}}
</table>
{{- if .Monitors}}
<h3>Stall monitors</h3>
<table>
<tr><th>Process</th><th>Monitor</th><th>State</th><th>Last success</th><th>Latency</th><th>Accept queue</th><th>Attempts</th><th>Failures</th><th>Last error</th></tr>
{{- range .Monitors}}
<tr><td>{{.Process}}</td><td>{{.Monitor}}</td><td class="{{class .State}}">{{.State}}</td><td class="nw">{{.LastOKText}}</td><td class="num">{{.LatencyText}}</td><td class="num">{{.AcceptQueueText}}</td><td class="num">{{.Attempts}}</td><td class="num">{{.Failures}}</td><td>{{or .LastError "-"}}</td></tr>
{{- end}}
</table>
{{- end}}
<h3>Latest events</h3>
{{- if .Events}}
<table>
<tr><th>Time</th><th>Process</th><th>Event</th><th>Text</th></tr>
{{- range .Events}}
<tr><td class="nw">{{stamp .Time}}</td><td>{{or .Process "-"}}</td><td{{if .Failure}} class="bad"{{end}}>{{.Kind}}</td><td>{{.Text}}{{with .Output}}<pre>{{join .}}</pre>{{end}}</td></tr>
{{- end}}
</table>
{{- else}}
<p>None yet.</p>
{{- end}}
{{- end}}
</body>
</html>
`))
