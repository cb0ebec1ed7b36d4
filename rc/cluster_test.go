package rc

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The one-node cluster of the live test.
const (
	clusterNode = "pchecknode"
	// testProvider is the OCF provider the test installs the agent under
	// (ocf:pchecktest:pcheck): Pacemaker reads agents only from its fixed
	// OCF root, and an installed ocf:pcheck:pcheck is not the test's.
	testProvider = "pchecktest"
)

// Pacemaker's and Corosync's global paths: what the test creates in them
// (and only that) is removed at the end. In /dev/shm only libqb's files.
var clusterPaths = []string{"/var/lib/pacemaker", "/var/lib/corosync", "/var/log/pacemaker", "/var/log/corosync", "/run/crm", "/dev/shm"}

// cluster is a one-node Corosync/Pacemaker cluster started by the test.
type cluster struct {
	t     *testing.T
	dir   string
	tools map[string]string
	env   []string
	// enter, when set, runs the commands in a node's namespaces
	// (nsenter ... --): the two-node test.
	enter []string
}

// command returns the cluster program name with args, on this node.
func (c *cluster) command(name string, args ...string) *exec.Cmd {
	argv := append(append(append([]string(nil), c.enter...), c.tools[name]), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = c.env
	return cmd
}

// startCluster starts corosync (knet on 127.0.0.1, a private config) and
// pacemakerd, with stonith and quorum off, and waits until the node is
// online and the DC. It refuses to run (skips, or fails under
// PCHECK_REQUIRE_CLUSTER=1) beside a cluster it did not start or a CIB
// it did not write. Every daemon it started is stopped at the end of the
// test, failed or not, and the files it created are removed.
func startCluster(t *testing.T, dir string) *cluster {
	t.Helper()
	c := &cluster{t: t, dir: dir, tools: needTools(t, "corosync", "corosync-cfgtool", "pacemakerd", "crm_mon", "cibadmin",
		"crm_attribute", "crm_resource", "crm_failcount", "attrd_updater")}
	preflight(t)

	conf := filepath.Join(dir, "corosync.conf")
	writeFile(t, conf, 0o644, fmt.Sprintf(`totem {
	version: 2
	cluster_name: pchecktest
	transport: knet
	crypto_cipher: none
	crypto_hash: none
}
nodelist {
	node {
		name: %s
		nodeid: 1
		ring0_addr: 127.0.0.1
	}
}
quorum {
	provider: corosync_votequorum
}
logging {
	to_stderr: no
	to_syslog: no
	to_logfile: yes
	logfile: %s
	timestamp: on
}
`, clusterNode, filepath.Join(dir, "corosync.log")))
	c.env = append(os.Environ(), "PCMK_logfile="+filepath.Join(dir, "pacemaker.log"), "PCMK_logfacility=none", "PCMK_debug=no")
	corosync := c.daemon("corosync", c.tools["corosync"], "-f", "-c", conf)
	c.wait("corosync answers", 30*time.Second, func() error {
		return c.command("corosync-cfgtool", "-s").Run()
	})
	pacemakerd := c.daemon("pacemakerd", c.tools["pacemakerd"])
	// Cleanups run last first: pacemakerd (with the resources, through
	// the agent's stop) before corosync.
	t.Cleanup(func() { c.stop(corosync, 20*time.Second) })
	t.Cleanup(func() { c.stopPacemaker(pacemakerd) })
	c.wait("the node online and the DC", 90*time.Second, func() error {
		m, err := c.mon()
		if err != nil {
			return err
		}
		if !m.Summary.DC.Present || m.Summary.DC.Name != clusterNode {
			return errors.New("no DC")
		}
		for _, n := range m.Nodes {
			if n.Name == clusterNode && n.Online {
				return nil
			}
		}
		return errors.New("node not online")
	})
	c.crm("crm_attribute", "--type", "crm_config", "--name", "stonith-enabled", "--update", "false")
	c.crm("crm_attribute", "--type", "crm_config", "--name", "no-quorum-policy", "--update", "ignore")
	return c
}

// preflight refuses to run beside a cluster or a CIB the test did not
// start, installs the agent as ocf:pchecktest:pcheck, and arranges for
// what the cluster creates in its global paths to be removed at the end.
func preflight(t *testing.T) {
	t.Helper()
	if pid, name := clusterRunning(); pid != 0 {
		noCluster(t, fmt.Sprintf("%s pid %d runs already: the test starts its own cluster and touches no other", name, pid))
	}
	if cibs, _ := filepath.Glob("/var/lib/pacemaker/cib/cib*"); len(cibs) > 0 {
		noCluster(t, fmt.Sprintf("a CIB exists already (%s): the test starts only from a clean CIB and leaves that one alone", cibs[0]))
	}
	agentDir := filepath.Join(ocfRoot, "resource.d", testProvider)
	if _, err := os.Lstat(agentDir); err == nil {
		noCluster(t, agentDir+" exists already: not the test's, left alone")
	}
	before := snapshot()
	t.Cleanup(func() { removeNew(t, before) })
	if err := os.MkdirAll(agentDir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(agentDir) })
	src, err := os.ReadFile(agentSource)
	if err != nil {
		t.Fatal(err)
	}
	writeExecutable(t, filepath.Join(agentDir, "pcheck"), string(src))
}

