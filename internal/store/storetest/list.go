package storetest

import (
	"fmt"
	"slices"
	"testing"

	"github.com/berthdev/berth/internal/store"
)

var listTests = []test{
	{"PrefixAfterLimit", testListPrefixAfterLimit},
	{"Reverse", testListReverse},
	{"Count", testCount},
	{"Paginate", testListPaginate},
	{"Revisions", testListRevisions},
}

// listKeys is a keyspace with neighbours that a sloppy prefix or after
// comparison would let in.
var listKeys = []string{"/a", "/a/1", "/a/10", "/a/2", "/a/b/x", "/a0", "/ab", "/b", "/b/1"}

func seedList(t *testing.T, st store.Store) {
	t.Helper()
	// One transaction, written in reverse, so any order in List comes from
	// the store.
	_, err := st.Update(t.Context(), func(tx store.Tx) error {
		for i := len(listKeys) - 1; i >= 0; i-- {
			if err := tx.Put(listKeys[i], []byte("v"+listKeys[i])); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func testListPrefixAfterLimit(t *testing.T, s *suite) {
	st := s.open(t)
	seedList(t, st)
	tests := []struct {
		prefix, after string
		limit         int
		want          []string
	}{
		{"/a/", "", 0, []string{"/a/1", "/a/10", "/a/2", "/a/b/x"}},
		{"/a", "", 0, []string{"/a", "/a/1", "/a/10", "/a/2", "/a/b/x", "/a0", "/ab"}},
		{"", "", 0, listKeys},
		{"/a/", "/a/10", 0, []string{"/a/2", "/a/b/x"}},
		{"/a/", "/a/15", 0, []string{"/a/2", "/a/b/x"}}, // after need not exist
		{"/a/", "/a/", 0, []string{"/a/1", "/a/10", "/a/2", "/a/b/x"}},
		{"/a/", "/", 0, []string{"/a/1", "/a/10", "/a/2", "/a/b/x"}}, // after sorts before the prefix
		{"/a/", "/a/b/x", 0, nil},
		{"/a/", "/z", 0, nil}, // after sorts beyond the prefix
		{"/a/", "", 2, []string{"/a/1", "/a/10"}},
		{"/a/", "/a/10", 1, []string{"/a/2"}},
		{"/a/", "", -1, []string{"/a/1", "/a/10", "/a/2", "/a/b/x"}},
		{"/a/", "", 100, []string{"/a/1", "/a/10", "/a/2", "/a/b/x"}},
		{"/c", "", 0, nil},
		{"/a/1", "", 0, []string{"/a/1", "/a/10"}},
		{"/b/1", "", 0, []string{"/b/1"}},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("prefix=%q,after=%q,limit=%d", tc.prefix, tc.after, tc.limit), func(t *testing.T) {
			got := list(t, st, tc.prefix, tc.after, tc.limit)
			if !slices.Equal(keys(got), tc.want) {
				t.Fatalf("keys = %q, want %q", keys(got), tc.want)
			}
			for _, kv := range got {
				if string(kv.Value) != "v"+kv.Key {
					t.Errorf("%s has value %q, want %q", kv.Key, kv.Value, "v"+kv.Key)
				}
			}
		})
	}
}

func testListReverse(t *testing.T, s *suite) {
	st := s.open(t)
	seedList(t, st)
	_, err := st.Update(t.Context(), func(tx store.Tx) error {
		// Keys at the top of the byte range, where "past the prefix" has no successor.
		for _, k := range []string{"\xff", "\xff\xff/x", "\xff\xff/y"} {
			if err := tx.Put(k, []byte("v"+k)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	all := append(slices.Clone(listKeys), "\xff", "\xff\xff/x", "\xff\xff/y")
	rev := func(ks ...string) []string { slices.Reverse(ks); return ks }
	tests := []struct {
		prefix, before string
		limit          int
		want           []string
	}{
		{"/a/", "", 0, rev("/a/1", "/a/10", "/a/2", "/a/b/x")},
		{"/a", "", 0, rev("/a", "/a/1", "/a/10", "/a/2", "/a/b/x", "/a0", "/ab")},
		{"", "", 0, rev(slices.Clone(all)...)},
		{"/a/", "/a/2", 0, rev("/a/1", "/a/10")},
		{"/a/", "/a/15", 0, rev("/a/1", "/a/10")}, // before need not exist
		{"/a/", "/a/1", 0, nil},
		{"/a/", "/a/", 0, nil},
		{"/a/", "/", 0, nil},                                     // before sorts ahead of the prefix
		{"/a/", "/z", 0, rev("/a/1", "/a/10", "/a/2", "/a/b/x")}, // before sorts beyond the prefix
		{"/a/", "", 2, []string{"/a/b/x", "/a/2"}},
		{"/a/", "/a/b/x", 1, []string{"/a/2"}},
		{"/c", "", 0, nil},
		{"/b", "", 0, rev("/b", "/b/1")},
		{"\xff\xff", "", 0, rev("\xff\xff/x", "\xff\xff/y")},
		{"\xff", "\xff\xff/y", 0, rev("\xff", "\xff\xff/x")},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("prefix=%q,before=%q,limit=%d", tc.prefix, tc.before, tc.limit), func(t *testing.T) {
			var got []store.KV
			err := st.View(t.Context(), func(tx store.ReadTx) error {
				var err error
				got, err = tx.ListReverse(tc.prefix, tc.before, tc.limit)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(keys(got), tc.want) {
				t.Fatalf("keys = %q, want %q", keys(got), tc.want)
			}
			for _, kv := range got {
				if string(kv.Value) != "v"+kv.Key {
					t.Errorf("%s has value %q", kv.Key, kv.Value)
				}
			}
		})
	}
}

func testCount(t *testing.T, s *suite) {
	st := s.open(t)
	seedList(t, st)
	tests := []struct {
		prefix string
		want   int
	}{
		{"", len(listKeys)},
		{"/a", 7},
		{"/a/", 4},
		{"/a/1", 2},
		{"/b", 2},
		{"/c", 0},
		{"/a/b/x", 1},
		{"/a/b/x/", 0},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("prefix=%q", tc.prefix), func(t *testing.T) {
			if got := count(t, st, tc.prefix); got != tc.want {
				t.Fatalf("Count(%q) = %d, want %d", tc.prefix, got, tc.want)
			}
		})
	}
}

func testListPaginate(t *testing.T, s *suite) {
	st := s.open(t)
	var want []string
	_, err := st.Update(t.Context(), func(tx store.Tx) error {
		for i := range 25 {
			k := fmt.Sprintf("/p/%03d", i)
			want = append(want, k)
			if err := tx.Put(k, []byte("x")); err != nil {
				return err
			}
		}
		return tx.Put("/q", []byte("outside"))
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	after := ""
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("pagination does not terminate")
		}
		page := list(t, st, "/p/", after, 7)
		if len(page) > 7 {
			t.Fatalf("page of %d keys exceeds limit 7", len(page))
		}
		if len(page) == 0 {
			break
		}
		got = append(got, keys(page)...)
		after = page[len(page)-1].Key
	}
	if !slices.Equal(got, want) {
		t.Fatalf("paginated keys = %q, want %q", got, want)
	}
}

func testListRevisions(t *testing.T, s *suite) {
	st := s.open(t)
	r1 := put(t, st, "/r/a", "1")
	r2 := put(t, st, "/r/b", "1")
	r3 := put(t, st, "/r/a", "2")
	got := list(t, st, "/r/", "", 0)
	want := []store.KV{
		{Key: "/r/a", Value: []byte("2"), CreateRevision: r1, ModRevision: r3},
		{Key: "/r/b", Value: []byte("1"), CreateRevision: r2, ModRevision: r2},
	}
	if len(got) != len(want) {
		t.Fatalf("List = %v, want %v", got, want)
	}
	for i := range want {
		if fmtKV(got[i]) != fmtKV(want[i]) {
			t.Errorf("List[%d] = %s, want %s", i, fmtKV(got[i]), fmtKV(want[i]))
		}
	}
}
