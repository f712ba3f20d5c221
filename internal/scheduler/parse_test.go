package scheduler

import (
	"errors"
	"strings"
	"testing"

	"github.com/berthdev/berth/internal/errdefs"
)

func TestParseExpressionValid(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		// The examples of the ECS developer guide.
		{"attribute:ecs.instance-type == t2.small", "attribute:ecs.instance-type == t2.small"},
		{"attribute:ecs.availability-zone in [us-east-1a, us-east-1b]", "attribute:ecs.availability-zone in [us-east-1a, us-east-1b]"},
		{"attribute:ecs.instance-type =~ g2.* and attribute:ecs.availability-zone != us-east-1d",
			"attribute:ecs.instance-type =~ g2.* and attribute:ecs.availability-zone != us-east-1d"},
		{"task:group == service:production", "task:group == service:production"},
		{"not(task:group == database)", "not(task:group == database)"},
		{"runningTasksCount == 1", "runningTasksCount == 1"},
		{"agentVersion < 1.14.5", "agentVersion < 1.14.5"},
		{"registeredAt < 2018-02-13", "registeredAt < 2018-02-13"},
		{"ec2InstanceId in ['i-abcd1234', 'i-wxyx7890']", "ec2InstanceId in [i-abcd1234, i-wxyx7890]"},
		{"attribute:stack == prod", "attribute:stack == prod"},
		{"attribute:stack != prod", "attribute:stack != prod"},
		{"attribute:ecs.instance-type in [t2.small, t2.medium]", "attribute:ecs.instance-type in [t2.small, t2.medium]"},

		// Word operators and their symbols.
		{"attribute:a equals b", "attribute:a == b"},
		{"attribute:a not_equals b", "attribute:a != b"},
		{"attribute:a greater_than 5", "attribute:a > 5"},
		{"attribute:a greater_than_equal 5", "attribute:a >= 5"},
		{"attribute:a less_than 5", "attribute:a < 5"},
		{"attribute:a less_than_equal 5", "attribute:a <= 5"},
		{"attribute:a exists", "attribute:a exists"},
		{"attribute:a !exists", "attribute:a !exists"},
		{"attribute:a not_exists", "attribute:a !exists"},
		{"attribute:a !in [x]", "attribute:a !in [x]"},
		{"attribute:a not_in [x]", "attribute:a !in [x]"},
		{"attribute:a not in [x]", "attribute:a !in [x]"},
		{"attribute:a matches x.*", "attribute:a =~ x.*"},
		{"attribute:a not_matches x.*", "attribute:a !~ x.*"},
		{"attribute:a !~ 'x y'", "attribute:a !~ 'x y'"},
		{"attribute:a EQUALS b", "attribute:a == b"},

		// Boolean operators, precedence, parentheses.
		{"attribute:a exists && attribute:b exists", "attribute:a exists and attribute:b exists"},
		{"attribute:a exists || attribute:b exists", "attribute:a exists or attribute:b exists"},
		{"!attribute:a exists", "not(attribute:a exists)"},
		{"! attribute:a exists", "not(attribute:a exists)"},
		{"not attribute:a exists", "not(attribute:a exists)"},
		{"NOT(attribute:a exists)", "not(attribute:a exists)"},
		{"!!attribute:a exists", "attribute:a exists"},
		{"not !attribute:a exists", "attribute:a exists"},
		{"attribute:a == 1 or attribute:b == 2 and attribute:c == 3",
			"attribute:a == 1 or attribute:b == 2 and attribute:c == 3"},
		{"(attribute:a == 1 or attribute:b == 2) and attribute:c == 3",
			"(attribute:a == 1 or attribute:b == 2) and attribute:c == 3"},
		{"attribute:a == 1 or (attribute:b == 2 or attribute:c == 3)",
			"attribute:a == 1 or attribute:b == 2 or attribute:c == 3"},
		{"((attribute:a == 1))", "attribute:a == 1"},
		{"not (attribute:a == 1 and attribute:b == 2)", "not(attribute:a == 1 and attribute:b == 2)"},
		{"attribute:a == 1 AND attribute:b == 2 Or attribute:c == 3", "attribute:a == 1 and attribute:b == 2 or attribute:c == 3"},

		// Spacing and quoting.
		{"  attribute:a==b  ", "attribute:a == b"},
		{"attribute:a==b&&attribute:c!=d||attribute:e=~f|g", "attribute:a == b and attribute:c != d or attribute:e =~ f|g"},
		{"attribute:a == 'b&&c'", "attribute:a == 'b&&c'"},
		{"attribute:a == \"b c\"", "attribute:a == 'b c'"},
		{"attribute:a == \"it's\"", "attribute:a == \"it's\""},
		{"attribute:a == ''", "attribute:a == ''"},
		{"attribute:a in [ 'x,y' , \"(z)\" ]", "attribute:a in ['x,y', '(z)']"},
		{"(attribute:a == b)", "attribute:a == b"},

		// Every subject.
		{"agentConnected == true", "agentConnected == true"},
		{"agentConnected == FALSE", "agentConnected == false"},
		{"agentConnected in [true, false]", "agentConnected in [true, false]"},
		{"agentConnected =~ t.*", "agentConnected =~ t.*"},
		{"agentVersion >= 1.14", "agentVersion >= 1.14"},
		{"registeredAt > 2018-06-18T22:28:28+00:00", "registeredAt > 2018-06-18T22:28:28+00:00"},
		{"registeredAt > 2018-06-18T22:28:28Z", "registeredAt > 2018-06-18T22:28:28Z"},
		{"registeredAt > 2018-06-18T22:28:28", "registeredAt > 2018-06-18T22:28:28"},
		{"runningTasksCount <= 3", "runningTasksCount <= 3"},
		{"task:group exists", "task:group exists"},
		{"task:group in [service:a, family:b]", "task:group in [service:a, family:b]"},
		{"Task:Group == x", "task:group == x"},
		{"EC2INSTANCEID == i-1", "ec2InstanceId == i-1"},
		{"attribute:com.amazonaws.ecs.capability.docker-remote-api.1.19 exists",
			"attribute:com.amazonaws.ecs.capability.docker-remote-api.1.19 exists"},
		{`attribute:a/b\c_d exists`, `attribute:a/b\c_d exists`},
	} {
		e, err := ParseExpression(tc.in)
		if err != nil {
			t.Errorf("ParseExpression(%q): %v", tc.in, err)
			continue
		}
		if got := e.String(); got != tc.want {
			t.Errorf("ParseExpression(%q).String() = %q, want %q", tc.in, got, tc.want)
		}
		again, err := ParseExpression(e.String())
		if err != nil || again.String() != e.String() {
			t.Errorf("re-parsing %q: %v, %v", e.String(), again, err)
		}
	}
}

