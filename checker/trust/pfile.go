package trust

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/pcheck/pcheck/pfile"
)

// CheckPfile checks the loaded pfile f and every file it names that
// pcheck runs or trusts: the restart scripts, the CMD files of the stall
// monitors, the TLSCAFiles and, with AutoReboot on, RebootCommand's
// program. It also checks the directories of the files pcheck writes
// that the pfile names, DumpFileName and, with AutoReboot on,
// RebootStateFile, as the write will (OpenWriteDir). Each refusal is an
// error at the position of the field that names the file; the pfile's own
// refusal is at its path, line 0 column 0, as a pfile that cannot be read.
// A write directory that does not exist (yet) is a warning: nothing is
// unsafe, the write fails until it is made.
func CheckPfile(f *pfile.File) pfile.Diagnostics {
	var ds pfile.Diagnostics
	add := func(pos pfile.Pos, err error) {
		if err != nil {
			ds = append(ds, pfile.Diagnostic{Pos: pos, Severity: pfile.Error, Msg: err.Error()})
		}
	}
	writeDir := func(pos pfile.Pos, field, path string) {
		d, err := OpenWriteDir(filepath.Dir(path))
		switch {
		case err == nil:
			d.Close()
		case errors.Is(err, ErrUnsafeWriteDir):
			add(pos, fmt.Errorf("%s %s: %w", field, path, err))
		default:
			ds = append(ds, pfile.Diagnostic{Pos: pos, Severity: pfile.Warning,
				Msg: fmt.Sprintf("%s %s: %v; it cannot be written until this is fixed", field, path, err)})
		}
	}
	self, err := filepath.Abs(f.Path)
	if err != nil {
		self = f.Path
	}
	add(pfile.Pos{File: f.Path}, Check(self, Pfile))
	for _, p := range f.Processes {
		add(p.ScriptPos, Check(p.Script, RestartScript))
		for _, b := range p.Blocks {
			if b.Monitor.Kind == pfile.KindCommand {
				add(execEntry(b).FilePos, Check(b.Monitor.File, CommandFile))
			}
			if b.Monitor.TLSCAFile != "" {
				add(b.TLSCAFilePos, Check(b.Monitor.TLSCAFile, CAFile))
			}
		}
	}
	if prm := f.Params; prm.AutoReboot {
		pos := prm.RebootCommandPos
		if pos == (pfile.Pos{}) {
			pos = prm.AutoRebootPos // the default RebootCommand
		}
		add(pos, CheckCommand(prm.RebootCommand))
		if prm.RebootStateFile != "" {
			writeDir(prm.RebootStateFilePos, "RebootStateFile", prm.RebootStateFile)
		}
	}
	if name := f.Params.DumpFileName; name != "" {
		writeDir(f.Params.DumpFileNamePos, "DumpFileName", name)
	}
	pfile.Sort(ds)
	return ds
}

// execEntry returns the PS_EXEC entry of a block; a built block has one.
func execEntry(b *pfile.Block) *pfile.Entry {
	for i := range b.Entries {
		if e := &b.Entries[i]; e.Kind == pfile.EntryExec {
			return e
		}
	}
	return &pfile.Entry{Pos: b.Pos, FilePos: b.Pos}
}

// CheckCommand checks the program of a command line that /bin/sh -c
// runs (RebootCommand): its first word, looked up in PATH when it holds
// no '/'. Shell quoting is not parsed.
func CheckCommand(command string) error {
	words := strings.Fields(command)
	if len(words) == 0 {
		return &Error{Use: RebootProgram, Path: `""`, At: `""`, Err: ErrMissing, Sys: os.ErrNotExist}
	}
	_, err := Program(words[0], RebootProgram)
	return err
}

// Program finds the program name (a name without '/') in PATH as /bin/sh
// does and checks it for use (Check): the path to run, or why not.
func Program(name string, use Use) (string, error) {
	if strings.Contains(name, "/") {
		return name, Check(name, use)
	}
	path, err := lookPath(name, use)
	if err != nil {
		return "", err
	}
	return path, Check(path, use)
}

// defaultPath is the search path of /bin/sh (dash, bash) when PATH is
// not set.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// lookPath finds name as /bin/sh does: the first directory of PATH that
// holds an executable regular file of that name. Directories of PATH
// that are not absolute are skipped: they depend on the working
// directory, which is not a place pcheck trusts.
func lookPath(name string, use Use) (string, error) {
	search, ok := os.LookupEnv("PATH")
	if !ok || search == "" {
		search = defaultPath
	}
	for _, dir := range filepath.SplitList(search) {
		if !filepath.IsAbs(dir) {
			continue
		}
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() &&
			unix.Faccessat(unix.AT_FDCWD, p, unix.X_OK, unix.AT_EACCESS) == nil {
			return p, nil
		}
	}
	return "", &Error{Use: use, Path: name, At: name, Err: ErrMissing, Sys: notInPath(search)}
}
