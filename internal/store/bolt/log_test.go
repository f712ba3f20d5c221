package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/berthdev/berth/internal/errdefs"
	"github.com/berthdev/berth/internal/store"
)

// logRange returns the first and last revision in the event log and how
// many it holds.
func logRange(t *testing.T, s *Store) (first, last int64, n int) {
	t.Helper()
	err := s.db.View(func(btx *bbolt.Tx) error {
		c := btx.Bucket(eventsBucket).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			rev := int64(binary.BigEndian.Uint64(k))
			if n == 0 {
				first = rev
			}
			last = rev
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return first, last, n
}

func TestWatchHistoryRetention(t *testing.T) {
	const history = 10
	path := filepath.Join(t.TempDir(), "berth.db")
	s, err := Open(path, Options{WatchHistory: history, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 50 {
		if _, err := s.Update(t.Context(), func(tx store.Tx) error { return tx.Put("/k", []byte(fmt.Sprint(i))) }); err != nil {
			t.Fatal(err)
		}
	}
	if first, last, n := logRange(t, s); first != 41 || last != 50 || n != history {
		t.Fatalf("event log holds %d revisions %d..%d, want %d revisions 41..50", n, first, last, history)
	}
	if _, err := s.Watch(t.Context(), "/", 40); !errors.Is(err, errdefs.ErrCompacted) {
		t.Fatalf("Watch from a trimmed revision = %v, want ErrCompacted", err)
	}
	ch, err := s.Watch(t.Context(), "/", 41)
	if err != nil {
		t.Fatal(err)
	}
	if r := <-ch; r.Revision != 41 || r.Err != nil {
		t.Fatalf("first response from 41: revision %d, err %v", r.Revision, r.Err)
	}
}

// TestCompactInChunks compacts more history than one transaction trims and
// checks that Compact removes all of it.
func TestCompactInChunks(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "berth.db"), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const revs = 3*compactChunk + 7
	for i := range revs {
		if _, err := s.Update(t.Context(), func(tx store.Tx) error { return tx.Put(fmt.Sprintf("/k/%d", i), nil) }); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Compact(t.Context(), revs-1); err != nil {
		t.Fatal(err)
	}
	if first, last, n := logRange(t, s); first != revs-1 || last != revs || n != 2 {
		t.Fatalf("event log holds %d revisions %d..%d after Compact(%d)", n, first, last, revs-1)
	}
	if err := s.Compact(t.Context(), revs+1); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("Compact beyond the current revision = %v, want ErrInvalidArgument", err)
	}
}

// TestSlowWatcherCompacted detaches a watcher that stopped reading, lets the
// history it needs be trimmed, and checks it ends with ErrCompacted after a
// gap-free run of what it had.
func TestSlowWatcherCompacted(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "berth.db"), Options{WatchHistory: 10, WatchBuffer: 2, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ch, err := s.Watch(t.Context(), "/", 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if _, err := s.Update(t.Context(), func(tx store.Tx) error { return tx.Put("/k", []byte(fmt.Sprint(i))) }); err != nil {
			t.Fatal(err)
		}
	}
	want := int64(1)
	deadline := time.After(10 * time.Second)
	for {
		var r store.WatchResponse
		select {
		case resp, open := <-ch:
			if !open {
				t.Fatal("watch closed without an error")
			}
			r = resp
		case <-deadline:
			t.Fatal("watch neither failed nor closed")
		}
		if r.Err != nil {
			if !errors.Is(r.Err, errdefs.ErrCompacted) {
				t.Fatalf("watch ended with %v, want ErrCompacted", r.Err)
			}
			if _, open := <-ch; open {
				t.Fatal("watch delivered after its error")
			}
			// How far it got before its history was trimmed depends on
			// scheduling; what the contract fixes is a gap-free run from 1
			// (checked above) that stops short of the end, then the error.
			if want-1 >= 50 {
				t.Fatalf("watcher delivered every revision (1..%d) and still failed", want-1)
			}
			return
		}
		if r.Revision != want {
			t.Fatalf("revision %d, want %d", r.Revision, want)
		}
		want++
	}
}
