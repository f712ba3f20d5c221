package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/berthdev/berth/internal/errdefs"
	"github.com/berthdev/berth/internal/store"
)

var watchTests = []test{
	{"FromCurrent", testWatchFromCurrent},
	{"FromOldRevision", testWatchFromOld},
	{"FromFutureRevision", testWatchFromFuture},
	{"PrefixFilter", testWatchPrefix},
	{"OneResponsePerRevision", testWatchTxn},
	{"NoGapsWhileWritesRace", testWatchRace},
	{"SlowWatcherDoesNotBlockWriters", testWatchSlow},
	{"CancelCloses", testWatchCancel},
	{"Compacted", testWatchCompacted},
}

func watch(t *testing.T, st store.Store, prefix string, from int64) <-chan store.WatchResponse {
	t.Helper()
	ch, err := st.Watch(t.Context(), prefix, from)
	if err != nil {
		t.Fatalf("Watch(%q, %d): %v", prefix, from, err)
	}
	return ch
}

// wantResponse receives one response and compares it with the expected
// revision and events.
func wantResponse(t *testing.T, ch <-chan store.WatchResponse, rev int64, events ...store.Event) {
	t.Helper()
	r := recvOK(t, ch)
	if r.Revision != rev || !sameEvents(r.Events, events) {
		t.Fatalf("watch response at revision %d: %s\nwant revision %d: %s", r.Revision, fmtEvents(r.Events), rev, fmtEvents(events))
	}
}

// collect receives responses through revision last; they must be
// contiguous from first, one per revision (every revision in these tests
// touches the watched prefix).
func collect(t *testing.T, ch <-chan store.WatchResponse, first, last int64) []store.WatchResponse {
	t.Helper()
	var out []store.WatchResponse
	for want := first; want <= last; want++ {
		r := recvOK(t, ch)
		if r.Revision != want {
			t.Fatalf("watch delivered revision %d, want %d (a gap, duplicate or reordering)", r.Revision, want)
		}
		for _, e := range r.Events {
			if e.KV.ModRevision != r.Revision {
				t.Fatalf("event %s in response at revision %d", fmtEvents([]store.Event{e}), r.Revision)
			}
		}
		out = append(out, r)
	}
	return out
}

// watchErr starts a watch that should fail and returns its error, whether
// Watch returns it or delivers it as the only response before closing.
func watchErr(t *testing.T, st store.Store, prefix string, from int64) error {
	t.Helper()
	ch, err := st.Watch(t.Context(), prefix, from)
	if err != nil {
		return err
	}
	r, ok := recv(t, ch)
	if !ok {
		t.Fatalf("Watch(%q, %d) closed without an error", prefix, from)
	}
	if r.Err == nil {
		t.Fatalf("Watch(%q, %d) delivered revision %d, want an error", prefix, from, r.Revision)
	}
	if _, ok := recv(t, ch); ok {
		t.Fatalf("Watch(%q, %d) kept delivering after its error", prefix, from)
	}
	return r.Err
}

func testWatchFromCurrent(t *testing.T, s *suite) {
	st := s.open(t)
	put(t, st, "/w/before", "x")
	ch := watch(t, st, "/w/", 0)
	r := put(t, st, "/w/after", "y")
	wantResponse(t, ch, r, putEvent("/w/after", "y", r, r))
}

func testWatchFromOld(t *testing.T, s *suite) {
	st := s.open(t)
	r1 := put(t, st, "/w/a", "1")
	r2 := put(t, st, "/w/b", "1")
	r3 := put(t, st, "/w/a", "2")
	r4 := del(t, st, "/w/b")
	r5 := put(t, st, "/w/b", "again")
	ch := watch(t, st, "/w/", r2)
	wantResponse(t, ch, r2, putEvent("/w/b", "1", r2, r2))
	wantResponse(t, ch, r3, putEvent("/w/a", "2", r1, r3))
	wantResponse(t, ch, r4, deleteEvent("/w/b", r2, r4))
	wantResponse(t, ch, r5, putEvent("/w/b", "again", r5, r5))
	r6 := put(t, st, "/w/c", "live")
	wantResponse(t, ch, r6, putEvent("/w/c", "live", r6, r6))

	all := watch(t, st, "/w/", r1)
	collect(t, all, r1, r6)
}

func testWatchFromFuture(t *testing.T, s *suite) {
	st := s.open(t)
	r := put(t, st, "/w/a", "1")
	ch := watch(t, st, "/w/", r+3)
	put(t, st, "/w/a", "2")
	put(t, st, "/w/a", "3")
	r4 := put(t, st, "/w/a", "4")
	if r4 != r+3 {
		t.Fatalf("third write committed %d, want %d", r4, r+3)
	}
	wantResponse(t, ch, r4, putEvent("/w/a", "4", r, r4))
}

func testWatchPrefix(t *testing.T, s *suite) {
	st := s.open(t)
	ch := watch(t, st, "/a/", 0)
	put(t, st, "/b/x", "1")
	put(t, st, "/ab", "1") // shares the string "/a" but not the prefix "/a/"
	both, err := st.Update(t.Context(), func(tx store.Tx) error {
		if err := tx.Put("/b/y", []byte("1")); err != nil {
			return err
		}
		return tx.Put("/a/x", []byte("1"))
	})
	if err != nil {
		t.Fatal(err)
	}
	put(t, st, "/b/z", "1")
	r := put(t, st, "/a/y", "1")
	// The first response is the shared transaction's, holding only its
	// event under the prefix; the next is /a/y's.
	wantResponse(t, ch, both, putEvent("/a/x", "1", both, both))
	wantResponse(t, ch, r, putEvent("/a/y", "1", r, r))

	everything := watch(t, st, "", both)
	wantResponse(t, everything, both, putEvent("/b/y", "1", both, both), putEvent("/a/x", "1", both, both))
}

