package probe

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"syscall"
	"time"
)

// heartbeatProber reads a file's modification time.
type heartbeatProber struct{ path string }

// Heartbeat returns the _bi_heartbeat probe: OK when the file exists, with
// its modification time in Result.ModTime and Detail. A missing file fails
// (errors.Is(err, fs.ErrNotExist); so does a path through a file, ENOTDIR);
// a file pcheck may not look at (EACCES, ELOOP, ENAMETOOLONG) is Unknown. Whether the time is stale is for the
// caller to decide, by noticing on its monotonic clock when it last changed.
func Heartbeat(path string) Prober { return &heartbeatProber{path: path} }

// Run performs one attempt.
func (p *heartbeatProber) Run(ctx context.Context) Result {
	start := time.Now()
	if err := ctx.Err(); err != nil {
		return failure(ctx, start, err)
	}
	fi, err := os.Stat(p.path)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
			err = broken(err) // pcheck may not look (EACCES, ELOOP, ...)
		}
		return failure(ctx, start, err)
	}
	r := success(start, "mtime "+fi.ModTime().Format(time.RFC3339Nano))
	r.ModTime = fi.ModTime()
	return r
}
