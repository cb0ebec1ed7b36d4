package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/pcheck/pcheck/checker/control"
)

// completeCommand is the hidden command the shell completions run:
//
//	padmin __complete [--run-dir DIR] commands|pfiles|processes PFILE
//
// It prints the words one a line, nothing when there are none (no pcheck
// running), and exits 0 unless it was called wrongly.
const completeCommand = "__complete"

// completeTimeout bounds each request of a completion: a pcheck that does
// not answer must not hold the shell up for padmin's 30 s.
const completeTimeout = time.Second

func complete(argv []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("padmin "+completeCommand, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	runDir := fs.String("run-dir", defaultRunDir(), "")
	if err := fs.Parse(argv); err != nil || fs.NArg() == 0 {
		fmt.Fprintf(stderr, "padmin: usage: padmin %s [--run-dir DIR] commands|pfiles|processes PFILE\n", completeCommand)
		return exitUsage
	}
	var words []string
	a := &control.Admin{RunDir: *runDir, Timeout: completeTimeout}
	switch what := fs.Arg(0); {
	case what == "commands" && fs.NArg() == 1:
		for _, c := range commandList {
			words = append(words, c.name)
		}
	case what == "pfiles" && fs.NArg() == 1:
		words = a.PfileNames()
	case what == "processes" && fs.NArg() == 2:
		var err error
		words, err = a.ProcessNames(fs.Arg(1))
		if err != nil && !errors.Is(err, control.ErrNotServed) {
			fmt.Fprintf(stderr, "padmin: %v\n", err)
		}
	default:
		fmt.Fprintf(stderr, "padmin: %s: unknown request %q\n", completeCommand, fs.Args())
		return exitUsage
	}
	for _, w := range words {
		fmt.Fprintln(stdout, w)
	}
	return exitOK
}
