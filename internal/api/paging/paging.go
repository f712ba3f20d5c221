// Package paging is the pagination the AWS JSON APIs share: opaque next
// tokens (the last key returned, base64url-encoded) and a walk over store
// keys that applies a filter in batches, so a filter that drops most records
// still makes progress without loading the whole range.
package paging

import (
	"encoding/base64"

	"github.com/berthdev/berth/internal/store"
)

// Page is one request's pagination: where to start and how many to return.
type Page struct {
	// After is the key the previous page ended on ("" for the first page).
	After string
	// Limit is how many records to keep; -1 means no limit.
	Limit int
}

// Token is the next token of a page that ended on lastKey.
func Token(lastKey string) string { return base64.RawURLEncoding.EncodeToString([]byte(lastKey)) }

// Decode returns the key a next token names; ok is false for a token this
// package did not make.
func Decode(nextToken string) (after string, ok bool) {
	b, err := base64.RawURLEncoding.DecodeString(nextToken)
	if err != nil || len(b) == 0 {
		return "", false
	}
	return string(b), true
}

// Lister lists keys under prefix after (or, for a reverse walk, before) from,
// at most limit of them: store.ReadTx's List or ListReverse.
type Lister func(prefix, from string, limit int) ([]store.KV, error)

// Walk calls keep for each key under prefix after p.After, in list's order,
// until p.Limit records were kept, and returns the next token ("" when the
// range is exhausted).
func Walk(list Lister, prefix string, p Page, keep func(store.KV) (bool, error)) (string, error) {
	from := p.After
	kept := 0
	const batch = 256
	for {
		kvs, err := list(prefix, from, batch)
		if err != nil {
			return "", err
		}
		for _, kv := range kvs {
			ok, err := keep(kv)
			if err != nil {
				return "", err
			}
			if ok {
				kept++
				if kept == p.Limit {
					more, err := list(prefix, kv.Key, 1)
					if err != nil || len(more) == 0 {
						return "", err
					}
					return Token(kv.Key), nil
				}
			}
		}
		if len(kvs) < batch {
			return "", nil
		}
		from = kvs[len(kvs)-1].Key
	}
}
