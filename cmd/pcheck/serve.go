package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/pcheck/pcheck/checker/daemon"
)

// serve runs the daemon on the pfiles of the command line and returns its
// exit status.
func serve(o *options, stderr io.Writer) int {
	network, addr := "", ""
	if o.syslog != "" {
		var ok bool
		network, addr, ok = strings.Cut(o.syslog, ":")
		if !ok || network == "" || addr == "" {
			fmt.Fprintf(stderr, "pcheck: --syslog wants NETWORK:ADDRESS (unixgram:/dev/log, udp:127.0.0.1:514), not %q\n", o.syslog)
			return daemon.ExitInvalid
		}
	}
	daemon.TuneGC()
	return daemon.Run(context.Background(), daemon.Options{
		Pfiles:        o.pfiles,
		Daemonize:     o.daemon,
		Force:         o.force,
		Watch:         o.watch,
		StateDir:      o.stateDir,
		RunDir:        o.runDir,
		SyslogNetwork: network,
		SyslogAddr:    addr,
		FallbackLog:   o.fallbackLog,
		Stderr:        stderr,
		MetricsAddr:   o.metrics,
		Version:       version,
	})
}