func testWatchTxn(t *testing.T, s *suite) {
	st := s.open(t)
	r1 := put(t, st, "/m/a", "1")
	ch := watch(t, st, "/m/", 0)
	r2, err := st.Update(t.Context(), func(tx store.Tx) error {
		if err := tx.Put("/m/b", []byte("2")); err != nil {
			return err
		}
		if err := tx.Put("/m/c", []byte("3")); err != nil {
			return err
		}
		return tx.Delete("/m/a")
	})
	if err != nil {
		t.Fatal(err)
	}
	wantResponse(t, ch, r2, putEvent("/m/b", "2", r2, r2), putEvent("/m/c", "3", r2, r2), deleteEvent("/m/a", r1, r2))
}

// testWatchRace starts watchers while writers are committing and checks
// that each sees a contiguous run of revisions with nothing lost or
// repeated where the replayed history meets the live feed.
func testWatchRace(t *testing.T, s *suite) {
	const writers, each = 4, 60
	st := s.open(t)
	start := st.Revision()
	fromStart := watch(t, st, "/race/", start+1)

	midpoint := make(chan struct{})
	var (
		once sync.Once
		wg   sync.WaitGroup
	)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if _, err := st.Update(t.Context(), func(tx store.Tx) error {
					return tx.Put(fmt.Sprintf("/race/%d/%d", w, i), []byte("x"))
				}); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				if i == each/4 {
					once.Do(func() { close(midpoint) })
				}
			}
		})
	}
	<-midpoint
	// Watch from "now" and from a little in the past while writes continue.
	before := st.Revision()
	fromNow := watch(t, st, "/race/", 0)
	after := st.Revision()
	back := max(start+1, before-10)
	fromBack := watch(t, st, "/race/", back)
	wg.Wait()
	if t.Failed() {
		return
	}
	// One more write, so the "now" watcher has a revision to see even if
	// the writers finished before it started.
	last := put(t, st, "/race/end", "x")
	if last != start+writers*each+1 {
		t.Fatalf("revision %d after %d writes from %d", last, writers*each+1, start)
	}

	collect(t, fromStart, start+1, last)
	collect(t, fromBack, back, last)
	// The "now" watcher starts somewhere between the revisions observed
	// around its Watch call, then must be contiguous to the end.
	first := recvOK(t, fromNow)
	if first.Revision <= before || first.Revision > after+1 {
		t.Fatalf("Watch from the current revision started at %d; the revision was %d before the call and %d after", first.Revision, before, after)
	}
	if first.Revision < last {
		collect(t, fromNow, first.Revision+1, last)
	}
}

// testWatchSlow checks that a watcher that does not read never holds up
// writers, and that when it does read it gets a contiguous run of
// revisions: all of them, or a prefix followed by an error (the watcher
// could not keep up) and a closed channel.
func testWatchSlow(t *testing.T, s *suite) {
	const writers, each = 8, 250
	st := s.open(t)
	start := st.Revision()
	ch := watch(t, st, "/slow/", start+1)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if _, err := st.Update(t.Context(), func(tx store.Tx) error {
					return tx.Put(fmt.Sprintf("/slow/%d", w), []byte(fmt.Sprint(i)))
				}); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	last := st.Revision()
	for want := start + 1; want <= last; want++ {
		r, ok := recv(t, ch)
		switch {
		case !ok:
			t.Fatalf("watch closed at revision %d without an error", want)
		case r.Err != nil:
			t.Logf("slow watcher ended at revision %d: %v", want, r.Err)
			if _, ok := recv(t, ch); ok {
				t.Fatal("watch kept delivering after its error")
			}
			return
		case r.Revision != want:
			t.Fatalf("slow watcher got revision %d, want %d", r.Revision, want)
		}
	}
}

func testWatchCancel(t *testing.T, s *suite) {
	st := s.open(t)
	ctx, cancel := context.WithCancel(t.Context())
	idle, err := st.Watch(ctx, "/c/", 0)
	if err != nil {
		t.Fatal(err)
	}
	// A watcher with undelivered responses must close too.
	busy, err := st.Watch(ctx, "/c/", 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		put(t, st, "/c/k", fmt.Sprint(i))
	}
	cancel()
	wantClosed(t, idle)
	wantClosed(t, busy)
	// The store is unaffected.
	put(t, st, "/c/k", "after")
}

func testWatchCompacted(t *testing.T, s *suite) {
	st := s.open(t)
	c, ok := st.(Compactor)
	if !ok {
		t.Skip("backend does not implement storetest.Compactor")
	}
	var revs []int64
	for i := range 10 {
		revs = append(revs, put(t, st, "/h/k", fmt.Sprint(i)))
	}
	kept := revs[5]
	if err := c.Compact(t.Context(), kept); err != nil {
		t.Fatalf("Compact(%d): %v", kept, err)
	}
	if st.Revision() != revs[9] {
		t.Fatalf("Compact changed the revision to %d", st.Revision())
	}
	wantKV(t, st, "/h/k", "9", revs[0], revs[9])
	for _, from := range []int64{revs[0], revs[4], kept - 1} {
		if err := watchErr(t, st, "/h/", from); !errors.Is(err, errdefs.ErrCompacted) {
			t.Errorf("Watch from compacted revision %d = %v, want ErrCompacted", from, err)
		}
	}
	ch := watch(t, st, "/h/", kept)
	collect(t, ch, kept, revs[9])
	// Compacting again to the same revision is harmless.
	if err := c.Compact(t.Context(), kept); err != nil {
		t.Fatalf("repeated Compact(%d): %v", kept, err)
	}
}
