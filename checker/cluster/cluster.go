// Package cluster tells the cluster manager (Pacemaker) what pcheck knows
// about its node. With ClusterNotify pacemaker a retry over with action
// exit fails the cluster resource at once (crm_resource --fail), so that
// recovery does not wait for the agent's next monitor; with
// ClusterHealthAttribute the node-health attribute follows the entries
// (attrd_updater): red while one is in RetryOver, green when all are Up.
// It also writes the record of an exit on retry over that the
// ocf:pcheck:pcheck agent's monitor reads (exit.go).
//
// Both notifications are off by default and harmless without a cluster:
// what is missing (the agent's environment, the programs) is warned about
// once, and the commands are bounded in time.
package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/pcheck/pcheck/checker/engine"
	"github.com/pcheck/pcheck/checker/message"
	"github.com/pcheck/pcheck/checker/trust"
	"github.com/pcheck/pcheck/pfile"
)

// The environment the ocf:pcheck:pcheck agent starts pcheck with: the
// resource it manages and this node's name in the cluster.
const (
	EnvResource = "OCF_RESOURCE_INSTANCE"
	EnvNode     = "PCHECK_CLUSTER_NODE"
)

// The programs run, looked up in PATH and checked as pcheck checks every
// program it runs as root (trust.Program).
const (
	crmResource  = "crm_resource"
	attrdUpdater = "attrd_updater"
)

// CommandTimeout bounds each command: a cluster that does not answer
// must not hold up pcheck's exit.
const CommandTimeout = 10 * time.Second

// The health attribute's values (Pacemaker's node-health colours).
const (
	Red   = "red"
	Green = "green"
)

// Logger receives the messages of the notifications.
type Logger interface {
	Log(message.Message)
}

// Options configure a Cluster.
type Options struct {
	// Params returns the pfile's current parameters (they change on
	// reload).
	Params func() pfile.Params
	// States returns the state of every process entry, for the health
	// attribute; nil: the attribute is set only on a retry over.
	States func() []engine.State
	// Log receives what the commands print and what is missing.
	Log Logger
	// Getenv reads the agent's environment; nil is os.Getenv.
	Getenv func(string) string
}

// Cluster is the cluster side of one pfile. Its methods are safe for
// concurrent use.
type Cluster struct {
	o        Options
	resource string
	node     string
	kick     chan struct{}

	mu     sync.Mutex
	warned map[string]bool

	healthMu sync.Mutex // one attrd_updater at a time
	health   string     // the value last set, "" before the first
}

// New returns the cluster side of a pfile and warns about anything its
// notifications lack.
func New(o Options) *Cluster {
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	c := &Cluster{
		o:        o,
		resource: o.Getenv(EnvResource),
		node:     o.Getenv(EnvNode),
		kick:     make(chan struct{}, 1),
		warned:   map[string]bool{},
	}
	c.check()
	return c
}

// FromAgent reports whether pcheck was started by the ocf:pcheck:pcheck
// agent (its environment names the resource).
func (c *Cluster) FromAgent() bool { return c.resource != "" }

// warnOnce logs text as a warning the first time it is seen.
func (c *Cluster) warnOnce(text string) {
	c.mu.Lock()
	seen := c.warned[text]
	c.warned[text] = true
	c.mu.Unlock()
	if !seen {
		c.o.Log.Log(message.Warning(text))
	}
}

