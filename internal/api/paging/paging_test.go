package paging

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/berthdev/berth/internal/store"
)

// list serves sorted keys like store.ReadTx.List.
func list(keys []string) Lister {
	return func(prefix, from string, limit int) ([]store.KV, error) {
		var out []store.KV
		for _, k := range keys {
			if strings.HasPrefix(k, prefix) && k > from && (limit <= 0 || len(out) < limit) {
				out = append(out, store.KV{Key: k})
			}
		}
		return out, nil
	}
}

// TestWalkPagesThroughAFilter pages through 1,000 keys keeping every
// seventh, three per page, across the 256-key batches: every kept key comes
// exactly once, in order, and the last page has no token.
func TestWalkPagesThroughAFilter(t *testing.T) {
	var keys, want []string
	for i := range 1000 {
		k := fmt.Sprintf("/x/%04d", i)
		keys = append(keys, k)
		if i%7 == 0 {
			want = append(want, k)
		}
	}
	var got []string
	p := Page{Limit: 3}
	for pages := 0; ; pages++ {
		if pages > len(want) {
			t.Fatal("paging does not end")
		}
		next, err := Walk(list(keys), "/x/", p, func(kv store.KV) (bool, error) {
			var i int
			fmt.Sscanf(kv.Key, "/x/%d", &i)
			if i%7 != 0 {
				return false, nil
			}
			got = append(got, kv.Key)
			return true, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if next == "" {
			break
		}
		after, ok := Decode(next)
		if !ok {
			t.Fatalf("token %q does not decode", next)
		}
		p.After = after
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got %d keys, want %d", len(got), len(want))
	}
	if _, ok := Decode("not base64!"); ok {
		t.Fatal("a foreign token decoded")
	}
}
