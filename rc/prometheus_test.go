package rc

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/pcheck/pcheck/checker/control/metrics/promtest"
)

const (
	rulesFile = "prometheus/pcheck-rules.yml"
	metricsMD = "../docs/metrics.md"
	// metricsPort is pcheck's metrics port in every document.
	metricsPort = "9734"
	// installedRules is where the samples of docs/metrics.md load the
	// rules from (make install's default PREFIX).
	installedRules = "/usr/local/share/pcheck/prometheus/"
	// targetsDir is the file_sd directory of the samples.
	targetsDir = "/etc/prometheus/pcheck-targets/"
)

// TestPrometheusRules: the shipped alert rules pass `promtool check
// rules` and their unit tests, `promtool test rules` (a process down, a
// retry over, a stalled monitor, an Unknown monitor, pcheck gone).
func TestPrometheusRules(t *testing.T) {
	t.Parallel()
	out, err := promtest.Promtool(t, "prometheus", nil, "check", "rules", filepath.Base(rulesFile))
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	t.Logf("promtool check rules:\n%s", out)
	out, err = promtest.Promtool(t, "prometheus", nil, "test", "rules", "pcheck-rules.test.yml")
	if err != nil || !strings.Contains(out, "SUCCESS") {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
	t.Logf("promtool test rules:\n%s", out)
}

// alertRule is one alert of the rules file or of the table in
// docs/metrics.md.
type alertRule struct{ name, forDur, severity string }

// shippedRules reads the alerts of the rules file in order.
func shippedRules(t *testing.T) []alertRule {
	t.Helper()
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var out []alertRule
	sev := regexp.MustCompile(`^labels: \{severity: (\w+)\}$`)
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "- alert: "):
			out = append(out, alertRule{name: strings.TrimPrefix(line, "- alert: ")})
		case len(out) == 0:
		case strings.HasPrefix(line, "for: "):
			out[len(out)-1].forDur = strings.TrimPrefix(line, "for: ")
		case sev.MatchString(line):
			out[len(out)-1].severity = sev.FindStringSubmatch(line)[1]
		}
	}
	return out
}

// TestPrometheusRulesDoc: the alert table of docs/metrics.md lists the
// shipped alerts, in their order, with their for and severity.
func TestPrometheusRulesDoc(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(metricsMD)
	if err != nil {
		t.Fatal(err)
	}
	var doc []alertRule
	row := regexp.MustCompile(`(?m)^\| (Pcheck\w+) \| [^|]+ \| (\w*) ?\| (\w+) \|$`)
	for _, m := range row.FindAllStringSubmatch(string(b), -1) {
		doc = append(doc, alertRule{m[1], m[2], m[3]})
	}
	shipped := shippedRules(t)
	if len(shipped) < 5 {
		t.Fatalf("%s: %d alerts read, want the lot: %v", rulesFile, len(shipped), shipped)
	}
	if !slices.Equal(doc, shipped) {
		t.Errorf("docs/metrics.md lists the alerts\n\t%v\n%s has\n\t%v", doc, rulesFile, shipped)
	}
}

// yamlBlocks returns the ```yaml blocks of a Markdown file.
func yamlBlocks(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range regexp.MustCompile("(?s)\n```yaml\n(.*?)```\n").FindAllStringSubmatch(string(b), -1) {
		out = append(out, m[1])
	}
	return out
}

// TestPrometheusDocConfigs: the sample configurations of docs/metrics.md
// (static targets, file_sd, federation) pass `promtool check config`,
// with the rules file they load and the file_sd targets file they read.
func TestPrometheusDocConfigs(t *testing.T) {
	t.Parallel()
	rulesDir, err := filepath.Abs(filepath.Dir(rulesFile))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	targets := filepath.Join(dir, "pcheck-targets")
	if err := os.Mkdir(targets, 0o755); err != nil {
		t.Fatal(err)
	}
	var configs []string
	for _, blk := range yamlBlocks(t, metricsMD) {
		if strings.HasPrefix(blk, "- targets:") {
			if err := os.WriteFile(filepath.Join(targets, "dc1.yml"), []byte(blk), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		configs = append(configs, blk)
	}
	if _, err := os.Stat(filepath.Join(targets, "dc1.yml")); err != nil || len(configs) != 3 {
		t.Fatalf("docs/metrics.md: want 3 prometheus.yml samples and a file_sd targets file; got %d samples, targets file: %v", len(configs), err)
	}
	paths := strings.NewReplacer(installedRules, rulesDir+"/", targetsDir, targets+"/")
	for i, c := range configs {
		if !strings.Contains(c, "job_name:") {
			t.Errorf("sample %d is no prometheus.yml:\n%s", i+1, c)
			continue
		}
		name := filepath.Join(dir, "prometheus-"+string(rune('1'+i))+".yml")
		if err := os.WriteFile(name, []byte(paths.Replace(c)), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := promtest.Promtool(t, "", nil, "check", "config", name)
		if err != nil || !strings.Contains(out, "SUCCESS") {
			t.Errorf("promtool check config on sample %d: %v\n%s\n%s", i+1, err, out, c)
		}
	}
}

// TestMetricsPortDocumented: every document, rc file and template names
// one metrics port; a port in the exporters' range (9100-9999, but for
// Prometheus's own 9090s) that is not it is an error.
func TestMetricsPortDocumented(t *testing.T) {
	t.Parallel()
	port := regexp.MustCompile(`:(9[1-9]\d\d)\b`)
	seen := map[string]bool{}
	check := func(path string) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range port.FindAllStringSubmatch(string(b), -1) {
			if m[1] != metricsPort {
				t.Errorf("%s: metrics port %s, want %s as everywhere", path, m[1], metricsPort)
			}
			seen[path] = true
		}
	}
	check("../README.md")
	for _, root := range []string{"../docs", ".", "../templates"} {
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil {
				t.Fatal(err)
			}
			if !d.IsDir() && !strings.HasSuffix(p, ".go") {
				check(p)
			}
			return nil
		})
	}
	for _, p := range []string{metricsMD, "../docs/man/pcheck.8"} {
		if !seen[p] {
			t.Errorf("%s names no metrics port", p)
		}
	}
}
