package bolt_test

import (
	"path/filepath"
	"testing"

	"github.com/berthdev/berth/internal/store"
	"github.com/berthdev/berth/internal/store/bolt"
	"github.com/berthdev/berth/internal/store/storetest"
)

// open opens a store at path and closes it when the test ends.
func open(t testing.TB, path string, opts bolt.Options) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(path, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	variants := []struct {
		name string
		opts bolt.Options
	}{
		// The configuration Berth runs with.
		{"Defaults", bolt.Options{}},
		// A one-revision live buffer sends every watcher that falls behind
		// back to the event log, which exercises the hand-off between log
		// and live feed in every watch test.
		{"TinyWatchBuffer", bolt.Options{WatchBuffer: 1, NoSync: true}},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			storetest.Run(t,
				func(t *testing.T) store.Store {
					return open(t, filepath.Join(t.TempDir(), "berth.db"), v.opts)
				},
				storetest.WithReopen(func(t *testing.T, closed store.Store) store.Store {
					return open(t, closed.(*bolt.Store).Path(), v.opts)
				}),
			)
		})
	}
}
