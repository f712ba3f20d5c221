package bolt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/berthdev/berth/internal/errdefs"
	"github.com/berthdev/berth/internal/store"
)

// A key's record in the kv bucket is a fixed header followed by the value:
//
//	[0:8)   CreateRevision, big-endian
//	[8:16)  ModRevision, big-endian
//	[16:)   value
const headerLen = 16

// errTxDone is returned by a transaction used after its function returned;
// the bbolt transaction behind it is gone by then.
var errTxDone = fmt.Errorf("bolt store: transaction used after its function returned: %w", errdefs.ErrFailedPrecondition)

// readTx implements store.ReadTx over one bbolt transaction.
type readTx struct {
	kv   *bbolt.Bucket
	rev  int64
	done bool
}

var _ store.ReadTx = (*readTx)(nil)

func newReadTx(btx *bbolt.Tx) *readTx {
	return &readTx{
		kv:  btx.Bucket(kvBucket),
		rev: getInt(btx.Bucket(metaBucket), revisionKey),
	}
}

// Get returns a copy of the key's record: bbolt memory is only valid inside
// the transaction.
func (t *readTx) Get(key string) (store.KV, bool, error) {
	if t.done {
		return store.KV{}, false, errTxDone
	}
	raw := t.kv.Get([]byte(key))
	if raw == nil {
		return store.KV{}, false, nil
	}
	kv, err := decodeKV(key, raw)
	if err != nil {
		return store.KV{}, false, err
	}
	return kv, true, nil
}

// List seeks straight to the first candidate key, so its cost is the number
// of keys returned, not the size of the store.
func (t *readTx) List(prefix, after string, limit int) ([]store.KV, error) {
	if t.done {
		return nil, errTxDone
	}
	c := t.kv.Cursor()
	var k, v []byte
	if after != "" && after >= prefix {
		k, v = c.Seek([]byte(after))
		if k != nil && string(k) == after {
			k, v = c.Next()
		}
	} else {
		k, v = c.Seek([]byte(prefix))
	}
	return collect(k, v, []byte(prefix), limit, c.Next)
}

// collect decodes keys under prefix from (k, v) on, stepping with next,
// until the prefix ends or limit (> 0) keys are collected.
func collect(k, v, prefix []byte, limit int, next func() ([]byte, []byte)) ([]store.KV, error) {
	var out []store.KV
	for ; k != nil && bytes.HasPrefix(k, prefix); k, v = next() {
		if limit > 0 && len(out) >= limit {
			break
		}
		kv, err := decodeKV(string(k), v)
		if err != nil {
			return nil, err
		}
		out = append(out, kv)
	}
	return out, nil
}

// ListReverse seeks to the end of the range (or to before) and walks
// backwards, so its cost too is the number of keys returned.
func (t *readTx) ListReverse(prefix, before string, limit int) ([]store.KV, error) {
	if t.done {
		return nil, errTxDone
	}
	p := []byte(prefix)
	if before != "" && before <= prefix {
		return nil, nil // every key in the range sorts at or after before
	}
	// Start below the smaller of before and the first key past the range.
	start := []byte(before)
	if upper := prefixEnd(p); upper != nil && (before == "" || bytes.Compare(upper, start) < 0) {
		start = upper
	}
	c := t.kv.Cursor()
	var k, v []byte
	if len(start) == 0 {
		k, v = c.Last()
	} else if k, v = c.Seek(start); k == nil {
		k, v = c.Last()
	} else {
		k, v = c.Prev()
	}
	return collect(k, v, p, limit, c.Prev)
}

// prefixEnd is the smallest key greater than every key with prefix p, or
// nil when there is none (p empty or all 0xff).
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// Count walks the prefix range only.
func (t *readTx) Count(prefix string) (int, error) {
	if t.done {
		return 0, errTxDone
	}
	c := t.kv.Cursor()
	p := []byte(prefix)
	n := 0
	for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
		n++
	}
	return n, nil
}

// Revision is the revision of the snapshot. Inside an Update it is the
// revision the transaction started from; the transaction commits
// Revision()+1 if it writes anything.
func (t *readTx) Revision() int64 { return t.rev }

