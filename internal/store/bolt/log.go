package bolt

import (
	"bytes"
	"encoding/binary"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/berthdev/berth/internal/store"
)

// The file holds three buckets:
//
//	meta    format, revision (last committed), oldest (first revision the
//	        event log can replay); 8-byte big-endian integers
//	kv      key -> header + value (see headerLen)
//	events  8-byte big-endian revision -> the events of that revision
//
// The revision, the keys and the event log change in the same bbolt
// transaction, so a crash leaves them consistent with each other.
var (
	metaBucket   = []byte("meta")
	kvBucket     = []byte("kv")
	eventsBucket = []byte("events")

	formatKey   = []byte("format")
	revisionKey = []byte("revision")
	oldestKey   = []byte("oldest")
)

const (
	// formatVersion is the on-disk layout written by this package.
	formatVersion = 1
	// compactChunk bounds how many old revisions one transaction discards, so
	// trimming history never makes a single commit slow. Every commit adds one
	// revision and may trim this many, so the log converges on its window.
	compactChunk = 128
)

func getInt(b *bbolt.Bucket, key []byte) int64 {
	v := b.Get(key)
	if len(v) != 8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(v))
}

func putInt(b *bbolt.Bucket, key []byte, v int64) error {
	return b.Put(key, revKey(v))
}

func revKey(rev int64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), uint64(rev))
}

// appendLog records rev as committed with its events and trims history that
// has left the window of the last `history` revisions.
func appendLog(btx *bbolt.Tx, rev int64, events []store.Event, history int) error {
	meta := btx.Bucket(metaBucket)
	eventLog := btx.Bucket(eventsBucket)
	// Keys are appended in order; fuller pages waste less space.
	eventLog.FillPercent = 0.9
	if err := putInt(meta, revisionKey, rev); err != nil {
		return err
	}
	if err := eventLog.Put(revKey(rev), encodeEvents(events)); err != nil {
		return err
	}
	oldest := getInt(meta, oldestKey)
	if floor := rev - int64(history) + 1; floor > oldest {
		oldest = floor
		if err := putInt(meta, oldestKey, oldest); err != nil {
			return err
		}
	}
	_, err := trimLog(eventLog, oldest, compactChunk)
	return err
}

// trimLog deletes up to max events older than oldest and reports how many it
// deleted.
func trimLog(eventLog *bbolt.Bucket, oldest int64, max int) (int, error) {
	var stale [][]byte
	c := eventLog.Cursor()
	for k, _ := c.First(); k != nil && len(stale) < max; k, _ = c.Next() {
		if int64(binary.BigEndian.Uint64(k)) >= oldest {
			break
		}
		stale = append(stale, bytes.Clone(k))
	}
	for _, k := range stale {
		if err := eventLog.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(stale), nil
}

// An event is encoded as
//
//	type (1 byte) | uvarint len(key) | key | uvarint CreateRevision
//	[| uvarint len(value) | value]   (puts only)
//
// ModRevision is the revision the record is stored under.
func encodeEvents(events []store.Event) []byte {
	n := 0
	for _, e := range events {
		n += 1 + 3*binary.MaxVarintLen64 + len(e.KV.Key) + len(e.KV.Value)
	}
	b := make([]byte, 0, n)
	for _, e := range events {
		b = append(b, byte(e.Type))
		b = binary.AppendUvarint(b, uint64(len(e.KV.Key)))
		b = append(b, e.KV.Key...)
		b = binary.AppendUvarint(b, uint64(e.KV.CreateRevision))
		if e.Type == store.EventPut {
			b = binary.AppendUvarint(b, uint64(len(e.KV.Value)))
			b = append(b, e.KV.Value...)
		}
	}
	return b
}

// decodeEvents decodes the events of rev whose key starts with prefix,
// copying them out of bbolt memory.
func decodeEvents(raw []byte, rev int64, prefix string) ([]store.Event, error) {
	var out []store.Event
	for len(raw) > 0 {
		typ := store.EventType(raw[0])
		raw = raw[1:]
		key, rest, ok := cutBytes(raw)
		if !ok {
			return nil, fmt.Errorf("revision %d: truncated event key: %w", rev, errCorrupt)
		}
		create, n := binary.Uvarint(rest)
		if n <= 0 {
			return nil, fmt.Errorf("revision %d: truncated event revision: %w", rev, errCorrupt)
		}
		raw = rest[n:]
		var value []byte
		switch typ {
		case store.EventPut:
			if value, raw, ok = cutBytes(raw); !ok {
				return nil, fmt.Errorf("revision %d: truncated event value: %w", rev, errCorrupt)
			}
		case store.EventDelete:
		default:
			return nil, fmt.Errorf("revision %d: event type %d: %w", rev, typ, errCorrupt)
		}
		if !hasPrefix(key, prefix) {
			continue
		}
		e := store.Event{Type: typ, KV: store.KV{Key: string(key), CreateRevision: int64(create), ModRevision: rev}}
		if typ == store.EventPut {
			e.KV.Value = append([]byte{}, value...)
		}
		out = append(out, e)
	}
	return out, nil
}

// cutBytes splits a uvarint-length-prefixed byte string off b.
func cutBytes(b []byte) (field, rest []byte, ok bool) {
	l, n := binary.Uvarint(b)
	if n <= 0 || uint64(len(b)-n) < l {
		return nil, nil, false
	}
	return b[n : n+int(l)], b[n+int(l):], true
}

// hasPrefix is bytes.HasPrefix for a string prefix, without allocating.
func hasPrefix(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && string(b[:len(prefix)]) == prefix
}
