package trust

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// This file is the write side: the directories pcheck writes in (state
// and run directories, the directories of RebootStateFile and
// DumpFileName) and the files it creates there. A directory is safe to
// write in when it is a real directory (the last component is not a
// symbolic link), owned by root or by pcheck's effective user, and not
// writable by group or other. A sticky world-writable directory such as
// /tmp is refused too: the sticky bit stops others from removing pcheck's
// files, not from planting names pcheck would then write to.
//
// Files are reached through the directory's file descriptor (openat and
// friends) and never through a symbolic link (O_NOFOLLOW), so neither a
// planted link nor a directory swapped after the check can redirect a
// write of root's.

// ErrUnsafeWriteDir matches every *UnsafeWriteDirError with errors.Is.
var ErrUnsafeWriteDir = errors.New("directory is not safe to write in")

// UnsafeWriteDirError is a directory pcheck refuses to write in.
type UnsafeWriteDirError struct {
	Dir string
	// Reason says what is wrong, Fix what to do about it.
	Reason, Fix string
}

func (e *UnsafeWriteDirError) Error() string {
	return fmt.Sprintf("directory %s %s; pcheck writes only in a real directory owned by root and not writable by group or other (%s)", e.Dir, e.Reason, e.Fix)
}

// Is makes errors.Is(err, ErrUnsafeWriteDir) true.
func (e *UnsafeWriteDirError) Is(target error) bool { return target == ErrUnsafeWriteDir }

// WriteDir is a directory checked as safe to write in and held open: the
// names given to its methods are resolved in the directory that was
// checked, whatever happens to its path afterwards. Names are single path
// components.
type WriteDir struct {
	path string
	fd   int
}

// OpenWriteDir checks the directory at path and opens it. A refusal's fix
// is to write elsewhere, in a directory of pcheck's own: the directory
// may be shared (/var/log is root:syslog 0775 on Ubuntu, and made
// go-w it breaks rsyslog), so it is not told to chmod or chown it.
func OpenWriteDir(path string) (*WriteDir, error) { return openWriteDir(path, false) }

// ownFix returns fix, the fix of pcheck's own directory, when own is set,
// and otherwise the advice to write elsewhere.
func ownFix(own bool, fix string) string {
	if own {
		return fix
	}
	return "choose a directory of pcheck's own, such as /var/lib/pcheck"
}

// openWriteDir is OpenWriteDir; own says the directory is pcheck's (the
// state and run directories), whose mode and owner a refusal tells to
// fix.
func openWriteDir(path string, own bool) (*WriteDir, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		var st unix.Stat_t
		switch {
		case unix.Lstat(path, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK:
			real, _ := filepath.EvalSymlinks(path)
			if real == "" {
				real = "the real directory"
			}
			return nil, &UnsafeWriteDirError{Dir: path, Reason: "is a symbolic link", Fix: "name " + real + " instead, or replace the link with a directory"}
		case errors.Is(err, unix.ENOTDIR):
			return nil, &UnsafeWriteDirError{Dir: path, Reason: "is not a directory", Fix: "remove it or name another directory"}
		}
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if !ownerOK(st.Uid) {
		unix.Close(fd)
		return nil, &UnsafeWriteDirError{Dir: path, Reason: fmt.Sprintf("is owned by uid %d", st.Uid), Fix: ownFix(own, "chown root "+path)}
	}
	if writableByOthers(st.Mode) {
		unix.Close(fd)
		return nil, &UnsafeWriteDirError{Dir: path, Reason: fmt.Sprintf("is writable by group or other (mode %04o)", st.Mode&0o7777), Fix: ownFix(own, "chmod go-w "+path)}
	}
	return &WriteDir{path: path, fd: fd}, nil
}

// MkWriteDir creates the directory at path and its missing parents with
// mode 0755 (less the umask), then checks and opens it like OpenWriteDir.
// A directory that already exists keeps its mode and must pass the check.
// It is for pcheck's own directories (state and run): a refusal says how
// to fix the directory's mode or owner.
func MkWriteDir(path string) (*WriteDir, error) {
	if err := os.MkdirAll(path, 0o755); err != nil {
		// A plain file or a link in the way says more than mkdir's error.
		if _, uerr := openWriteDir(path, true); errors.Is(uerr, ErrUnsafeWriteDir) {
			return nil, uerr
		}
		return nil, err
	}
	return openWriteDir(path, true)
}

// Path returns the directory's path.
func (d *WriteDir) Path() string { return d.path }

// Close releases the directory.
func (d *WriteDir) Close() error {
	if d.fd < 0 {
		return nil
	}
	err := unix.Close(d.fd)
	d.fd = -1
	return err
}

// name checks that name is one component and returns its path for
// messages.
func (d *WriteDir) name(name string) (string, error) {
	full := filepath.Join(d.path, name)
	if name == "" || name == "." || name == ".." || strings.ContainsRune(name, '/') {
		return full, fmt.Errorf("%s: %q is not a file name in %s", full, name, d.path)
	}
	return full, nil
}

// OpenFile opens name in d with flag (os.O_* flags) and, when it creates
// the file, perm. A symbolic link at name is never followed: the open
// fails with ELOOP.
func (d *WriteDir) OpenFile(name string, flag int, perm os.FileMode) (*os.File, error) {
	full, err := d.name(name)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Openat(d.fd, name, flag|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(perm.Perm()))
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: full, Err: err}
	}
	return os.NewFile(uintptr(fd), full), nil
}

