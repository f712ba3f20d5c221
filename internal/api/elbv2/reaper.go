package elbv2

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/berthdev/berth/internal/state"
	"github.com/berthdev/berth/internal/store"
)

// Reaper ends draining: it removes each deregistered target's record once
// its group's deregistration delay is over (state.ReapDrainedTargets), so
// DescribeTargetHealth stops listing it and the data plane forgets it. The
// data plane may remove a draining target earlier, when no request to it
// is in flight (state.RemoveTarget), as AWS does.
type Reaper struct {
	store store.Store
	now   func() time.Time
	after func(time.Duration) <-chan time.Time
	log   *slog.Logger
}

// ReaperConfig configures a Reaper.
type ReaperConfig struct {
	Store store.Store
	// Now is the clock deadlines are compared with; nil means time.Now.
	Now func() time.Time
	// After waits for the next deadline; nil means time.After. Tests pass a
	// channel they control.
	After  func(time.Duration) <-chan time.Time
	Logger *slog.Logger
}

// NewReaper returns a Reaper over cfg.Store.
func NewReaper(cfg ReaperConfig) (*Reaper, error) {
	if cfg.Store == nil {
		return nil, fmt.Errorf("elbv2: the reaper needs a store")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.After == nil {
		cfg.After = time.After
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Reaper{store: cfg.Store, now: cfg.Now, after: cfg.After, log: cfg.Logger.With("component", "elb_target_reaper")}, nil
}

// reapBatch bounds one transaction.
const reapBatch = 256

// maxReapWait bounds how long Run sleeps with nothing due, in case a watch
// event was missed.
const maxReapWait = time.Minute

// ReapOnce removes every draining target that is due and returns the
// deadline of the next one (zero when none is draining).
func (r *Reaper) ReapOnce(ctx context.Context) (time.Time, error) {
	for {
		var removed int
		var next time.Time
		now := r.now()
		_, err := r.store.Update(ctx, func(tx store.Tx) error {
			var err error
			removed, next, err = state.ReapDrainedTargets(tx, now, reapBatch)
			return err
		})
		if err != nil {
			return time.Time{}, err
		}
		if removed > 0 {
			r.log.Info("drained targets removed", "count", removed)
		}
		if next.IsZero() || next.After(now) {
			return next, nil
		}
	}
}

// Run reaps until ctx ends, waking at the next deadline or when a target
// starts draining.
func (r *Reaper) Run(ctx context.Context) error {
	for {
		watch, err := r.store.Watch(ctx, state.DrainingTargetsPrefix, 0)
		if err != nil {
			return err
		}
		if err := r.loop(ctx, watch); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// loop reaps until the watch ends (nil: watch again) or ctx does.
func (r *Reaper) loop(ctx context.Context, watch <-chan store.WatchResponse) error {
	for {
		next, err := r.ReapOnce(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		wait := maxReapWait
		if !next.IsZero() {
			wait = min(wait, next.Sub(r.now()))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-r.after(wait):
		case resp, ok := <-watch:
			if !ok || resp.Err != nil {
				return nil
			}
		}
	}
}
