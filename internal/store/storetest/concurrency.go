package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/berthdev/berth/internal/errdefs"
	"github.com/berthdev/berth/internal/store"
)

var concurrencyTests = []test{
	{"Increments", testIncrements},
	{"OneCreateWins", testOneCreateWins},
	{"FailuresStayIsolated", testFailuresIsolated},
	{"ModRevisionDetectsConflict", testModRevisionConflict},
}

// testIncrements runs read-modify-write increments of one counter from
// several goroutines: lost updates would show as a short count.
func testIncrements(t *testing.T, s *suite) {
	const workers, each = 8, 50
	st := s.open(t)
	start := st.Revision()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		revs []int64
	)
	for range workers {
		wg.Go(func() {
			for range each {
				rev, err := st.Update(t.Context(), func(tx store.Tx) error {
					kv, ok, err := tx.Get("/counter")
					if err != nil {
						return err
					}
					n := 0
					if ok {
						if n, err = strconv.Atoi(string(kv.Value)); err != nil {
							return err
						}
					}
					return tx.Put("/counter", []byte(strconv.Itoa(n+1)))
				})
				if err != nil {
					t.Errorf("increment: %v", err)
					return
				}
				mu.Lock()
				revs = append(revs, rev)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	kv, _ := get(t, st, "/counter")
	if string(kv.Value) != strconv.Itoa(workers*each) {
		t.Fatalf("counter = %s after %d increments", kv.Value, workers*each)
	}
	// Every increment committed its own revision, and they are contiguous.
	slices.Sort(revs)
	for i, r := range revs {
		if r != start+int64(i)+1 {
			t.Fatalf("increment revisions are not start+1..start+%d: %v", len(revs), revs)
		}
	}
	if kv.ModRevision != revs[len(revs)-1] || st.Revision() != revs[len(revs)-1] {
		t.Fatalf("counter ModRevision %d, Revision() %d, want %d", kv.ModRevision, st.Revision(), revs[len(revs)-1])
	}
}

// testOneCreateWins races Creates of one key: exactly one succeeds.
func testOneCreateWins(t *testing.T, s *suite) {
	const racers = 16
	st := s.open(t)
	var (
		wg             sync.WaitGroup
		mu             sync.Mutex
		wins, conflict int
		winner         string
		winRev         int64
	)
	for i := range racers {
		wg.Go(func() {
			me := fmt.Sprint(i)
			rev, err := st.Update(t.Context(), func(tx store.Tx) error { return tx.Create("/leader", []byte(me)) })
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
				winner, winRev = me, rev
			case errors.Is(err, errdefs.ErrAlreadyExists):
				conflict++
			default:
				t.Errorf("Create: %v", err)
			}
		})
	}
	wg.Wait()
	if wins != 1 || conflict != racers-1 {
		t.Fatalf("%d Creates won and %d lost, want 1 and %d", wins, conflict, racers-1)
	}
	wantKV(t, st, "/leader", winner, winRev, winRev)
}

// testFailuresIsolated mixes failing and succeeding concurrent Updates (a
// backend that commits them together must not let one caller's error
// abort another's transaction, nor hand it to another caller).
func testFailuresIsolated(t *testing.T, s *suite) {
	const workers = 32
	st := s.open(t)
	start := st.Revision()
	errs := make([]error, workers)
	for i := range errs {
		errs[i] = fmt.Errorf("worker %d fails", i)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		revs = map[string]int64{}
	)
	for i := range workers {
		wg.Go(func() {
			key := fmt.Sprintf("/w/%02d", i)
			rev, err := st.Update(t.Context(), func(tx store.Tx) error {
				if err := tx.Put(key, []byte("x")); err != nil {
					return err
				}
				if i%2 == 1 {
					return errs[i]
				}
				return nil
			})
			switch {
			case i%2 == 1 && err != errs[i]:
				t.Errorf("worker %d: Update = %v, want its own error", i, err)
			case i%2 == 0 && err != nil:
				t.Errorf("worker %d: Update = %v, want success", i, err)
			case i%2 == 0:
				mu.Lock()
				revs[key] = rev
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	kvs := list(t, st, "/w/", "", 0)
	if len(kvs) != workers/2 {
		t.Fatalf("%d keys written, want %d (only the succeeding workers')", len(kvs), workers/2)
	}
	for _, kv := range kvs {
		if rev, ok := revs[kv.Key]; !ok || kv.ModRevision != rev {
			t.Errorf("%s has ModRevision %d, its Update returned %d (present: %v)", kv.Key, kv.ModRevision, rev, ok)
		}
	}
	if got := st.Revision(); got != start+workers/2 {
		t.Fatalf("revision %d after %d successful Updates from %d", got, workers/2, start)
	}
}

// testModRevisionConflict is the optimistic-concurrency pattern callers
// build on: read, decide outside the store, then write only if the key's
// ModRevision is unchanged.
func testModRevisionConflict(t *testing.T, s *suite) {
	st := s.open(t)
	put(t, st, "/svc", "v1")
	casPut := func(seen int64, value string) (int64, error) {
		return st.Update(t.Context(), func(tx store.Tx) error {
			kv, ok, err := tx.Get("/svc")
			if err != nil {
				return err
			}
			if !ok || kv.ModRevision != seen {
				return fmt.Errorf("/svc changed since revision %d: %w", seen, errdefs.ErrConflict)
			}
			return tx.Put("/svc", []byte(value))
		})
	}
	read, _ := get(t, st, "/svc")
	concurrent := put(t, st, "/svc", "someone else's")
	if _, err := casPut(read.ModRevision, "mine"); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("write over a concurrent change = %v, want ErrConflict", err)
	}
	wantKV(t, st, "/svc", "someone else's", read.CreateRevision, concurrent)
	rev, err := casPut(concurrent, "mine")
	if err != nil {
		t.Fatalf("write after re-reading: %v", err)
	}
	wantKV(t, st, "/svc", "mine", read.CreateRevision, rev)
}
