package parser_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pcheck/pcheck/parser"
	"github.com/pcheck/pcheck/pfile"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// golden compares got with the golden file, or rewrites it with -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("missing golden file (run go test ./parser -update): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs\n--- got ---\n%s\n--- want ---\n%s", path, got, want)
	}
}

// TestValid: every pfile in testdata/valid loads without errors and its
// effective rules (and warnings) match the golden .rules file.
func TestValid(t *testing.T) {
	files, _ := filepath.Glob("../testdata/valid/*.pfile")
	if len(files) < 8 {
		t.Fatalf("expected the valid corpus, found %d files", len(files))
	}
	for _, path := range files {
		name := strings.TrimSuffix(filepath.Base(path), ".pfile")
		t.Run(name, func(t *testing.T) {
			rel := "testdata/valid/" + filepath.Base(path)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			f, diags := parser.LoadBytes(rel, data)
			if f == nil {
				t.Fatalf("valid pfile rejected:\n%s", diags.Err())
			}
			var out bytes.Buffer
			for _, d := range diags {
				out.WriteString(d.String() + "\n")
			}
			if err := pfile.WriteRules(&out, f); err != nil {
				t.Fatal(err)
			}
			golden(t, strings.TrimSuffix(path, ".pfile")+".rules", out.Bytes())
		})
	}
}

// TestInvalid: every pfile in testdata/invalid is rejected with exactly the
// errors of its golden .errors file.
func TestInvalid(t *testing.T) {
	files, _ := filepath.Glob("../testdata/invalid/*.pfile")
	if len(files) < 25 {
		t.Fatalf("expected at least 25 invalid pfiles, found %d", len(files))
	}
	for _, path := range files {
		name := strings.TrimSuffix(filepath.Base(path), ".pfile")
		t.Run(name, func(t *testing.T) {
			rel := "testdata/invalid/" + filepath.Base(path)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			f, diags := parser.LoadBytes(rel, data)
			if f != nil {
				t.Fatalf("invalid pfile accepted")
			}
			var out bytes.Buffer
			for _, d := range diags.Errors() {
				out.WriteString(d.String() + "\n")
			}
			golden(t, strings.TrimSuffix(path, ".pfile")+".errors", out.Bytes())
		})
	}
}
