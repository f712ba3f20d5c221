package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/errdefs"
	"github.com/berthdev/berth/internal/store"
)

var txnTests = []test{
	{"RevisionPerWriteTxn", testRevisionPerWriteTxn},
	{"NoOpCommitsNothing", testNoOp},
	{"TxRevision", testTxRevision},
	{"ReadYourWrites", testReadYourWrites},
	{"ErrorRollsBack", testErrorRollsBack},
	{"ErrorReturnedUnchanged", testErrorUnchanged},
	{"CanceledContext", testCanceledContext},
	{"ViewSnapshot", testViewSnapshot},
}

func testRevisionPerWriteTxn(t *testing.T, s *suite) {
	st := s.open(t)
	start := st.Revision()
	rev, err := st.Update(t.Context(), func(tx store.Tx) error {
		for _, k := range []string{"/m/a", "/m/b", "/m/c"} {
			if err := tx.Put(k, []byte("x")); err != nil {
				return err
			}
		}
		return tx.Delete("/m/a")
	})
	if err != nil {
		t.Fatal(err)
	}
	if rev != start+1 {
		t.Fatalf("a transaction of 4 writes committed revision %d, want %d (one revision per transaction)", rev, start+1)
	}
	if got := st.Revision(); got != rev {
		t.Fatalf("Revision() = %d after Update returned %d", got, rev)
	}
	wantKV(t, st, "/m/b", "x", rev, rev)
	wantKV(t, st, "/m/c", "x", rev, rev)
	for i := range 5 {
		if r := put(t, st, "/m/b", "y"); r != rev+int64(i)+1 {
			t.Fatalf("write %d committed revision %d, want %d", i, r, rev+int64(i)+1)
		}
	}
	var viewRev int64
	if err := st.View(t.Context(), func(tx store.ReadTx) error { viewRev = tx.Revision(); return nil }); err != nil {
		t.Fatal(err)
	}
	if viewRev != rev+5 || st.Revision() != rev+5 {
		t.Fatalf("View revision %d, Revision() %d, want %d", viewRev, st.Revision(), rev+5)
	}
}