// writeTx implements store.Tx for one run of an Update function. Several
// runs may share one bbolt transaction (group commit); each run is still its
// own store transaction with its own revision, because it starts from the
// revision the previous run in the same bbolt transaction left behind.
type writeTx struct {
	readTx
	events []store.Event
}

var _ store.Tx = (*writeTx)(nil)

// Put writes value at key, keeping the key's CreateRevision if it exists.
func (t *writeTx) Put(key string, value []byte) error {
	if err := t.check(key, value); err != nil {
		return err
	}
	create := t.rev + 1
	if old := t.kv.Get([]byte(key)); old != nil {
		h, err := decodeHeader(key, old)
		if err != nil {
			return err
		}
		create = h.create
	}
	return t.write(key, create, value)
}

// Create writes value at key only if the key is absent.
func (t *writeTx) Create(key string, value []byte) error {
	if err := t.check(key, value); err != nil {
		return err
	}
	if t.kv.Get([]byte(key)) != nil {
		return fmt.Errorf("key %q: %w", key, errdefs.ErrAlreadyExists)
	}
	return t.write(key, t.rev+1, value)
}

// Delete removes key and records a delete event carrying the key's
// CreateRevision and the deleting revision.
func (t *writeTx) Delete(key string) error {
	if err := t.check(key, nil); err != nil {
		return err
	}
	old := t.kv.Get([]byte(key))
	if old == nil {
		return fmt.Errorf("key %q: %w", key, errdefs.ErrNotFound)
	}
	h, err := decodeHeader(key, old)
	if err != nil {
		return err
	}
	if err := t.kv.Delete([]byte(key)); err != nil {
		return fmt.Errorf("bolt store: delete key %q: %w", key, err)
	}
	t.events = append(t.events, store.Event{
		Type: store.EventDelete,
		KV:   store.KV{Key: key, CreateRevision: h.create, ModRevision: t.rev + 1},
	})
	return nil
}

func (t *writeTx) write(key string, create int64, value []byte) error {
	mod := t.rev + 1
	// The record is a fresh buffer: bbolt keeps a reference to it until the
	// commit, and the event shares its value bytes.
	rec := make([]byte, headerLen+len(value))
	binary.BigEndian.PutUint64(rec[0:8], uint64(create))
	binary.BigEndian.PutUint64(rec[8:16], uint64(mod))
	copy(rec[headerLen:], value)
	if err := t.kv.Put([]byte(key), rec); err != nil {
		return fmt.Errorf("bolt store: put key %q: %w", key, err)
	}
	t.events = append(t.events, store.Event{
		Type: store.EventPut,
		KV:   store.KV{Key: key, Value: rec[headerLen:], CreateRevision: create, ModRevision: mod},
	})
	return nil
}

func (t *writeTx) check(key string, value []byte) error {
	switch {
	case t.done:
		return errTxDone
	case key == "":
		return fmt.Errorf("bolt store: empty key: %w", errdefs.ErrInvalidArgument)
	case len(key) > bbolt.MaxKeySize:
		return fmt.Errorf("bolt store: key of %d bytes exceeds %d: %w", len(key), bbolt.MaxKeySize, errdefs.ErrInvalidArgument)
	case len(value) > bbolt.MaxValueSize-headerLen:
		return fmt.Errorf("bolt store: key %q: value of %d bytes is too large: %w", key, len(value), errdefs.ErrInvalidArgument)
	}
	return nil
}

type header struct{ create, mod int64 }

var errCorrupt = errors.New("bolt store: corrupt record")

func decodeHeader(key string, raw []byte) (header, error) {
	if len(raw) < headerLen {
		return header{}, fmt.Errorf("key %q: record of %d bytes: %w", key, len(raw), errCorrupt)
	}
	return header{
		create: int64(binary.BigEndian.Uint64(raw[0:8])),
		mod:    int64(binary.BigEndian.Uint64(raw[8:16])),
	}, nil
}

func decodeKV(key string, raw []byte) (store.KV, error) {
	h, err := decodeHeader(key, raw)
	if err != nil {
		return store.KV{}, err
	}
	return store.KV{
		Key:            key,
		Value:          bytes.Clone(raw[headerLen:]),
		CreateRevision: h.create,
		ModRevision:    h.mod,
	}, nil
}
