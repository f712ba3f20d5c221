package agent

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/store/bolt"
)

// TestLivenessForgetsIdleInstances: instances unheard from for an hour
// leave the liveness and wake-up maps; active ones stay connected.
func TestLivenessForgetsIdleInstances(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "s.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Unix(1_800_000_000, 0)
	s, err := New(Config{Store: st, Token: "t", Now: func() time.Time { return now }, DisconnectGrace: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	s.touch("gone", 0)
	s.waiters.notify("gone", 5)
	if !s.Connected("gone") {
		t.Fatal("just heard from, but not connected")
	}
	now = now.Add(2 * time.Hour)
	s.touch("alive", 0)
	s.mu.Lock()
	_, kept := s.seen["gone"]
	s.mu.Unlock()
	s.waiters.mu.Lock()
	_, woke := s.waiters.last["gone"]
	s.waiters.mu.Unlock()
	if kept || woke || s.Connected("gone") || !s.Connected("alive") {
		t.Fatalf("after two idle hours: seen kept=%v wake state kept=%v", kept, woke)
	}
}
