package bolt

import (
	"errors"
	"fmt"

	bbolt "go.etcd.io/bbolt"
)

// maxBatch bounds how many Update functions share one bbolt transaction.
const maxBatch = 1000

// errTrySolo tells a caller its function failed inside a shared transaction
// and must run again on its own.
var errTrySolo = errors.New("bolt store: function failed in a group commit; run it alone")

// committer group-commits write functions: one goroutine takes every
// function queued while the previous transaction was being written and
// fsync'd, runs them one after another in one bbolt transaction, and commits
// them with one fsync. An uncontended write waits for nobody; under load the
// batch grows with the fsync latency.
//
// The failure handling is bbolt's own DB.Batch's: if a function fails, the
// shared transaction is rolled back, the function is taken out and its
// caller re-runs it alone in a transaction of its own (so the error it
// returns was computed against committed state), and the rest are retried.
// One refinement: the first function of a batch already ran against
// committed state alone, so its error is final and it is not re-run.
//
// DB.Batch itself is not used because it holds every call for
// MaxBatchDelay (10ms by default) before committing: an uncontended Update
// took 11ms where a bare fsync takes 0.13ms. Shortening the delay trades
// that latency against batch size; collecting whatever queued up during the
// previous commit needs no delay at all.
type committer struct {
	db    *bbolt.DB
	queue chan call
	stop  chan struct{}
	done  chan struct{}
}

type call struct {
	fn   func(*bbolt.Tx) error
	errc chan<- error
}

func newCommitter(db *bbolt.DB) *committer {
	c := &committer{
		db:    db,
		queue: make(chan call, maxBatch),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	go c.run()
	return c
}

// update runs fn in a group-committed transaction; fn may run more than
// once. It returns fn's error unchanged, or the commit's.
func (c *committer) update(fn func(*bbolt.Tx) error) error {
	errc := make(chan error, 1)
	c.queue <- call{fn: fn, errc: errc}
	err := <-errc
	if err == errTrySolo {
		err = c.db.Update(fn)
	}
	return err
}

// close stops the committer. No update may be running or follow.
func (c *committer) close() {
	close(c.stop)
	<-c.done
}

func (c *committer) run() {
	defer close(c.done)
	for {
		var batch []call
		select {
		case first := <-c.queue:
			batch = append(batch, first)
		case <-c.stop:
			return
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case next := <-c.queue:
				batch = append(batch, next)
			default:
				break fill
			}
		}
		c.commit(batch)
	}
}

func (c *committer) commit(batch []call) {
	for len(batch) > 0 {
		failed := -1
		err := c.db.Update(func(tx *bbolt.Tx) error {
			for i, call := range batch {
				if err := safely(call.fn, tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		var p *panicError
		switch {
		case failed < 0:
			for _, call := range batch {
				call.errc <- err
			}
			return
		case failed == 0 && !errors.As(err, &p):
			batch[0].errc <- err
		default:
			// Let the caller re-run it: a panic then happens in the
			// caller's goroutine, and any other error is recomputed
			// without the uncommitted writes of the functions before it.
			batch[failed].errc <- errTrySolo
		}
		batch = append(batch[:failed], batch[failed+1:]...)
	}
}

// panicError is a panic in an Update function, caught in the committer.
type panicError struct{ value any }

func (e *panicError) Error() string {
	return fmt.Sprintf("bolt store: update function panicked: %v", e.value)
}

// safely turns a panic in fn into an error, so one caller's panic cannot
// take down the committer; the caller re-runs fn alone and panics in its own
// goroutine.
func safely(fn func(*bbolt.Tx) error, tx *bbolt.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &panicError{value: p}
		}
	}()
	return fn(tx)
}