// daemon starts a cluster daemon in a process group of its own; its
// output goes to a file of the test.
func (c *cluster) daemon(name, path string, args ...string) *exec.Cmd {
	c.t.Helper()
	out, err := os.Create(filepath.Join(c.dir, name+".out"))
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(path, args...)
	cmd.Env = c.env
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("%s: %v", name, err)
	}
	out.Close()
	return cmd
}

// stop ends a daemon the test started: SIGTERM, then SIGKILL to its
// process group after within.
func (c *cluster) stop(cmd *exec.Cmd, within time.Duration) {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(within):
		c.t.Errorf("%s did not stop within %s: killed", cmd.Path, within)
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// stopPacemaker stops pacemakerd, which stops the resources and its
// children first; the children it started (found by their parent) are
// killed if they outlive it.
func (c *cluster) stopPacemaker(cmd *exec.Cmd) {
	children := childrenOf(cmd.Process.Pid)
	c.stop(cmd, 60*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for _, ch := range children {
		for ch.alive() {
			if time.Now().After(deadline) {
				c.t.Errorf("pacemaker child %s pid %d outlives pacemakerd: killed", ch.name, ch.pid)
				syscall.Kill(ch.pid, syscall.SIGKILL)
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if c.t.Failed() {
		for _, f := range []string{"pacemaker.log", "corosync.log"} {
			b, _ := os.ReadFile(filepath.Join(c.dir, f))
			lines := strings.Split(string(b), "\n")
			if len(lines) > 80 {
				lines = lines[len(lines)-80:]
			}
			c.t.Logf("last lines of %s:\n%s", f, strings.Join(lines, "\n"))
		}
	}
}

// wait polls cond until it succeeds or within has passed.
func (c *cluster) wait(what string, within time.Duration, cond func() error) {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			out, _ := c.command("crm_mon", "-1", "-r", "-f").CombinedOutput()
			c.t.Fatalf("waiting %s for %s: %v\ncrm_mon:\n%s", within, what, err, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// crm runs a cluster command that must succeed and returns its output.
func (c *cluster) crm(name string, args ...string) string {
	c.t.Helper()
	out, err := c.command(name, args...).CombinedOutput()
	if err != nil {
		c.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// crmMon is the part of crm_mon --output-as=xml the test reads.
type crmMon struct {
	Summary struct {
		DC struct {
			Present bool   `xml:"present,attr"`
			Name    string `xml:"name,attr"`
		} `xml:"current_dc"`
	} `xml:"summary"`
	Nodes []struct {
		Name   string `xml:"name,attr"`
		Online bool   `xml:"online,attr"`
	} `xml:"nodes>node"`
	Groups []struct {
		ID        string        `xml:"id,attr"`
		Resources []monResource `xml:"resource"`
	} `xml:"resources>group"`
	History []struct {
		Name      string `xml:"name,attr"`
		Resources []struct {
			ID                 string `xml:"id,attr"`
			FailCount          int    `xml:"fail-count,attr"`
			MigrationThreshold int    `xml:"migration-threshold,attr"`
		} `xml:"resource_history"`
	} `xml:"node_history>node"`
}

type monResource struct {
	ID     string `xml:"id,attr"`
	Agent  string `xml:"resource_agent,attr"`
	Role   string `xml:"role,attr"`
	Active bool   `xml:"active,attr"`
	Failed bool   `xml:"failed,attr"`
	Nodes  []struct {
		Name string `xml:"name,attr"`
	} `xml:"node"`
}

func (c *cluster) mon() (*crmMon, error) {
	out, err := c.command("crm_mon", "--one-shot", "--inactive", "--output-as=xml").Output()
	if err != nil {
		return nil, fmt.Errorf("crm_mon: %v", err)
	}
	var m crmMon
	if err := xml.Unmarshal(out, &m); err != nil {
		return nil, fmt.Errorf("crm_mon: %v", err)
	}
	return &m, nil
}

// resource returns the state of resource id in crm_mon.
func (m *crmMon) resource(id string) (monResource, bool) {
	for _, g := range m.Groups {
		for _, r := range g.Resources {
			if r.ID == id {
				return r, true
			}
		}
	}
	return monResource{}, false
}

// started reports whether resource id runs on the node.
func (m *crmMon) started(id string) bool { return m.startedOn(id, clusterNode) }

// startedOn reports whether resource id runs on node.
func (m *crmMon) startedOn(id, node string) bool {
	r, ok := m.resource(id)
	return ok && r.Role == "Started" && r.Active && !r.Failed && len(r.Nodes) == 1 && r.Nodes[0].Name == node
}

// failCount is crm_mon's fail count of id on the node and its
// migration-threshold.
func (m *crmMon) failCount(id string) (count, threshold int) { return m.failCountOn(id, clusterNode) }

// failCountOn is crm_mon's fail count of id on node and its
// migration-threshold.
func (m *crmMon) failCountOn(id, node string) (count, threshold int) {
	for _, n := range m.History {
		for _, r := range n.Resources {
			if n.Name == node && r.ID == id {
				return r.FailCount, r.MigrationThreshold
			}
		}
	}
	return 0, 0
}

// failcount is crm_failcount's fail count of id on the node.
func (c *cluster) failcount(id string) int {
	c.t.Helper()
	out := strings.TrimSpace(c.crm("crm_failcount", "--query", "--quiet", "--resource", id, "--node", clusterNode))
	n, err := strconv.Atoi(out)
	if err != nil {
		if out == "INFINITY" {
			return 1000000
		}
		c.t.Fatalf("crm_failcount of %s: %q", id, out)
	}
	return n
}

// logMon saves crm_mon's text output in the test log.
func (c *cluster) logMon(when string) {
	c.t.Helper()
	out := c.crm("crm_mon", "--one-shot", "--inactive", "--show-detail", "--failcounts", "--operations")
	c.t.Logf("crm_mon %s:\n%s", when, out)
}

// addGroup configures group gid of one pcheck resource rid for pfile;
// extra are more parameters, name=value.
func (c *cluster) addGroup(e *agentEnv, gid, rid, pfilePath string, monitor time.Duration, threshold int, extra ...string) {
	c.t.Helper()
	var nv strings.Builder
	prm := e.params(pfilePath)
	prm["fallback_log"] = filepath.Join(e.dir, rid+".log")
	for _, kv := range extra {
		k, v, _ := strings.Cut(kv, "=")
		prm[k] = v
	}
	keys := make([]string, 0, len(prm))
	for k := range prm {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&nv, `<nvpair id="%s-%s" name="%s" value="%s"/>`, rid, k, k, prm[k])
	}
	x := fmt.Sprintf(`<group id="%s"><primitive id="%s" class="ocf" provider="%s" type="pcheck">`+
		`<instance_attributes id="%s-ia">%s</instance_attributes>`+
		`<meta_attributes id="%s-meta"><nvpair id="%s-mt" name="migration-threshold" value="%d"/></meta_attributes>`+
		`<operations><op id="%s-start" name="start" interval="0" timeout="60s"/><op id="%s-stop" name="stop" interval="0" timeout="30s"/>`+
		`<op id="%s-monitor" name="monitor" interval="%ds" timeout="20s"/></operations></primitive></group>`,
		gid, rid, testProvider, rid, nv.String(), rid, rid, threshold, rid, rid, rid, int(monitor/time.Second))
	c.crm("cibadmin", "--create", "--scope", "resources", "--xml-text", x)
}

// TestClusterFailover runs the agent in a real one-node Pacemaker
// cluster. Group g1 (ClusterNotify pacemaker, monitor every 120 s,
// migration-threshold 2) and g2 (no ClusterNotify, monitor every 2 s)
// each hold one pcheck resource watching a service its restart script
// starts. The test kills each service until retry over and checks with
// crm_mon and crm_failcount that Pacemaker saw the failure (g1 at once,
// through crm_resource --fail, long before its next monitor; g2 through
// the monitor), restarted the group on the node with the service Up, and
// that the second failure of g1 reached migration-threshold, so that g1
// is stopped and not restarted on the node.
func TestClusterFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	needTools(t)
	e := newAgentEnv(t)
	c := startCluster(t, e.dir)
	start := time.Now()
	t.Cleanup(func() {
		for _, rid := range []string{"pc1", "pc2"} {
			if b, err := os.ReadFile(filepath.Join(e.dir, rid+".log")); err == nil {
				t.Logf("pcheck's log of %s:\n%s", rid, b)
			}
		}
		b, _ := os.ReadFile(filepath.Join(e.dir, "pacemaker.log"))
		var fails []string
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "fail-count") || strings.Contains(l, "asyncmon") || strings.Contains(l, "Simulated") {
				fails = append(fails, l)
			}
		}
		t.Logf("pacemaker.log on failures:\n%s", strings.Join(fails, "\n"))
	})

	// crm_resource --validate runs the agent's validate-all as Pacemaker
	// would: a good pfile passes, an invalid one is refused.
	good, svc1 := e.service(t, "svc1", "ClusterNotify pacemaker\nClusterHealthAttribute \"#health-pcheck\"\n")
	c.crm("crm_resource", "--validate", "--class", "ocf", "--provider", testProvider, "--agent", "pcheck",
		"--option", "pfile="+good, "--option", "pcheck="+e.pcheck, "--option", "padmin="+e.padmin)
	bad := filepath.Join(e.dir, "bad.pfile")
	writeFile(t, bad, 0o644, "RetryCount many\n"+svc1+" /bin/true\n")
	v := exec.Command(c.tools["crm_resource"], "--validate", "--class", "ocf", "--provider", testProvider, "--agent", "pcheck",
		"--option", "pfile="+bad, "--option", "pcheck="+e.pcheck, "--option", "padmin="+e.padmin)
	if out, err := v.CombinedOutput(); err == nil || !strings.Contains(string(out), "RetryCount must be a whole number") {
		t.Errorf("crm_resource --validate of an invalid pfile: %v, want a refusal naming the error\n%s", err, out)
	}

	notified := good
	polled, svc2 := e.service(t, "svc2", "")
	// No monitor of pc1 runs before configured + 120 s.
	configured := time.Now()
	// Pacemaker 2.1.5 counts one crm_resource --fail twice (attrd's log
	// shows two value++ of fail-count-pc1#asyncmon_0): migration-threshold
	// 3 lets the first retry over restart pc1 and stops it at the second.
	c.addGroup(e, "g1", "pc1", notified, 120*time.Second, 3)
	c.addGroup(e, "g2", "pc2", polled, 2*time.Second, 5)
	c.wait("both groups started", 60*time.Second, func() error {
		m, err := c.mon()
		if err != nil {
			return err
		}
		if !m.started("pc1") || !m.started("pc2") {
			return errors.New("not started")
		}
		return nil
	})
	e.upPid(t, notified, 0, 10*time.Second)
	e.upPid(t, polled, 0, 10*time.Second)
	c.logMon("before the failures")

	// g2: the agent's monitor sees pcheck's exit on retry over.
	_, pcheck2 := e.upPid(t, polled, 0, time.Second)
	e.retryOver(t, polled, svc2)
	c.wait("pc2's failure counted and pc2 restarted", 60*time.Second, func() error {
		m, err := c.mon()
		if err != nil {
			return err
		}
		if n, _ := m.failCount("pc2"); n != 1 || !m.started("pc2") {
			return fmt.Errorf("pc2 fail count %d, started %v", n, m.started("pc2"))
		}
		return nil
	})
	if _, p := e.upPid(t, polled, 0, 30*time.Second); p == pcheck2 {
		t.Errorf("pc2 recovered but pcheck pid %d is the old one", p)
	}

	// g1: ClusterNotify fails the resource at once: the fail count
	// rises long before the next monitor (120 s after the start).
	_, pcheck1 := e.upPid(t, notified, 0, time.Second)
	killed := e.retryOver(t, notified, svc1)
	c.wait("pc1's fail count from ClusterNotify", 30*time.Second, func() error {
		if n := c.failcount("pc1"); n < 1 {
			return fmt.Errorf("pc1 fail count %d", n)
		}
		return nil
	})
	seen := time.Now()
	if seen.Sub(configured) >= 120*time.Second {
		t.Fatalf("pc1's failure was counted %s after it was configured: not before its first monitor", seen.Sub(configured))
	}
	t.Logf("pc1: fail count 1 %.1f s after the kill that made the retry over (monitor interval 120 s, configured %.1f s before)",
		seen.Sub(killed).Seconds(), seen.Sub(configured).Seconds())
	var first int
	c.wait("pc1 restarted on the node", 60*time.Second, func() error {
		m, err := c.mon()
		if err != nil {
			return err
		}
		if !m.started("pc1") {
			return errors.New("pc1 not started")
		}
		first, _ = m.failCount("pc1")
		return nil
	})
	if first < 1 || first >= 3 {
		t.Fatalf("pc1 restarted with fail count %d, want 1 or 2 (below migration-threshold 3)", first)
	}
	if n := c.failcount("pc1"); n != first {
		t.Errorf("crm_failcount of pc1 %d, crm_mon %d", n, first)
	}
	if _, p := e.upPid(t, notified, 0, 30*time.Second); p == pcheck1 {
		t.Errorf("pc1 recovered but pcheck pid %d is the old one", p)
	}
	c.logMon("after the first failures (pc1 and pc2 restarted)")

	// More retry overs of g1 reach migration-threshold 3 (the next one,
	// or the one after when Pacemaker counted the first once): below it
	// pc1 is restarted on the node, at it pc1 stays stopped, there being
	// no other node.
	counts := []int{first}
	for count := first; count < 3; {
		if len(counts) > 3 {
			t.Fatalf("pc1 fail counts %v: migration-threshold 3 never reached", counts)
		}
		if _, served := e.status(t, notified); !served {
			t.Fatalf("pc1 fail count %d (below migration-threshold 3) but no pcheck serves %s", count, notified)
		}
		e.retryOver(t, notified, svc1)
		prev := count
		c.wait("pc1's next failure handled", 60*time.Second, func() error {
			m, err := c.mon()
			if err != nil {
				return err
			}
			r, ok := m.resource("pc1")
			n, thr := m.failCount("pc1")
			switch {
			case !ok || thr != 3 || n <= prev:
			case n < 3 && m.started("pc1"), n >= 3 && !r.Active && r.Role == "Stopped":
				count = n
				return nil
			}
			return fmt.Errorf("pc1 %+v fail count %d threshold %d", r, n, thr)
		})
		counts = append(counts, count)
	}
	m, err := c.mon()
	if err != nil {
		t.Fatal(err)
	}
	last, _ := m.failCount("pc1")
	if n := c.failcount("pc1"); n != last {
		t.Errorf("crm_failcount of pc1: %d, crm_mon %d", n, last)
	}
	t.Logf("pc1: fail counts %v after each retry over (migration-threshold 3)", counts)
	if _, served := e.status(t, notified); served {
		t.Errorf("pc1 stopped but pcheck still serves %s", notified)
	}
	if !m.started("pc2") {
		t.Errorf("pc2 is not started any more")
	}
	c.logMon("after pc1 reached migration-threshold")

	// pc1's pcheck kept the node-health attribute: green once Up, red at
	// each retry over, green again after the restart (attrd's own log).
	b, _ := os.ReadFile(filepath.Join(e.dir, "pacemaker.log"))
	var health []string
	for _, l := range strings.Split(string(b), "\n") {
		if i := strings.Index(l, "Setting #health-pcheck["+clusterNode+"]: "); i >= 0 && strings.Contains(l, "pacemaker-attrd") {
			v := strings.Fields(l[i+len("Setting #health-pcheck["+clusterNode+"]: "):])
			if len(v) >= 3 {
				health = append(health, v[2])
			}
		}
	}
	want := []string{"green"}
	for i := 1; i < len(counts); i++ {
		want = append(want, "red", "green")
	}
	want = append(want, "red")
	if strings.Join(health, " ") != strings.Join(want, " ") {
		t.Errorf("#health-pcheck set to %v in attrd's log, want %v", health, want)
	}
	if out := c.crm("attrd_updater", "--query", "--name", "#health-pcheck", "--node", clusterNode); !strings.Contains(out, `value="red"`) {
		t.Errorf("#health-pcheck after the last retry over: %s, want red", out)
	}
	if el := time.Since(start); el > 150*time.Second {
		t.Errorf("the cluster test took %s", el)
	}
}

// clusterRunning returns a Corosync or Pacemaker daemon that runs here.
func clusterRunning() (int, string) {
	procs, _ := filepath.Glob("/proc/[0-9]*/comm")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		name := strings.TrimSpace(string(b))
		if err == nil && (name == "corosync" || name == "pacemakerd" || strings.HasPrefix(name, "pacemaker-")) {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
			return pid, name
		}
	}
	return 0, ""
}

// proc is a process known by pid and start time, so that a reused pid
// is never taken for it.
type proc struct {
	pid   int
	start string
	name  string
}

func procStat(pid int) (ppid int, start, name string, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, "", "", false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	j := strings.IndexByte(s, '(')
	if i < 0 || j < 0 {
		return 0, "", "", false
	}
	f := strings.Fields(s[i+2:])
	if len(f) < 20 || f[0] == "Z" {
		return 0, "", "", false
	}
	ppid, _ = strconv.Atoi(f[1])
	return ppid, f[19], s[j+1 : i], true
}

func (p proc) alive() bool {
	_, start, _, ok := procStat(p.pid)
	return ok && start == p.start
}

// childrenOf returns the live children of pid.
func childrenOf(pid int) []proc {
	var out []proc
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		child, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		if ppid, start, name, ok := procStat(child); ok && ppid == pid {
			out = append(out, proc{pid: child, start: start, name: name})
		}
	}
	return out
}

// snapshot lists what exists under clusterPaths.
func snapshot() map[string]bool {
	seen := map[string]bool{}
	for _, root := range clusterPaths {
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err == nil {
				seen[p] = true
			}
			return nil
		})
	}
	return seen
}

// removeNew removes what was created under clusterPaths since before
// (in /dev/shm only libqb's qb-* files).
func removeNew(t *testing.T, before map[string]bool) {
	var created []string
	for _, root := range clusterPaths {
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || before[p] {
				return nil
			}
			if root == "/dev/shm" && !strings.HasPrefix(filepath.Base(p), "qb-") {
				return nil
			}
			created = append(created, p)
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		})
	}
	for _, p := range created {
		if err := os.RemoveAll(p); err != nil {
			t.Errorf("removing %s: %v", p, err)
		}
	}
	if len(created) > 0 {
		t.Logf("removed what the cluster created: %s", strings.Join(created, " "))
	}
}
