// Package bolt is Berth's embedded store backend: a store.Store in one bbolt
// file.
//
// Every Update is fsync'd before it returns. Concurrent Updates are group
// committed (see committer): their functions run one after another inside
// one bbolt transaction and share its fsync, yet each is its own store
// transaction with its own revision. If one function fails, the shared
// transaction is rolled back and the others are retried; the failing
// function is run again alone and its error is returned unchanged to its
// caller only.
//
// Next to the keys the file keeps an event log of the last
// Options.WatchHistory revisions, so a Watch can resume from an old revision,
// also after a restart. Live changes reach watchers from memory after each
// commit.
package bolt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	bbolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/berthdev/berth/internal/errdefs"
	"github.com/berthdev/berth/internal/store"
)

const (
	// lockTimeout bounds how long Open waits for another process to release
	// the file.
	lockTimeout = time.Second
	// initialMmapSize is address space, not memory. bbolt must remap when the
	// file outgrows its mapping, and a remap waits for every open read
	// transaction: a long View would stall all writers. Mapping generously
	// up front (etcd maps 10 GiB) makes that rare.
	initialMmapSize = 1 << 30
)

// Store is a store.Store backed by one bbolt file. It is safe for concurrent
// use.
type Store struct {
	path string
	opts Options
	log  *slog.Logger
	db   *bbolt.DB
	hub  *hub
	// commits group-commits Updates.
	commits *committer

	// rev is the latest committed revision.
	rev atomic.Int64

	// mu guards closed and inflight. Close waits until every View, Update,
	// Compact and watcher that started before it has finished.
	mu       sync.Mutex
	closed   bool
	inflight int
	drained  chan struct{}
	// done is closed by Close to stop watchers.
	done chan struct{}
}

var _ store.Store = (*Store)(nil)

