package control

import (
	"testing"
	"time"

	"github.com/pcheck/pcheck/checker/engine"
)

// BenchmarkStatusRoundTrip: one status request and its answer over the
// socket, on an open connection.
func BenchmarkStatusRoundTrip(b *testing.B) {
	dir := b.TempDir()
	if len(dir) > 60 {
		dir = "/tmp"
	}
	eng := &fakeEngine{file: newFile("bench.pf")}
	srv, err := Listen(SocketPath(dir, "bench.pf"), Target{Engine: eng, Recorder: NewRecorder(RecorderOptions{})})
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve()
	defer srv.Close()
	c, err := Dial(srv.Path(), 10*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	var st StatusResult
	for b.Loop() {
		if _, err := c.Call(Request{Command: CmdStatus}, &st); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRecorderEvent: the cost the engine pays per event.
func BenchmarkRecorderEvent(b *testing.B) {
	r := NewRecorder(RecorderOptions{})
	ev := engine.Event{Time: time.Now(), Pfile: "a.pf", Process: "httpd", Kind: "down", Text: "Process ['httpd',pid=1] Down"}
	for b.Loop() {
		r.Event(ev)
	}
}
