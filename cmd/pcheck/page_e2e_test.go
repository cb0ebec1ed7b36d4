package main

// The status page of the --metrics listener in a real browser: Debian's
// chromium, headless, renders the page of a real pcheck before and after
// the watched service is killed and restarted, and leaves a screenshot.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pcheck/pcheck/checker/control/metrics"
	"github.com/pcheck/pcheck/checker/proc"
)

// requireChromium, set in the environment, makes the browser tests fail
// instead of skipping where chromium is not installed (CI sets it).
const requireChromium = "PCHECK_REQUIRE_CHROMIUM"

// lookChromium returns the chromium binary; without it the test is
// skipped, or fails when requireChromium is set.
func lookChromium(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv(requireChromium) != "" {
			t.Fatalf("chromium not installed but %s is set (apt-get install -y chromium)", requireChromium)
		}
		t.Skip("chromium not installed (apt-get install -y chromium)")
	}
	return bin
}

// chromium runs headless chromium with args and a profile of its own, in
// a process group of its own that is killed when it has ended or after a
// minute: no browser process outlives the call. It returns the standard
// output.
func chromium(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	full := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=" + t.TempDir(),
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage"}, args...)
	cmd := exec.CommandContext(ctx, bin, full...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if cmd.Process != nil {
		killGroup(t, cmd.Process.Pid)
	}
	if err != nil {
		t.Fatalf("chromium %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return stdout.Bytes()
}

// killGroup kills what is left of the process group pgid (chromium's
// helpers, should one linger) and waits until none is left.
func killGroup(t *testing.T, pgid int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		syscall.Kill(-pgid, syscall.SIGKILL)
		all, err := proc.ScanStat()
		if err != nil {
			t.Fatal(err)
		}
		left := 0
		for _, p := range all {
			if p.PGid == pgid && !p.Dead() {
				left++
			}
		}
		if left == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d chromium processes of group %d left after SIGKILL", left, pgid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// statusJSON reads the status page's data.
func (m *metered) statusJSON() (metrics.Page, error) {
	var pg metrics.Page
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get("http://" + m.addr + "/status.json")
	if err != nil {
		return pg, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return pg, err
	}
	if resp.StatusCode != http.StatusOK {
		return pg, fmt.Errorf("GET /status.json: %s", resp.Status)
	}
	return pg, json.Unmarshal(b, &pg)
}

// waitPage waits for status.json to show the process Up with pid other
// than old and restarts restarts, and returns its pid.
func (m *metered) waitPage(t *testing.T, old, restarts int) int {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last any
	for {
		pg, err := m.statusJSON()
		last = err
		if err == nil && len(pg.Pfiles) == 1 && len(pg.Pfiles[0].Processes) == 1 {
			p := pg.Pfiles[0].Processes[0]
			last = p
			if p.State == "Up" && len(p.Pids) == 1 && p.Pids[0] != old && p.Restarts == restarts && p.Usage != nil {
				return p.Pids[0]
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("status.json never showed the process Up again with %d restarts; last: %+v\npcheck stderr:\n%s", restarts, last, m.pc.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// artifacts is the directory test artifacts go to: $PCHECK_ARTIFACTS, or
// the test's temporary directory.
func artifacts(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("PCHECK_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestStatusPageChromium: headless chromium renders the status page of a
// real pcheck: the process Up with its pid; after a kill, Up again with
// the new pid, one restart and the Down among the events, and its stall
// monitor. A screenshot of the page after the restart is kept as an artifact.
func TestStatusPageChromium(t *testing.T) {
	t.Parallel()
	bin := lookChromium(t)
	m := startMetered(t, "page")
	m.waitFull(t)
	pid := m.waitPage(t, 0, 0)
	url := "http://" + m.addr + "/"

	dom := string(chromium(t, bin, "--dump-dom", url))
	row := fmt.Sprintf(`<td>%s</td><td class="good">Up</td><td class="nw">%d</td>`, self, pid)
	if !strings.Contains(dom, row) {
		t.Fatalf("the rendered page lacks %s:\n%s", row, dom)
	}

	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	newPid := m.waitPage(t, pid, 1)
	dom = string(chromium(t, bin, "--dump-dom", url))
	for _, want := range []string{
		fmt.Sprintf(`<td>%s</td><td class="good">Up</td><td class="nw">%d</td>`, self, newPid),
		`<td class="num">1</td><td class="num">1/3</td>`, // restarts, retries
		fmt.Sprintf(`Process ['%s',pid=%d] Down`, self, pid),
		`<td class="bad">down</td>`,
		`<td>webserv http://127.0.0.1:`,
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("after the restart the rendered page lacks %s", want)
		}
	}
	if t.Failed() {
		t.Fatalf("the rendered page:\n%s", dom)
	}

	shot := filepath.Join(artifacts(t), "status-page.png")
	os.Remove(shot)
	chromium(t, bin, "--screenshot="+shot, "--window-size=1200,900", "--hide-scrollbars", url)
	b, err := os.ReadFile(shot)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) || len(b) < 10000 {
		t.Fatalf("screenshot %s: %d bytes, not a PNG of the page", shot, len(b))
	}
	t.Logf("screenshot of the status page: %s (%d bytes)", shot, len(b))
}
