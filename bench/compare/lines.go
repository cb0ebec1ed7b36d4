package compare

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Line is one line a monitor logged, with the time the harness read it.
type Line struct {
	At   time.Time
	Text string
}

// LineLog collects a monitor's log lines as they arrive and lets the
// harness wait for one that matches.
type LineLog struct {
	mu      sync.Mutex
	lines   []Line
	changed chan struct{} // closed and replaced at every append
	closed  bool
}

// NewLineLog returns an empty log.
func NewLineLog() *LineLog { return &LineLog{changed: make(chan struct{})} }

func (l *LineLog) add(text string) {
	l.mu.Lock()
	l.lines = append(l.lines, Line{At: time.Now(), Text: text})
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
}

// end marks the log complete: waiters stop waiting.
func (l *LineLog) end() {
	l.mu.Lock()
	l.closed = true
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
}

// errLogEnded reports a monitor whose output ended while the harness was
// waiting for a line: it exited.
var errLogEnded = errors.New("monitor output ended")

// WaitFor returns the first line at index from or later for which match is
// true, and the index after it.
func (l *LineLog) WaitFor(ctx context.Context, from int, match func(string) bool) (Line, int, error) {
	for {
		l.mu.Lock()
		for i := from; i < len(l.lines); i++ {
			if match(l.lines[i].Text) {
				ln := l.lines[i]
				l.mu.Unlock()
				return ln, i + 1, nil
			}
		}
		from = len(l.lines)
		ch, closed := l.changed, l.closed
		l.mu.Unlock()
		if closed {
			return Line{}, from, errLogEnded
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return Line{}, from, ctx.Err()
		}
	}
}

// Len is the number of lines so far.
func (l *LineLog) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.lines)
}

// Count returns how many lines from index from on match.
func (l *LineLog) Count(from int, match func(string) bool) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for i := from; i < len(l.lines); i++ {
		if match(l.lines[i].Text) {
			n++
		}
	}
	return n
}

// readLines adds every line of r to l and copies it to copyTo, then ends l.
func (l *LineLog) readLines(r io.Reader, copyTo io.Writer) {
	defer l.end()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l.add(sc.Text())
		if copyTo != nil {
			fmt.Fprintln(copyTo, sc.Text())
		}
	}
}

// Tail follows a log file that a monitor writes, adding complete lines to
// l, until ctx ends. It polls the file every few milliseconds: monit and
// supervisord write their events only there.
func (l *LineLog) Tail(ctx context.Context, path string) {
	defer l.end()
	var (
		f       *os.File
		partial []byte
		buf     = make([]byte, 64<<10)
		tick    = time.NewTicker(5 * time.Millisecond)
	)
	defer tick.Stop()
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	for {
		if f == nil {
			f, _ = os.Open(path) // not yet there: try again
		}
		for f != nil {
			n, err := f.Read(buf)
			partial = append(partial, buf[:n]...)
			for {
				i := bytes.IndexByte(partial, '\n')
				if i < 0 {
					break
				}
				l.add(string(partial[:i]))
				partial = partial[i+1:]
			}
			if n == 0 || err != nil {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Since returns a copy of the lines from index from on.
func (l *LineLog) Since(from int) []Line {
	l.mu.Lock()
	defer l.mu.Unlock()
	if from >= len(l.lines) {
		return nil
	}
	return append([]Line(nil), l.lines[from:]...)
}
