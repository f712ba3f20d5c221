package bolt_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/store"
	"github.com/berthdev/berth/internal/store/bolt"
)

// crashChildEnv names the store file a re-executed test binary writes to
// until it is killed.
const crashChildEnv = "BERTH_BOLT_CRASH_CHILD"

const (
	crashWriters  = 8
	crashWantAcks = 300
	crashMaxRun   = 3 * time.Second
)

// TestCrashDurability re-executes this test binary as a child that commits
// Updates from several goroutines and prints each key only after its Update
// returned. The parent SIGKILLs the child mid-stream, reopens the file and
// checks that every acknowledged write survived and that the keys, the
// revision counter and the event log agree with each other.
func TestCrashDurability(t *testing.T) {
	if path := os.Getenv(crashChildEnv); path != "" {
		crashChild(path)
		return
	}
	path := filepath.Join(t.TempDir(), "berth.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashDurability$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	type ack struct {
		key string
		rev int64
	}
	acks := make(chan ack)
	readDone := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var a ack
			if _, err := fmt.Sscanf(sc.Text(), "ack %s %d", &a.key, &a.rev); err == nil {
				acks <- a
			}
		}
		close(acks)
		readDone <- sc.Err()
	}()

	acked := map[string]int64{}
	deadline := time.NewTimer(crashMaxRun)
	defer deadline.Stop()
collect:
	for len(acked) < crashWantAcks {
		select {
		case a, ok := <-acks:
			if !ok {
				break collect
			}
			acked[a.key] = a.rev
		case <-deadline.C:
			break collect
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatalf("kill child: %v", err)
	}
	// Acknowledgements printed before the kill are still in the pipe.
	for a := range acks {
		acked[a.key] = a.rev
	}
	if err := <-readDone; err != nil {
		t.Fatalf("reading the child's output: %v", err)
	}
	_ = cmd.Wait() // "signal: killed"
	if len(acked) == 0 {
		t.Fatalf("the child acknowledged no writes; its stderr:\n%s", stderr.String())
	}
	t.Logf("child acknowledged %d writes before SIGKILL", len(acked))

	s := open(t, path, bolt.Options{})
	ctx := t.Context()
	last := s.Revision()
	var kvs []store.KV
	err = s.View(ctx, func(tx store.ReadTx) error {
		if tx.Revision() != last {
			return fmt.Errorf("snapshot revision %d, Revision() %d", tx.Revision(), last)
		}
		var err error
		kvs, err = tx.List("", "", 0)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	state := map[string]store.KV{}
	for _, kv := range kvs {
		state[kv.Key] = kv
	}

	// Durability: every acknowledged write is there, as written.
	for key, rev := range acked {
		kv, ok := state[key]
		switch {
		case !ok:
			t.Errorf("acknowledged key %s (revision %d) lost", key, rev)
		case string(kv.Value) != crashValue(key) || kv.CreateRevision != rev || kv.ModRevision != rev:
			t.Errorf("acknowledged key %s: got %s %d/%d, want %s %d/%d", key, kv.Value, kv.CreateRevision, kv.ModRevision, crashValue(key), rev, rev)
		}
	}

	// Consistency: each committed transaction created one key and moved
	// /crash/last, so revision = keys - 1, and /crash/last names the key of
	// the last revision.
	if len(state) != int(last)+1 {
		t.Errorf("%d keys at revision %d; every transaction adds one key besides /crash/last", len(state), last)
	}
	lastKV := state["/crash/last"]
	if lastKV.ModRevision != last || state[string(lastKV.Value)].ModRevision != last {
		t.Errorf("/crash/last = %q at revision %d; store revision %d", lastKV.Value, lastKV.ModRevision, last)
	}
	for _, kv := range kvs {
		if kv.ModRevision > last || kv.CreateRevision > kv.ModRevision {
			t.Errorf("%s has revisions %d/%d beyond the store revision %d", kv.Key, kv.CreateRevision, kv.ModRevision, last)
		}
	}

	// The event log replays to exactly the stored state.
	ch, err := s.Watch(ctx, "", 1)
	if err != nil {
		t.Fatal(err)
	}
	replayed := map[string]store.KV{}
	for want := int64(1); want <= last; want++ {
		var r store.WatchResponse
		select {
		case r = <-ch:
		case <-time.After(10 * time.Second):
			t.Fatalf("replay stalled at revision %d of %d", want, last)
		}
		if r.Err != nil || r.Revision != want {
			t.Fatalf("replay: revision %d (err %v), want %d", r.Revision, r.Err, want)
		}
		for _, e := range r.Events {
			replayed[e.KV.Key] = e.KV
		}
	}
	if len(replayed) != len(state) {
		t.Errorf("event log replays to %d keys, the store holds %d", len(replayed), len(state))
	}
	for key, kv := range state {
		if r := replayed[key]; !bytes.Equal(r.Value, kv.Value) || r.CreateRevision != kv.CreateRevision || r.ModRevision != kv.ModRevision {
			t.Errorf("%s: log says %q %d/%d, store says %q %d/%d", key, r.Value, r.CreateRevision, r.ModRevision, kv.Value, kv.CreateRevision, kv.ModRevision)
		}
	}

	// And it takes new writes.
	rev, err := s.Update(ctx, func(tx store.Tx) error { return tx.Put("/crash/after", []byte("ok")) })
	if err != nil || rev != last+1 {
		t.Fatalf("write after recovery = %d, %v; want revision %d", rev, err, last+1)
	}
}

func crashValue(key string) string { return "value of " + key }

// crashChild writes until it is killed (or, as a safety net if the parent
// died, for ten seconds).
func crashChild(path string) {
	s, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for w := range crashWriters {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				key := "/crash/" + strconv.Itoa(w) + "/" + strconv.Itoa(i)
				rev, err := s.Update(ctx, func(tx store.Tx) error {
					if err := tx.Put(key, []byte(crashValue(key))); err != nil {
						return err
					}
					return tx.Put("/crash/last", []byte(key))
				})
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					return
				}
				mu.Lock()
				fmt.Fprintf(os.Stdout, "ack %s %d\n", key, rev)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	os.Exit(0)
}
