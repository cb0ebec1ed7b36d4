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

// line is one line a monitor logged, with the time the harness read it.
type line struct {
	at   time.Time
	text string
}

// lineLog collects a monitor's log lines as they arrive and lets the
// harness wait for one that matches.
type lineLog struct {
	mu      sync.Mutex
	lines   []line
	changed chan struct{} // closed and replaced at every append
	closed  bool
}

func newLineLog() *lineLog { return &lineLog{changed: make(chan struct{})} }

func (l *lineLog) add(text string) {
	l.mu.Lock()
	l.lines = append(l.lines, line{at: time.Now(), text: text})
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
}

// end marks the log complete: waiters stop waiting.
func (l *lineLog) end() {
	l.mu.Lock()
	l.closed = true
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
}

// errLogEnded reports a monitor whose output ended while the harness was
// waiting for a line: it exited.
var errLogEnded = errors.New("monitor output ended")

// waitFor returns the first line at index from or later for which match is
// true, and the index after it.
func (l *lineLog) waitFor(ctx context.Context, from int, match func(string) bool) (line, int, error) {
	for {
		l.mu.Lock()
		for i := from; i < len(l.lines); i++ {
			if match(l.lines[i].text) {
				ln := l.lines[i]
				l.mu.Unlock()
				return ln, i + 1, nil
			}
		}
		from = len(l.lines)
		ch, closed := l.changed, l.closed
		l.mu.Unlock()
		if closed {
			return line{}, from, errLogEnded
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return line{}, from, ctx.Err()
		}
	}
}

// len is the number of lines so far.
func (l *lineLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.lines)
}

// count returns how many lines from index from on match.
func (l *lineLog) count(from int, match func(string) bool) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for i := from; i < len(l.lines); i++ {
		if match(l.lines[i].text) {
			n++
		}
	}
	return n
}

// readLines adds every line of r to l and copies it to copyTo, then ends l.
func (l *lineLog) readLines(r io.Reader, copyTo io.Writer) {
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

// tail follows a log file that a monitor writes, adding complete lines to
// l, until ctx ends. It polls the file every few milliseconds: monit and
// supervisord write their events only there.
func (l *lineLog) tail(ctx context.Context, path string) {
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
