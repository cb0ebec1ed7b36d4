package probe

import (
	"context"
	"net"
	"strconv"
	"time"
)

// tcpProber connects and closes.
type tcpProber struct{ addr string }

// TCP returns the _bi_socket probe: a TCP connect to host:port, then close
// (with a reset, leaving no TIME_WAIT). No data is exchanged.
func TCP(host string, port int) Prober {
	return &tcpProber{addr: net.JoinHostPort(host, strconv.Itoa(port))}
}

// Run performs one attempt.
func (p *tcpProber) Run(ctx context.Context) Result {
	start := time.Now()
	conn, err := dialer.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return failure(ctx, start, err)
	}
	detail := "connected to " + conn.RemoteAddr().String()
	if err := conn.Close(); err != nil {
		return failure(ctx, start, err)
	}
	return success(start, detail)
}
