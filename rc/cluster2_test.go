package rc

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The two nodes of TestClusterTwoNodeFailover, on a veth pair between
// their network namespaces.
var twoNodes = []struct{ name, addr, dev string }{
	{"pcn1", "10.231.0.1", "pcv1"},
	{"pcn2", "10.231.0.2", "pcv2"},
}

// nodeSetup runs in a node's new mount and network namespaces: private
// Pacemaker and Corosync state, /run and /dev/shm, and the node's own
// pcheck state and run directories bound over the paths the resource
// names (two machines share no disk); then it holds the namespaces.
// Arguments: the node's directory, its state directory and the path it
// is bound over, its run directory and the path it is bound over.
const nodeSetup = `set -e
mount --make-rprivate /
mount -t tmpfs -o mode=0755 tmpfs /var/lib/pacemaker
for d in cib pengine blackbox cores; do
	mkdir -m 0750 /var/lib/pacemaker/$d
	chown hacluster:haclient /var/lib/pacemaker/$d
done
mount -t tmpfs -o mode=0755 tmpfs /var/lib/corosync
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
for d in /var/log/pacemaker /var/log/corosync; do
	[ ! -d $d ] || mount -t tmpfs -o mode=0755 tmpfs $d
done
mount --bind "$2" "$3"
mount --bind "$4" "$5"
ip link set lo up
: >"$1/ready"
exec sleep 1000000
`

// node is one node of the two-node cluster.
type node struct {
	*cluster
	name   string
	holder *exec.Cmd // holds the namespaces
	dir    string
	run    string // its pcheck run directory, seen from outside
}

