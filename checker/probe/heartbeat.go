package probe

import (
	"context"
	"os"
	"time"
)

// heartbeatProber reads a file's modification time.
type heartbeatProber struct{ path string }

// Heartbeat returns the _bi_heartbeat probe: OK when the file exists, with
// its modification time in Result.ModTime and Detail. A missing file fails
// (errors.Is(err, fs.ErrNotExist)). Whether the time is stale is for the
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
		return failure(ctx, start, err)
	}
	r := success(start, "mtime "+fi.ModTime().Format(time.RFC3339Nano))
	r.ModTime = fi.ModTime()
	return r
}