// check warns once about each thing the configured notifications lack,
// and returns whether each can run.
func (c *Cluster) check() (notify, health bool) {
	p := c.o.Params()
	if p.ClusterNotify == pfile.ClusterPacemaker {
		notify = true
		if c.resource == "" || c.node == "" {
			c.warnOnce(fmt.Sprintf("ClusterNotify pacemaker: %s or %s is not set (pcheck was not started by the ocf:pcheck:pcheck agent): a retry over will not fail a cluster resource", EnvResource, EnvNode))
			notify = false
		} else if _, err := trust.Program(crmResource, trust.ClusterProgram); err != nil {
			c.warnOnce(fmt.Sprintf("ClusterNotify pacemaker: %v: a retry over will not fail the cluster resource", err))
			notify = false
		}
	}
	if p.ClusterHealthAttribute != "" {
		health = true
		if _, err := trust.Program(attrdUpdater, trust.ClusterProgram); err != nil {
			c.warnOnce(fmt.Sprintf("ClusterHealthAttribute %s: %v: the node's health is not set", p.ClusterHealthAttribute, err))
			health = false
		}
	}
	return notify, health
}

// Event is an engine.Options.OnEvent: each event may change the entries'
// states, so it wakes Run to look again. It never blocks.
func (c *Cluster) Event(engine.Event) {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// Run keeps the health attribute in step with the entries until ctx ends.
func (c *Cluster) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.kick:
			if c.o.States != nil {
				c.followStates(ctx, c.o.States())
			}
		}
	}
}

// followStates sets the attribute red while an entry is in RetryOver and
// green when every entry is Up; other states (an entry being restarted)
// leave it as it is.
func (c *Cluster) followStates(ctx context.Context, states []engine.State) {
	value := Green
	for _, s := range states {
		if s == engine.StateRetryOver {
			value = Red
			break
		}
		if s != engine.StateUp {
			value = ""
		}
	}
	if value != "" && len(states) > 0 {
		c.setHealth(ctx, value)
	}
}

// setHealth sets the health attribute to value unless it holds it
// already.
func (c *Cluster) setHealth(ctx context.Context, value string) {
	_, ok := c.check()
	attr := c.o.Params().ClusterHealthAttribute
	if !ok {
		return
	}
	c.healthMu.Lock()
	defer c.healthMu.Unlock()
	if c.health == value {
		return
	}
	args := []string{"--name", attr, "--update", value}
	if c.node != "" {
		args = append(args, "--node", c.node)
	}
	if err := c.run(ctx, attrdUpdater, args...); err != nil {
		c.o.Log.Log(message.Err(fmt.Sprintf("ClusterHealthAttribute %s: %v", attr, err)))
		return
	}
	c.health = value
	c.o.Log.Log(message.Info(fmt.Sprintf("cluster: node health %s set %s", attr, value)))
}

// RetryOver tells the cluster that process is in retry over with action
// exit, before pcheck exits: the health attribute goes red and, with
// ClusterNotify pacemaker, the agent's resource is failed on this node so
// that Pacemaker recovers it now. It returns when the commands have
// ended (each within CommandTimeout).
func (c *Cluster) RetryOver(ctx context.Context, process string) {
	c.setHealth(ctx, Red)
	if notify, _ := c.check(); !notify {
		return
	}
	err := c.run(ctx, crmResource, "--fail", "--resource", c.resource, "--node", c.node)
	if err != nil {
		c.o.Log.Log(message.Err(fmt.Sprintf("ClusterNotify pacemaker: resource %s not failed for '%s': %v", c.resource, process, err)))
		return
	}
	c.o.Log.Log(message.Info(fmt.Sprintf("cluster: resource %s failed on node %s for the retry over of '%s'", c.resource, c.node, process)))
}

// run runs a cluster program, found in PATH and checked first, bounded by
// CommandTimeout; what it prints is logged.
func (c *Cluster) run(ctx context.Context, name string, args ...string) error {
	path, err := trust.Program(name, trust.ClusterProgram)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, CommandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.WaitDelay = time.Second // a helper holding its output open
	out, err := cmd.CombinedOutput()
	if text := strings.TrimSpace(string(out)); text != "" {
		for _, line := range strings.Split(text, "\n") {
			c.o.Log.Log(message.Info(name + ": " + line))
		}
	}
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("%s did not end within %s", path, CommandTimeout)
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", path, strings.Join(args, " "), err)
	}
	return nil
}
