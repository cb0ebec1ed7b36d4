// Package trust decides which files pcheck, running as root, may trust.
//
// pcheck runs restart scripts, CMD check files and RebootCommand's program
// as root, and takes its rules from pfiles and its TLS roots from
// TLSCAFile. Whoever can change one of these files, or the name it is
// reached by, can run commands as root. So, as cron and sudo do, a file
// pcheck runs or trusts must be a regular file owned by root or by
// pcheck's effective user and not writable by group or other, and every
// directory on the way from / to it must be owned by root or that user
// and not writable by group or other unless its sticky bit is set (as
// /tmp: others can add names there but not replace pcheck's). Symbolic
// links are followed, and the directories they lead through are checked
// as well as the target. A file pcheck executes must also be executable.
//
// Check tests one file; Pfile tests a loaded pfile and every file it
// names, and reports each refusal as an error at the position of the
// field that names the file. The files pcheck writes are the other side
// of the package (write.go).
package trust

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Use is what pcheck does with a file: it names the file in messages and
// says whether it must be executable.
type Use int

// The files pcheck runs or trusts.
const (
	Pfile          Use = iota // a pfile: its rules
	RestartScript             // a process entry's restart script
	CommandFile               // a CMD block's PS_EXEC file
	CAFile                    // a _bi_webservs block's TLSCAFile
	RebootProgram             // the program RebootCommand runs
	ClusterProgram            // a cluster manager's command (crm_resource, attrd_updater)
)

var useNames = [...]string{"pfile", "restart script", "CMD file", "TLSCAFile", "RebootCommand program", "cluster program"}

// String names the use as messages do ("restart script").
func (u Use) String() string {
	if int(u) < len(useNames) {
		return useNames[u]
	}
	return fmt.Sprintf("Use(%d)", int(u))
}

// executable reports whether pcheck executes files of this use.
func (u Use) executable() bool {
	return u == RestartScript || u == CommandFile || u == RebootProgram || u == ClusterProgram
}

// The causes of a refusal; every *Error matches one with errors.Is.
var (
	ErrMissing       = errors.New("does not exist")
	ErrNotRegular    = errors.New("not a regular file")
	ErrOwner         = errors.New("owned by another user")
	ErrWritable      = errors.New("writable by group or other")
	ErrNotExecutable = errors.New("not executable")
	ErrNotAbsolute   = errors.New("not an absolute path")
	ErrUnchecked     = errors.New("cannot be checked")
)

// Error is a file pcheck refuses to run or trust. Its message names the
// file, the path at fault (the file, the target of a symbolic link, or a
// directory on the way) and what to do about it.
type Error struct {
	Use Use
	// Path is the file as the pfile names it; At is the path at fault.
	Path, At string
	// Dir is true when At is a directory on the way to the file, Link
	// when it is a symbolic link.
	Dir, Link bool
	// Err is the cause: ErrMissing, ErrOwner, ...
	Err error
	// Mode and UID are At's, for the message.
	Mode fs.FileMode
	UID  int
	// Sys is the system's error behind ErrMissing and ErrUnchecked.
	Sys error
}

// Unwrap returns the cause, for errors.Is.
func (e *Error) Unwrap() error { return e.Err }

