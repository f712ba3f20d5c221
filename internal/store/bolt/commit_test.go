package bolt

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/berthdev/berth/internal/store"
)

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// holdCommitter blocks the committer inside a transaction until the
// returned function is called, so that Updates queue up behind it.
func holdCommitter(t *testing.T, s *Store) (release func()) {
	t.Helper()
	ch := make(chan struct{})
	blocked := make(chan struct{})
	go s.commits.update(func(*bbolt.Tx) error {
		close(blocked)
		<-ch
		return nil
	})
	<-blocked
	return func() { close(ch) }
}

// TestGroupCommit queues Updates behind a blocked commit so they land in
// one batch in a known order, some failing, and checks the batch semantics:
// the first function's error is final; a later failing function is re-run
// alone and gets its own error back unchanged; the others commit together
// in one bbolt transaction, each with its own consecutive revision.
func TestGroupCommit(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "berth.db"), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	start := s.Revision()
	release := holdCommitter(t, s)

	type result struct {
		name string
		fail bool
		rev  int64
		err  error
		runs int
		tx   *bbolt.Tx // the bbolt transaction of the last run
	}
	results := []*result{{name: "first", fail: true}, {name: "ok1"}, {name: "later", fail: true}, {name: "ok2"}}
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for i, r := range results {
		r.err = errors.New(r.name + " fails")
		failure := r.err
		wg.Go(func() {
			r.rev, r.err = s.Update(t.Context(), func(tx store.Tx) error {
				mu.Lock()
				r.runs++
				r.tx = tx.(*writeTx).kv.Tx()
				mu.Unlock()
				if err := tx.Put("/"+r.name, []byte(r.name)); err != nil {
					return err
				}
				if r.fail {
					return failure
				}
				return nil
			})
			if r.fail && r.err != failure {
				t.Errorf("%s: Update = %v, want its own error", r.name, r.err)
			}
		})
		waitFor(t, fmt.Sprintf("%d queued updates", i+1), func() bool { return len(s.commits.queue) == i+1 })
	}
	release()
	wg.Wait()

	first, ok1, later, ok2 := results[0], results[1], results[2], results[3]
	// first fails alone at the head of the batch; ok1 runs before later
	// fails, and again in the retry; later runs once more alone; ok2 runs
	// only in the retry.
	for _, r := range []struct {
		r    *result
		runs int
	}{{first, 1}, {ok1, 2}, {later, 2}, {ok2, 1}} {
		if r.r.runs != r.runs {
			t.Errorf("%s ran %d times, want %d", r.r.name, r.r.runs, r.runs)
		}
	}
	if ok1.err != nil || ok2.err != nil {
		t.Fatalf("succeeding updates failed: %v, %v", ok1.err, ok2.err)
	}
	if ok1.tx != ok2.tx {
		t.Error("the succeeding updates did not commit in one bbolt transaction")
	}
	if ok1.rev != start+1 || ok2.rev != start+2 {
		t.Errorf("revisions %d and %d, want %d and %d", ok1.rev, ok2.rev, start+1, start+2)
	}
	if s.Revision() != start+2 {
		t.Errorf("Revision() = %d, want %d", s.Revision(), start+2)
	}
}

// TestUpdatePanic checks that a panicking function panics in its caller's
// goroutine, not in the committer, and that the store keeps working.
func TestUpdatePanic(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "berth.db"), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	func() {
		defer func() {
			if p := recover(); p != "boom" {
				t.Errorf("recovered %v, want the function's panic", p)
			}
		}()
		s.Update(t.Context(), func(tx store.Tx) error {
			if err := tx.Put("/half", nil); err != nil {
				return err
			}
			panic("boom")
		})
	}()
	rev, err := s.Update(t.Context(), func(tx store.Tx) error { return tx.Put("/after", nil) })
	if err != nil || rev != 1 {
		t.Fatalf("Update after a panic = %d, %v; want revision 1", rev, err)
	}
	err = s.View(t.Context(), func(tx store.ReadTx) error {
		if _, ok, _ := tx.Get("/half"); ok {
			t.Error("the panicking transaction's write is visible")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
