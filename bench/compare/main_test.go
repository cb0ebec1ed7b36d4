package compare

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// targetBin is the real target program, built once for the tests.
var targetBin string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "compare-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	targetBin = filepath.Join(dir, "target")
	// Built before any test makes this process a subreaper: the reaper
	// would steal the exit status that exec waits for.
	out, err := exec.Command("go", "build", "-o", targetBin, "./cmd/target").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building the target: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// newTestHarness is a harness on a fresh work directory, closed (targets
// killed, reaper stopped) at the end of the test.
func newTestHarness(t *testing.T) *harness {
	t.Helper()
	h, err := newHarness(Options{PcheckBin: "/nonexistent/pcheck", TargetBin: targetBin, WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	h.o.defaults()
	t.Cleanup(h.close)
	return h
}

// freePort returns a loopback port nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
