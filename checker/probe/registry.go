package probe

import (
	"errors"
	"fmt"
	"regexp"

	"github.com/pcheck/pcheck/pfile"
)

// TreeFunc returns the monitored process first, then its descendants. It is
// called at each attempt of a listen, children or resource probe. An error means the
// tree could not be read (pcheck's side): the attempt is Unknown.
type TreeFunc func() ([]ProcName, error)

// Errors of New, for errors.Is.
var (
	// ErrUnknownKind: no probe exists for the monitor's kind.
	ErrUnknownKind = errors.New("unknown monitor kind")
	// ErrInvalidMonitor: a listen or children monitor without the
	// process tree its probe reads.
	ErrInvalidMonitor = errors.New("invalid monitor")
)

// constructors is the registry: one probe constructor per monitor kind.
var constructors = map[pfile.Kind]func(m pfile.Monitor, tree TreeFunc) (Prober, error){
	pfile.KindWebserv: func(m pfile.Monitor, _ TreeFunc) (Prober, error) {
		e, err := expectOf(m)
		if err != nil {
			return nil, err
		}
		return HTTPExpect(m.Host, m.Port, "/", nil, e), nil
	},
	pfile.KindWebservs: func(m pfile.Monitor, _ TreeFunc) (Prober, error) {
		e, err := expectOf(m)
		if err != nil {
			return nil, err
		}
		opts := TLSOptions{Verify: m.TLSVerify, CAFile: m.TLSCAFile, ExpiryFailDays: m.TLSExpiryFailDays}
		return HTTPExpect(m.Host, m.Port, m.Path, &opts, e), nil
	},
	pfile.KindSocket: func(m pfile.Monitor, _ TreeFunc) (Prober, error) {
		return TCP(m.Host, m.Port), nil
	},
	pfile.KindHeartbeat: func(m pfile.Monitor, _ TreeFunc) (Prober, error) {
		return Heartbeat(m.File), nil
	},
	pfile.KindCommand: func(m pfile.Monitor, _ TreeFunc) (Prober, error) {
		return Command(m.File, m.Args, nil), nil
	},
	pfile.KindListen: func(m pfile.Monitor, tree TreeFunc) (Prober, error) {
		if tree == nil {
			return nil, invalid(m, "no process tree")
		}
		return Listen(m.Port, m.Address, func() ([]int, error) {
			procs, err := tree()
			pids := make([]int, len(procs))
			for i, p := range procs {
				pids[i] = p.Pid
			}
			return pids, err
		}), nil
	},
	pfile.KindResource: func(m pfile.Monitor, tree TreeFunc) (Prober, error) {
		if tree == nil {
			return nil, invalid(m, "no process tree")
		}
		return Resource(m.Metric, m.Limit, tree), nil
	},
	pfile.KindChildren: func(m pfile.Monitor, tree TreeFunc) (Prober, error) {
		if tree == nil {
			return nil, invalid(m, "no process tree")
		}
		return Children(m.Children, func() ([]ProcName, error) {
			procs, err := tree()
			if len(procs) > 1 {
				return procs[1:], err // the monitored process is not its own child
			}
			return nil, err
		}), nil
	},
}

// New builds the probe of a monitor. m comes from pfile.Builder, the one
// validator, which has checked every value and filled in every default
// (host, path, timeout): nothing is checked or defaulted again here. tree
// gives the monitored process and its descendants; only listen, children
// and resource probes use it, and must have it. The attempt's timeout is the
// caller's: it goes in the context passed to Run.
func New(m pfile.Monitor, tree TreeFunc) (Prober, error) {
	c, ok := constructors[m.Kind]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownKind, m.Kind)
	}
	return c(m, tree)
}

// expectOf compiles the monitor's ExpectStatus, ExpectHeader and
// ExpectBody (which pfile has checked).
func expectOf(m pfile.Monitor) (Expect, error) {
	e := Expect{Status: m.ExpectStatus}
	for _, h := range m.ExpectHeaders {
		hm := HeaderMatch{Name: h.Name}
		if h.Pattern != "" {
			re, err := regexp.Compile(h.Pattern)
			if err != nil {
				return Expect{}, invalid(m, fmt.Sprintf("ExpectHeader %s: %v", h.Name, err))
			}
			hm.Value = re
		}
		e.Headers = append(e.Headers, hm)
	}
	if m.ExpectBody != "" {
		re, err := regexp.Compile(m.ExpectBody)
		if err != nil {
			return Expect{}, invalid(m, fmt.Sprintf("ExpectBody: %v", err))
		}
		e.Body = re
	}
	return e, nil
}

// invalid builds an ErrInvalidMonitor error naming the monitor kind.
func invalid(m pfile.Monitor, reason string) error {
	return fmt.Errorf("%s monitor: %w: %s", m.Kind, ErrInvalidMonitor, reason)
}
