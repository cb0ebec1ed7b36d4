package states

import "testing"

// TestNames: every state has its own name, and a value out of range says
// so instead of passing for a state.
func TestNames(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range Processes() {
		if seen[s.String()] {
			t.Errorf("process state name %q twice", s)
		}
		seen[s.String()] = true
	}
	seen = map[string]bool{}
	for _, s := range Monitors() {
		if seen[s.String()] {
			t.Errorf("monitor state name %q twice", s)
		}
		seen[s.String()] = true
	}
	if got := Process(99).String(); got != "State(99)" {
		t.Errorf("Process(99) = %q", got)
	}
	if b, _ := MonitorInDoubt.MarshalText(); string(b) != "In doubt" {
		t.Errorf("MonitorInDoubt marshals as %q", b)
	}
	if len(Processes()) != 5 || len(Monitors()) != 6 {
		t.Errorf("%d process and %d monitor states, want 5 and 6", len(Processes()), len(Monitors()))
	}
}
