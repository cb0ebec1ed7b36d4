package control

import (
	"fmt"
	"testing"
	"time"
)

func kinds(evs []Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, fmt.Sprintf("%d:%s", e.Seq, e.Kind))
	}
	return out
}

func TestIsFailure(t *testing.T) {
	for kind, want := range map[string]bool{
		"down": true, "set-pid-fail": true, "retry-over": true, "webserver-stall": true,
		"script-failed": true, "cannot-kill": true, "warning": true,
		"up": false, "try-restart": false, "start": false, "pause": false, "killed": false,
	} {
		if got := IsFailure(kind); got != want {
			t.Errorf("IsFailure(%q) = %v, want %v", kind, got, want)
		}
	}
}

// TestEventsNewestFirst: events come back newest first, limited to n.
func TestEventsNewestFirst(t *testing.T) {
	h := NewEvents(10)
	for i := range 5 {
		h.Add(Event{Time: time.Unix(int64(i), 0), Kind: "up"})
	}
	got := kinds(h.Newest(3))
	want := []string{"5:up", "4:up", "3:up"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Newest(3) = %v, want %v", got, want)
	}
	if n := len(h.Newest(0)); n != 5 {
		t.Fatalf("Newest(0) gave %d events, want 5", n)
	}
}

// TestEventsKeepFailuresLonger: a flood of routine events pushes the old
// ones out but not the failures, which stay until as many newer failures
// came.
func TestEventsKeepFailuresLonger(t *testing.T) {
	h := NewEvents(4)
	h.Add(Event{Kind: "down"})         // 1
	h.Add(Event{Kind: "set-pid-fail"}) // 2
	for range 10 {
		h.Add(Event{Kind: "up"}) // 3..12
	}
	got := kinds(h.Newest(0))
	want := []string{"12:up", "11:up", "10:up", "9:up", "2:set-pid-fail", "1:down"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("kept %v, want %v", got, want)
	}
	for _, e := range h.Newest(0) {
		if e.Failure != IsFailure(e.Kind) {
			t.Fatalf("event %d: Failure %v", e.Seq, e.Failure)
		}
	}
	// Failures that are also among the newest are listed once.
	for range 4 {
		h.Add(Event{Kind: "down"}) // 13..16
	}
	got = kinds(h.Newest(0))
	want = []string{"16:down", "15:down", "14:down", "13:down"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("kept %v, want %v", got, want)
	}
}

func TestEventsResize(t *testing.T) {
	h := NewEvents(0)
	if h.Size() != DefaultEvents {
		t.Fatalf("default size %d, want %d", h.Size(), DefaultEvents)
	}
	for range 10 {
		h.Add(Event{Kind: "up"})
	}
	h.Resize(3)
	if got := kinds(h.Newest(0)); fmt.Sprint(got) != "[10:up 9:up 8:up]" {
		t.Fatalf("after Resize(3): %v", got)
	}
	h.Add(Event{Kind: "up"})
	if got := kinds(h.Newest(0)); fmt.Sprint(got) != "[11:up 10:up 9:up]" {
		t.Fatalf("after one more: %v", got)
	}
}
