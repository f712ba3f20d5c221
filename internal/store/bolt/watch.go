package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	bbolt "go.etcd.io/bbolt"

	"github.com/berthdev/berth/internal/errdefs"
	"github.com/berthdev/berth/internal/store"
)

// A catch-up read takes at most this much from the event log per bbolt read
// transaction, so a watcher never holds a long read transaction (which would
// stall bbolt remapping a growing file) and never buffers much.
const (
	replayRevisions = 256
	replayBytes     = 1 << 20
)

// errStopped ends a watcher whose context ended or whose store closed.
var errStopped = errors.New("watch stopped")

// Watch streams the changes to keys under prefix from fromRevision on, one
// response per revision that touched the prefix. fromRevision <= 0 means the
// changes after the current revision.
//
// A watcher first replays the event log, then follows the live feed; it is
// subscribed to the live feed before it replays, and drops live revisions the
// replay already sent, so it sees no gap and no duplicate. If the consumer
// falls more than Options.WatchBuffer revisions behind the live feed, the
// watcher is detached from it (writers never wait for watchers) and catches
// up from the event log again. If the log no longer holds the next revision
// the watcher needs, Watch fails with errdefs.ErrCompacted, or, once
// started, the channel's last response carries that error. The channel closes
// when ctx ends or the store closes.
//
// Event values are the watcher's own copies.
func (s *Store) Watch(ctx context.Context, prefix string, fromRevision int64) (<-chan store.WatchResponse, error) {
	if err := s.acquire(); err != nil {
		return nil, err
	}
	next := fromRevision
	if next <= 0 {
		next = s.rev.Load() + 1
	} else {
		var oldest int64
		err := s.db.View(func(btx *bbolt.Tx) error {
			oldest = getInt(btx.Bucket(metaBucket), oldestKey)
			return nil
		})
		switch {
		case err != nil:
			err = fmt.Errorf("bolt store: watch: %w", err)
		case next < oldest:
			err = compactedError(next, oldest)
		}
		if err != nil {
			s.release()
			return nil, err
		}
	}
	out := make(chan store.WatchResponse)
	go func() {
		defer s.release()
		defer close(out)
		s.watch(ctx, prefix, next, out)
	}()
	return out, nil
}

func compactedError(from, oldest int64) error {
	return fmt.Errorf("bolt store: watch from revision %d, oldest retained is %d: %w", from, oldest, errdefs.ErrCompacted)
}

func (s *Store) watch(ctx context.Context, prefix string, next int64, out chan<- store.WatchResponse) {
	log := s.log.With(slog.String("prefix", prefix))
	send := func(r store.WatchResponse) bool {
		select {
		case out <- r:
			return true
		case <-ctx.Done():
		case <-s.done:
		}
		return false
	}
	for {
		sub := s.hub.subscribe(prefix)
		var err error
		next, err = s.catchUp(ctx, prefix, next, send)
		if err != nil {
			s.hub.unsubscribe(sub)
			if !errors.Is(err, errStopped) {
				log.Warn("watch ended", slog.Int64("revision", next), slog.Any("error", err))
				send(store.WatchResponse{Err: err})
			}
			return
		}
		if !s.follow(ctx, sub, &next, send) {
			s.hub.unsubscribe(sub)
			return
		}
		log.Debug("watcher fell behind the live feed, catching up from the event log", slog.Int64("revision", next))
	}
}

// catchUp sends the logged revisions from next up to the latest committed
// one and returns the revision after them.
func (s *Store) catchUp(ctx context.Context, prefix string, next int64, send func(store.WatchResponse) bool) (int64, error) {
	for {
		// A replay through history that does not match the prefix sends
		// nothing, so look for the end of the watch between chunks too.
		select {
		case <-ctx.Done():
			return next, errStopped
		case <-s.done:
			return next, errStopped
		default:
		}
		resps, after, done, err := s.readLog(prefix, next)
		if err != nil {
			return next, err
		}
		for _, r := range resps {
			if !send(r) {
				return next, errStopped
			}
		}
		next = after
		if done {
			return next, nil
		}
	}
}

