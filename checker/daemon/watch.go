package daemon

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// settle is how long a pfile must stay closed and unchanged after a change
// before it is reloaded: editors write a file in several steps.
const settle = 300 * time.Millisecond

// watchMask are the inotify events of a watched directory that concern a
// pfile: written (IN_MODIFY: a writer has it open), closed after writing
// (IN_CLOSE_WRITE), or put in place (IN_MOVED_TO, IN_CREATE) by a rename
// or a link. fsnotify v1.10.1 knows IN_CLOSE_WRITE but does not export the
// option that enables it, hence inotify itself.
const watchMask = unix.IN_MODIFY | unix.IN_CLOSE_WRITE | unix.IN_MOVED_TO | unix.IN_CREATE

// watchedPfile is the state of one pfile between a change and its reload.
type watchedPfile struct {
	p *runningPfile
	// pending: changed since the last reload or refusal.
	pending bool
	// open: written to and not closed since (IN_MODIFY without a later
	// IN_CLOSE_WRITE): a writer may still be writing it.
	open bool
	// sum is the hash of the content read when the file was last put in
	// place or closed; the reload waits until it is the same after settle.
	sum [sha256.Size]byte
	// advised: the advice to write by rename was logged for this change
	// burst.
	advised bool
	// due is when the pfile is looked at again.
	due time.Time
}

// watchFiles reloads a pfile when it changes on disk (--watch). The
// directories are watched, not the files, so that a pfile replaced by
// rename (as editors and config management save) is still seen. A pfile
// is reloaded only when no writer has it open (the last write was followed
// by a close) and its content is the same at the event and settle later;
// otherwise pcheck waits for the next change and advises writing by rename.
func (d *daemon) watchFiles(ctx context.Context) error {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return fmt.Errorf("watching pfiles: %w", err)
	}
	// A non-blocking descriptor in an os.File uses the runtime poller:
	// Close wakes the reader.
	in := os.NewFile(uintptr(fd), "inotify")
	byPath := map[string]*watchedPfile{}
	dirs := map[int32]string{}
	for _, p := range d.pfiles {
		abs, err := filepath.Abs(p.path)
		if err != nil {
			abs = p.path
		}
		byPath[abs] = &watchedPfile{p: p}
		dir := filepath.Dir(abs)
		wd, err := unix.InotifyAddWatch(fd, dir, watchMask)
		if err != nil {
			in.Close()
			return fmt.Errorf("watching %s: %w", dir, err)
		}
		dirs[int32(wd)] = dir
	}
	type event struct {
		name string
		mask uint32
	}
	events := make(chan []event)
	go func() {
		<-ctx.Done()
		in.Close()
	}()
	go func() {
		defer close(events)
		var buf [64 * 1024]byte
		for {
			n, err := in.Read(buf[:])
			if err != nil {
				if !errors.Is(err, os.ErrClosed) {
					d.main.Log(warning("--watch: %v", err))
				}
				return
			}
			var batch []event
			for off := 0; off+unix.SizeofInotifyEvent <= n; {
				raw := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
				name := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(raw.Len)]
				for len(name) > 0 && name[len(name)-1] == 0 {
					name = name[:len(name)-1]
				}
				ev := event{mask: raw.Mask}
				if dir, ok := dirs[raw.Wd]; ok && len(name) > 0 {
					ev.name = filepath.Join(dir, string(name))
				}
				batch = append(batch, ev)
				off += unix.SizeofInotifyEvent + int(raw.Len)
			}
			select {
			case events <- batch:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() {
		timer := time.NewTimer(time.Hour)
		timer.Stop()
		for {
			select {
			case batch, ok := <-events:
				if !ok {
					return
				}
				for _, ev := range batch {
					if ev.mask&unix.IN_Q_OVERFLOW != 0 {
						// Events were lost: look at every pfile again.
						for _, w := range byPath {
							w.changed(unix.IN_CLOSE_WRITE)
						}
						continue
					}
					if w := byPath[ev.name]; w != nil {
						w.changed(ev.mask)
					}
				}
			case <-timer.C:
				for _, w := range byPath {
					if w.pending && !time.Now().Before(w.due) {
						d.settled(w)
					}
				}
			}
			// The timer fires at the earliest due pfile.
			var next time.Time
			for _, w := range byPath {
				if w.pending && (next.IsZero() || w.due.Before(next)) {
					next = w.due
				}
			}
			timer.Stop()
			if !next.IsZero() {
				timer.Reset(time.Until(next))
			}
		}
	}()
	return nil
}

// changed records an inotify event of the pfile.
func (w *watchedPfile) changed(mask uint32) {
	if !w.pending {
		w.advised = false
	}
	w.pending = true
	w.due = time.Now().Add(settle)
	if mask&unix.IN_MODIFY != 0 {
		w.open = true
	}
	if mask&(unix.IN_CLOSE_WRITE|unix.IN_MOVED_TO|unix.IN_CREATE) != 0 {
		// IN_CREATE comes before the writes of a new file: its IN_MODIFY
		// reopens it.
		w.open = false
		w.sum = contentSum(w.p.path)
	}
}

// settled is called settle after the last event of a pending pfile: it
// reloads the pfile if it is closed, unchanged and valid.
func (d *daemon) settled(w *watchedPfile) {
	if w.p.ended.Load() {
		w.pending = false
		return
	}
	if w.open || contentSum(w.p.path) != w.sum {
		// Still being written: wait for its close or next change.
		d.advise(w)
		if !w.open {
			w.sum = contentSum(w.p.path)
			w.due = time.Now().Add(settle)
			return
		}
		w.due = time.Now().Add(time.Hour)
		return
	}
	w.pending = false
	if d.reload(w.p) != nil {
		d.advise(w)
	}
}

// advise logs, once per change burst, that a pfile changed while pcheck
// read it.
func (d *daemon) advise(w *watchedPfile) {
	if w.advised {
		return
	}
	w.advised = true
	w.p.log.Log(warning("pfile '%s' changed while being read; write pfiles to a temporary file and rename it into place", w.p.path))
}

// contentSum is the hash of a file's content; a file that cannot be read
// hashes as empty.
func contentSum(path string) [sha256.Size]byte {
	b, _ := os.ReadFile(path)
	return sha256.Sum256(b)
}