// Open opens or creates the store file at path. Only one process may have it
// open; Open fails with errdefs.ErrFailedPrecondition if another holds it.
func Open(path string, opts Options) (*Store, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	log := opts.Logger.With(slog.String("component", "store"), slog.String("backend", "bolt"))
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout:         lockTimeout,
		NoSync:          opts.NoSync,
		FreelistType:    bbolt.FreelistMapType,
		InitialMmapSize: initialMmapSize,
	})
	switch {
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, fmt.Errorf("bolt store: open %s: locked by another process: %w", path, errdefs.ErrFailedPrecondition)
	case err != nil:
		return nil, fmt.Errorf("bolt store: open %s: %w", path, err)
	}
	var rev, oldest int64
	err = db.Update(func(btx *bbolt.Tx) error {
		for _, name := range [][]byte{metaBucket, kvBucket, eventsBucket} {
			if _, err := btx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		meta := btx.Bucket(metaBucket)
		switch format := getInt(meta, formatKey); format {
		case 0:
			if err := putInt(meta, formatKey, formatVersion); err != nil {
				return err
			}
			if err := putInt(meta, oldestKey, 1); err != nil {
				return err
			}
		case formatVersion:
		default:
			return fmt.Errorf("file format %d, want %d: %w", format, formatVersion, errdefs.ErrFailedPrecondition)
		}
		rev, oldest = getInt(meta, revisionKey), getInt(meta, oldestKey)
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("bolt store: open %s: %w", path, err)
	}
	s := &Store{
		path:    path,
		opts:    opts,
		log:     log,
		db:      db,
		hub:     newHub(rev, opts.WatchBuffer),
		commits: newCommitter(db),
		drained: make(chan struct{}),
		done:    make(chan struct{}),
	}
	s.rev.Store(rev)
	log.Info("store opened", slog.String("path", path), slog.Int64("revision", rev),
		slog.Int64("oldest_revision", oldest), slog.Bool("no_sync", opts.NoSync))
	return s, nil
}

// Path is the file the store was opened from.
func (s *Store) Path() string { return s.path }

// Revision is the latest committed revision.
func (s *Store) Revision() int64 { return s.rev.Load() }

// View runs fn against a consistent snapshot. Values it reads are copies and
// stay valid after fn returns; the ReadTx does not. A View blocks no writer,
// unless the file outgrows its initial mapping while the View is open.
func (s *Store) View(ctx context.Context, fn func(tx store.ReadTx) error) error {
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.release()
	if err := ctx.Err(); err != nil {
		return err
	}
	var fnFailed bool
	err := s.db.View(func(btx *bbolt.Tx) error {
		t := newReadTx(btx)
		defer func() { t.done = true }()
		err := fn(t)
		fnFailed = err != nil
		return err
	})
	if err != nil && !fnFailed {
		return fmt.Errorf("bolt store: view: %w", err)
	}
	return err
}

// Update runs fn in one atomic transaction, group-committed with concurrent
// Updates, and returns once it is fsync'd. fn may run more than once, on
// another goroutine, and must not call the Store itself. An error from fn
// (or from ctx, checked before each run) is returned unchanged; if fn
// panics, Update panics with the same value in the caller's goroutine.
func (s *Store) Update(ctx context.Context, fn func(tx store.Tx) error) (int64, error) {
	if err := s.acquire(); err != nil {
		return 0, err
	}
	defer s.release()
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var (
		rev      int64
		fnFailed bool
	)
	// The closure runs once per attempt: inside a shared batch transaction,
	// and again alone if anything in that batch failed. Only the attempt
	// that commits leaves its results in rev and fnFailed.
	err := s.commits.update(func(btx *bbolt.Tx) error {
		rev, fnFailed = 0, false
		if err := ctx.Err(); err != nil {
			fnFailed = true
			return err
		}
		meta := btx.Bucket(metaBucket)
		t := &writeTx{readTx: readTx{kv: btx.Bucket(kvBucket), rev: getInt(meta, revisionKey)}}
		err := fn(t)
		t.done = true
		if err != nil {
			fnFailed = true
			return err
		}
		if len(t.events) == 0 {
			rev = t.rev
			return nil
		}
		rev = t.rev + 1
		if err := appendLog(btx, rev, t.events, s.opts.WatchHistory); err != nil {
			return err
		}
		committed, events := rev, t.events
		btx.OnCommit(func() { s.committed(committed, events) })
		return nil
	})
	switch {
	case err == nil:
		return rev, nil
	case fnFailed:
		return 0, err
	default:
		return 0, fmt.Errorf("bolt store: commit: %w", err)
	}
}

// committed runs after the bbolt commit that made rev durable. Commits are
// serialised by bbolt, but their handlers may interleave; the hub restores
// revision order.
func (s *Store) committed(rev int64, events []store.Event) {
	for {
		cur := s.rev.Load()
		if rev <= cur || s.rev.CompareAndSwap(cur, rev) {
			break
		}
	}
	s.hub.publish(rev, events)
}

// Compact discards the event log before revision, so a Watch from an older
// revision fails with errdefs.ErrCompacted. It does not change the current
// revision or any key. Compacting to a revision already compacted is a
// no-op; compacting past the current revision is an invalid argument.
func (s *Store) Compact(ctx context.Context, revision int64) error {
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.release()
	if cur := s.rev.Load(); revision > cur {
		return fmt.Errorf("bolt store: compact to revision %d beyond current %d: %w", revision, cur, errdefs.ErrInvalidArgument)
	}
	var oldest int64
	err := s.db.Update(func(btx *bbolt.Tx) error {
		meta := btx.Bucket(metaBucket)
		oldest = getInt(meta, oldestKey)
		if revision <= oldest {
			return nil
		}
		oldest = revision
		return putInt(meta, oldestKey, oldest)
	})
	if err != nil {
		return fmt.Errorf("bolt store: compact to revision %d: %w", revision, err)
	}
	// Delete the discarded events a chunk per transaction; later commits
	// would trim them too, but a caller compacting wants the space back.
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var n int
		err := s.db.Update(func(btx *bbolt.Tx) error {
			var err error
			n, err = trimLog(btx.Bucket(eventsBucket), oldest, compactChunk)
			return err
		})
		if err != nil {
			return fmt.Errorf("bolt store: compact to revision %d: %w", revision, err)
		}
		if n < compactChunk {
			break
		}
	}
	s.log.Info("store compacted", slog.Int64("oldest_revision", oldest))
	return nil
}

// Close stops watchers, waits for running calls to finish and closes the
// file. It is idempotent; other calls after Close fail with
// errdefs.ErrClosed. It must not be called from inside a View or Update.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	busy := s.inflight > 0
	s.mu.Unlock()
	if busy {
		<-s.drained
	}
	s.commits.close()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("bolt store: close %s: %w", s.path, err)
	}
	s.log.Info("store closed", slog.String("path", s.path), slog.Int64("revision", s.rev.Load()))
	return nil
}

func (s *Store) acquire() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("bolt store %s: %w", s.path, errdefs.ErrClosed)
	}
	s.inflight++
	return nil
}

func (s *Store) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inflight--
	if s.closed && s.inflight == 0 {
		close(s.drained)
	}
}
