package engine

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pcheck/pcheck/checker/message"
	"github.com/pcheck/pcheck/checker/trust"
)

// The last lines of a process's output logged with its Down: at most
// crashLines lines taken from the last crashBytes bytes written since the
// restart script's own output was logged.
const (
	crashLines = 10
	crashBytes = 4 << 10
)

// outMark says how far the entry's script output file has been logged:
// the file (device and inode: a rotated or replaced file is another one)
// and the offset.
type outMark struct {
	dev, ino uint64
	off      int64
}

// same reports whether st is the file of the mark.
func (m outMark) same(st *unix.Stat_t) bool {
	return m.ino != 0 && m.dev == uint64(st.Dev) && m.ino == uint64(st.Ino)
}

// createOutput makes a fresh output file at path for a script run. The
// previous run's file is kept as path.1 (an empty one is just removed), so
// what a daemon wrote before it died survives its restart; the new file is
// created exclusively and without following links, so a file planted at
// path is never written through.
func createOutput(path string) (*os.File, error) {
	if st, err := os.Lstat(path); err == nil {
		// rename never follows path itself; when it fails (path.1 is
		// a directory), the old output goes rather than the new.
		if !st.Mode().IsRegular() || st.Size() == 0 || os.Rename(path, path+".1") != nil {
			err = os.Remove(path)
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	return trust.OpenNoFollow(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o640)
}

// fileMark returns the mark of f at offset off.
func fileMark(f *os.File, off int64) outMark {
	var st unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st) != nil {
		return outMark{}
	}
	return outMark{dev: uint64(st.Dev), ino: uint64(st.Ino), off: off}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// forwardOutput logs the output file f from its start, at most
// maxScriptOutput bytes, line by line through s.forward, and returns the
// mark of what it logged.
func (s scriptRun) forwardOutput(f *os.File) outMark {
	cr := &countingReader{r: io.NewSectionReader(f, 0, maxScriptOutput)}
	s.forward(io.NopCloser(cr))
	return fileMark(f, cr.n)
}

// lastOutput returns the last lines of the output file at path that were
// written after mark (or, in another file than the mark's, that a process
// started at started can have written: none when the file has not changed
// since), and the mark past them. Bounded by crashLines and crashBytes;
// a line cut by the bound is left out, a line longer than maxScriptLine
// is cut.
func lastOutput(path string, mark outMark, started time.Time) ([]string, outMark) {
	return tailOutput(path, mark, started, crashLines, crashBytes)
}

// tailOutput is lastOutput bounded by maxLines lines within the last
// maxBytes bytes.
func tailOutput(path string, mark outMark, started time.Time, maxLines int, maxBytes int64) ([]string, outMark) {
	f, err := trust.OpenNoFollow(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, mark
	}
	defer f.Close()
	var st unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, mark
	}
	from := int64(0)
	if mark.same(&st) {
		from = mark.off
	} else if time.Unix(st.Mtim.Unix()).Before(started.Add(-time.Second)) {
		// Written last before the process started: nothing in it is
		// the process's.
		return nil, mark
	}
	next := outMark{dev: uint64(st.Dev), ino: uint64(st.Ino), off: st.Size}
	if st.Size <= from {
		return nil, next
	}
	cut := false
	if st.Size-from > maxBytes {
		from, cut = st.Size-maxBytes, true
	}
	buf := make([]byte, st.Size-from)
	n, err := f.ReadAt(buf, from)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, next
	}
	buf = buf[:n]
	if cut {
		// The first line started before the bound: only its end is
		// here.
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			buf = nil
		} else {
			buf = buf[i+1:]
		}
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(buf))
	sc.Buffer(make([]byte, 0, maxBytes), int(maxBytes)+1)
	for sc.Scan() {
		line := trimEOL(sc.Bytes())
		for len(line) > maxScriptLine {
			lines = append(lines, string(line[:maxScriptLine]))
			line = line[maxScriptLine:]
		}
		if len(line) > 0 {
			lines = append(lines, string(line))
		}
	}
	if len(lines) > maxLines {
		lines = lines[len(lines)-maxLines:]
	}
	return lines, next
}

// bootClock returns the time since boot (CLOCK_BOOTTIME), the clock of
// the process start times in /proc.
func bootClock() time.Duration {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts) != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// startedAt converts a process start time since boot to the wall clock.
func startedAt(sinceBoot time.Duration) time.Time {
	return time.Now().Add(sinceBoot - bootClock())
}

// crashOutput returns the last lines the watched process w (or another
// writer of the entry's script output file) wrote there since they were
// last logged.
func (e *entry) crashOutput(w *watched) []string {
	path := e.scriptOutput()
	if path == "" {
		return nil
	}
	var lines []string
	lines, e.outMark = lastOutput(path, e.outMark, startedAt(w.started))
	return lines
}

// crashLine is the log line of one line of crash output.
func crashLine(proc, line string) message.Message {
	return message.Info(fmt.Sprintf("last output ('%s'): %s", proc, line))
}