// TestClusterTwoNodeFailover: two Corosync/Pacemaker nodes on one
// machine, each in its own network and mount namespace (a veth pair
// between them; private /var/lib/pacemaker, /var/lib/corosync, /run,
// /dev/shm and pcheck state per node). Group g (ClusterNotify,
// stop_services, migration-threshold 1) runs on pcn1; the test kills its
// service until retry over, and the service moves: Pacemaker stops g on
// pcn1 and starts it on pcn2, where pcn2's pcheck starts the service in
// pcn2's network namespace.
func TestClusterTwoNodeFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	needTools(t, "unshare", "nsenter", "ip")
	e := newAgentEnv(t)
	tools := needTools(t, "corosync", "corosync-cfgtool", "pacemakerd", "crm_mon", "cibadmin",
		"crm_attribute", "crm_resource", "crm_failcount", "unshare", "nsenter", "ip")
	preflight(t)
	for _, d := range []string{e.stateDir, e.runDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()

	var nodes []*node
	for _, n := range twoNodes {
		dir := filepath.Join(e.dir, n.name)
		if err := os.MkdirAll(dir+"/state", 0o755); err != nil {
			t.Fatal(err)
		}
		// A short path: the sockets' names must fit sun_path.
		run, err := os.MkdirTemp("", "pcr")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(run) })
		if err := os.Chmod(run, 0o755); err != nil {
			t.Fatal(err)
		}
		h := exec.Command(tools["unshare"], "--mount", "--net", "--", "/bin/sh", "-c", nodeSetup, "setup", dir, dir+"/state", e.stateDir, run, e.runDir)
		out, err := os.Create(filepath.Join(dir, "setup.out"))
		if err != nil {
			t.Fatal(err)
		}
		h.Stdout, h.Stderr = out, out
		if err := h.Start(); err != nil {
			t.Fatalf("unshare: %v", err)
		}
		out.Close()
		t.Cleanup(func() { h.Process.Kill(); h.Wait() })
		deadline := time.Now().Add(20 * time.Second)
		for {
			if _, err := os.Stat(filepath.Join(dir, "ready")); err == nil {
				break
			}
			if time.Now().After(deadline) || h.ProcessState != nil {
				b, _ := os.ReadFile(filepath.Join(dir, "setup.out"))
				noCluster(t, fmt.Sprintf("node %s: its namespaces could not be set up: %s", n.name, b))
			}
			time.Sleep(20 * time.Millisecond)
		}
		pid := strconv.Itoa(h.Process.Pid)
		c := &cluster{t: t, dir: dir, tools: tools,
			env:   append(os.Environ(), "PCMK_logfile="+filepath.Join(dir, "pacemaker.log"), "PCMK_logfacility=none", "PCMK_debug=no"),
			enter: []string{tools["nsenter"], "--target", pid, "--net", "--mount", "--"}}
		nodes = append(nodes, &node{cluster: c, name: n.name, holder: h, dir: dir, run: run})
	}
	// The veth pair, one end in each node's network namespace.
	if out, err := exec.Command(tools["ip"], "link", "add", twoNodes[0].dev, "netns", strconv.Itoa(nodes[0].holder.Process.Pid), "type", "veth",
		"peer", "name", twoNodes[1].dev, "netns", strconv.Itoa(nodes[1].holder.Process.Pid)).CombinedOutput(); err != nil {
		noCluster(t, fmt.Sprintf("ip link add veth: %v: %s", err, out))
	}
	for i, n := range nodes {
		for _, args := range [][]string{{"addr", "add", twoNodes[i].addr + "/24", "dev", twoNodes[i].dev}, {"link", "set", twoNodes[i].dev, "up"}} {
			cmd := exec.Command(tools["nsenter"], append([]string{"--target", strconv.Itoa(n.holder.Process.Pid), "--net", "--", tools["ip"]}, args...)...)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("node %s: ip %v: %v: %s", n.name, args, err, out)
			}
		}
	}

	for _, n := range nodes {
		conf := filepath.Join(n.dir, "corosync.conf")
		writeFile(t, conf, 0o644, fmt.Sprintf(`totem {
	version: 2
	cluster_name: pchecktest2
	transport: knet
	crypto_cipher: none
	crypto_hash: none
}
nodelist {
	node {
		name: %s
		nodeid: 1
		ring0_addr: %s
	}
	node {
		name: %s
		nodeid: 2
		ring0_addr: %s
	}
}
quorum {
	provider: corosync_votequorum
	two_node: 1
}
logging {
	to_stderr: no
	to_syslog: no
	to_logfile: yes
	logfile: %s
	timestamp: on
}
`, twoNodes[0].name, twoNodes[0].addr, twoNodes[1].name, twoNodes[1].addr, filepath.Join(n.dir, "corosync.log")))
		argv := append(append([]string(nil), n.enter[1:]...), tools["corosync"], "-f", "-c", conf)
		corosync := n.daemon("corosync", n.enter[0], argv...)
		t.Cleanup(func() { n.stop(corosync, 20*time.Second) })
	}
	for _, n := range nodes {
		n.wait("corosync answers on "+n.name, 30*time.Second, func() error { return n.command("corosync-cfgtool", "-s").Run() })
	}
	for _, n := range nodes {
		argv := append(append([]string(nil), n.enter[1:]...), tools["pacemakerd"])
		pacemakerd := n.daemon("pacemakerd", n.enter[0], argv...)
		t.Cleanup(func() { n.stopPacemaker(pacemakerd) })
	}
	n1, n2 := nodes[0], nodes[1]
	n1.wait("both nodes online", 120*time.Second, func() error {
		m, err := n1.mon()
		if err != nil {
			return err
		}
		online := 0
		for _, nd := range m.Nodes {
			if nd.Online {
				online++
			}
		}
		if !m.Summary.DC.Present || online != 2 {
			return fmt.Errorf("DC %v, %d nodes online", m.Summary.DC.Present, online)
		}
		return nil
	})
	n1.crm("crm_attribute", "--type", "crm_config", "--name", "stonith-enabled", "--update", "false")
	n1.crm("crm_attribute", "--type", "crm_config", "--name", "no-quorum-policy", "--update", "ignore")

	t.Cleanup(func() {
		b, _ := os.ReadFile(filepath.Join(e.dir, "pc.log"))
		t.Logf("pcheck's log (both nodes):\n%s", b)
		if t.Failed() {
			for _, n := range nodes {
				b, _ := os.ReadFile(filepath.Join(n.dir, "pacemaker.log"))
				var lines []string
				for _, l := range strings.Split(string(b), "\n") {
					if strings.Contains(l, "pc_") || strings.Contains(l, "stderr") || strings.Contains(l, "ocf-exit-reason") {
						lines = append(lines, l)
					}
				}
				t.Logf("%s: pacemaker.log on pc:\n%s", n.name, strings.Join(lines, "\n"))
			}
		}
	})
	pf, svc := e.service(t, "svc", "ClusterNotify pacemaker\n")
	n1.addGroup(e, "g", "pc", pf, 120*time.Second, 1, "stop_services=true")
	n1.crm("cibadmin", "--create", "--scope", "constraints", "--xml-text", `<rsc_location id="g-prefers-pcn1" rsc="g" node="pcn1" score="100"/>`)
	on := func(n *node) *agentEnv {
		ne := *e
		ne.runDir = n.run
		return &ne
	}
	n1.wait("g started on pcn1", 60*time.Second, func() error {
		m, err := n1.mon()
		if err != nil {
			return err
		}
		if !m.startedOn("pc", "pcn1") {
			return errors.New("not started on pcn1")
		}
		return nil
	})
	on(n1).upPid(t, pf, 0, 10*time.Second)
	n1.logMon("before the failure")

	on(n1).retryOver(t, pf, svc)
	n1.wait("g moved to pcn2", 60*time.Second, func() error {
		m, err := n1.mon()
		if err != nil {
			return err
		}
		if c, _ := m.failCountOn("pc", "pcn1"); c < 1 || !m.startedOn("pc", "pcn2") {
			return fmt.Errorf("fail count on pcn1 %d, started on pcn2 %v", c, m.startedOn("pc", "pcn2"))
		}
		return nil
	})
	pid, _ := on(n2).upPid(t, pf, 0, 30*time.Second)
	netns := func(pid int) string {
		s, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
		return s
	}
	if got, want := netns(pid), netns(n2.holder.Process.Pid); got != want || got == "" {
		t.Errorf("the service pid %d runs in network namespace %s, want pcn2's %s", pid, got, want)
	}
	if _, served := on(n1).status(t, pf); served {
		t.Errorf("pcheck still serves %s on pcn1", pf)
	}
	n1.logMon("after the failure on pcn1")
	if el := time.Since(start); el > 150*time.Second {
		t.Errorf("the two-node test took %s", el)
	}
}
