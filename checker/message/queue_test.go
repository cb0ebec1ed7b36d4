package message

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pcheck/pcheck/checker/syslogtest"
)

// droppedSuffix ends the summary line of lines a destination lost.
const droppedSuffix = " syslog messages dropped"

// TestDeafReceiverDoesNotBlockLog: a syslog receiver that is there but
// reads nothing (its queue full) costs Log nothing: 300 lines, a restart
// script's output, are logged at once.
func TestDeafReceiverDoesNotBlockLog(t *testing.T) {
	r := syslogtest.Listen(t)
	r.Fill(t)
	l := newLogger(t, r, Options{Stderr: io.Discard})
	start := time.Now()
	for i := range 300 {
		l.Log(Info(fmt.Sprintf("script line %d", i)))
	}
	took := time.Since(start)
	if took > time.Second {
		t.Fatalf("logging 300 lines to a deaf receiver took %v; want well under 1s (Log must not wait for syslog)", took)
	}
	t.Logf("300 lines logged in %v", took)
}

// TestDroppedSummary: lines a deaf receiver could not take are counted,
// and once it reads again a warning says how many were lost, before the
// next line that gets through; every line is either received or counted.
func TestDroppedSummary(t *testing.T) {
	r := syslogtest.Listen(t)
	r.Fill(t)
	// A short queue: most of the 300 lines cannot even be queued.
	l := newLogger(t, r, Options{Stderr: io.Discard, QueueSize: 10})
	const n = 300
	for i := range n {
		l.Log(Info(fmt.Sprintf("line %d", i)))
	}
	r.Resume()
	// Until the queue has room again, a new line is dropped too: log one
	// until one arrives.
	after := 0
	deadline := time.Now().Add(wait)
	for ; ; after++ {
		text := fmt.Sprintf("after %d", after)
		l.Log(Info(text))
		if received(r, text, 200*time.Millisecond) {
			after++
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no line reached the receiver within %v of it reading again", wait)
		}
	}
	got, dropped, summaries := 0, 0, 0
	var texts []string
	for _, line := range r.Lines() {
		if line.Text == syslogtest.FillText {
			continue
		}
		texts = append(texts, line.Text)
		if !strings.HasSuffix(line.Text, droppedSuffix) {
			got++
			continue
		}
		summaries++
		k, err := strconv.Atoi(strings.TrimSuffix(line.Text, droppedSuffix))
		if err != nil || k < 1 {
			t.Errorf("summary %q: want \"<n>%s\" with n >= 1", line.Text, droppedSuffix)
		}
		if line.Ident != IdentPcheck || line.Severity != int(PriorityWarning) || line.Pid == 0 {
			t.Errorf("summary %q: want pcheck's warning", line.Raw)
		}
		dropped += k
	}
	if summaries == 0 {
		t.Fatalf("no summary line; received:\n%s", strings.Join(texts, "\n"))
	}
	if got+dropped != n+after {
		t.Errorf("%d lines received and %d counted as dropped; want %d in all", got, dropped, n+after)
	}
	for i, text := range texts {
		if strings.HasSuffix(text, droppedSuffix) && (i == len(texts)-1 || strings.HasSuffix(texts[i+1], droppedSuffix)) {
			t.Errorf("summary %q is not followed by a line", text)
		}
	}
	t.Logf("%d lines received, %d dropped in %d summaries", got, dropped, summaries)
}

// received polls r for a line with text, for at most timeout.
func received(r *syslogtest.Receiver, text string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, l := range r.Lines() {
			if l.Text == text {
				return true
			}
		}
		time.Sleep(5 * time.Millisecond) // polling with a deadline
	}
	return false
}

// TestCloseFlushesToSlowReceiver: Close waits for a slow receiver to take
// what is queued, within FlushTimeout, so the stop is the last line it
// gets; a line logged after Close never reaches it.
func TestCloseFlushesToSlowReceiver(t *testing.T) {
	r := syslogtest.Listen(t)
	r.SetReadDelay(10 * time.Millisecond)
	l := newLogger(t, r, Options{fallbackTo: &syncBuffer{}})
	for i := range 50 {
		l.Log(Info(fmt.Sprintf("line %d", i)))
	}
	stop := Stop("/etc/pcheck/web.pfile")
	l.Log(stop)
	start := time.Now()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	l.Log(Info("after close"))
	r.WaitText(t, stop.Text, wait)
	r.SetReadDelay(0)
	marker(t, r)
	if took > FlushTimeout+time.Second {
		t.Errorf("Close took %v; want at most FlushTimeout (%v)", took, FlushTimeout)
	}
	got := r.Lines()
	if n := len(got); n != 52 || got[n-2].Text != stop.Text {
		t.Errorf("received %d lines, the one before the marker %q; want the 50 lines, the stop, then the marker", n, got[len(got)-2].Raw)
	}
	t.Logf("Close took %v", took.Round(time.Millisecond))
}

// TestCloseBoundedWithDeafReceiver: with a receiver that takes nothing,
// Close gives up after FlushTimeout.
func TestCloseBoundedWithDeafReceiver(t *testing.T) {
	r := syslogtest.Listen(t)
	r.Fill(t)
	l := newLogger(t, r, Options{Stderr: io.Discard})
	for i := range 100 {
		l.Log(Info(fmt.Sprintf("line %d", i)))
	}
	start := time.Now()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < FlushTimeout-100*time.Millisecond || took > FlushTimeout+time.Second {
		t.Errorf("Close took %v with 100 lines queued for a deaf receiver; want about FlushTimeout (%v)", took, FlushTimeout)
	}
}

// TestWriteTimeoutCountsLine: a line the receiver does not take within
// the write timeout is lost and counted, not held: once the receiver
// reads again, the count comes before the next line.
func TestWriteTimeoutCountsLine(t *testing.T) {
	r := syslogtest.Listen(t)
	r.Fill(t)
	const timeout = 20 * time.Millisecond
	l := newLogger(t, r, Options{Stderr: io.Discard, writeTimeout: timeout})
	l.Log(Info("lost"))
	// The receiver stays deaf for 25 write timeouts: the time is what
	// this test is about, not a way to wait for an event.
	time.Sleep(25 * timeout)
	r.Resume()
	l.Log(Info("next"))
	r.WaitText(t, "next", wait)
	var texts []string
	for _, line := range r.Lines() {
		if line.Text != syslogtest.FillText {
			texts = append(texts, line.Text)
		}
	}
	if want := []string{"1" + droppedSuffix, "next"}; strings.Join(texts, "\n") != strings.Join(want, "\n") {
		t.Errorf("received %q; want %q", texts, want)
	}
}