// ReadFile returns the content of name in d, not following a symbolic
// link.
func (d *WriteDir) ReadFile(name string) ([]byte, error) {
	f, err := d.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// Lstat returns the status of name in d itself, not of what a symbolic
// link there points to.
func (d *WriteDir) Lstat(name string) (unix.Stat_t, error) {
	var st unix.Stat_t
	full, err := d.name(name)
	if err != nil {
		return st, err
	}
	if err := unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return st, &os.PathError{Op: "stat", Path: full, Err: err}
	}
	return st, nil
}

// Remove removes the file name from d.
func (d *WriteDir) Remove(name string) error {
	full, err := d.name(name)
	if err != nil {
		return err
	}
	if err := unix.Unlinkat(d.fd, name, 0); err != nil {
		return &os.PathError{Op: "remove", Path: full, Err: err}
	}
	return nil
}

// WriteFile writes data to name in d atomically: a new temporary file
// (created exclusively, so nothing planted is ever written through) is
// written and fsynced, renamed over name, and d is fsynced so that the
// rename survives a crash. Whatever was at name before, a symbolic link
// included, is replaced, never written into.
func (d *WriteDir) WriteFile(name string, data []byte, perm os.FileMode) error {
	full, err := d.name(name)
	if err != nil {
		return err
	}
	f, tmp, err := d.createTemp(name, perm)
	if err != nil {
		return fmt.Errorf("write %s: %w", full, err)
	}
	done := false
	defer func() {
		if !done {
			f.Close()
			unix.Unlinkat(d.fd, tmp, 0)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", full, err)
	}
	// The umask may have taken bits off at creation.
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", full, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: fsync: %w", full, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", full, err)
	}
	if err := unix.Renameat(d.fd, tmp, d.fd, name); err != nil {
		unix.Unlinkat(d.fd, tmp, 0)
		done = true
		return fmt.Errorf("write %s: rename: %w", full, err)
	}
	done = true
	if err := unix.Fsync(d.fd); err != nil {
		return fmt.Errorf("write %s: fsync directory: %w", full, err)
	}
	return nil
}

// createTemp creates a new file ".name.tmpXXXXXXXX" in d.
func (d *WriteDir) createTemp(name string, perm os.FileMode) (*os.File, string, error) {
	for range 100 {
		var b [4]byte
		rand.Read(b[:])
		tmp := "." + name + ".tmp" + hex.EncodeToString(b[:])
		f, err := d.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		return f, tmp, err
	}
	return nil, "", fmt.Errorf("no free temporary name in %s", d.path)
}

// CheckWritable proves that files can be created and written in d now:
// it writes, fsyncs and removes a small temporary file. A read-only or
// full file system fails it.
func (d *WriteDir) CheckWritable() error {
	f, tmp, err := d.createTemp("pcheck-probe", 0o600)
	if err != nil {
		return fmt.Errorf("directory %s cannot be written: %w", d.path, err)
	}
	defer unix.Unlinkat(d.fd, tmp, 0)
	defer f.Close()
	if _, err := f.Write(make([]byte, 4096)); err != nil {
		return fmt.Errorf("directory %s cannot be written: %w", d.path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("directory %s cannot be written: fsync: %w", d.path, err)
	}
	return nil
}

// WriteFileAtomic writes data to the file at path through a checked
// directory: it is WriteDir.WriteFile in OpenWriteDir(filepath.Dir(path)).
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	d, err := OpenWriteDir(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer d.Close()
	return d.WriteFile(filepath.Base(path), data, perm)
}

// OpenNoFollow opens path with flag, refusing a symbolic link as its last
// component (ELOOP): the files pcheck itself writes are never links. Use
// it for files in a directory already checked with OpenWriteDir.
func OpenNoFollow(path string, flag int, perm os.FileMode) (*os.File, error) {
	return os.OpenFile(path, flag|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
}

// ReadFileNoFollow reads the file at path, refusing a symbolic link as
// its last component (the files pcheck itself writes are never links).
func ReadFileNoFollow(path string) ([]byte, error) {
	f, err := OpenNoFollow(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}
