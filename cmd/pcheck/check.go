package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

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

// check is `pcheck -n`: parse and validate every pfile, print every problem
// as file:line:col: text (on stderr) and the effective rules (on stdout).
// It returns 0 when every pfile is valid and 2 otherwise. It touches
// nothing on the system.
func check(stdout, stderr io.Writer, paths []string, asJSON bool) int {
	files, err := expandPfiles(paths)
	if err != nil {
		fmt.Fprintln(stderr, "pcheck:", err)
		return 2
	}
	status := 0
	var results []checkResult
	for i, path := range files {
		f, diags := parser.Load(path)
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

// expandPfiles turns the command line's pfiles and directories into a list
// of pfiles: a directory stands for the regular files in it (not
// recursively), skipping hidden files and editor backups.
func expandPfiles(args []string) ([]string, error) {
	var out []string
	for _, a := range args {
		st, err := os.Stat(a)
		if err != nil || !st.IsDir() {
			out = append(out, a)
			continue
		}
		ents, err := os.ReadDir(a)
		if err != nil {
			return nil, fmt.Errorf("cannot read pfile directory %s: %w", a, err)
		}
		var names []string
		for _, e := range ents {
			n := e.Name()
			if e.IsDir() || strings.HasPrefix(n, ".") || strings.HasSuffix(n, "~") || strings.HasSuffix(n, ".swp") {
				continue
			}
			names = append(names, filepath.Join(a, n))
		}
		sort.Strings(names)
		out = append(out, names...)
	}
	return out, nil
}
