package templates

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pcheck/pcheck/parser"
)

func TestMain(m *testing.M) {
	if role := os.Getenv(roleEnv); role != "" {
		fakeMain(role)
	}
	os.Exit(m.Run())
}

// templateDirs returns every template directory.
func templateDirs(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, e := range ents {
		// testdata holds test fixtures, not a template.
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") && e.Name() != "testdata" {
			dirs = append(dirs, e.Name())
		}
	}
	if len(dirs) == 0 {
		t.Fatal("no template directory")
	}
	return dirs
}

// The templates the task and the WebEdition guide call for.
var wantTemplates = []string{"apache", "tomcat", "sunone", "https", "nginx", "AutoReboot"}

func TestEveryTemplateIsComplete(t *testing.T) {
	dirs := templateDirs(t)
	for _, want := range wantTemplates {
		if !strings.Contains(" "+strings.Join(dirs, " ")+" ", " "+want+" ") {
			t.Errorf("template %s is missing", want)
		}
	}
	for _, dir := range dirs {
		t.Run(dir, func(t *testing.T) {
			if st, err := os.Stat(filepath.Join(dir, "README.md")); err != nil || st.Size() == 0 {
				t.Errorf("%s: no README.md (%v)", dir, err)
			}
			pfiles, _ := filepath.Glob(filepath.Join(dir, "*.pfile"))
			if len(pfiles) == 0 {
				t.Errorf("%s: no pfile", dir)
			}
			scripts, _ := filepath.Glob(filepath.Join(dir, "*.sh"))
			if len(scripts) == 0 {
				t.Errorf("%s: no restart script", dir)
			}
			for _, s := range scripts {
				st, err := os.Stat(s)
				if err != nil {
					t.Fatal(err)
				}
				if st.Mode().Perm()&0o111 != 0o111 {
					t.Errorf("%s: mode %v, want executable by everyone", s, st.Mode().Perm())
				}
			}
			// Every restart script a pfile names is in the template, at
			// the place the README tells to copy it: /etc/pcheck/<dir>/.
			for _, p := range pfiles {
				f, _ := parser.Load(p)
				if f == nil {
					continue // reported by TestPfilesParse
				}
				for _, proc := range f.Processes {
					want := "/etc/pcheck/" + dir + "/"
					if !strings.HasPrefix(proc.Script, want) {
						t.Errorf("%s: restart script %s is not under %s", p, proc.Script, want)
					}
					if _, err := os.Stat(filepath.Join(dir, filepath.Base(proc.Script))); err != nil {
						t.Errorf("%s: restart script %s is not in the template: %v", p, proc.Script, err)
					}
				}
			}
		})
	}
}

func TestPfilesParse(t *testing.T) {
	pfiles, _ := filepath.Glob("*/*.pfile")
	if len(pfiles) < len(wantTemplates) {
		t.Fatalf("found %d pfiles, want at least %d", len(pfiles), len(wantTemplates))
	}
	for _, p := range pfiles {
		f, diags := parser.Load(p)
		for _, d := range diags {
			// Warnings too: a template is a model and must be clean.
			t.Errorf("%s", d)
		}
		if f == nil {
			t.Errorf("%s: not loaded", p)
			continue
		}
		if len(f.Processes) == 0 {
			t.Errorf("%s: no process entry", p)
		}
		for _, proc := range f.Processes {
			if len(proc.Blocks) == 0 {
				t.Errorf("%s: process %s has no monitor block", p, proc.Name)
			}
		}
		text, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(text), "##### PARAM #####") || !strings.Contains(string(text), "##### PROCESS #####") {
			t.Errorf("%s: the guide's ##### PARAM ##### and ##### PROCESS ##### banners are missing", p)
		}
	}
}

// TestGuideBlocksHaveFourEntries checks that every block of a guide
// monitor (_bi_webserv, _bi_webservs, _bi_socket) is written in full, with
// PS_INIT, PS_EXEC, PS_ACTION and PS_QUIT, as the guide prints them.
func TestGuideBlocksHaveFourEntries(t *testing.T) {
	pfiles, _ := filepath.Glob("*/*.pfile")
	for _, p := range pfiles {
		f, _ := parser.Load(p)
		if f == nil {
			continue
		}
		for _, proc := range f.Processes {
			for _, b := range proc.Blocks {
				switch strings.ToLower(b.Name) {
				case "_bi_webserv", "_bi_webservs", "_bi_socket":
				default:
					continue
				}
				var kinds []string
				for _, e := range b.Entries {
					kinds = append(kinds, string(e.Kind))
				}
				if got := strings.Join(kinds, " "); got != "PS_INIT PS_EXEC PS_ACTION PS_QUIT" {
					t.Errorf("%s:%d: %s has entries %q, want PS_INIT PS_EXEC PS_ACTION PS_QUIT", p, b.Pos.Line, b.Name, got)
				}
			}
		}
	}
}

func TestScriptsSyntax(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash is not installed")
	}
	scripts, _ := filepath.Glob("*/*.sh")
	if len(scripts) < len(wantTemplates) {
		t.Fatalf("found %d scripts, want at least %d", len(scripts), len(wantTemplates))
	}
	for _, s := range scripts {
		if out, err := exec.Command(bash, "-n", s).CombinedOutput(); err != nil {
			t.Errorf("bash -n %s: %v\n%s", s, err, out)
		}
	}
}

// The part of every restart script after this line is shared; a fix made
// in one copy must be made in all.
const commonMarker = "# ---- common part: the same in every pcheck template"

func TestScriptsShareTheCommonPart(t *testing.T) {
	scripts, _ := filepath.Glob("*/*.sh")
	var first, firstName string
	for _, s := range scripts {
		b, err := os.ReadFile(s)
		if err != nil {
			t.Fatal(err)
		}
		i := strings.Index(string(b), commonMarker)
		if i < 0 {
			t.Errorf("%s: no common part (%q)", s, commonMarker)
			continue
		}
		common := string(b[i:])
		if first == "" {
			first, firstName = common, s
			continue
		}
		if common != first {
			t.Errorf("%s: the common part differs from %s's", s, firstName)
		}
	}
}
