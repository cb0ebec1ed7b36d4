package trust

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// nobody is the uid (and gid) of user nobody, the other user of the tests.
const nobody = 65534

// mkfile writes a file with mode (chmod, so the umask does not apply).
func mkfile(t *testing.T, path string, mode os.FileMode) string {
	t.Helper()
	if err := os.WriteFile(path, []byte("#!/bin/sh\nexit 0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	chmod(t, path, mode)
	return path
}

func mkdir(t *testing.T, path string, mode os.FileMode) string {
	t.Helper()
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	chmod(t, path, mode)
	return path
}

func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func lchown(t *testing.T, path string, uid int) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a file to another user")
	}
	if err := os.Lchown(path, uid, uid); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) string {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	return link
}

// TestCheck: each rule on real files, with its cause (errors.Is) and its
// exact message.
func TestCheck(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the messages name root as the owner pcheck trusts")
	}
	cases := []struct {
		name string
		use  Use
		// setup makes the file in dir and returns its path and the
		// message expected ("" for none; @D@ is dir).
		setup func(t *testing.T, dir string) string
		cause error
		msg   string
	}{
		{"good", RestartScript, func(t *testing.T, d string) string { return mkfile(t, d+"/r.sh", 0o755) }, nil, ""},
		{"world writable", RestartScript, func(t *testing.T, d string) string { return mkfile(t, d+"/r.sh", 0o777) },
			ErrWritable, "restart script @D@/r.sh is writable by group and other (mode 0777): chmod go-w @D@/r.sh"},
		{"group writable", RestartScript, func(t *testing.T, d string) string { return mkfile(t, d+"/r.sh", 0o775) },
			ErrWritable, "restart script @D@/r.sh is writable by group (mode 0775): chmod g-w @D@/r.sh"},
		{"other writable CA file", CAFile, func(t *testing.T, d string) string { return mkfile(t, d+"/ca.pem", 0o646) },
			ErrWritable, "TLSCAFile @D@/ca.pem is writable by other (mode 0646): chmod o-w @D@/ca.pem"},
		{"owned by nobody", RestartScript, func(t *testing.T, d string) string {
			p := mkfile(t, d+"/r.sh", 0o755)
			lchown(t, p, nobody)
			return p
		}, ErrOwner, "restart script @D@/r.sh is owned by uid 65534 (nobody), not root: chown root @D@/r.sh"},
		{"directory writable by other", RestartScript, func(t *testing.T, d string) string {
			return mkfile(t, mkdir(t, d+"/open", 0o757)+"/r.sh", 0o755)
		}, ErrWritable, "restart script @D@/open/r.sh is reached through directory @D@/open, which is writable by other without the sticky bit (mode 0757): chmod o-w @D@/open"},
		{"sticky directory", RestartScript, func(t *testing.T, d string) string {
			return mkfile(t, mkdir(t, d+"/tmp", os.ModeSticky|0o777)+"/r.sh", 0o755)
		}, nil, ""},
		{"nobody's file in a sticky directory", CommandFile, func(t *testing.T, d string) string {
			p := mkfile(t, mkdir(t, d+"/tmp", os.ModeSticky|0o777)+"/check", 0o755)
			lchown(t, p, nobody)
			return p
		}, ErrOwner, "CMD file @D@/tmp/check is owned by uid 65534 (nobody), not root: chown root @D@/tmp/check"},
		{"directory owned by nobody", RestartScript, func(t *testing.T, d string) string {
			sub := mkdir(t, d+"/home", 0o755)
			lchown(t, sub, nobody)
			return mkfile(t, sub+"/r.sh", 0o755)
		}, ErrOwner, "restart script @D@/home/r.sh is reached through directory @D@/home, which is owned by uid 65534 (nobody), not root: chown root @D@/home"},
		{"missing", RestartScript, func(t *testing.T, d string) string { return d + "/none.sh" },
			ErrMissing, "restart script @D@/none.sh does not exist"},
		{"missing directory", RestartScript, func(t *testing.T, d string) string { return d + "/none/r.sh" },
			ErrMissing, "restart script @D@/none/r.sh does not exist"},
		{"file as a directory", RestartScript, func(t *testing.T, d string) string { return mkfile(t, d+"/f", 0o755) + "/r.sh" },
			ErrMissing, "restart script @D@/f/r.sh does not exist: @D@/f is not a directory"},
		{"not executable", RestartScript, func(t *testing.T, d string) string { return mkfile(t, d+"/r.sh", 0o644) },
			ErrNotExecutable, "restart script @D@/r.sh is not executable (mode 0644): chmod +x @D@/r.sh"},
		{"CA file need not be executable", CAFile, func(t *testing.T, d string) string { return mkfile(t, d+"/ca.pem", 0o644) }, nil, ""},
		{"pfile need not be executable", Pfile, func(t *testing.T, d string) string { return mkfile(t, d+"/a.pf", 0o600) }, nil, ""},
		{"a directory", RestartScript, func(t *testing.T, d string) string { return mkdir(t, d+"/r.sh", 0o755) },
			ErrNotRegular, "restart script @D@/r.sh is a directory, not a regular file"},
		{"link to a good file", RestartScript, func(t *testing.T, d string) string {
			mkfile(t, mkdir(t, d+"/real", 0o755)+"/r.sh", 0o755)
			return symlink(t, "real/r.sh", d+"/r.sh")
		}, nil, ""},
		{"link to a writable file", RestartScript, func(t *testing.T, d string) string {
			mkfile(t, d+"/real.sh", 0o666)
			return symlink(t, d+"/real.sh", d+"/r.sh")
		}, ErrWritable, "restart script @D@/r.sh (symbolic link to @D@/real.sh) is writable by group and other (mode 0666): chmod go-w @D@/real.sh"},
		{"link through an open directory", RestartScript, func(t *testing.T, d string) string {
			mkfile(t, mkdir(t, d+"/open", 0o777)+"/r.sh", 0o755)
			mkdir(t, d+"/etc", 0o755)
			return symlink(t, "../open/r.sh", d+"/etc/r.sh")
		}, ErrWritable, "restart script @D@/etc/r.sh is reached through directory @D@/open, which is writable by group and other without the sticky bit (mode 0777): chmod go-w @D@/open"},
		{"dangling link", RestartScript, func(t *testing.T, d string) string { return symlink(t, d+"/gone.sh", d+"/r.sh") },
			ErrMissing, "restart script @D@/r.sh (symbolic link to @D@/gone.sh) does not exist"},
		{"nobody's link in a sticky directory", RestartScript, func(t *testing.T, d string) string {
			mkfile(t, d+"/real.sh", 0o755)
			l := symlink(t, d+"/real.sh", mkdir(t, d+"/tmp", os.ModeSticky|0o777)+"/r.sh")
			lchown(t, l, nobody)
			return l
		}, ErrOwner, "restart script @D@/tmp/r.sh is reached through symbolic link @D@/tmp/r.sh, which is owned by uid 65534 (nobody), not root: chown -h root @D@/tmp/r.sh"},
		{"nobody's link in a closed directory", RestartScript, func(t *testing.T, d string) string {
			mkfile(t, d+"/real.sh", 0o755)
			l := symlink(t, d+"/real.sh", d+"/r.sh")
			lchown(t, l, nobody) // only root can replace it
			return l
		}, nil, ""},
		{"link loop", RestartScript, func(t *testing.T, d string) string {
			symlink(t, d+"/b", d+"/a")
			return symlink(t, d+"/a", d+"/b")
		}, ErrUnchecked, "restart script @D@/b cannot be checked: too many levels of symbolic links"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := c.setup(t, dir)
			err := Check(path, c.use)
			if c.cause == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, c.cause) {
				t.Fatalf("error %v, want cause %v", err, c.cause)
			}
			var te *Error
			if !errors.As(err, &te) || te.Path != path {
				t.Fatalf("error %#v does not name %s", err, path)
			}
			if want := strings.ReplaceAll(c.msg, "@D@", dir); err.Error() != want {
				t.Fatalf("message\n%s\nwant\n%s", err, want)
			}
		})
	}
}

// TestCheckRelative: a relative path is refused, whatever the working
// directory holds.
func TestCheckRelative(t *testing.T) {
	err := Check("restart.sh", RestartScript)
	if !errors.Is(err, ErrNotAbsolute) {
		t.Fatalf("error %v, want ErrNotAbsolute", err)
	}
}

// TestCheckRootDirectories: the directories above the tests' own are what
// a real box has (/, /tmp): trusted.
func TestCheckRootDirectories(t *testing.T) {
	if err := Check("/bin/sh", RestartScript); err != nil {
		t.Fatalf("/bin/sh refused: %v", err)
	}
}