// readLog reads one bounded chunk of the event log from next. done reports
// that the chunk reached the latest committed revision.
func (s *Store) readLog(prefix string, next int64) (resps []store.WatchResponse, after int64, done bool, err error) {
	after = next
	err = s.db.View(func(btx *bbolt.Tx) error {
		meta := btx.Bucket(metaBucket)
		if oldest := getInt(meta, oldestKey); next < oldest {
			return compactedError(next, oldest)
		}
		c := btx.Bucket(eventsBucket).Cursor()
		revs, size := 0, 0
		for k, v := c.Seek(revKey(next)); k != nil; k, v = c.Next() {
			if revs == replayRevisions || size >= replayBytes {
				return nil
			}
			rev := int64(binary.BigEndian.Uint64(k))
			events, err := decodeEvents(v, rev, prefix)
			if err != nil {
				return err
			}
			if len(events) > 0 {
				resps = append(resps, store.WatchResponse{Revision: rev, Events: events})
			}
			after = rev + 1
			revs++
			size += len(v)
		}
		done = true
		after = max(after, getInt(meta, revisionKey)+1)
		return nil
	})
	return resps, after, done, err
}

// follow forwards the live feed from *next on. It returns false when the
// watcher should stop, and true when the hub detached it for falling behind.
func (s *Store) follow(ctx context.Context, sub *subscriber, next *int64, send func(store.WatchResponse) bool) bool {
	for {
		select {
		case r, ok := <-sub.ch:
			if !ok {
				return true
			}
			if r.Revision < *next {
				continue // already sent by the replay
			}
			if !send(r) {
				return false
			}
			*next = r.Revision + 1
		case <-ctx.Done():
			return false
		case <-s.done:
			return false
		}
	}
}

// hub fans committed revisions out to live watchers, in revision order.
type hub struct {
	buffer int

	mu sync.Mutex
	// published is the last revision fanned out; pending holds committed
	// revisions whose predecessors' commit handlers have not run yet.
	published int64
	pending   map[int64][]store.Event
	subs      map[*subscriber]struct{}
}

// subscriber is one watcher's live feed. The hub closes ch, and forgets the
// subscriber, when ch is full: that is the only reason ch closes.
type subscriber struct {
	prefix string
	ch     chan store.WatchResponse
}

func newHub(rev int64, buffer int) *hub {
	return &hub{
		buffer:    buffer,
		published: rev,
		pending:   make(map[int64][]store.Event),
		subs:      make(map[*subscriber]struct{}),
	}
}

func (h *hub) subscribe(prefix string) *subscriber {
	sub := &subscriber{prefix: prefix, ch: make(chan store.WatchResponse, h.buffer)}
	h.mu.Lock()
	h.subs[sub] = struct{}{}
	h.mu.Unlock()
	return sub
}

func (h *hub) unsubscribe(sub *subscriber) {
	h.mu.Lock()
	delete(h.subs, sub)
	h.mu.Unlock()
}

// publish hands the hub the events of a committed revision. It never blocks
// on a watcher.
func (h *hub) publish(rev int64, events []store.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if rev <= h.published {
		return // bbolt commits a revision once; nothing to do
	}
	h.pending[rev] = events
	for {
		events, ok := h.pending[h.published+1]
		if !ok {
			return
		}
		delete(h.pending, h.published+1)
		h.published++
		for sub := range h.subs {
			matched := matching(events, sub.prefix)
			if len(matched) == 0 {
				continue
			}
			select {
			case sub.ch <- store.WatchResponse{Revision: h.published, Events: matched}:
			default:
				delete(h.subs, sub)
				close(sub.ch)
			}
		}
	}
}

// matching returns copies of the events under prefix.
func matching(events []store.Event, prefix string) []store.Event {
	var out []store.Event
	for _, e := range events {
		if !strings.HasPrefix(e.KV.Key, prefix) {
			continue
		}
		if e.KV.Value != nil {
			e.KV.Value = bytes.Clone(e.KV.Value)
		}
		out = append(out, e)
	}
	return out
}
