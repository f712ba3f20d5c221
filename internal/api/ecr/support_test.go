package ecr_test

import (
	"testing"

	"github.com/berthdev/berth/internal/api/supporttest"
	"github.com/berthdev/berth/internal/awsmodel/ecrtypes"
)

// TestREADMEListsImplementedActions keeps the README's ECR table true.
func TestREADMEListsImplementedActions(t *testing.T) {
	supporttest.Check(t, "ECR", newFixture(t).api, ecrtypes.Operations)
}
