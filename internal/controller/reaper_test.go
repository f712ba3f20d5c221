package controller_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/awsmodel"
	"github.com/berthdev/berth/internal/controller"
	"github.com/berthdev/berth/internal/state"
	"github.com/berthdev/berth/internal/store"
	"github.com/berthdev/berth/internal/store/bolt"
)

func TestReaperDeletesOnlyTasksStoppedLongAgo(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "s.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	put := func(id string, status string, stoppedAgo time.Duration) {
		task := &state.Task{ID: id, InstanceID: "i1"}
		task.LastStatus = status
		if status == "STOPPED" {
			task.StoppedAt = awsmodel.NewTime(now.Add(-stoppedAgo))
		}
		_, err := st.Update(context.Background(), func(tx store.Tx) error {
			if err := state.Put(tx, state.TaskSpecKey(id), &state.TaskSpec{}); err != nil {
				return err
			}
			if err := tx.Put(state.InstanceTaskKey("i1", id), []byte("c")); err != nil {
				return err
			}
			return state.PutTask(tx, "c", task, "RUNNING", now.Add(-stoppedAgo))
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	put("old", "STOPPED", 2*time.Hour)
	put("older", "STOPPED", 3*time.Hour)
	put("recent", "STOPPED", 10*time.Minute)
	put("running", "RUNNING", 0)
	r := &controller.Reaper{Store: st, Now: func() time.Time { return now }, Batch: 1}
	n, err := r.Pass(context.Background())
	if err != nil || n != 2 {
		t.Fatalf("reaped %d, %v; want 2", n, err)
	}
	err = st.View(context.Background(), func(tx store.ReadTx) error {
		for id, want := range map[string]bool{"old": false, "older": false, "recent": true, "running": true} {
			for _, key := range []string{state.TaskKey("c", id), state.TaskSpecKey(id), state.InstanceTaskKey("i1", id)} {
				if _, ok, _ := tx.Get(key); ok != want {
					t.Errorf("%s present = %v, want %v", key, ok, want)
				}
			}
		}
		n, _ := tx.Count(state.StoppedTasksPrefix)
		if n != 1 {
			t.Errorf("stopped index holds %d entries, want 1 (recent)", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := r.Pass(context.Background()); n != 0 {
		t.Fatalf("second pass reaped %d", n)
	}
}

func TestReaperExpiresClientTokens(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "s.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	for tok, age := range map[string]time.Duration{"old": 2 * time.Hour, "fresh": 10 * time.Minute} {
		_, err := st.Update(context.Background(), func(tx store.Tx) error {
			return state.PutClientToken(tx, "c", tok, &state.ClientToken{TaskArns: []string{"arn"}}, now.Add(-age))
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	r := &controller.Reaper{Store: st, Now: func() time.Time { return now }}
	if _, err := r.Pass(context.Background()); err != nil {
		t.Fatal(err)
	}
	err = st.View(context.Background(), func(tx store.ReadTx) error {
		_, oldOK, _ := state.GetClientToken(tx, "c", "old")
		_, freshOK, _ := state.GetClientToken(tx, "c", "fresh")
		n, _ := tx.Count(state.ClientTokenTimesPrefix)
		if oldOK || !freshOK || n != 1 {
			t.Errorf("after a pass: old kept=%v fresh kept=%v index entries=%d", oldOK, freshOK, n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
