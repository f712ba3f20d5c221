package scheduler

import (
	"testing"
	"time"
)

func TestExpressionMatch(t *testing.T) {
	inst := &Instance{
		ID:                "a1",
		EC2InstanceID:     "i-abcd1234",
		Status:            StatusActive,
		AgentConnected:    true,
		AgentVersion:      "1.14.5",
		RegisteredAt:      time.Date(2018, 6, 18, 22, 28, 28, 0, time.UTC),
		RunningTasksCount: 2,
		Attributes: map[string]string{
			"ecs.instance-type":     "t2.small",
			"ecs.availability-zone": "us-east-1a",
			"stack":                 "prod",
			"size":                  "10",
			"flag":                  "",
		},
		Tasks: []PlacedTask{{Group: "service:web"}, {Group: "family:batch"}},
	}
	bare := &Instance{ID: "b2", Status: StatusActive, AgentVersion: "not-a-version"}
	for _, tc := range []struct {
		expr       string
		inst, bare bool
	}{
		{"attribute:ecs.instance-type == t2.small", true, false},
		{"attribute:ecs.instance-type == t2.*", false, false}, // == is exact
		{"attribute:ecs.instance-type =~ t2.*", true, false},
		{"attribute:ecs.instance-type =~ t2", false, false}, // matches the whole value
		{"attribute:ecs.instance-type =~ small", false, false},
		{"attribute:ecs.instance-type =~ '.*small'", true, false},
		{"attribute:ecs.instance-type !~ g2.*", true, false}, // a missing attribute matches nothing
		{"attribute:stack != prod", false, false},
		{"attribute:stack != dev", true, false}, // != needs the attribute
		{"attribute:stack exists", true, false},
		{"attribute:stack !exists", false, true},
		{"attribute:flag exists", true, false},
		{"attribute:flag == ''", true, false},
		{"attribute:ecs.availability-zone in [us-east-1a, us-east-1b]", true, false},
		{"attribute:ecs.availability-zone !in [us-east-1a, us-east-1b]", false, false},
		{"attribute:ecs.availability-zone not_in [us-east-1c]", true, false},
		{"attribute:ecs.availability-zone in [a, b, c, d, e, f, g, h, us-east-1a]", true, false}, // the map form
		{"attribute:ecs.availability-zone in [a, b, c, d, e, f, g, h, i]", false, false},
		{"attribute:size > 9", true, false}, // numeric: 10 > 9
		{"attribute:size < 9", false, false},
		{"attribute:size >= 10.0", true, false},
		{"attribute:stack > pra", true, false}, // not numeric: string order
		{"attribute:stack < prod", false, false},
		{"attribute:stack <= prod", true, false},
		{"ec2InstanceId == i-abcd1234", true, false},
		{"ec2InstanceId in ['i-abcd1234', 'i-wxyx7890']", true, false},
		{"ec2InstanceId =~ i-.*", true, false},
		{"ec2InstanceId != i-x", true, false}, // bare has no EC2 instance ID
		{"agentConnected == true", true, false},
		{"agentConnected == false", false, true},
		{"agentConnected != true", false, true},
		{"agentConnected in [false]", false, true},
		{"agentConnected =~ f.*", false, true},
		{"agentVersion < 1.14.6", true, false},
		{"agentVersion < 1.14.5", false, false},
		{"agentVersion == 1.14.5.0", true, false},
		{"agentVersion >= 1.9", true, false}, // numeric parts: 14 > 9
		{"agentVersion > 2", false, false},
		{"agentVersion != 2", true, false}, // bare's version does not parse: no value
		{"registeredAt < 2018-06-19", true, false},
		{"registeredAt >= 2018-06-18T22:28:28Z", true, false},
		{"registeredAt > 2018-06-18T22:28:28+00:00", false, false},
		{"registeredAt > 2018-06-18T23:28:28+02:00", true, false}, // 21:28:28 UTC
		{"registeredAt == 2018-06-18T22:28:28", true, false},
		{"runningTasksCount == 2", true, false},
		{"runningTasksCount == 0", false, true},
		{"runningTasksCount < 1", false, true},
		{"task:group == service:web", true, false},
		{"task:group != service:web", true, false}, // family:batch is not service:web
		{"not(task:group == service:web)", false, true},
		{"task:group in [service:api, family:batch]", true, false},
		{"task:group =~ service:.*", true, false},
		{"task:group exists", true, false},
		{"task:group !exists", false, true},
		{"attribute:ecs.instance-type =~ t2.* and attribute:ecs.availability-zone != us-east-1d", true, false},
		{"attribute:stack == dev or runningTasksCount == 0", false, true},
		{"(attribute:stack == dev or task:group == service:web) and agentConnected == true", true, false},
		{"!attribute:stack exists", false, true},
		{"not(attribute:stack == prod && runningTasksCount == 2)", false, true},
	} {
		e, err := ParseExpression(tc.expr)
		if err != nil {
			t.Errorf("ParseExpression(%q): %v", tc.expr, err)
			continue
		}
		if got := e.Match(inst); got != tc.inst {
			t.Errorf("%q on a full instance = %v, want %v", tc.expr, got, tc.inst)
		}
		if got := e.Match(bare); got != tc.bare {
			t.Errorf("%q on a bare instance = %v, want %v", tc.expr, got, tc.bare)
		}
	}
}

func TestCompareVersions(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		cmp  int
		ok   bool
	}{
		{"1.14.5", "1.14.5", 0, true},
		{"1.14", "1.14.0", 0, true},
		{"1.9", "1.14", -1, true},
		{"2", "1.99.99", 1, true},
		{"", "1", 0, false},
		{"1.x", "1", 0, false},
	} {
		cmp, ok := compareVersions(tc.a, tc.b)
		if cmp != tc.cmp || ok != tc.ok {
			t.Errorf("compareVersions(%q, %q) = %d, %v; want %d, %v", tc.a, tc.b, cmp, ok, tc.cmp, tc.ok)
		}
	}
}

// TestMatcherFastPaths: the literal, prefix, suffix and contains shortcuts
// answer as the anchored regular expression does.
func TestMatcherFastPaths(t *testing.T) {
	values := []string{"", "t2", "t2.small", "xt2.small", "m5.large", "t2\nsmall", "small", "T2.SMALL", "t2.smallx", "\xfft2", "é", "aéb"}
	for _, tc := range []struct {
		pattern string
		kind    matchKind
	}{
		{"t2.small", matchRegexp}, // "." is any character, not a literal
		{`t2\.small`, matchExact},
		{"t2.*", matchPrefix},
		{".*small", matchSuffix},
		{".*2.*", matchContains},
		{"(?i)t2.*", matchRegexp},
		{"(?s)t2.*", matchRegexp},
		{"t2.*|m5.*", matchRegexp},
		{"é", matchExact},
		{"a.*", matchPrefix},
		{"", matchRegexp},
	} {
		m, err := newMatcher(tc.pattern)
		if err != nil {
			t.Fatalf("newMatcher(%q): %v", tc.pattern, err)
		}
		if m.kind != tc.kind {
			t.Errorf("newMatcher(%q).kind = %d, want %d", tc.pattern, m.kind, tc.kind)
		}
		for _, v := range values {
			if got, want := m.MatchString(v), m.re.MatchString(v); got != want {
				t.Errorf("pattern %q on %q: fast path %v, regexp %v", tc.pattern, v, got, want)
			}
		}
	}
}
