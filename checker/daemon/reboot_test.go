package daemon

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAutoReboot: a retry over with action exit and AutoReboot on runs the
// (harmless) RebootCommand, counted across pcheck restarts up to
// RebootLimit, then only logs that the limit is reached. pcheck exits 3
// every time. A reboot clears the retry counts of the process (the node
// starts afresh), so every run gets its one attempt again.
func TestAutoReboot(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	none := newService(t, e.dir, "none", "true")
	ran := filepath.Join(e.dir, "rebooted")
	counts := filepath.Join(e.dir, "reboots.json")
	pf := filepath.Join(e.dir, "a.pf")
	writeFile(t, pf, pfileHead+"RetryCount 1\nretry_over_action exit\nAutoReboot on\nRebootLimit 2\n"+
		"RebootCommand \"echo reboot >> "+ran+"\"\nRebootStateFile "+counts+"\n"+none.entry(""))
	for run := 1; run <= 3; run++ {
		p := e.start(nil, pf)
		if st := p.wait(); st != 3 {
			t.Fatalf("run %d: exit status %d, want 3; stderr:\n%s", run, st, p.stderr)
		}
		if run <= 2 {
			e.wait(fmt.Sprintf("Auto reboot ('%s') count=%d/2", bin, run))
		} else {
			e.wait(fmt.Sprintf("Auto reboot skipped ('%s'): limit 2 reached", bin))
		}
		// Nothing is logged after the stop, the reboot's lines included.
		stop := "pcheck stop. pfile='" + pf + "'"
		e.wait(stop)
		marker := fmt.Sprintf("marker %d", run)
		c, err := net.Dial("unixgram", e.log.Addr())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte("<30>Jan  1 00:00:00 test: " + marker)); err != nil {
			t.Fatal(err)
		}
		c.Close()
		e.wait(marker)
		lines := e.log.Lines()
		if last := lines[len(lines)-2]; last.Text != stop {
			t.Fatalf("run %d: the last line pcheck sent is %q, want its stop", run, last.Raw)
		}
	}
	if got := len(none.callReasons()); got != 3 {
		t.Errorf("%d restart attempts over three runs, want 3 (counts cleared by each reboot)", got)
	}
	data, err := os.ReadFile(ran)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(data), "reboot"); n != 2 {
		t.Errorf("RebootCommand ran %d times, want 2 (RebootLimit)", n)
	}
}
