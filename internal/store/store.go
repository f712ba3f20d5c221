// Package store defines the durable, revisioned key-value store that holds
// all of Berth's control-plane state, and the contract every backend keeps.
//
// Keys are slash-separated strings ("/ecs/clusters/default"); values are
// opaque bytes (the domain layer stores JSON of the AWS API shapes). Every
// committed Update advances one store-wide revision by exactly one; each key
// remembers the revision that created it and the one that last changed it.
//
// Ownership and error contract:
//   - A backend owns its files or connections; Close releases them. Calls after
//     Close fail with errdefs.ErrClosed.
//   - Update returns only after the transaction is durable (fsync'd or
//     replicated): an acknowledged write survives kill -9.
//   - Update's fn may run more than once (batched or optimistic backends retry
//     it), so it must not have side effects outside the Tx. An error returned by
//     fn aborts the transaction and is returned unchanged.
//   - Reads inside a View or Update see one consistent snapshot.
//   - Watch delivers every change with revision >= fromRevision, in revision
//     order, with no gaps, or fails with errdefs.ErrCompacted when that history
//     has been discarded.
package store

import (
	"context"
)

// KV is one key with its value and revisions.
type KV struct {
	Key   string
	Value []byte
	// CreateRevision is the store revision of the Update that created the key.
	CreateRevision int64
	// ModRevision is the store revision of the Update that last wrote the key.
	ModRevision int64
}

// ReadTx reads one consistent snapshot of the store.
type ReadTx interface {
	// Get returns the key, or ok=false if it does not exist.
	Get(key string) (kv KV, ok bool, err error)
	// List returns keys starting with prefix in ascending key order, starting
	// strictly after the key `after` (empty means from the first), and at most
	// limit entries (limit <= 0 means no limit).
	List(prefix, after string, limit int) ([]KV, error)
	// ListReverse is List in descending key order: keys starting with
	// prefix, strictly before the key `before` (empty means from the last),
	// at most limit entries (limit <= 0 means no limit).
	ListReverse(prefix, before string, limit int) ([]KV, error)
	// Count returns the number of keys starting with prefix.
	Count(prefix string) (int, error)
	// Revision is the store revision this snapshot reflects.
	Revision() int64
}

// Tx reads and writes inside one atomic Update.
type Tx interface {
	ReadTx
	// Put writes value at key, creating it if needed.
	Put(key string, value []byte) error
	// Create writes value at key; it fails with errdefs.ErrAlreadyExists if
	// the key exists.
	Create(key string, value []byte) error
	// Delete removes key; it fails with errdefs.ErrNotFound if it is absent.
	Delete(key string) error
}

// EventType says what happened to a key.
type EventType int

const (
	// EventPut is a create or an overwrite.
	EventPut EventType = iota + 1
	// EventDelete is a removal; the event's KV carries the key and revisions, no value.
	EventDelete
)

// String returns "PUT" or "DELETE".
func (t EventType) String() string {
	switch t {
	case EventPut:
		return "PUT"
	case EventDelete:
		return "DELETE"
	}
	return "UNKNOWN"
}

// Event is one change to one key at one revision.
type Event struct {
	Type EventType
	// KV is the key after the change. For a delete, Value is nil and
	// ModRevision is the revision of the delete.
	KV KV
}

// Store is the control plane's durable state.
type Store interface {
	// View runs fn against a consistent read-only snapshot.
	View(ctx context.Context, fn func(tx ReadTx) error) error
	// Update runs fn in one atomic, durable transaction and returns the
	// revision it committed. A transaction that writes nothing commits no
	// revision and returns the current one.
	Update(ctx context.Context, fn func(tx Tx) error) (revision int64, err error)
	// Watch streams changes to keys under prefix, starting at fromRevision
	// (inclusive); fromRevision <= 0 means changes after the current revision.
	// The channel closes when ctx ends or the store closes; a watcher that
	// cannot keep up is closed too, and its last value is an Err event.
	Watch(ctx context.Context, prefix string, fromRevision int64) (<-chan WatchResponse, error)
	// Revision is the latest committed revision.
	Revision() int64
	// Close releases the backend.
	Close() error
}

// WatchResponse carries the events of one committed revision, or an error
// that ended the watch (the channel closes after it).
type WatchResponse struct {
	Revision int64
	Events   []Event
	Err      error
}