func (e *Error) Error() string {
	file := e.Use.String() + " " + e.Path
	subject := file
	switch {
	case e.Dir:
		subject += " is reached through directory " + e.At + ", which"
	case e.Link:
		subject += " is reached through symbolic link " + e.At + ", which"
	case e.At != filepath.Clean(e.Path) && !strings.HasPrefix(filepath.Clean(e.Path), e.At+"/"):
		// Symbolic links led elsewhere.
		subject += " (symbolic link to " + e.At + ")"
	}
	switch e.Err {
	case ErrMissing:
		var np notInPath
		switch {
		case errors.As(e.Sys, &np):
			return fmt.Sprintf("%s is not found in PATH %s", file, string(np))
		case errors.Is(e.Sys, unix.ENOTDIR):
			return fmt.Sprintf("%s does not exist: %s is not a directory", file, e.At)
		}
		return subject + " does not exist"
	case ErrNotRegular:
		return fmt.Sprintf("%s is %s, not a regular file", subject, kind(e.Mode))
	case ErrOwner:
		chown := "chown"
		if e.Link {
			chown = "chown -h"
		}
		return fmt.Sprintf("%s is owned by %s, not %s: %s root %s", subject, userName(e.UID), owners(), chown, e.At)
	case ErrWritable:
		sticky := ""
		if e.Dir {
			sticky = " without the sticky bit"
		}
		return fmt.Sprintf("%s is writable by %s%s (mode %s): chmod %s-w %s", subject, writers(e.Mode), sticky, octal(e.Mode), writerFlags(e.Mode), e.At)
	case ErrNotExecutable:
		if e.Mode&0o111 == 0 {
			return fmt.Sprintf("%s is not executable (mode %s): chmod +x %s", subject, octal(e.Mode), e.At)
		}
		return fmt.Sprintf("%s is not executable by pcheck (mode %s): is its file system mounted noexec?", subject, octal(e.Mode))
	case ErrNotAbsolute:
		return file + " is neither an absolute path nor a name to look up in PATH: write its absolute path"
	}
	return fmt.Sprintf("%s cannot be checked: %v", subject, e.Sys)
}

// notInPath is the cause behind ErrMissing for a program name found in
// none of the directories of PATH (its value).
type notInPath string

func (p notInPath) Error() string { return "not found in PATH " + string(p) }

// maxLinks bounds the symbolic links followed on one path, as the kernel
// does (ELOOP).
const maxLinks = 40

// Check reports whether pcheck may use the file at path (an absolute
// path) for use; the error is an *Error. The first problem found from /
// down is reported.
func Check(path string, use Use) error {
	if !filepath.IsAbs(path) {
		return &Error{Use: use, Path: path, At: path, Err: ErrNotAbsolute}
	}
	w := walker{use: use, path: path}
	return w.walk()
}

// Recheck is Check for a file about to be run that was checked when its
// pfile was loaded: a file made writable by others since (a deploy's
// chmod -R, an unpacked archive) must not run as root until it is safe
// again. It reports only what makes the file unsafe; a file that is
// missing or not executable is left to the exec, whose error says so.
func Recheck(path string, use Use) error {
	err := Check(path, use)
	if errors.Is(err, ErrMissing) || errors.Is(err, ErrNotExecutable) {
		return nil
	}
	return err
}

// walker resolves one path component by component, as the kernel does,
// checking every directory it passes through.
type walker struct {
	use  Use
	path string
}

func (w *walker) fail(at string, cause error, st *unix.Stat_t, sys error) *Error {
	e := &Error{Use: w.use, Path: w.path, At: at, Err: cause, Sys: sys}
	if st != nil {
		e.Mode = fileMode(st.Mode)
		e.UID = int(st.Uid)
		e.Dir = st.Mode&unix.S_IFMT == unix.S_IFDIR && cause != ErrNotRegular
		e.Link = st.Mode&unix.S_IFMT == unix.S_IFLNK
	}
	return e
}

func (w *walker) walk() error {
	var st unix.Stat_t
	if err := unix.Lstat("/", &st); err != nil {
		return w.fail("/", ErrUnchecked, nil, err)
	}
	if err := w.checkDir("/", &st); err != nil {
		return err
	}
	dir, dirSt := "/", st // the resolved directory reached so far
	rest := components(w.path)
	links := 0
	for len(rest) > 0 {
		name := rest[0]
		rest = rest[1:]
		if name == ".." {
			dir = filepath.Dir(dir)
			if err := unix.Lstat(dir, &dirSt); err != nil {
				return w.fail(dir, ErrUnchecked, nil, err)
			}
			continue
		}
		next := filepath.Join(dir, name)
		var st unix.Stat_t
		if err := unix.Lstat(next, &st); err != nil {
			if errors.Is(err, unix.ENOENT) {
				return w.fail(next, ErrMissing, nil, fs.ErrNotExist)
			}
			return w.fail(next, ErrUnchecked, nil, err)
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			links++
			if links > maxLinks {
				return w.fail(next, ErrUnchecked, nil, unix.ELOOP)
			}
			// A link can be replaced by whoever can write its
			// directory: in a sticky directory, only by its owner.
			if writableByOthers(dirSt.Mode) && !ownerOK(st.Uid) {
				return w.fail(next, ErrOwner, &st, nil)
			}
			target, err := os.Readlink(next)
			if err != nil {
				return w.fail(next, ErrUnchecked, nil, err)
			}
			if filepath.IsAbs(target) {
				dir = "/"
				if err := unix.Lstat(dir, &dirSt); err != nil {
					return w.fail(dir, ErrUnchecked, nil, err)
				}
			}
			rest = append(components(target), rest...)
			continue
		case unix.S_IFDIR:
			if err := w.checkDir(next, &st); err != nil {
				return err
			}
			dir, dirSt = next, st
			continue
		}
		if len(rest) > 0 {
			return w.fail(next, ErrMissing, nil, unix.ENOTDIR)
		}
		return w.checkFile(next, &st)
	}
	// The path ends in a directory.
	return w.fail(dir, ErrNotRegular, &dirSt, nil)
}