func TestParseExpressionInvalid(t *testing.T) {
	for _, tc := range []struct {
		in      string
		problem string
		offset  int
	}{
		{"", "expression is empty", 0},
		{"   ", "expression is empty", 3},
		{"attribute:", "unknown subject", 0},
		{"foo == bar", "unknown subject \"foo\"", 0},
		{"attribute:a", "expected an operator, found end of expression", 11},
		{"attribute:a = b", "expected an operator", 12},
		{"attribute:a ! b", "expected an operator", 12},
		{"attribute:a ==", "expected a value, found end of expression", 14},
		{"attribute:a == b c", "unexpected \"c\"", 17},
		{"attribute:a == b and", "expected a comparison, found end of expression", 20},
		{"attribute:a == b or or attribute:c exists", "unknown subject \"or\"", 20},
		{"(attribute:a == b", "expected ')', found end of expression", 17},
		{"attribute:a == b)", "unexpected \")\"", 16},
		{"()", "expected a subject", 1},
		{"attribute:a in x", "expected '[' to start the argument list of in", 15},
		{"attribute:a in [x", "expected ',' or ']'", 17},
		{"attribute:a in [x,]", "expected a value", 18},
		{"attribute:a in []", "expected a value", 16},
		{"attribute:a == [x]", "operator == takes one value, not a list", 15},
		{"attribute:a == 'x", "unterminated quoted value", 15},
		{"attribute:a =~ '('", "invalid regular expression", 18},
		{"attribute:a =~ 'a)|(b'", "invalid regular expression", 22},
		{"attribute:a:b exists", "invalid attribute name", 0},
		{"attribute:" + strings.Repeat("n", 129) + " exists", "longer than 128", 0},
		{"agentConnected == maybe", "agentConnected takes true or false", 23},
		{"agentConnected > true", "operator > is not valid for agentConnected", 15},
		{"agentConnected exists", "operator exists is not valid for agentConnected", 15},
		{"ec2InstanceId > i-1", "operator > is not valid for ec2InstanceId", 14},
		{"agentVersion =~ 1.*", "operator =~ is not valid for agentVersion", 13},
		{"agentVersion < 1.x", "agentVersion takes a version", 18},
		{"agentVersion < 1..2", "agentVersion takes a version", 19},
		{"registeredAt < yesterday", "registeredAt takes a date", 24},
		{"registeredAt in [2018-01-01]", "operator in is not valid for registeredAt", 13},
		{"runningTasksCount == one", "runningTasksCount takes an integer", 24},
		{"runningTasksCount exists", "operator exists is not valid for runningTasksCount", 18},
		{"task:group > a", "operator > is not valid for task:group", 11},
		{"!", "expected a comparison, found end of expression", 1},
		{"attribute:a == b && || attribute:c exists", "expected a subject", 20},
		{"attribute:a == b, c", "unexpected \",\"", 16},
		{strings.Repeat("x", MaxExpressionLength+1), "longer than 2000 characters", 2000},
	} {
		_, err := ParseExpression(tc.in)
		var ee *ExpressionError
		if !errors.As(err, &ee) {
			t.Errorf("ParseExpression(%q) = %v, want an *ExpressionError", tc.in, err)
			continue
		}
		if !strings.Contains(ee.Problem, tc.problem) || ee.Offset != tc.offset {
			t.Errorf("ParseExpression(%q): problem %q at %d, want %q at %d", tc.in, ee.Problem, ee.Offset, tc.problem, tc.offset)
		}
		if !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("ParseExpression(%q) error does not wrap ErrInvalidArgument", tc.in)
		}
		if !strings.HasPrefix(err.Error(), "Invalid placement constraint expression ") {
			t.Errorf("ParseExpression(%q) message %q", tc.in, err.Error())
		}
	}
}

