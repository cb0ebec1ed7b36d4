package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestStallExpectStatus: the pcheck binary on a web server answering 500.
// Without ExpectStatus it answered (TestStallServerErrorTLSPath); with
// ExpectStatus 200-399 each attempt fails, so it is found stalled, killed
// and restarted with reason stall.
func TestStallExpectStatus(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := newWebService(t, dir, "err500", "http", 500)
	entry := strings.Replace(s.entry("webserv.blk"), "    PS_QUIT", "    ExpectStatus 200-399\n    PS_QUIT", 1)
	e := stallSetup(t, dir, "continue", entry)
	pid := s.start()
	e.pcheck(e.pfile)
	e.wait(fmt.Sprintf("('%s' ,pid=%d) Up", self, pid))
	e.wait(fmt.Sprintf("Find Web Server Stall: pid = %d : port = %d", pid, s.svc.Port))
	e.wait(fmt.Sprintf("Killed Process: pid= %d", pid))
	e.wait(fmt.Sprintf("Try to restart ('%s')", self))
	e.wait(fmt.Sprintf("('%s' ,pid=%d) Up", self, s.newPid(pid)))
	if b, _ := os.ReadFile(s.calls); !strings.HasPrefix(string(b), fmt.Sprintf("%s %d stall\n", self, pid)) {
		t.Fatalf("restart script calls %q, want one with reason stall", b)
	}
	if n := s.requests("HEAD /"); n < 2 {
		t.Fatalf("%d HEAD requests before the stall, want at least 2", n)
	}
}
