package main

import (
	"fmt"
	"io"
)

// serve runs the daemon. It is wired to checker/daemon once the engine lands.
func serve(o *options, stderr io.Writer) int {
	fmt.Fprintln(stderr, "pcheck: the monitoring engine is not built yet; use -n to check a pfile")
	return 1
}
