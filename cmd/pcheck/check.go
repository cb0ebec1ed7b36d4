package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/pcheck/pcheck/checker/daemon"
	"github.com/pcheck/pcheck/parser"
	"github.com/pcheck/pcheck/pfile"
)

// checkResult is the --json form of one pfile checked with -n.
type checkResult struct {
	Path     string      `json:"path"`
	Valid    bool        `json:"valid"`
	Errors   []string    `json:"errors"`
	Warnings []string    `json:"warnings"`
	Rules    *pfile.File `json:"rules,omitempty"`
}

// check is `pcheck -n`: parse and validate every pfile and, unless
// syntaxOnly, check the pfile and the files it names as a start would
// (daemon.LoadPfile); print every problem as file:line:col: text (on
// stderr) and the effective rules (on stdout). It returns 0 when every
// pfile is valid and 2 otherwise. It touches nothing on the system.
func check(stdout, stderr io.Writer, paths []string, asJSON, syntaxOnly bool) int {
	files, err := daemon.ExpandPfiles(paths)
	if err != nil {
		fmt.Fprintln(stderr, "pcheck:", err)
		return 2
	}
	status := 0
	var results []checkResult
	load := daemon.LoadPfile
	if syntaxOnly {
		load = parser.Load
	}
	for i, path := range files {
		f, diags := load(path)
		r := checkResult{Path: path, Valid: f != nil, Rules: f, Errors: []string{}, Warnings: []string{}}
		for _, d := range diags {
			if d.Severity == pfile.Warning {
				r.Warnings = append(r.Warnings, d.String())
			} else {
				r.Errors = append(r.Errors, d.String())
			}
		}
		if f == nil {
			status = 2
		}
		if asJSON {
			results = append(results, r)
			continue
		}
		for _, d := range diags {
			fmt.Fprintln(stderr, d.String())
		}
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		if f == nil {
			fmt.Fprintf(stdout, "%s: invalid, %d error(s)\n", path, len(r.Errors))
			continue
		}
		if err := pfile.WriteRules(stdout, f); err != nil {
			fmt.Fprintln(stderr, "pcheck:", err)
			return 1
		}
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(results); err != nil {
			fmt.Fprintln(stderr, "pcheck:", err)
			return 1
		}
	}
	return status
}
