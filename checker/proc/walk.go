package proc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// StatWalker lists every process with what /proc/PID/stat holds, as a
// stat-only walk of /proc would, but reads /proc/PID/stat only for the
// processes it has not seen before (and those it must read fresh): the
// others keep the Info of their last read.
//
// A process is recognised by its pid and the inode number of its
// /proc/PID directory, which the directory listing gives for free
// (getdents64's d_ino). procfs gives /proc/PID a dentry and an inode that
// live as long as the task: a new process, even on the same pid, gets a
// new inode (get_next_ino), and a dentry dropped under memory pressure
// comes back with a new number too, which only costs a read. Same pid and
// same inode is the same process, whose start time, and so its ID, cannot
// change.
//
// What a reused Info may have wrong, and how the walk deals with it:
//   - State: a process that exited and was not reaped keeps its
//     directory. The pids the caller names fresh are read every walk:
//     those whose death nothing else would tell (no pidfd).
//   - PPid: it changes only when the parent exits (reparenting to a
//     subreaper or init; ptrace does not touch the real parent). Every
//     process with children is read every walk, and the children of a
//     parent that is gone, has a new inode or start time, is dead or is
//     no longer kept (its read failed) are read again: parent links, and
//     so descendants, are as fresh as a full walk's. (A child whose
//     parent /proc hides, hidepid, is read every walk.)
//   - PGid, Sid (setpgid, setsid) and Comm (exec, PR_SET_NAME): as of
//     the first read. Callers that need them current read the process.
//
// The methods may be called from several goroutines; walks are serialised.
type StatWalker struct {
	mu    sync.Mutex
	seen  map[int]walked // by pid, as of the last walk
	dents []byte         // getdents64 buffer
	list  []dirent       // the pids of this walk
	r     reader
}

// walked is what a StatWalker keeps of one process.
type walked struct {
	ino  uint64
	info Info
	read bool // read (not reused) in the current walk
}

// dirent is one /proc/PID entry of a directory listing.
type dirent struct {
	pid int
	ino uint64
}

// unknownIno is the d_ino procfs gives an entry whose inode it could not
// set up (proc_fill_cache): such an entry is always read.
const unknownIno = 1

// NewStatWalker returns a walker that has seen nothing yet: its first walk
// reads every process.
func NewStatWalker() *StatWalker {
	return &StatWalker{seen: make(map[int]walked)}
}

// ScanStat returns every process with only what /proc/PID/stat holds, all
// of them read now: UID is -1, Exe and Argv are empty, so that no Matcher
// with a path, user or arguments matches them. It reads one file per
// process where Scan reads three and a link: enough to follow processes
// already found (start time, state, parent, group), not to find them.
func ScanStat() ([]Info, error) { return NewStatWalker().Scan(nil) }

// Scan returns every process, ordered by pid, as ScanStat does; fresh
// (nil: none) names the pids to read even when seen before, those whose
// State must be current. Processes that exit during the walk are left out,
// and so are those /proc does not let pcheck read (hidepid).
func (w *StatWalker) Scan(fresh func(pid int) bool) (_ []Info, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	defer func() {
		if err != nil {
			// A walk cut short has forgotten some processes and updated
			// others without telling their children: the next reads all.
			clear(w.seen)
		}
	}()
	root, err := unix.Open(procRoot, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("proc: scan: %w", err)
	}
	defer unix.Close(root)
	if err := w.listPids(root); err != nil {
		return nil, fmt.Errorf("proc: scan %s: %w", procRoot, err)
	}
	parents := make(map[int]bool)
	for _, p := range w.seen {
		parents[p.info.PPid] = true
	}
	// orphaned are the pids whose children may have a new parent: gone,
	// reused, or dead.
	orphaned := make(map[int]bool)
	listed := make(map[int]bool, len(w.list))
	for _, d := range w.list {
		listed[d.pid] = true
	}
	for pid := range w.seen {
		if !listed[pid] {
			orphaned[pid] = true
			delete(w.seen, pid)
		}
	}
	for _, d := range w.list {
		old, ok := w.seen[d.pid]
		if ok && old.ino == d.ino && d.ino != unknownIno && !parents[d.pid] && (fresh == nil || !fresh(d.pid)) {
			old.read = false
			w.seen[d.pid] = old
			continue
		}
		info, err := w.readStat(root, d)
		if err != nil {
			return nil, err
		}
		// Another process on the pid (a new inode, or the same start
		// time no longer: inode 1 every time), gone since the listing
		// (a zero Info), or dead.
		if ok && (old.ino != d.ino || old.info.Start != info.Start) || info.Dead() {
			orphaned[d.pid] = true
		}
	}
	all := make([]Info, 0, len(w.list))
	for _, d := range w.list {
		p, ok := w.seen[d.pid]
		if !ok {
			continue // exited during the walk
		}
		// A parent that this walk or an earlier one forgot (gone since
		// the listing, unreadable, or a walk cut short) may have died
		// unseen: its child is read again, as is that of an orphaned one.
		_, parentKept := w.seen[p.info.PPid]
		if !p.read && (orphaned[p.info.PPid] || p.info.PPid > 0 && !parentKept) {
			info, err := w.readStat(root, d)
			if err != nil {
				return nil, err
			}
			if _, ok := w.seen[d.pid]; !ok {
				continue
			}
			p.info = info
		}
		all = append(all, p.info)
	}
	sortByPid(all)
	return all, nil
}

// readStat reads /proc/PID/stat of d and records it; a process that is
// gone or unreadable is forgotten, with a zero Info and no error.
func (w *StatWalker) readStat(root int, d dirent) (Info, error) {
	info, err := w.r.readStatAt(root, strconv.Itoa(d.pid), d.pid)
	if errors.Is(err, ErrNotFound) || errors.Is(err, fs.ErrPermission) {
		delete(w.seen, d.pid)
		return Info{}, nil
	}
	if err != nil {
		return Info{}, fmt.Errorf("proc: scan: %w", err)
	}
	w.seen[d.pid] = walked{ino: d.ino, info: info, read: true}
	return info, nil
}

// dentsSize is the size of the getdents64 buffer: a thousand processes
// take about 24 KiB of entries, two calls.
const dentsSize = 16 << 10

// listPids lists the /proc/PID entries of the open /proc root dir into
// w.list, with their inode numbers, from getdents64's struct
// linux_dirent64:
//
//	u64 d_ino; s64 d_off; u16 d_reclen; u8 d_type; char d_name[];
func (w *StatWalker) listPids(dir int) error {
	if w.dents == nil {
		w.dents = make([]byte, dentsSize)
	}
	w.list = w.list[:0]
	for {
		n, err := unix.Getdents(dir, w.dents)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n <= 0 {
			return nil
		}
		for b := w.dents[:n]; len(b) >= 19; {
			reclen := int(binary.NativeEndian.Uint16(b[16:]))
			if reclen < 19 || reclen > len(b) {
				return errors.New("malformed directory entry")
			}
			if pid := parsePid(b[19:reclen]); pid > 0 {
				w.list = append(w.list, dirent{pid: pid, ino: binary.NativeEndian.Uint64(b)})
			}
			b = b[reclen:]
		}
	}
}

// parsePid returns the pid a NUL-terminated directory name spells, 0 when
// it is not one (self, sys, ...).
func parsePid(name []byte) int {
	pid := 0
	for i, c := range name {
		switch {
		case c == 0 && i > 0:
			return pid
		case c < '0' || c > '9' || pid > 1<<30:
			return 0
		}
		pid = pid*10 + int(c-'0')
	}
	return 0
}
