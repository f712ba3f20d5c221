package scheduler

import (
	"testing"
	"time"
)

// FuzzParseExpression: parsing never panics; a parsed expression prints in
// a form that parses to the same canonical text and the same answers.
//
//	go test -run '^$' -fuzz '^FuzzParseExpression$' -fuzztime 200000x ./internal/scheduler
func FuzzParseExpression(f *testing.F) {
	for _, s := range []string{
		"attribute:ecs.instance-type == t2.small",
		"attribute:ecs.availability-zone in [us-east-1a, us-east-1b]",
		"attribute:ecs.instance-type =~ g2.* and attribute:ecs.availability-zone != us-east-1d",
		"task:group == service:production",
		"not(task:group == database)",
		"runningTasksCount == 1",
		"agentVersion < 1.14.5",
		"registeredAt < 2018-02-13",
		"ec2InstanceId in ['i-abcd1234', 'i-wxyx7890']",
		"(attribute:a exists || !attribute:b !exists) && agentConnected == true",
		"attribute:a not in [\"x y\", 'z']",
		"attribute:size >= 10 or attribute:a =~ 'a|b(c)'",
		"registeredAt >= 2018-06-18T22:28:28+02:00",
		"attribute:a==b&&attribute:c!=d",
	} {
		f.Add(s)
	}
	samples := []*Instance{
		{ID: "empty"},
		{
			ID: "full", EC2InstanceID: "i-abcd1234", AgentConnected: true, AgentVersion: "1.14.5",
			RegisteredAt: time.Date(2018, 6, 18, 0, 0, 0, 0, time.UTC), RunningTasksCount: 1,
			Attributes: map[string]string{"ecs.instance-type": "t2.small", "a": "b", "size": "12", "ecs.availability-zone": "us-east-1a"},
			Tasks:      []PlacedTask{{Group: "database"}, {Group: "service:production"}},
		},
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := ParseExpression(s)
		if err != nil {
			ee, ok := err.(*ExpressionError)
			if !ok || ee.Offset < 0 || ee.Offset > len(s) || ee.Problem == "" {
				t.Fatalf("ParseExpression(%q): bad error %#v", s, err)
			}
			return
		}
		text := e.String()
		again, err := ParseExpression(text)
		if err != nil {
			t.Fatalf("ParseExpression(%q) prints %q, which does not parse: %v", s, text, err)
		}
		if again.String() != text {
			t.Fatalf("ParseExpression(%q) prints %q, which prints %q", s, text, again.String())
		}
		if text == "" || isSpace(text[0]) || isSpace(text[len(text)-1]) {
			t.Fatalf("canonical text %q is empty or has outer white space", text)
		}
		for _, in := range samples {
			if e.Match(in) != again.Match(in) {
				t.Fatalf("%q and its canonical form %q disagree on instance %s", s, text, in.ID)
			}
		}
	})
}
