package compare

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pcheck/pcheck/parser"
	"github.com/pcheck/pcheck/pfile"
)

func testLayout(t *testing.T) (*Layout, []*Target) {
	t.Helper()
	l, err := newLayout(t.TempDir(), "/opt/bench/target")
	if err != nil {
		t.Fatal(err)
	}
	var targets []*Target
	for i, id := range []string{"w3-0000", "w3-0001"} {
		tg, err := l.NewTarget(id, 20000+i)
		if err != nil {
			t.Fatal(err)
		}
		targets = append(targets, tg)
	}
	return l, targets
}

// The generated pfile is read by pcheck's own parser into the monitors the
// report says pcheck runs.
func TestPcheckPfileParses(t *testing.T) {
	l, targets := testLayout(t)
	tests := []struct {
		check Check
		kind  pfile.Kind
	}{
		{CheckNone, ""},
		{CheckHTTP, pfile.KindWebserv},
		{CheckTCP, pfile.KindSocket},
	}
	for _, tt := range tests {
		path := filepath.Join(t.TempDir(), "bench.pfile")
		if err := os.WriteFile(path, []byte(pcheckPfile(l, targets, tt.check)), 0o644); err != nil {
			t.Fatal(err)
		}
		f, diags := parser.Load(path)
		if f == nil || diags.HasErrors() {
			t.Fatalf("check %d: pfile rejected: %v", tt.check, diags)
		}
		if f.Params.MonitorInterval != time.Second || f.Params.KillWait != time.Second {
			t.Errorf("check %d: MonitorInterval %v KillWait %v, want 1s 1s", tt.check, f.Params.MonitorInterval, f.Params.KillWait)
		}
		if len(f.Processes) != len(targets) {
			t.Fatalf("check %d: %d processes, want %d", tt.check, len(f.Processes), len(targets))
		}
		for i, p := range f.Processes {
			if p.Name != l.TargetBin || p.Script != targets[i].Script || p.Args != "-id="+targets[i].ID+" " {
				t.Errorf("process %d = %q %q args %q", i, p.Name, p.Script, p.Args)
			}
			if tt.kind == "" {
				if len(p.Blocks) != 0 {
					t.Errorf("check %d: process %d has %d blocks, want none", tt.check, i, len(p.Blocks))
				}
				continue
			}
			if len(p.Blocks) != 1 {
				t.Fatalf("check %d: process %d has %d blocks, want 1", tt.check, i, len(p.Blocks))
			}
			m := p.Blocks[0].Monitor
			if m.Kind != tt.kind || m.Interval != time.Second || m.Timeout != time.Second || m.Failover != 5*time.Second || m.Port != targets[i].Port {
				t.Errorf("check %d: process %d monitor %+v, want %s every 1s, timeout 1s, failover 5s, port %d",
					tt.check, i, m, tt.kind, targets[i].Port)
			}
		}
	}
}

// monit itself accepts the generated control file (when it is installed).
func TestMonitrcSyntax(t *testing.T) {
	monit, err := exec.LookPath("monit")
	if err != nil {
		t.Skip("monit is not installed (make bench-compare installs it)")
	}
	l, targets := testLayout(t)
	for _, check := range []Check{CheckNone, CheckHTTP, CheckTCP} {
		dir := t.TempDir()
		rc := filepath.Join(dir, "monitrc")
		if err := os.WriteFile(rc, []byte(monitrc(dir, l, targets, check)), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(monit, "-t", "-c", rc).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Control file syntax OK") {
			t.Errorf("check %d: monit -t: %v\n%s", check, err, out)
		}
	}
}

func TestSupervisordConf(t *testing.T) {
	l, targets := testLayout(t)
	conf := supervisordConf("/run/x", l, targets)
	for _, want := range []string{
		"nodaemon=true",
		"logfile=/run/x/supervisord.log",
		"[program:w3-0001]",
		"command=/opt/bench/target -id=w3-0001 -port=20001 ",
		"autorestart=true\nstartsecs=0\n",
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("supervisord.conf lacks %q:\n%s", want, conf)
		}
	}
}

func TestParseMonitOutput(t *testing.T) {
	// As monit 5.33 prints them with -B.
	status := `Monit 5.33.0 uptime: 0m

Process 's1'
  status                       OK
  monitoring status            Monitored
  pid                          348
  parent pid                   1
`
	st := parseMonitStatus(status)
	if st["status"] != "OK" || st["pid"] != "348" || st["parent pid"] != "1" || st["monitoring status"] != "Monitored" {
		t.Errorf("parseMonitStatus = %q", st)
	}
	summary := `Monit 5.33.0 uptime: 0m
 Service Name                     Status                      Type          
 vm                               OK                          System        
 s1                               Does not exist              Process       
 s2                               OK                          Process       
`
	sum := parseMonitSummary(summary)
	if sum["s1"] != "Does not exist" || sum["s2"] != "OK" || sum["vm"] != "OK" {
		t.Errorf("parseMonitSummary = %q", sum)
	}
}

// The floor is told the first port and the count, so the targets must be
// on consecutive ports; it has no check of its own to do without one.
func TestFloorArgs(t *testing.T) {
	l, targets := testLayout(t)
	args, err := floorArgs(targets, CheckHTTP)
	if want := "-check=http -port=20000 -n=2 -timeout=1s"; err != nil || strings.Join(args, " ") != want {
		t.Errorf("floorArgs = %q, %v; want %q", args, err, want)
	}
	if _, err := floorArgs(targets, CheckNone); err == nil {
		t.Error("floorArgs accepted no check")
	}
	gap, err := l.NewTarget("w3-0002", 20005)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := floorArgs(append(targets, gap), CheckTCP); err == nil || !strings.Contains(err.Error(), "w3-0002 on port 20005, not 20002") {
		t.Errorf("floorArgs on a gap = %v, want an error naming w3-0002 and the ports", err)
	}
}

func TestParseChecks(t *testing.T) {
	got, err := ParseChecks("tcp, HTTP")
	if err != nil || len(got) != 2 || got[0] != CheckTCP || got[1] != CheckHTTP {
		t.Errorf("ParseChecks(\"tcp, HTTP\") = %v, %v; want [tcp http]", got, err)
	}
	if _, err := ParseChecks("tcp,udp"); err == nil || !strings.Contains(err.Error(), `"udp"`) {
		t.Errorf("ParseChecks(\"tcp,udp\") = %v, want an error naming udp", err)
	}
}
