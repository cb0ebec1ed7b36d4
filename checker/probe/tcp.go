package probe

import (
	"context"
	"time"
)

// tcpProber connects and closes.
type tcpProber struct{ target *target }

// TCP returns the _bi_socket probe: a TCP connect to host:port, then close
// (with a reset, leaving no TIME_WAIT). No data is exchanged. A host name
// is resolved at most every 30 s (resolveTTL).
func TCP(host string, port int) Prober {
	return &tcpProber{target: newTarget(host, port)}
}

// Run performs one attempt.
func (p *tcpProber) Run(ctx context.Context) Result {
	start := time.Now()
	conn, err := p.target.dial(ctx)
	if err != nil {
		return failure(ctx, start, err)
	}
	detail := "connected to " + conn.RemoteAddr()
	if err := conn.Close(); err != nil {
		return failure(ctx, start, err)
	}
	return success(start, detail)
}
