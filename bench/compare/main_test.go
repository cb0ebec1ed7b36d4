package compare

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// targetBin and floorBin are the real target and floor programs, built
// once for the tests.
var targetBin, floorBin string

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
	targetBin, floorBin = filepath.Join(dir, "target"), filepath.Join(dir, "floor")
	// Built before any test makes this process a subreaper: the reaper
	// would steal the exit status that exec waits for.
	for bin, pkg := range map[string]string{targetBin: "./cmd/target", floorBin: "./cmd/floor"} {
		out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n%s", pkg, err, out)
			return 1
		}
	}
	return m.Run()
}

// newTestHarness is a harness on a fresh work directory, closed (targets
// killed, reaper stopped) at the end of the test.
func newTestHarness(t *testing.T) *harness {
	t.Helper()
	h, err := newHarness(Options{PcheckBin: "/nonexistent/pcheck", TargetBin: targetBin, FloorBin: floorBin, WorkDir: t.TempDir()})
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

// freePorts returns the first of n consecutive loopback ports nothing
// listens on now.
func freePorts(t *testing.T, n int) int {
	t.Helper()
next:
	for try := 0; try < 100; try++ {
		first := freePort(t)
		var held []net.Listener
		for i := 1; i < n; i++ {
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", first+i))
			if err != nil {
				for _, l := range held {
					l.Close()
				}
				continue next
			}
			held = append(held, ln)
		}
		for _, l := range held {
			l.Close()
		}
		return first
	}
	t.Fatalf("no %d consecutive free ports", n)
	return 0
}
