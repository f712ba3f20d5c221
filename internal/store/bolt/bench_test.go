package bolt_test

// The write benchmarks fsync like production; BenchmarkFsyncBaseline is the
// peer they are measured against: a bare write+fsync of a small record to a
// file in the same directory. Run them with
//
//	go test ./internal/store/bolt -run '^$' -bench . -benchtime 2s

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/berthdev/berth/internal/store"
	"github.com/berthdev/berth/internal/store/bolt"
)

// benchValue is about the size of a small stored ECS object.
var benchValue = make([]byte, 512)

func BenchmarkUpdate(b *testing.B) {
	s := open(b, filepath.Join(b.TempDir(), "bench.db"), bolt.Options{})
	ctx := context.Background()
	i := 0
	for b.Loop() {
		key := fmt.Sprintf("/bench/%08d", i)
		i++
		if _, err := s.Update(ctx, func(tx store.Tx) error { return tx.Put(key, benchValue) }); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUpdateParallel shows group commit: concurrent Updates share
// fsyncs, so throughput grows with the number of writers.
func BenchmarkUpdateParallel(b *testing.B) {
	s := open(b, filepath.Join(b.TempDir(), "bench.db"), bolt.Options{})
	ctx := context.Background()
	var n atomic.Int64
	b.SetParallelism(16) // 16 writers per GOMAXPROCS
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			key := fmt.Sprintf("/bench/%08d", n.Add(1))
			if _, err := s.Update(ctx, func(tx store.Tx) error { return tx.Put(key, benchValue) }); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// seeded returns a store holding n keys /bench/00000000.. written in
// batches (with NoSync: the read benchmarks do not measure writes).
func seeded(b *testing.B, n int) *bolt.Store {
	s := open(b, filepath.Join(b.TempDir(), "bench.db"), bolt.Options{NoSync: true})
	for start := 0; start < n; start += 1000 {
		_, err := s.Update(context.Background(), func(tx store.Tx) error {
			for i := start; i < min(start+1000, n); i++ {
				if err := tx.Put(fmt.Sprintf("/bench/%08d", i), benchValue); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return s
}

func BenchmarkGet(b *testing.B) {
	const keys = 10000
	s := seeded(b, keys)
	ctx := context.Background()
	i := 0
	for b.Loop() {
		key := fmt.Sprintf("/bench/%08d", (i*7919)%keys)
		i++
		err := s.View(ctx, func(tx store.ReadTx) error {
			_, ok, err := tx.Get(key)
			if !ok && err == nil {
				err = fmt.Errorf("%s missing", key)
			}
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkList reads pages of 100 keys from the middle of 10,000.
func BenchmarkList(b *testing.B) {
	const keys = 10000
	s := seeded(b, keys)
	ctx := context.Background()
	i := 0
	for b.Loop() {
		after := fmt.Sprintf("/bench/%08d", (i*7919)%(keys-100))
		i++
		err := s.View(ctx, func(tx store.ReadTx) error {
			kvs, err := tx.List("/bench/", after, 100)
			if err == nil && len(kvs) != 100 {
				err = fmt.Errorf("List after %s: %d keys", after, len(kvs))
			}
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFsyncBaseline is the floor for one durable write on this disk:
// append a small record to a file and fsync it.
func BenchmarkFsyncBaseline(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "fsync"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	record := make([]byte, 64)
	for b.Loop() {
		if _, err := f.Write(record); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
}
