package probe

import (
	"context"
	"time"
)

// tcpProber connects and closes, on the event loop.
type tcpProber struct{ target *target }

// TCP returns the _bi_socket probe: a TCP connect to host:port, then close
// (with a reset, leaving no TIME_WAIT). No data is exchanged. A host name
// is resolved now and then in the background every 30 s (resolveTTL),
// never by an attempt.
func TCP(host string, port int) Prober {
	_, _ = theLoop()
	return &tcpProber{target: newTarget(host, port)}
}

// Run performs one attempt.
func (p *tcpProber) Run(ctx context.Context) Result { return runOnLoop(ctx, p) }

// Start begins one attempt on the event loop.
func (p *tcpProber) Start(deadline time.Time, done Completion) Handle {
	return startOnLoop(p.target, nil, deadline, done)
}
