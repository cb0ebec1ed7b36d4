package rc

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// requireClusterEnv set to 1 (CI) makes the tests of the OCF agent and
// the live cluster fail, not skip, where resource-agents, pacemaker or
// corosync are missing.
const requireClusterEnv = "PCHECK_REQUIRE_CLUSTER"

// The agent's source and the DTD its meta-data must follow (OCF 1.1, as
// resource-agents ships it).
const (
	agentSource = "ocf/pcheck"
	raDTDDir    = "/usr/share/resource-agents"
	ocfRoot     = "/usr/lib/ocf"
)

// needTools returns the paths of the programs, or skips the test (fails
// it under PCHECK_REQUIRE_CLUSTER=1) when one is missing.
func needTools(t *testing.T, names ...string) map[string]string {
	t.Helper()
	paths := map[string]string{}
	for _, n := range names {
		p, err := exec.LookPath(n)
		if err != nil {
			for _, dir := range []string{"/usr/sbin", "/sbin"} {
				if st, serr := os.Stat(filepath.Join(dir, n)); serr == nil && st.Mode().IsRegular() {
					p, err = filepath.Join(dir, n), nil
				}
			}
		}
		if err != nil {
			noCluster(t, fmt.Sprintf("%s is not installed (packages pacemaker, corosync, resource-agents, pacemaker-cli-utils, libxml2-utils)", n))
		}
		paths[n] = p
	}
	if _, err := os.Stat(filepath.Join(ocfRoot, "lib/heartbeat/ocf-shellfuncs")); err != nil {
		noCluster(t, "resource-agents is not installed: "+err.Error())
	}
	return paths
}

// noCluster skips the test, or fails it under PCHECK_REQUIRE_CLUSTER=1.
func noCluster(t *testing.T, why string) {
	t.Helper()
	if os.Getenv(requireClusterEnv) == "1" {
		t.Fatalf("%s=1: %s", requireClusterEnv, why)
	}
	t.Skip(why)
}

// agentEnv is an OCF agent's files: pcheck and padmin built from cmd/, a
// copy of the agent, a service (this test binary as "service") and its
// restart script, in a directory that the agent's nobody check can read.
type agentEnv struct {
	dir, agent, pcheck, padmin, stateDir, runDir string
}

func newAgentEnv(t *testing.T) *agentEnv {
	t.Helper()
	dir := shortTemp(t)
	// ocf-tester runs "meta-data" as nobody: the directories must let it in.
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The control sockets' names hold the pfile's path: a run directory
	// under a long test name would pass the 108 bytes of sun_path.
	runDir, err := os.MkdirTemp("", "pcr")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(runDir) })
	if err := os.Chmod(runDir, 0o755); err != nil {
		t.Fatal(err)
	}
	e := &agentEnv{dir: dir, agent: filepath.Join(dir, "pcheck.ocf"), pcheck: filepath.Join(dir, "pcheck"), padmin: filepath.Join(dir, "padmin"),
		stateDir: filepath.Join(dir, "state"), runDir: runDir}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not in PATH: cannot build pcheck")
	}
	if out, err := exec.Command(goTool, "build", "-o", dir+"/", "../cmd/pcheck", "../cmd/padmin").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	src, err := os.ReadFile(agentSource)
	if err != nil {
		t.Fatal(err)
	}
	writeExecutable(t, e.agent, string(src))
	return e
}

// writeExecutable writes a file the test executes, under ForkLock so that
// no child forked meanwhile holds it open for writing (ETXTBSY).
func writeExecutable(t *testing.T, path, text string) {
	t.Helper()
	syscall.ForkLock.Lock()
	err := os.WriteFile(path, []byte(text), 0o755)
	syscall.ForkLock.Unlock()
	if err != nil {
		t.Fatal(err)
	}
}

