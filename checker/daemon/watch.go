package daemon

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// settle is how long a pfile must stay unchanged after a change before it
// is reloaded: editors write a file in several steps.
const settle = 300 * time.Millisecond

// watchFiles reloads a pfile when it changes on disk (--watch). The
// directories are watched, not the files, so that a pfile replaced by
// rename (as editors and config management save) is still seen.
func (d *daemon) watchFiles(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watching pfiles: %w", err)
	}
	byPath := map[string]*runningPfile{}
	for _, p := range d.pfiles {
		abs, err := filepath.Abs(p.path)
		if err != nil {
			abs = p.path
		}
		byPath[abs] = p
		dir := filepath.Dir(abs)
		if err := w.Add(dir); err != nil {
			w.Close()
			return fmt.Errorf("watching %s: %w", dir, err)
		}
	}
	go func() {
		defer w.Close()
		pending := map[*runningPfile]bool{}
		timer := time.NewTimer(time.Hour)
		timer.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if p := byPath[ev.Name]; p != nil && ev.Op&(fsnotify.Write|fsnotify.Create|fsnotify.Rename) != 0 {
					pending[p] = true
					timer.Reset(settle)
				}
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				d.main.Log(warning("--watch: %v", err))
			case <-timer.C:
				for p := range pending {
					if !p.ended.Load() {
						d.reload(p)
					}
				}
				clear(pending)
			}
		}
	}()
	return nil
}