func testNoOp(t *testing.T, s *suite) {
	st := s.open(t)
	r1 := put(t, st, "/a", "1")
	var seen int64
	rev, err := st.Update(t.Context(), func(tx store.Tx) error {
		kv, ok, err := tx.Get("/a")
		if err != nil || !ok {
			return errors.Join(err, errors.New("missing /a"))
		}
		seen = kv.ModRevision
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if rev != r1 || seen != r1 || st.Revision() != r1 {
		t.Fatalf("read-only Update returned %d (Revision() %d), want the current revision %d", rev, st.Revision(), r1)
	}
	if r2 := put(t, st, "/b", "1"); r2 != r1+1 {
		t.Fatalf("write after a no-op committed %d, want %d", r2, r1+1)
	}
}

func testTxRevision(t *testing.T, s *suite) {
	st := s.open(t)
	r1 := put(t, st, "/a", "1")
	var inTx int64
	r2, err := st.Update(t.Context(), func(tx store.Tx) error {
		inTx = tx.Revision()
		return tx.Put("/b", []byte("1"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if inTx != r1 || r2 != r1+1 {
		t.Fatalf("tx.Revision() = %d and commit = %d, want %d (the revision the transaction started from) and %d", inTx, r2, r1, r1+1)
	}
}

func testReadYourWrites(t *testing.T, s *suite) {
	st := s.open(t)
	put(t, st, "/gone", "x")
	_, err := st.Update(t.Context(), func(tx store.Tx) error {
		if err := tx.Put("/new", []byte("mine")); err != nil {
			return err
		}
		if kv, ok, err := tx.Get("/new"); err != nil || !ok || string(kv.Value) != "mine" {
			t.Errorf("Get after Put in the same transaction = %s, %v, %v", fmtKV(kv), ok, err)
		}
		if err := tx.Delete("/gone"); err != nil {
			return err
		}
		if _, ok, err := tx.Get("/gone"); err != nil || ok {
			t.Errorf("Get after Delete in the same transaction: present=%v, err=%v", ok, err)
		}
		if err := tx.Create("/new", []byte("again")); !errors.Is(err, errdefs.ErrAlreadyExists) {
			t.Errorf("Create of a key put earlier in the transaction = %v, want ErrAlreadyExists", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

var errTestAbort = errors.New("storetest: abort")

func testErrorRollsBack(t *testing.T, s *suite) {
	st := s.open(t)
	r1 := put(t, st, "/keep", "old")
	put(t, st, "/doomed", "old")
	tests := []struct {
		name string
		fn   func(tx store.Tx) error
		want error
	}{
		{"ReturnError", func(tx store.Tx) error {
			for _, k := range []string{"/keep", "/new1", "/new2"} {
				if err := tx.Put(k, []byte("new")); err != nil {
					return err
				}
			}
			if err := tx.Delete("/doomed"); err != nil {
				return err
			}
			return errTestAbort
		}, errTestAbort},
		{"FailedCreate", func(tx store.Tx) error {
			if err := tx.Put("/keep", []byte("new")); err != nil {
				return err
			}
			if err := tx.Put("/new1", []byte("new")); err != nil {
				return err
			}
			return tx.Create("/doomed", []byte("new"))
		}, errdefs.ErrAlreadyExists},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := st.Revision()
			_, err := st.Update(t.Context(), tc.fn)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Update = %v, want %v", err, tc.want)
			}
			if st.Revision() != before {
				t.Fatalf("revision moved from %d to %d", before, st.Revision())
			}
			wantKV(t, st, "/keep", "old", r1, r1)
			if _, ok := get(t, st, "/doomed"); !ok {
				t.Fatal("/doomed deleted by a rolled-back transaction")
			}
			if n := count(t, st, "/new"); n != 0 {
				t.Fatalf("%d keys from a rolled-back transaction are visible", n)
			}
		})
	}
}

// plainError is not comparable with ==, to catch a backend that compares or
// re-wraps the caller's error.
type plainError struct{ detail []string }

func (e plainError) Error() string { return "plain error" }

func testErrorUnchanged(t *testing.T, s *suite) {
	st := s.open(t)
	_, err := st.Update(t.Context(), func(tx store.Tx) error { return errTestAbort })
	if err != errTestAbort {
		t.Fatalf("Update returned %v (%T), want the function's error unchanged", err, err)
	}
	err = st.View(t.Context(), func(tx store.ReadTx) error { return errTestAbort })
	if err != errTestAbort {
		t.Fatalf("View returned %v (%T), want the function's error unchanged", err, err)
	}
	_, err = st.Update(t.Context(), func(tx store.Tx) error {
		if err := tx.Put("/x", nil); err != nil {
			return err
		}
		return plainError{detail: []string{"x"}}
	})
	var pe plainError
	if !errors.As(err, &pe) || len(pe.detail) != 1 {
		t.Fatalf("Update returned %v (%T), want the function's plainError", err, err)
	}
}

func testCanceledContext(t *testing.T, s *suite) {
	st := s.open(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	ran := false
	if _, err := st.Update(ctx, func(tx store.Tx) error { ran = true; return tx.Put("/a", nil) }); !errors.Is(err, context.Canceled) {
		t.Errorf("Update with a canceled context = %v, want context.Canceled", err)
	}
	if err := st.View(ctx, func(tx store.ReadTx) error { ran = true; return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("View with a canceled context = %v, want context.Canceled", err)
	}
	if ran {
		t.Error("a function ran under a canceled context")
	}
	if _, ok := get(t, st, "/a"); ok {
		t.Error("Update with a canceled context wrote")
	}
}

// testViewSnapshot holds a View open while another goroutine commits, and
// checks that the View keeps reading its snapshot.
func testViewSnapshot(t *testing.T, s *suite) {
	st := s.open(t)
	r1, err := st.Update(t.Context(), func(tx store.Tx) error {
		if err := tx.Put("/s/a", []byte("old")); err != nil {
			return err
		}
		return tx.Put("/s/b", []byte("old"))
	})
	if err != nil {
		t.Fatal(err)
	}
	committed := make(chan error, 1)
	err = st.View(t.Context(), func(tx store.ReadTx) error {
		if kv, _, err := tx.Get("/s/a"); err != nil || string(kv.Value) != "old" {
			t.Fatalf("first read: %s, %v", fmtKV(kv), err)
		}
		go func() {
			_, err := st.Update(context.Background(), func(tx store.Tx) error {
				for _, k := range []string{"/s/a", "/s/b", "/s/c"} {
					if err := tx.Put(k, []byte("new")); err != nil {
						return err
					}
				}
				return nil
			})
			committed <- err
		}()
		select {
		case err := <-committed:
			if err != nil {
				t.Fatalf("concurrent Update: %v", err)
			}
		case <-time.After(waitTimeout):
			t.Fatalf("a writer did not commit within %s while a View was open", waitTimeout)
		}
		if kv, _, err := tx.Get("/s/b"); err != nil || string(kv.Value) != "old" || kv.ModRevision != r1 {
			t.Errorf("read after a concurrent commit: %s, %v; want the snapshot's old value", fmtKV(kv), err)
		}
		if kvs, err := tx.List("/s/", "", 0); err != nil || len(kvs) != 2 {
			t.Errorf("List after a concurrent commit: %d keys, %v; want the snapshot's 2", len(kvs), err)
		}
		if n, err := tx.Count("/s/"); err != nil || n != 2 {
			t.Errorf("Count after a concurrent commit: %d, %v; want the snapshot's 2", n, err)
		}
		if tx.Revision() != r1 {
			t.Errorf("tx.Revision() = %d, want the snapshot's %d", tx.Revision(), r1)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	wantKV(t, st, "/s/b", "new", r1, r1+1)
}