// service writes the service name (a copy of this test binary that
// sleeps), its restart script and a pfile watching it with extra
// parameters, and returns the pfile's path and the service's.
func (e *agentEnv) service(t *testing.T, name, params string) (pfilePath, svc string) {
	t.Helper()
	svc = copySelf(t, filepath.Join(e.dir, name))
	script := filepath.Join(e.dir, name+".restart")
	// Reason stop (the agent's stop_services) stops the service and
	// starts nothing.
	writeExecutable(t, script, fmt.Sprintf(`#!/bin/sh
# restart script: <process> <old-pid> <reason>
if [ "$3" = stop ]; then
	[ "$2" -gt 1 ] 2>/dev/null && kill "$2"
	exit 0
fi
%s=service setsid %s </dev/null >/dev/null 2>&1 &
`, roleEnv, svc))
	pfilePath = filepath.Join(e.dir, name+".pfile")
	writeFile(t, pfilePath, 0o644, "MonitorInterval 1\nRetryCount 2\nGrace 600\nretry_over_action exit\nStartWait 3\n"+params+svc+" "+script+"\n")
	return pfilePath, svc
}

// run runs an agent action with the OCF environment and parameters and
// returns its exit status and output.
func (e *agentEnv) run(t *testing.T, action string, params map[string]string) (int, string) {
	t.Helper()
	cmd := exec.Command(e.agent, action)
	cmd.Env = append(os.Environ(), "OCF_ROOT="+ocfRoot, "OCF_RESOURCE_INSTANCE=pc-test")
	for k, v := range params {
		cmd.Env = append(cmd.Env, "OCF_RESKEY_"+k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	return exitCode(err), string(out)
}

func (e *agentEnv) params(pfilePath string) map[string]string {
	return map[string]string{
		"pfile": pfilePath, "state_dir": e.stateDir, "run_dir": e.runDir,
		"pcheck": e.pcheck, "padmin": e.padmin, "start_timeout": "20",
		"fallback_log": filepath.Join(e.dir, "pcheck.log"),
	}
}

// padminStatus is the part of padmin --json status the tests read.
type padminStatus struct {
	Pid       int `json:"pid"`
	Processes []struct {
		Name  string `json:"name"`
		State string `json:"state"`
		Pids  []int  `json:"pids"`
	} `json:"process_list"`
}

// status returns pcheck's status of the pfile; ok is false when no
// pcheck serves it.
func (e *agentEnv) status(t *testing.T, pfilePath string) (padminStatus, bool) {
	t.Helper()
	out, err := exec.Command(e.padmin, "--run-dir", e.runDir, "--json", "status", pfilePath).Output()
	var st padminStatus
	// Exit 4: served, an entry not Up (the status is printed all the same).
	if exit, ok := err.(*exec.ExitError); err != nil && !(ok && exit.ExitCode() == 4) {
		return st, false
	}
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("padmin status: %v\n%s", err, out)
	}
	return st, true
}

// upPid waits until the pfile's one entry is Up with a pid other than
// old and returns that pid and pcheck's.
func (e *agentEnv) upPid(t *testing.T, pfilePath string, old int, within time.Duration) (svcPid, pcheckPid int) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		st, ok := e.status(t, pfilePath)
		if ok && len(st.Processes) == 1 && st.Processes[0].State == "Up" && len(st.Processes[0].Pids) > 0 && st.Processes[0].Pids[0] != old {
			return st.Processes[0].Pids[0], st.Pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the entry is not Up with a new pid (old %d) within %s: %+v (served %v)", pfilePath, old, within, st, ok)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// killService kills pid, which must be the test's service svc (never a
// process the test did not start).
func killService(t *testing.T, pid int, svc string) {
	t.Helper()
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil || exe != svc {
		t.Fatalf("pid %d is not the service %s (%q, %v): not killed", pid, svc, exe, err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
}

// retryOver kills the service of pfilePath until pcheck hits retry over
// (RetryCount 2: the start used one attempt, one restart uses the other)
// and returns when the second kill is made.
func (e *agentEnv) retryOver(t *testing.T, pfilePath, svc string) time.Time {
	t.Helper()
	pid, _ := e.upPid(t, pfilePath, 0, 30*time.Second)
	killService(t, pid, svc)
	pid, _ = e.upPid(t, pfilePath, pid, 30*time.Second)
	killService(t, pid, svc)
	return time.Now()
}

// TestOCFAgentMetaData: the agent's meta-data is valid against the
// resource-agents DTD (ra-api-1.dtd) and names every parameter the agent
// reads.
func TestOCFAgentMetaData(t *testing.T) {
	tools := needTools(t, "xmllint")
	if _, err := os.Stat(filepath.Join(raDTDDir, "ra-api-1.dtd")); err != nil {
		noCluster(t, "resource-agents ships no ra-api-1.dtd: "+err.Error())
	}
	cmd := exec.Command("/bin/sh", agentSource, "meta-data")
	cmd.Env = append(os.Environ(), "OCF_ROOT="+ocfRoot)
	md, err := cmd.Output()
	if err != nil {
		t.Fatalf("meta-data: %v", err)
	}
	lint := exec.Command(tools["xmllint"], "--noout", "--valid", "--path", raDTDDir, "-")
	lint.Stdin = strings.NewReader(string(md))
	if out, err := lint.CombinedOutput(); err != nil {
		t.Fatalf("xmllint --valid: %v\n%s\n%s", err, out, md)
	}
	src, _ := os.ReadFile(agentSource)
	for _, p := range []string{"pfile", "state_dir", "run_dir", "start_timeout", "stop_services", "pcheck", "padmin", "fallback_log"} {
		if !strings.Contains(string(md), `<parameter name="`+p+`"`) {
			t.Errorf("meta-data lacks parameter %s", p)
		}
		if !strings.Contains(string(src), "OCF_RESKEY_"+p) {
			t.Errorf("the agent does not read parameter %s", p)
		}
	}
}

// TestOCFTester: resource-agents' own conformance test passes.
func TestOCFTester(t *testing.T) {
	tools := needTools(t, "ocf-tester", "xmllint")
	e := newAgentEnv(t)
	pf, _ := e.service(t, "svc", "")
	args := []string{"-n", "pc-test"}
	for k, v := range e.params(pf) {
		args = append(args, "-o", k+"="+v)
	}
	args = append(args, "-o", "stop_services=true", e.agent)
	cmd := exec.Command(tools["ocf-tester"], args...)
	cmd.Env = append(os.Environ(), "OCF_ROOT="+ocfRoot)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "passed all tests") {
		t.Fatalf("ocf-tester: %v\n%s", err, out)
	}
	t.Logf("ocf-tester:\n%s", out)
	if _, served := e.status(t, pf); served {
		t.Errorf("pcheck still serves %s after ocf-tester's last stop", pf)
	}
}

// TestOCFAgentActions checks the agent's exit statuses: validate-all and
// monitor 6 for an invalid pfile, monitor 7 while pcheck is not running,
// start 0 once the entry is Up, monitor 0 while it is, 1 once pcheck has
// exited on retry over (the record in the state directory), and stop
// with stop_services=true stops the service with its restart script.
func TestOCFAgentActions(t *testing.T) {
	needTools(t)
	e := newAgentEnv(t)
	pf, svc := e.service(t, "svc", "")
	prm := e.params(pf)

	bad := filepath.Join(e.dir, "bad.pfile")
	writeFile(t, bad, 0o644, "RetryCount many\n"+svc+" "+svc+".restart\n")
	badPrm := e.params(bad)
	for _, action := range []string{"validate-all", "monitor"} {
		if rc, out := e.run(t, action, badPrm); rc != 6 {
			t.Errorf("%s of an invalid pfile: status %d, want 6 (OCF_ERR_CONFIGURED)\n%s", action, rc, out)
		}
	}
	if rc, out := e.run(t, "validate-all", prm); rc != 0 {
		t.Fatalf("validate-all: status %d\n%s", rc, out)
	}
	if rc, out := e.run(t, "monitor", prm); rc != 7 {
		t.Fatalf("monitor before start: status %d, want 7 (OCF_NOT_RUNNING)\n%s", rc, out)
	}
	if rc, out := e.run(t, "start", prm); rc != 0 {
		t.Fatalf("start: status %d\n%s", rc, out)
	}
	// start returns once every entry is Up.
	if st, ok := e.status(t, pf); !ok || st.Processes[0].State != "Up" {
		t.Fatalf("after start: %+v (served %v), want the entry Up", st, ok)
	}
	if rc, out := e.run(t, "monitor", prm); rc != 0 {
		t.Fatalf("monitor while Up: status %d, want 0\n%s", rc, out)
	}
	// A pfile half-edited on disk while pcheck runs on its old rules is
	// no reason for Pacemaker to stop a healthy resource (6 is fatal on
	// every node).
	good, err := os.ReadFile(pf)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, pf, 0o644, "RetryCount many\n")
	if rc, out := e.run(t, "monitor", prm); rc != 0 {
		t.Fatalf("monitor while Up with a half-edited pfile on disk: status %d, want 0\n%s", rc, out)
	}
	writeFile(t, pf, 0o644, string(good))

	e.retryOver(t, pf, svc)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, served := e.status(t, pf); !served {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("pcheck does not exit after the retry over")
		}
		time.Sleep(50 * time.Millisecond)
	}
	rc, out := e.run(t, "monitor", prm)
	if rc != 1 || !strings.Contains(out, "pcheck exited on retry over: '"+svc+"'") {
		t.Fatalf("monitor after the retry over: status %d, want 1 (OCF_ERR_GENERIC) with the reason\n%s", rc, out)
	}
	recs, _ := filepath.Glob(filepath.Join(e.stateDir, "*.exit"))
	if len(recs) != 1 {
		t.Fatalf("exit records %v, want one", recs)
	}
	rec, _ := os.ReadFile(recs[0])
	if !strings.HasPrefix(string(rec), "pfile "+pf+"\nstatus 3\nprocess '"+svc+"'\ntime ") {
		t.Errorf("exit record:\n%s", rec)
	}

	// Restarted by the cluster, pcheck starts with cleared counts (it ran
	// under the agent): the entry comes Up instead of a new retry over.
	if rc, out := e.run(t, "start", prm); rc != 0 {
		t.Fatalf("start after the retry over: status %d\n%s", rc, out)
	}
	if _, err := os.Stat(recs[0]); err == nil {
		t.Errorf("start left the exit record %s", recs[0])
	}
	e.upPid(t, pf, 0, 10*time.Second)
	// A pcheck whose control socket is gone is still found, and stopped:
	// a stop that reported success with pcheck running would let
	// Pacemaker start the service on another node beside it.
	socks, _ := filepath.Glob(filepath.Join(e.runDir, "*"))
	for _, s := range socks {
		if fi, err := os.Lstat(s); err == nil && fi.Mode()&os.ModeSocket != 0 {
			os.Remove(s)
		}
	}
	if rc, out := e.run(t, "stop", prm); rc != 0 {
		t.Fatalf("stop without the control socket: status %d\n%s", rc, out)
	}
	if out, _ := exec.Command("pgrep", "-f", "-x", ".*pcheck.* "+pf).Output(); len(out) != 0 {
		t.Fatalf("stop returned 0 with pcheck still running: pids %s", out)
	}
	if rc, out := e.run(t, "start", prm); rc != 0 {
		t.Fatalf("start after the stop: status %d\n%s", rc, out)
	}
	pid, _ := e.upPid(t, pf, 0, 10*time.Second)
	prm["stop_services"] = "true"
	if rc, out := e.run(t, "stop", prm); rc != 0 {
		t.Fatalf("stop: status %d\n%s", rc, out)
	}
	deadline = time.Now().Add(10 * time.Second)
	for processAlive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("stop_services=true: service pid %d still runs after stop", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if rc, out := e.run(t, "monitor", prm); rc != 7 {
		t.Fatalf("monitor after stop: status %d, want 7\n%s", rc, out)
	}
}
