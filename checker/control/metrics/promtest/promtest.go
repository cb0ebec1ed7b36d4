// Package promtest runs the real Prometheus tools of Debian's prometheus
// package for tests: promtool (check metrics, check rules, test rules,
// check config) and a private prometheus server on loopback whose HTTP
// API a test queries. Without them a test is skipped, or fails where
// RequireEnv is set (CI sets it).
package promtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pcheck/pcheck/checker/stall/stalltest"
)

// RequireEnv, when set in the environment, makes a test that needs
// promtool or prometheus fail instead of skipping where they are not
// installed, so a missing package cannot pass unnoticed.
const RequireEnv = "PCHECK_REQUIRE_PROMETHEUS"

// Look returns the path of the Prometheus tool name (promtool,
// prometheus); without it the test is skipped, or fails when RequireEnv
// is set.
func Look(t testing.TB, name string) string {
	t.Helper()
	bin, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv(RequireEnv) != "" {
			t.Fatalf("%s not installed but %s is set (apt-get install -y prometheus)", name, RequireEnv)
		}
		t.Skipf("%s not installed (apt-get install -y prometheus)", name)
	}
	return bin
}

// Promtool runs promtool with args in dir (the current directory when
// empty), stdin on its standard input, and returns its combined output.
// The error is promtool's: a check that failed exits non-zero.
func Promtool(t testing.TB, dir string, stdin []byte, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, Look(t, "promtool"), args...)
	cmd.Dir = dir
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Server is a private prometheus started for one test.
type Server struct {
	// URL is its base address, http://127.0.0.1:PORT.
	URL string
	// Dir holds its configuration and its TSDB.
	Dir string
	out *output
}

// output is prometheus's log, written by exec's copying goroutine and
// read by the test.
type output struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// Log returns what prometheus has logged so far.
func (s *Server) Log() string { return s.out.String() }

// Start runs prometheus on config (the text of a prometheus.yml) on a
// free loopback port, with its TSDB in a directory of its own, and waits
// until it is ready; it is stopped when the test ends.
func Start(t testing.TB, config string) *Server {
	t.Helper()
	bin := Look(t, "prometheus")
	dir := t.TempDir()
	conf := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(conf, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	// The free port may be taken between its choice and prometheus's
	// bind: then try another.
	for try := 1; ; try++ {
		s, err := start(t, bin, dir, conf)
		if err == nil {
			return s
		}
		if !errors.Is(err, errPortTaken) || try == 3 {
			t.Fatal(err)
		}
	}
}

var errPortTaken = errors.New("port taken")

func start(t testing.TB, bin, dir, conf string) (*Server, error) {
	t.Helper()
	const wait = 30 * time.Second
	port, err := stalltest.FreePort()
	if err != nil {
		return nil, err
	}
	s := &Server{URL: fmt.Sprintf("http://127.0.0.1:%d", port), Dir: dir, out: &output{}}
	cmd := exec.Command(bin, "--config.file="+conf,
		"--storage.tsdb.path="+filepath.Join(dir, fmt.Sprintf("tsdb-%d", port)),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port))
	cmd.Stdout, cmd.Stderr = s.out, s.out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(wait):
			cmd.Process.Kill()
			<-exited
		}
	}
	deadline := time.Now().Add(wait)
	for {
		if _, err := s.Get("/-/ready"); err == nil {
			t.Cleanup(stop)
			return s, nil
		}
		select {
		case err := <-exited:
			if strings.Contains(s.Log(), "address already in use") {
				return nil, errPortTaken
			}
			return nil, fmt.Errorf("prometheus exited before it was ready: %v\n%s", err, s.Log())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("prometheus not ready within %v\n%s", wait, s.Log())
		}
	}
}

// Get returns the body of a GET of path (with its query) on the server;
// a status other than 200 is an error.
func (s *Server) Get(path string) ([]byte, error) {
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(s.URL + path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return body, fmt.Errorf("GET %s: %s: %s", path, resp.Status, body)
	}
	return body, nil
}

// Sample is one series of an instant query's result.
type Sample struct {
	// Labels are the series' labels, __name__ among them.
	Labels map[string]string
	// Value is the sample's value as the API gives it ("1").
	Value string
}

// Query runs the instant query q through /api/v1/query and returns its
// vector.
func (s *Server) Query(q string) ([]Sample, error) {
	body, err := s.Get("/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return nil, err
	}
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("query %q: %w: %s", q, err, body)
	}
	if r.Status != "success" || r.Data.ResultType != "vector" {
		return nil, fmt.Errorf("query %q: status %s, result %s: %s", q, r.Status, r.Data.ResultType, r.Error)
	}
	out := make([]Sample, 0, len(r.Data.Result))
	for _, v := range r.Data.Result {
		val, _ := v.Value[1].(string)
		out = append(out, Sample{Labels: v.Metric, Value: val})
	}
	return out, nil
}
