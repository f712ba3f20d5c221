package awsmodel

import (
	"strings"
	"testing"
)

// TestPresentViolations: only members the request carries can violate a
// constraint; a missing required member always does.
func TestPresentViolations(t *testing.T) {
	body := []byte(`{"maxResults":0,"ids":[{"tag":""},{}],"m":{"k":{"x":null}}}`)
	vs := []Violation{
		{Field: "maxResults", Constraint: "Member must have value greater than or equal to 1"},
		{Field: "nextToken", Constraint: "Member must have length greater than or equal to 1"},
		{Field: "ids[0].tag", Constraint: "Member must have length greater than or equal to 1"},
		{Field: "ids[1].tag", Constraint: "Member must have length greater than or equal to 1"},
		{Field: "ids[5].tag", Constraint: "Member must have length greater than or equal to 1"},
		{Field: `m["k"].x`, Constraint: "Member must have length greater than or equal to 1"},
		{Field: "name", Constraint: requiredConstraint},
	}
	var got []string
	for _, v := range presentViolations(vs, body) {
		got = append(got, v.Field)
	}
	want := []string{"maxResults", "ids[0].tag", "name"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("kept %v, want %v", got, want)
	}
}
