package bolt

import (
	"fmt"
	"log/slog"

	"github.com/berthdev/berth/internal/errdefs"
)

// Defaults applied by Options.Validate.
const (
	// DefaultWatchHistory is the number of most recent revisions whose events
	// are kept for Watch to replay.
	DefaultWatchHistory = 100000
	// DefaultWatchBuffer is the number of revisions a watcher may fall behind
	// the live feed before it is detached and catches up from the event log.
	DefaultWatchBuffer = 1024
)

// Options configures a Store.
type Options struct {
	// Logger receives the store's log records; a "component" attribute is
	// added. Nil discards them.
	Logger *slog.Logger
	// WatchHistory is how many of the most recent revisions keep their events
	// in the event log, so a Watch can resume from them (also after a
	// restart). Older events are discarded a bounded chunk at a time inside
	// later commits, and a Watch from a discarded revision fails with
	// errdefs.ErrCompacted. Zero means DefaultWatchHistory.
	WatchHistory int
	// WatchBuffer is how many revisions each watcher may have queued from the
	// live feed. A watcher that falls further behind never blocks writers: it
	// is detached and continues from the event log, and ends with
	// errdefs.ErrCompacted only if the log no longer holds what it missed.
	// Zero means DefaultWatchBuffer.
	WatchBuffer int
	// NoSync skips fsync on commit. It is UNSAFE: an acknowledged Update may
	// be lost, and the file may be corrupted, by a crash or power loss. It
	// exists only for tests and benchmarks that do not measure durability.
	NoSync bool
}

// Validate fills defaults and rejects impossible values.
func (o *Options) Validate() error {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case o.WatchHistory < 0:
		return fmt.Errorf("bolt store: WatchHistory %d is negative: %w", o.WatchHistory, errdefs.ErrInvalidArgument)
	case o.WatchHistory == 0:
		o.WatchHistory = DefaultWatchHistory
	}
	switch {
	case o.WatchBuffer < 0:
		return fmt.Errorf("bolt store: WatchBuffer %d is negative: %w", o.WatchBuffer, errdefs.ErrInvalidArgument)
	case o.WatchBuffer == 0:
		o.WatchBuffer = DefaultWatchBuffer
	}
	return nil
}
