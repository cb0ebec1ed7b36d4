package parser_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pcheck/pcheck/parser"
)

// FuzzLoad feeds arbitrary bytes to the parser and validator, seeded with
// every pfile of testdata. No input may panic or hang, and a rejected
// pfile always says why with a position.
func FuzzLoad(f *testing.F) {
	files, _ := filepath.Glob("../testdata/*/*.pfile")
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, diags := parser.LoadBytes("fuzz.pfile", data)
		if file == nil && !diags.HasErrors() {
			t.Fatal("rejected without an error")
		}
		if file != nil && diags.HasErrors() {
			t.Fatal("accepted with errors")
		}
		for _, d := range diags {
			if !strings.HasPrefix(d.String(), "fuzz.pfile:") || d.Msg == "" {
				t.Fatalf("diagnostic without a position or text: %q", d.String())
			}
		}
	})
}
