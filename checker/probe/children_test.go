package probe

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func TestChildren(t *testing.T) {
	tree := func() ([]ProcName, error) {
		return []ProcName{
			{Pid: 10, Comm: "httpd", Argv0: "/usr/sbin/httpd"},
			{Pid: 11, Comm: "rotatelogs", Argv0: "/usr/sbin/rotatelogs"},
			{Pid: 12, Comm: "java", Argv0: "/opt/jdk/bin/java"},
			{Pid: 13, Comm: "very-long-daemo", Argv0: "-"},
			{Pid: 14, Comm: "python3", Argv0: "/usr/local/bin/worker"},
		}, nil
	}
	for _, tc := range []struct {
		name    string
		names   []string
		missing []string
	}{
		{"by comm", []string{"httpd", "rotatelogs"}, nil},
		{"by argv0 base name", []string{"worker"}, nil},
		{"by argv0", []string{"/opt/jdk/bin/java"}, nil},
		{"comm cut to 15 bytes", []string{"very-long-daemon-name"}, nil},
		{"missing ones listed in order", []string{"httpd", "perl", "java", "ruby"}, []string{"perl", "ruby"}},
		{"a prefix is not a match", []string{"http"}, []string{"http"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Children(tc.names, tree).Run(withTimeout(t, 30*time.Second))
			if r.OK != (tc.missing == nil) || !slices.Equal(r.Missing, tc.missing) {
				t.Fatalf("got OK=%v Missing=%q, want Missing=%q", r.OK, r.Missing, tc.missing)
			}
			if tc.missing != nil {
				if want := "child missing: " + tc.missing[0]; r.Detail != want {
					t.Errorf("Detail = %q, want %q", r.Detail, want)
				}
				if !errors.Is(r.Err, ErrChildMissing) {
					t.Errorf("Err = %v, want ErrChildMissing", r.Err)
				}
			}
		})
	}
	r := Children([]string{"httpd"}, func() ([]ProcName, error) { return nil, nil }).Run(withTimeout(t, 30*time.Second))
	if r.OK {
		t.Error("an empty tree has no children, yet the probe succeeded")
	}
}
