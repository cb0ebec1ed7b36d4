package trust

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// writeVictim writes a file an attacker would like root to overwrite.
func writeVictim(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(p, []byte("precious\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func assertVictimIntact(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil || string(b) != "precious\n" {
		t.Fatalf("victim %s was written: %q, %v", path, b, err)
	}
}

// TestWriteDirRefusesUnsafe: a symlink, a group- or world-writable
// directory (sticky or not), a directory of another user and a plain file
// are refused with the directory and the fix named.
func TestWriteDirRefusesUnsafe(t *testing.T) {
	base := t.TempDir()
	mk := func(name string, mode os.FileMode) string {
		p := filepath.Join(base, name)
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	real := mk("real", 0o755)
	link := filepath.Join(base, "link")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	other := mk("other", 0o755)
	if err := os.Chown(other, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ dir, want string }{
		{link, "is a symbolic link; pcheck writes only in a real directory owned by root and not writable by group or other (name " + real + " instead"},
		{mk("world", 0o777), "is writable by group or other (mode 0777)"},
		{mk("sticky", os.ModeSticky|0o777), "is writable by group or other (mode 1777)"},
		{mk("group", 0o775), "is writable by group or other (mode 0775)"},
		{other, "is owned by uid 65534"},
		{file, "is not a directory"},
	} {
		d, err := OpenWriteDir(c.dir)
		if err == nil {
			d.Close()
			t.Errorf("%s: accepted", c.dir)
			continue
		}
		if !errors.Is(err, ErrUnsafeWriteDir) || !strings.Contains(err.Error(), "directory "+c.dir+" "+c.want) {
			t.Errorf("%s: err = %v, want %q", c.dir, err, c.want)
		}
		if _, err := MkWriteDir(c.dir); !errors.Is(err, ErrUnsafeWriteDir) {
			t.Errorf("%s: MkWriteDir err = %v", c.dir, err)
		}
	}
	d, err := OpenWriteDir(real)
	if err != nil {
		t.Fatalf("a root-owned 0755 directory is refused: %v", err)
	}
	d.Close()
}

// TestWriteDirAdvice: the fix a refusal gives depends on whose directory
// it is. pcheck's own state and run directories (MkWriteDir) are to be
// chmod'ed or chown'ed; any other (the directory of DumpFileName or
// RebootStateFile: OpenWriteDir) may be shared, as /var/log is with
// rsyslog, and the fix is to write elsewhere.
func TestWriteDirAdvice(t *testing.T) {
	const rule = "pcheck writes only in a real directory owned by root and not writable by group or other"
	base := t.TempDir()
	group := filepath.Join(base, "group")
	if err := os.Mkdir(group, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(group, 0o775); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(base, "other")
	if err := os.Mkdir(other, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(other, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		open func(string) (*WriteDir, error)
		dir  string
		want string
	}{
		{"OpenWriteDir", OpenWriteDir, group, "directory " + group + " is writable by group or other (mode 0775); " + rule + " (choose a directory of pcheck's own, such as /var/lib/pcheck)"},
		{"OpenWriteDir", OpenWriteDir, other, "directory " + other + " is owned by uid 65534; " + rule + " (choose a directory of pcheck's own, such as /var/lib/pcheck)"},
		{"MkWriteDir", MkWriteDir, group, "directory " + group + " is writable by group or other (mode 0775); " + rule + " (chmod go-w " + group + ")"},
		{"MkWriteDir", MkWriteDir, other, "directory " + other + " is owned by uid 65534; " + rule + " (chown root " + other + ")"},
	} {
		d, err := c.open(c.dir)
		if err == nil {
			d.Close()
			t.Errorf("%s(%s): accepted", c.name, c.dir)
			continue
		}
		if err.Error() != c.want {
			t.Errorf("%s(%s):\n got %v\nwant %s", c.name, c.dir, err, c.want)
		}
	}
}

// TestMkWriteDirMode: created directories are 0755 at most, whatever the
// umask.
func TestMkWriteDirMode(t *testing.T) {
	old := unix.Umask(0)
	defer unix.Umask(old)
	p := filepath.Join(t.TempDir(), "a", "b")
	d, err := MkWriteDir(p)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	for _, q := range []string{p, filepath.Dir(p)} {
		st, err := os.Stat(q)
		if err != nil || st.Mode().Perm() != 0o755 {
			t.Fatalf("%s: mode %v, %v", q, st.Mode(), err)
		}
	}
}

// TestWriteDirNoSymlinkFollowed: a link planted at the name is never written
// through: OpenFile fails, WriteFile replaces the link itself.
func TestWriteDirNoSymlinkFollowed(t *testing.T) {
	v := writeVictim(t)
	dir := t.TempDir()
	for _, name := range []string{"open", "write", "pkg"} {
		if err := os.Symlink(v, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	d, err := OpenWriteDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if f, err := d.OpenFile("open", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644); !errors.Is(err, unix.ELOOP) {
		if f != nil {
			f.Close()
		}
		t.Fatalf("OpenFile through a link: err = %v, want ELOOP", err)
	}
	if _, err := d.ReadFile("open"); !errors.Is(err, unix.ELOOP) {
		t.Fatalf("ReadFile through a link: err = %v, want ELOOP", err)
	}
	if _, err := ReadFileNoFollow(filepath.Join(dir, "open")); !errors.Is(err, unix.ELOOP) {
		t.Fatalf("ReadFileNoFollow through a link: err = %v, want ELOOP", err)
	}
	if err := d.WriteFile("write", []byte("new\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(filepath.Join(dir, "pkg"), []byte("new\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	assertVictimIntact(t, v)
	for _, name := range []string{"write", "pkg"} {
		st, err := os.Lstat(filepath.Join(dir, name))
		if err != nil || !st.Mode().IsRegular() || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, %v; want a regular 0600 file", name, st.Mode(), err)
		}
	}
	if _, err := d.OpenFile("../x", os.O_RDONLY, 0); err == nil {
		t.Fatal("a name with a slash is accepted")
	}
}

// TestWriteDirSwapped: names are resolved in the directory that was
// checked, even after its path is made a link elsewhere.
func TestWriteDirSwapped(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "state")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	d, err := OpenWriteDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	elsewhere := t.TempDir()
	if err := os.Rename(dir, filepath.Join(base, "moved")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(elsewhere, dir); err != nil {
		t.Fatal(err)
	}
	if err := d.WriteFile("x", []byte("1"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(elsewhere, "x")); err == nil {
		t.Fatal("written through the swapped path")
	}
	if _, err := os.Stat(filepath.Join(base, "moved", "x")); err != nil {
		t.Fatalf("not written in the checked directory: %v", err)
	}
}

// TestWriteDirCheckWritable: a read-only mount fails the check, a writable
// directory passes it and is left as it was.
func TestWriteDirCheckWritable(t *testing.T) {
	dir := t.TempDir()
	d, err := OpenWriteDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.CheckWritable(); err != nil {
		t.Fatal(err)
	}
	d.Close()
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("probe left %v", ents)
	}
	if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
		t.Skipf("bind mount: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	if err := unix.Mount("", dir, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		t.Fatalf("read-only remount: %v", err)
	}
	d, err = OpenWriteDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.CheckWritable(); !errors.Is(err, unix.EROFS) || !strings.Contains(err.Error(), "directory "+dir+" cannot be written") {
		t.Fatalf("read-only directory: err = %v", err)
	}
}
