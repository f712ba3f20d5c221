package storetest

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/berthdev/berth/internal/errdefs"
	"github.com/berthdev/berth/internal/store"
)

var kvTests = []test{
	{"GetMissing", testGetMissing},
	{"PutGet", testPutGet},
	{"PutOverwriteKeepsCreateRevision", testPutOverwrite},
	{"CreateDeleteRecreate", testCreateDeleteRecreate},
	{"Errors", testKVErrors},
	{"ValuesAreCopies", testValuesAreCopies},
	{"OpaqueKeysAndValues", testOpaqueKeys},
}

func testGetMissing(t *testing.T, s *suite) {
	st := s.open(t)
	if kv, ok := get(t, st, "/missing"); ok {
		t.Fatalf("Get(/missing) = %s, want absent", fmtKV(kv))
	}
}

func testPutGet(t *testing.T, s *suite) {
	st := s.open(t)
	rev := put(t, st, "/a", "one")
	wantKV(t, st, "/a", "one", rev, rev)
}

func testPutOverwrite(t *testing.T, s *suite) {
	st := s.open(t)
	r1 := put(t, st, "/a", "one")
	r2 := put(t, st, "/a", "two")
	if r2 != r1+1 {
		t.Fatalf("second Put committed revision %d, want %d", r2, r1+1)
	}
	wantKV(t, st, "/a", "two", r1, r2)
	// Writing the same value again is still a write.
	r3 := put(t, st, "/a", "two")
	wantKV(t, st, "/a", "two", r1, r3)
}

func testCreateDeleteRecreate(t *testing.T, s *suite) {
	st := s.open(t)
	r1, err := st.Update(t.Context(), func(tx store.Tx) error { return tx.Create("/a", []byte("one")) })
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	wantKV(t, st, "/a", "one", r1, r1)
	del(t, st, "/a")
	if _, ok := get(t, st, "/a"); ok {
		t.Fatal("key present after Delete")
	}
	r3, err := st.Update(t.Context(), func(tx store.Tx) error { return tx.Create("/a", []byte("again")) })
	if err != nil {
		t.Fatalf("Create after Delete: %v", err)
	}
	wantKV(t, st, "/a", "again", r3, r3)
}

func testKVErrors(t *testing.T, s *suite) {
	st := s.open(t)
	put(t, st, "/exists", "v")
	tests := []struct {
		name string
		op   func(tx store.Tx) error
		want error
	}{
		{"CreateExisting", func(tx store.Tx) error { return tx.Create("/exists", []byte("x")) }, errdefs.ErrAlreadyExists},
		{"DeleteMissing", func(tx store.Tx) error { return tx.Delete("/missing") }, errdefs.ErrNotFound},
		{"PutEmptyKey", func(tx store.Tx) error { return tx.Put("", []byte("x")) }, errdefs.ErrInvalidArgument},
		{"CreateEmptyKey", func(tx store.Tx) error { return tx.Create("", []byte("x")) }, errdefs.ErrInvalidArgument},
		{"DeleteEmptyKey", func(tx store.Tx) error { return tx.Delete("") }, errdefs.ErrInvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := st.Revision()
			var opErr error
			rev, err := st.Update(t.Context(), func(tx store.Tx) error {
				opErr = tc.op(tx)
				return opErr
			})
			if !errors.Is(opErr, tc.want) {
				t.Fatalf("operation error = %v, want %v", opErr, tc.want)
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Update error = %v, want %v", err, tc.want)
			}
			if rev != 0 {
				t.Errorf("failed Update returned revision %d, want 0", rev)
			}
			if got := st.Revision(); got != before {
				t.Errorf("revision moved from %d to %d after a failed Update", before, got)
			}
		})
	}
	kv, ok := get(t, st, "/exists")
	if !ok || string(kv.Value) != "v" {
		t.Fatalf("/exists = %s, %v after failed operations, want %q", fmtKV(kv), ok, "v")
	}
}

func testValuesAreCopies(t *testing.T, s *suite) {
	st := s.open(t)
	in := []byte("original")
	_, err := st.Update(t.Context(), func(tx store.Tx) error { return tx.Put("/a", in) })
	if err != nil {
		t.Fatal(err)
	}
	copy(in, "XXXXXXXX") // the store must not alias the caller's slice
	kv, _ := get(t, st, "/a")
	if string(kv.Value) != "original" {
		t.Fatalf("value changed with the caller's slice: %q", kv.Value)
	}
	copy(kv.Value, "YYYYYYYY") // nor hand out its own memory
	kv2, _ := get(t, st, "/a")
	if string(kv2.Value) != "original" {
		t.Fatalf("value changed through a returned slice: %q", kv2.Value)
	}
	var listed []store.KV
	err = st.View(t.Context(), func(tx store.ReadTx) error {
		var err error
		listed, err = tx.List("/", "", 0)
		return err
	})
	if err != nil || len(listed) != 1 || string(listed[0].Value) != "original" {
		t.Fatalf("List after the View returned %v, %v", listed, err)
	}
}

// testOpaqueKeys checks that the store assumes nothing about key contents:
// any non-empty string is a key, and order is plain byte order.
func testOpaqueKeys(t *testing.T, s *suite) {
	st := s.open(t)
	entries := map[string]string{
		"/k/\x00nul":                     "nul byte in key",
		"/k/\xff\xfe":                    "invalid UTF-8",
		"/k/ünï/cödé":                    "unicode",
		"/k/with space/and//slashes/":    "",
		"/k/" + strings.Repeat("x", 300): "long key",
		"no-leading-slash":               "\x00\x01\xff binary value",
	}
	for k, v := range entries {
		put(t, st, k, v)
	}
	for k, v := range entries {
		kv, ok := get(t, st, k)
		if !ok || string(kv.Value) != v {
			t.Errorf("Get(%q) = %s, %v; want %q", k, fmtKV(kv), ok, v)
		}
	}
	// Go compares strings bytewise, which is the order List promises.
	var want []string
	for k := range entries {
		if strings.HasPrefix(k, "/k/") {
			want = append(want, k)
		}
	}
	slices.Sort(want)
	if got := keys(list(t, st, "/k/", "", 0)); !slices.Equal(got, want) {
		t.Fatalf("List(/k/) = %q, want byte order %q", got, want)
	}
}
