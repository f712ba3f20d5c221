package storetest

import (
	"errors"
	"testing"

	"github.com/berthdev/berth/internal/errdefs"
	"github.com/berthdev/berth/internal/store"
)

var lifecycleTests = []test{
	{"Close", testClose},
	{"Reopen", testReopen},
}

func testClose(t *testing.T, s *suite) {
	st := s.open(t)
	put(t, st, "/a", "1")
	ch := watch(t, st, "/", 0)
	if err := st.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	wantClosed(t, ch)
	if err := st.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	ctx := t.Context()
	calls := []struct {
		name string
		call func() error
	}{
		{"View", func() error { return st.View(ctx, func(store.ReadTx) error { return nil }) }},
		{"Update", func() error {
			_, err := st.Update(ctx, func(tx store.Tx) error { return tx.Put("/b", nil) })
			return err
		}},
		{"Watch", func() error { _, err := st.Watch(ctx, "/", 0); return err }},
	}
	for _, c := range calls {
		if err := c.call(); !errors.Is(err, errdefs.ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", c.name, err)
		}
	}
}

func testReopen(t *testing.T, s *suite) {
	if s.reopen == nil {
		t.Skip("no storetest.WithReopen option")
	}
	st := s.open(t)
	r1 := put(t, st, "/p/a", "1")
	r2 := put(t, st, "/p/b", "1")
	r3 := put(t, st, "/p/a", "2")
	r4 := del(t, st, "/p/b")
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st = s.reopen(t, st)
	if st.Revision() != r4 {
		t.Fatalf("reopened store at revision %d, want %d", st.Revision(), r4)
	}
	wantKV(t, st, "/p/a", "2", r1, r3)
	if _, ok := get(t, st, "/p/b"); ok {
		t.Fatal("deleted key came back after reopen")
	}
	// History survives too: a watcher can resume from before the restart.
	ch := watch(t, st, "/p/", r2)
	wantResponse(t, ch, r2, putEvent("/p/b", "1", r2, r2))
	wantResponse(t, ch, r3, putEvent("/p/a", "2", r1, r3))
	wantResponse(t, ch, r4, deleteEvent("/p/b", r2, r4))
	if r5 := put(t, st, "/p/c", "1"); r5 != r4+1 {
		t.Fatalf("first write after reopen committed %d, want %d", r5, r4+1)
	}
	wantResponse(t, ch, r4+1, putEvent("/p/c", "1", r4+1, r4+1))
}
