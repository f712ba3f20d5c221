package controlplane

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/berthdev/berth/internal/store/bolt"
)

// TestStickinessKeySurvivesRestart: the first start stores a random key
// for the load balancers' stickiness cookies; later starts, on the same
// store, read the same key, so cookies issued before a restart still
// stick.
func TestStickinessKeySurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), storeFile)
	start := func() []byte {
		t.Helper()
		st, err := bolt.Open(path, bolt.Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		key, err := stickinessKey(st)
		if err != nil {
			t.Fatal(err)
		}
		return key
	}
	first := start()
	if len(first) != 32 || bytes.Equal(first, make([]byte, 32)) {
		t.Fatalf("key %x: want 32 random bytes", first)
	}
	if again := start(); !bytes.Equal(again, first) {
		t.Fatalf("after a restart the key is %x, was %x", again, first)
	}
	other := filepath.Join(t.TempDir(), storeFile)
	st, err := bolt.Open(other, bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if k, err := stickinessKey(st); err != nil || bytes.Equal(k, first) {
		t.Fatalf("another store's key %x, %v: want a key of its own", k, err)
	}
}
