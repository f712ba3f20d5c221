package elbv2_test

import (
	"testing"

	"github.com/berthdev/berth/internal/api/supporttest"
	"github.com/berthdev/berth/internal/awsmodel/elbv2types"
)

// TestREADMEListsImplementedActions keeps the README's ELBv2 table true.
func TestREADMEListsImplementedActions(t *testing.T) {
	supporttest.Check(t, "ELBv2", newFixture(t).api, elbv2types.Operations)
}
