package ecs_test

import (
	"path/filepath"
	"testing"

	"github.com/berthdev/berth/internal/api/ecs"
	"github.com/berthdev/berth/internal/api/supporttest"
	"github.com/berthdev/berth/internal/awsmodel/ecstypes"
	"github.com/berthdev/berth/internal/store/bolt"
)

// TestREADMEListsImplementedActions keeps the README's ECS table true: it
// must list exactly the operations the handler implements.
func TestREADMEListsImplementedActions(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "s.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc, err := ecs.New(ecs.Config{Store: st, Region: "us-east-1", Account: "000000000000"})
	if err != nil {
		t.Fatal(err)
	}
	supporttest.Check(t, "ECS", svc, ecstypes.Operations)
}
