package message

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// fileWriter appends lines to the fallback file in the traditional syslog
// file format (that of rsyslog's RSYSLOG_TraditionalFileFormat, so that
// what reads /var/log/messages reads it): "Mmm dd hh:mm:ss host
// ident[pid]: text\n". The file is opened at the first line, append-only,
// without following a symlink and only if it is a regular file; while it
// cannot be opened, lines are lost (and counted) and an open is tried again
// at most once per retry interval. Used by the fallback goroutine only.
type fileWriter struct {
	path  string
	pid   int
	host  string
	retry time.Duration

	f        *os.File
	lastOpen time.Time // of the last failed open
	told     bool      // the open failure was reported on stderr
	buf      []byte
}

func (w *fileWriter) write(r record) bool {
	if w.f == nil && !w.open() {
		return false
	}
	w.buf = r.t.AppendFormat(w.buf[:0], time.Stamp)
	w.buf = append(w.buf, ' ')
	w.buf = append(w.buf, w.host...)
	w.buf = append(w.buf, ' ')
	w.buf = append(w.buf, r.ident...)
	w.buf = append(w.buf, '[')
	w.buf = strconv.AppendInt(w.buf, int64(w.pid), 10)
	w.buf = append(w.buf, "]: "...)
	w.buf = append(w.buf, r.text...)
	w.buf = append(w.buf, '\n')
	_, err := w.f.Write(w.buf)
	return err == nil
}

// open opens the file; a failure is reported once on stderr, the only
// place left (nowhere, for pcheck -D).
func (w *fileWriter) open() bool {
	now := time.Now()
	if !w.lastOpen.IsZero() && now.Sub(w.lastOpen) < w.retry {
		return false
	}
	f, err := openAppend(w.path)
	if err != nil {
		w.lastOpen = now
		if !w.told {
			w.told = true
			fmt.Fprintf(os.Stderr, "%s pcheck[%d]: fallback log: %v\n", now.Format(stderrTime), w.pid, err)
		}
		return false
	}
	w.f = f
	return true
}

func (w *fileWriter) close() {
	if w.f != nil {
		w.f.Close()
		w.f = nil
	}
}

// openAppend opens path for appending, creating it with mode 0640; a
// symlink, or anything but a regular file, is refused (O_NONBLOCK keeps a
// FIFO from blocking the open).
func openAppend(path string) (*os.File, error) {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_APPEND|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0o640)
	if errors.Is(err, unix.ELOOP) {
		return nil, fmt.Errorf("%s: is a symlink, not followed", path)
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	// A file someone else owns, or a second name of another file (a
	// hard link planted in a directory others may write, such as a
	// group-writable /var/log), is never appended to as root.
	if (st.Uid != 0 && int(st.Uid) != os.Geteuid()) || st.Nlink != 1 {
		unix.Close(fd)
		return nil, fmt.Errorf("%s: owned by uid %d with %d links; pcheck appends only to its own file with one name", path, st.Uid, st.Nlink)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFL, unix.O_WRONLY|unix.O_APPEND); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "fcntl", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// shortHostname is the host name as syslog writes it in a local line: up
// to its first dot.
func shortHostname() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		return "localhost"
	}
	short, _, _ := strings.Cut(host, ".")
	return short
}
