// Package controller holds the control plane's reconcile loops. Each loop
// reads and writes the store and nothing else, and runs as Run(ctx) under
// the control plane's errgroup.
package controller

import (
	"context"
	"log/slog"
	"time"

	"github.com/berthdev/berth/internal/state"
	"github.com/berthdev/berth/internal/store"
)

// DefaultTaskRetention is how long a STOPPED task stays describable; ECS
// keeps stopped tasks for about an hour.
const DefaultTaskRetention = time.Hour

// Reaper deletes tasks that have been STOPPED for longer than Retention:
// their record, their spec and their index entries. It reads the stopped
// index, so a pass costs the number of tasks it deletes.
type Reaper struct {
	Store store.Store
	// Retention is how long stopped tasks are kept; default DefaultTaskRetention.
	Retention time.Duration
	// Interval is how often it looks; default one minute.
	Interval time.Duration
	// Batch caps the tasks deleted in one transaction; default 500.
	Batch  int
	Now    func() time.Time
	Logger *slog.Logger
}

func (r *Reaper) defaults() {
	if r.Retention <= 0 {
		r.Retention = DefaultTaskRetention
	}
	if r.Interval <= 0 {
		r.Interval = time.Minute
	}
	if r.Batch <= 0 {
		r.Batch = 500
	}
	if r.Now == nil {
		r.Now = time.Now
	}
}

// Run reaps until ctx ends.
func (r *Reaper) Run(ctx context.Context) error {
	r.defaults()
	log := slog.New(slog.DiscardHandler)
	if r.Logger != nil {
		log = r.Logger
	}
	log = log.With("component", "task_reaper")
	t := time.NewTicker(r.Interval)
	defer t.Stop()
	for {
		n, err := r.Pass(ctx)
		if err != nil && ctx.Err() == nil {
			log.Warn("reaping stopped tasks failed", "err", err)
		} else if n > 0 {
			log.Info("reaped stopped tasks", "count", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Pass deletes every task stopped before Now()-Retention, and every RunTask
// clientToken older than state.ClientTokenTTL, and returns how many tasks it
// deleted.
func (r *Reaper) Pass(ctx context.Context) (int, error) {
	r.defaults()
	if _, err := r.sweep(ctx, state.ClientTokenTimesPrefix, state.ClientTokensBefore(r.Now().Add(-state.ClientTokenTTL)), state.DeleteClientToken); err != nil {
		return 0, err
	}
	return r.sweep(ctx, state.StoppedTasksPrefix, state.StoppedBefore(r.Now().Add(-r.Retention)), state.DeleteStoppedTask)
}

// sweep deletes, in batches, the index entries under prefix that sort before
// cutoff, with del.
func (r *Reaper) sweep(ctx context.Context, prefix, cutoff string, del func(store.Tx, string) error) (int, error) {
	total := 0
	for {
		n := 0
		_, err := r.Store.Update(ctx, func(tx store.Tx) error {
			n = 0
			kvs, err := tx.List(prefix, "", r.Batch)
			if err != nil {
				return err
			}
			for _, kv := range kvs {
				if kv.Key >= cutoff {
					break
				}
				if err := del(tx, kv.Key); err != nil {
					return err
				}
				n++
			}
			return nil
		})
		total += n
		if err != nil || n < r.Batch {
			return total, err
		}
	}
}
