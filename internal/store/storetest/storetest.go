// Package storetest is the conformance suite every store.Store backend
// passes. A backend's tests call Run with a function that opens an empty
// store for one test; internal/store/bolt's TestConformance is the working
// example.
//
// The suite tests what store.Store promises and nothing a backend chooses for
// itself: it never assumes a fresh store starts at a particular revision, and
// it waits on watch channels with deadlines, never with sleeps. Capabilities
// a backend may lack are opt-in: persistence across a reopen (WithReopen) and
// compaction on request (the Compactor interface, found by type assertion).
// Tests of a missing capability are skipped.
//
// Beyond the letter of store.go, the suite expects an empty key to be an
// errdefs.ErrInvalidArgument, a canceled context to fail View and Update with
// the context's error, and reads inside an Update to see the transaction's
// own writes (Get only).
package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/store"
)

// waitTimeout bounds every wait for a watch response or a closed channel. It
// is only reached when a backend is broken, so it is generous.
const waitTimeout = 10 * time.Second

// Compactor is implemented by stores that discard watch history on request.
// After Compact(ctx, rev), a Watch from a revision older than rev fails with
// errdefs.ErrCompacted, and a Watch from rev or later still works. Compact
// does not change any key or the store revision.
type Compactor interface {
	Compact(ctx context.Context, revision int64) error
}

// Option adds to the suite a capability it cannot discover from a Store.
type Option func(*suite)

// WithReopen enables the persistence tests. reopen receives a store the
// suite has already closed and returns a new store over the same data.
func WithReopen(reopen func(t *testing.T, closed store.Store) store.Store) Option {
	return func(s *suite) { s.reopen = reopen }
}

type suite struct {
	open   func(t *testing.T) store.Store
	reopen func(t *testing.T, closed store.Store) store.Store
}

// Run runs the conformance suite as subtests of t. open is called once per
// subtest and must return an empty, open store and register its cleanup
// with t.Cleanup; the suite may close the store itself first, so Close must
// be idempotent (which the suite checks too).
func Run(t *testing.T, open func(t *testing.T) store.Store, opts ...Option) {
	s := &suite{open: open}
	for _, o := range opts {
		o(s)
	}
	groups := []struct {
		name  string
		tests []test
	}{
		{"KV", kvTests},
		{"List", listTests},
		{"Txn", txnTests},
		{"Concurrency", concurrencyTests},
		{"Watch", watchTests},
		{"Lifecycle", lifecycleTests},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) { tc.run(t, s) })
			}
		})
	}
}

// test is one conformance test.
type test struct {
	name string
	run  func(t *testing.T, s *suite)
}