func TestParseExpressionMaxLength(t *testing.T) {
	long := "attribute:a in [" + strings.Repeat("x,", 900) + "x]"
	long += strings.Repeat(" ", MaxExpressionLength-len(long))
	if _, err := ParseExpression(long); err != nil {
		t.Fatalf("an expression of exactly %d characters: %v", len(long), err)
	}
}

func TestParseConstraint(t *testing.T) {
	c, err := ParseConstraint("distinctInstance", "")
	if err != nil || c.Type != DistinctInstance || c.Expression != nil {
		t.Errorf("distinctInstance: %+v, %v", c, err)
	}
	c, err = ParseConstraint("memberOf", "attribute:a exists")
	if err != nil || c.Type != MemberOf || c.Expression.String() != "attribute:a exists" {
		t.Errorf("memberOf: %+v, %v", c, err)
	}
	for _, tc := range []struct{ typ, expr, msg string }{
		{"distinctInstance", "attribute:a exists", "distinctInstance expression should not be specified."},
		{"memberOf", "", "memberOf expression must be specified."},
		{"memberOf", "attribute:a", "Invalid placement constraint expression"},
		{"sameInstance", "", "Invalid placement constraint type \"sameInstance\""},
	} {
		_, err := ParseConstraint(tc.typ, tc.expr)
		if err == nil || !strings.Contains(err.Error(), tc.msg) || !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("ParseConstraint(%q, %q) = %v, want %q", tc.typ, tc.expr, err, tc.msg)
		}
	}
}

func TestParseStrategy(t *testing.T) {
	for _, tc := range []struct {
		typ, field string
		want       Strategy
	}{
		{"binpack", "cpu", Strategy{Binpack, "cpu"}},
		{"binpack", "MEMORY", Strategy{Binpack, "memory"}},
		{"spread", "instanceId", Strategy{Spread, "instanceId"}},
		{"spread", "host", Strategy{Spread, "instanceId"}},
		{"spread", "attribute:ecs.availability-zone", Strategy{Spread, "attribute:ecs.availability-zone"}},
		{"random", "", Strategy{Random, ""}},
		{"random", "ignored", Strategy{Random, ""}},
	} {
		got, err := ParseStrategy(tc.typ, tc.field)
		if err != nil || got != tc.want {
			t.Errorf("ParseStrategy(%q, %q) = %+v, %v; want %+v", tc.typ, tc.field, got, err, tc.want)
		}
	}
	for _, tc := range [][2]string{
		{"binpack", ""}, {"binpack", "disk"}, {"spread", ""}, {"spread", "attribute:"},
		{"spread", "ecs.availability-zone"}, {"pack", "cpu"}, {"", ""},
	} {
		if _, err := ParseStrategy(tc[0], tc[1]); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("ParseStrategy(%q, %q) = %v, want an invalid-argument error", tc[0], tc[1], err)
		}
	}
}

func TestParsePort(t *testing.T) {
	for in, want := range map[string]Port{"tcp/80": {80, "tcp"}, "UDP/53": {53, "udp"}, "8080": {8080, "tcp"}} {
		if got, err := ParsePort(in); err != nil || got != want || got.String() != want.String() {
			t.Errorf("ParsePort(%q) = %+v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "tcp/", "tcp/0", "tcp/65536", "sctp/1", "x"} {
		if _, err := ParsePort(in); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("ParsePort(%q) = %v, want an error", in, err)
		}
	}
}
