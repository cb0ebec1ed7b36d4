package probe

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/pcheck/pcheck/pfile"
)

func TestNew(t *testing.T) {
	// The monitors are as pfile.Builder gives them: host, path and
	// timeout filled in.
	for _, tc := range []struct {
		name string
		m    pfile.Monitor
		tree TreeFunc
		want Prober
		err  error
	}{
		{"webserv", pfile.Monitor{Kind: pfile.KindWebserv, Host: "localhost", Port: 8080}, nil, HTTP("localhost", 8080), nil},
		{"webserv host", pfile.Monitor{Kind: pfile.KindWebserv, Host: "::1", Port: 80}, nil, HTTP("::1", 80), nil},
		{"webservs", pfile.Monitor{Kind: pfile.KindWebservs, Host: "www", Port: 443, Path: "/ping", TLSVerify: true, TLSCAFile: "/ca.pem"}, nil,
			HTTPS("www", 443, "/ping", TLSOptions{Verify: true, CAFile: "/ca.pem"}), nil},
		{"webservs default path", pfile.Monitor{Kind: pfile.KindWebservs, Host: "localhost", Port: 443, Path: "/"}, nil, HTTPS("localhost", 443, "/", TLSOptions{}), nil},
		{"socket", pfile.Monitor{Kind: pfile.KindSocket, Host: "localhost", Port: 25}, nil, TCP("localhost", 25), nil},
		{"heartbeat", pfile.Monitor{Kind: pfile.KindHeartbeat, File: "/run/hb"}, nil, Heartbeat("/run/hb"), nil},
		{"cmd", pfile.Monitor{Kind: pfile.KindCommand, File: "/usr/lib/check", Args: []string{"-w", "1"}}, nil,
			Command("/usr/lib/check", []string{"-w", "1"}, nil), nil},
		{"listen without tree", pfile.Monitor{Kind: pfile.KindListen, Port: 80}, nil, nil, ErrInvalidMonitor},
		{"children without tree", pfile.Monitor{Kind: pfile.KindChildren, Children: []string{"a"}}, nil, nil, ErrInvalidMonitor},
		{"resource without tree", pfile.Monitor{Kind: pfile.KindResource, Metric: pfile.MetricRSS, Limit: pfile.Limit{Value: 1 << 20, Suffix: "M"}}, nil, nil, ErrInvalidMonitor},
		{"unknown", pfile.Monitor{Kind: "websevs"}, nil, nil, ErrUnknownKind},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(tc.m, tc.tree)
			if !errors.Is(err, tc.err) {
				t.Fatalf("New: err = %v, want %v", err, tc.err)
			}
			if tc.want != nil && !reflect.DeepEqual(settings(p), settings(tc.want)) {
				t.Errorf("New = %#v, want %#v", p, tc.want)
			}
		})
	}
}

// settings is p as built, without what its target learns later (its
// addresses, the time of its next lookup, the resolver it uses).
func settings(p Prober) Prober {
	strip := func(t *target) *target {
		if t == nil {
			return nil
		}
		return &target{host: t.host, port: t.port, addr: t.addr, literal: t.literal}
	}
	switch p := p.(type) {
	case *tcpProber:
		return &tcpProber{target: strip(p.target)}
	case *httpProber:
		c := *p
		c.target = strip(p.target)
		return &c
	case *httpsProber:
		return &httpsProber{p: settings(p.p).(*httpProber)}
	}
	return p
}

// Listen and children probes built by New read the tree at each attempt;
// the monitored process (first in the tree) is not one of its children.
func TestNewTreeProbes(t *testing.T) {
	h := startHelper(t, "listen", "127.0.0.1:0")
	tree := func() ([]ProcName, error) {
		return []ProcName{
			{Pid: os.Getpid(), Comm: "parent"},
			{Pid: h.pid(), Comm: filepath.Base(os.Args[0])},
		}, nil
	}
	listen, err := New(pfile.Monitor{Kind: pfile.KindListen, Port: h.port, Address: "127.0.0.1"}, tree)
	if err != nil {
		t.Fatal(err)
	}
	if r := listen.Run(withTimeout(t, 30*time.Second)); !r.OK {
		t.Errorf("listen: %s (%v)", r.Detail, r.Err)
	}
	children, err := New(pfile.Monitor{Kind: pfile.KindChildren, Children: []string{filepath.Base(os.Args[0]), "parent"}}, tree)
	if err != nil {
		t.Fatal(err)
	}
	r := children.Run(withTimeout(t, 30*time.Second))
	if r.OK || !reflect.DeepEqual(r.Missing, []string{"parent"}) {
		t.Errorf("children: got OK=%v Missing=%q, want only the monitored process itself missing", r.OK, r.Missing)
	}
}