// checkDir checks a directory on the way.
func (w *walker) checkDir(path string, st *unix.Stat_t) error {
	if !ownerOK(st.Uid) {
		return w.fail(path, ErrOwner, st, nil)
	}
	if writableByOthers(st.Mode) && st.Mode&unix.S_ISVTX == 0 {
		return w.fail(path, ErrWritable, st, nil)
	}
	return nil
}

// checkFile checks the file itself, reached at path.
func (w *walker) checkFile(path string, st *unix.Stat_t) error {
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return w.fail(path, ErrNotRegular, st, nil)
	}
	if !ownerOK(st.Uid) {
		return w.fail(path, ErrOwner, st, nil)
	}
	if writableByOthers(st.Mode) {
		return w.fail(path, ErrWritable, st, nil)
	}
	if w.use.executable() {
		// faccessat with AT_EACCESS asks the kernel, which also says
		// no for a file system mounted noexec.
		if err := unix.Faccessat(unix.AT_FDCWD, path, unix.X_OK, unix.AT_EACCESS); err != nil {
			return w.fail(path, ErrNotExecutable, st, nil)
		}
	}
	return nil
}

// components splits a path into its names, dropping empty ones and ".".
func components(path string) []string {
	var out []string
	for _, c := range strings.Split(path, "/") {
		if c != "" && c != "." {
			out = append(out, c)
		}
	}
	return out
}

func ownerOK(uid uint32) bool { return uid == 0 || int(uid) == os.Geteuid() }

func writableByOthers(mode uint32) bool { return mode&0o022 != 0 }

// fileMode turns a stat mode into an fs.FileMode with its permission,
// sticky, setuid and setgid bits and its type.
func fileMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	if m&unix.S_ISVTX != 0 {
		mode |= fs.ModeSticky
	}
	if m&unix.S_ISUID != 0 {
		mode |= fs.ModeSetuid
	}
	if m&unix.S_ISGID != 0 {
		mode |= fs.ModeSetgid
	}
	switch m & unix.S_IFMT {
	case unix.S_IFDIR:
		mode |= fs.ModeDir
	case unix.S_IFLNK:
		mode |= fs.ModeSymlink
	case unix.S_IFIFO:
		mode |= fs.ModeNamedPipe
	case unix.S_IFSOCK:
		mode |= fs.ModeSocket
	case unix.S_IFCHR:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		mode |= fs.ModeDevice
	}
	return mode
}

// octal writes a mode as chmod takes it: 0755, 1777.
func octal(m fs.FileMode) string {
	n := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		n |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		n |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		n |= 0o1000
	}
	return fmt.Sprintf("%04o", n)
}

func writers(m fs.FileMode) string {
	switch m & 0o022 {
	case 0o020:
		return "group"
	case 0o002:
		return "other"
	}
	return "group and other"
}

func writerFlags(m fs.FileMode) string {
	switch m & 0o022 {
	case 0o020:
		return "g"
	case 0o002:
		return "o"
	}
	return "go"
}

func kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "not a regular file"
}

// owners says who may own a trusted file.
func owners() string {
	if euid := os.Geteuid(); euid != 0 {
		return "root or pcheck's user, " + userName(euid)
	}
	return "root"
}

// userName is "uid 65534 (nobody)", or "uid 1234" for a uid without a
// name.
func userName(uid int) string {
	s := "uid " + strconv.Itoa(uid)
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		s += " (" + u.Username + ")"
	}
	return s
}
