package storetest

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/store"
)

func put(t *testing.T, st store.Store, key, value string) int64 {
	t.Helper()
	rev, err := st.Update(t.Context(), func(tx store.Tx) error {
		return tx.Put(key, []byte(value))
	})
	if err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
	return rev
}

func del(t *testing.T, st store.Store, key string) int64 {
	t.Helper()
	rev, err := st.Update(t.Context(), func(tx store.Tx) error {
		return tx.Delete(key)
	})
	if err != nil {
		t.Fatalf("Delete(%q): %v", key, err)
	}
	return rev
}

func get(t *testing.T, st store.Store, key string) (store.KV, bool) {
	t.Helper()
	var (
		kv store.KV
		ok bool
	)
	err := st.View(t.Context(), func(tx store.ReadTx) error {
		var err error
		kv, ok, err = tx.Get(key)
		return err
	})
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return kv, ok
}

func list(t *testing.T, st store.Store, prefix, after string, limit int) []store.KV {
	t.Helper()
	var kvs []store.KV
	err := st.View(t.Context(), func(tx store.ReadTx) error {
		var err error
		kvs, err = tx.List(prefix, after, limit)
		return err
	})
	if err != nil {
		t.Fatalf("List(%q, %q, %d): %v", prefix, after, limit, err)
	}
	return kvs
}

func count(t *testing.T, st store.Store, prefix string) int {
	t.Helper()
	var n int
	err := st.View(t.Context(), func(tx store.ReadTx) error {
		var err error
		n, err = tx.Count(prefix)
		return err
	})
	if err != nil {
		t.Fatalf("Count(%q): %v", prefix, err)
	}
	return n
}

func keys(kvs []store.KV) []string {
	out := make([]string, len(kvs))
	for i, kv := range kvs {
		out[i] = kv.Key
	}
	return out
}

// wantKV fails unless key holds value with the given revisions.
func wantKV(t *testing.T, st store.Store, key, value string, create, mod int64) {
	t.Helper()
	kv, ok := get(t, st, key)
	switch {
	case !ok:
		t.Fatalf("Get(%q): missing, want %q", key, value)
	case kv.Key != key || string(kv.Value) != value || kv.CreateRevision != create || kv.ModRevision != mod:
		t.Fatalf("Get(%q) = %s, want {%s %q create=%d mod=%d}", key, fmtKV(kv), key, value, create, mod)
	}
}

func fmtKV(kv store.KV) string {
	return fmt.Sprintf("{%s %q create=%d mod=%d}", kv.Key, kv.Value, kv.CreateRevision, kv.ModRevision)
}

func fmtEvents(events []store.Event) string {
	var b strings.Builder
	for i, e := range events {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s%s", e.Type, fmtKV(e.KV))
	}
	return b.String()
}

// sameEvents compares two event lists regardless of order within the
// revision (the contract does not order the events of one transaction).
func sameEvents(got, want []store.Event) bool {
	if len(got) != len(want) {
		return false
	}
	sorted := func(es []store.Event) []store.Event {
		es = slices.Clone(es)
		slices.SortStableFunc(es, func(a, b store.Event) int { return strings.Compare(a.KV.Key, b.KV.Key) })
		return es
	}
	g, w := sorted(got), sorted(want)
	for i := range g {
		if g[i].Type != w[i].Type || g[i].KV.Key != w[i].KV.Key ||
			g[i].KV.CreateRevision != w[i].KV.CreateRevision || g[i].KV.ModRevision != w[i].KV.ModRevision ||
			!bytes.Equal(g[i].KV.Value, w[i].KV.Value) || (g[i].Type == store.EventDelete && g[i].KV.Value != nil) {
			return false
		}
	}
	return true
}

func putEvent(key, value string, create, mod int64) store.Event {
	return store.Event{Type: store.EventPut, KV: store.KV{Key: key, Value: []byte(value), CreateRevision: create, ModRevision: mod}}
}

func deleteEvent(key string, create, mod int64) store.Event {
	return store.Event{Type: store.EventDelete, KV: store.KV{Key: key, CreateRevision: create, ModRevision: mod}}
}

// recv returns the next response, or ok=false if the channel closed. It
// fails the test if nothing arrives within waitTimeout.
func recv(t *testing.T, ch <-chan store.WatchResponse) (store.WatchResponse, bool) {
	t.Helper()
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	select {
	case r, ok := <-ch:
		return r, ok
	case <-timer.C:
		t.Fatalf("no watch response within %s", waitTimeout)
		return store.WatchResponse{}, false
	}
}

// recvOK returns the next response and fails if the channel closed or the
// response carries an error.
func recvOK(t *testing.T, ch <-chan store.WatchResponse) store.WatchResponse {
	t.Helper()
	r, ok := recv(t, ch)
	switch {
	case !ok:
		t.Fatal("watch channel closed unexpectedly")
	case r.Err != nil:
		t.Fatalf("watch failed: %v", r.Err)
	}
	return r
}

// wantClosed drains ch until it closes, failing on a response with an error
// or after waitTimeout.
func wantClosed(t *testing.T, ch <-chan store.WatchResponse) {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		select {
		case r, ok := <-ch:
			if !ok {
				return
			}
			if r.Err != nil {
				t.Fatalf("watch ended with %v, want a plain close", r.Err)
			}
		case <-deadline.C:
			t.Fatalf("watch channel not closed within %s", waitTimeout)
		}
	}
}
