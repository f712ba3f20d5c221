package elbv2_test

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdkelb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/aws/smithy-go"

	"github.com/berthdev/berth/internal/awsmodel/elbv2types"
)

// These tests tell a member the request leaves out from one it sends as 0
// or false. They go through the SDK, which sends only the members it is
// given, and the Query protocol, where the difference is on the wire.

// wantAPIError checks that err is the AWS error code with a message
// containing msg, as the SDK reports it.
func wantAPIError(t *testing.T, err error, code, msg string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != code || !strings.Contains(ae.ErrorMessage(), msg) {
		t.Fatalf("got %v, want %s containing %q", err, code, msg)
	}
}

// healthCheckOf renders a target group's health check settings:
// "enabled interval/timeout healthy/unhealthy path".
func healthCheckOf(tg types.TargetGroup) string {
	if tg.HealthCheckEnabled == nil || tg.HealthCheckIntervalSeconds == nil || tg.HealthCheckTimeoutSeconds == nil ||
		tg.HealthyThresholdCount == nil || tg.UnhealthyThresholdCount == nil {
		return "incomplete"
	}
	return strings.Join([]string{
		map[bool]string{true: "on", false: "off"}[*tg.HealthCheckEnabled],
		itoa(*tg.HealthCheckIntervalSeconds) + "/" + itoa(*tg.HealthCheckTimeoutSeconds),
		itoa(*tg.HealthyThresholdCount) + "/" + itoa(*tg.UnhealthyThresholdCount),
		aws.ToString(tg.HealthCheckPath),
	}, " ")
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }

// TestCreateTargetGroupHealthCheckDefaults: what a create leaves out takes
// ALB's default; health checks of instance and ip targets cannot be
// turned off; a number sent as 0 is checked, not taken as absent.
func TestCreateTargetGroupHealthCheckDefaults(t *testing.T) {
	f := newFixture(t)
	c := f.sdk()
	tests := []struct {
		name   string
		change func(*sdkelb.CreateTargetGroupInput)
		want   string // healthCheckOf, or the ValidationError's message
	}{
		{"absent", func(*sdkelb.CreateTargetGroupInput) {}, "on 30/5 5/2 /"},
		{"given", func(in *sdkelb.CreateTargetGroupInput) {
			in.HealthCheckEnabled, in.HealthCheckPath = aws.Bool(true), aws.String("/up")
			in.HealthCheckIntervalSeconds, in.HealthCheckTimeoutSeconds = aws.Int32(10), aws.Int32(4)
			in.HealthyThresholdCount, in.UnhealthyThresholdCount = aws.Int32(3), aws.Int32(4)
		}, "on 10/4 3/4 /up"},
		{"some given", func(in *sdkelb.CreateTargetGroupInput) { in.HealthCheckTimeoutSeconds = aws.Int32(2) }, "on 30/2 5/2 /"},
		{"disabled instance", func(in *sdkelb.CreateTargetGroupInput) {
			in.HealthCheckEnabled, in.TargetType = aws.Bool(false), types.TargetTypeEnumInstance
		}, "cannot be disabled for target groups with target type 'instance'"},
		{"disabled ip", func(in *sdkelb.CreateTargetGroupInput) { in.HealthCheckEnabled = aws.Bool(false) }, "target type 'ip'"},
		{"interval 0", func(in *sdkelb.CreateTargetGroupInput) { in.HealthCheckIntervalSeconds = aws.Int32(0) }, "HealthCheckIntervalSeconds"},
		{"threshold 0", func(in *sdkelb.CreateTargetGroupInput) { in.HealthyThresholdCount = aws.Int32(0) }, "HealthyThresholdCount"},
		{"port 0", func(in *sdkelb.CreateTargetGroupInput) { in.Port = aws.Int32(0) }, "Port"},
		{"no port", func(in *sdkelb.CreateTargetGroupInput) { in.Port = nil }, "port must be specified"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := &sdkelb.CreateTargetGroupInput{
				Name: aws.String(fmt.Sprintf("tg%d", i)), Protocol: types.ProtocolEnumHttp, Port: aws.Int32(80), TargetType: types.TargetTypeEnumIp,
			}
			tt.change(in)
			out, err := c.CreateTargetGroup(t.Context(), in)
			if !strings.HasPrefix(tt.want, "on ") {
				wantAPIError(t, err, validationError, tt.want)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := healthCheckOf(out.TargetGroups[0]); got != tt.want {
				t.Fatalf("health check %s, want %s", got, tt.want)
			}
		})
	}
}

// TestModifyTargetGroupKeepsWhatIsNotSent: a modification changes what it
// sends and keeps the rest, checked as a whole against the current
// settings; turning health checks off or sending 0 is refused and changes
// nothing.
func TestModifyTargetGroupKeepsWhatIsNotSent(t *testing.T) {
	f := newFixture(t)
	c := f.sdk()
	ctx := t.Context()
	created, err := c.CreateTargetGroup(ctx, &sdkelb.CreateTargetGroupInput{
		Name: aws.String("app"), Protocol: types.ProtocolEnumHttp, Port: aws.Int32(80), TargetType: types.TargetTypeEnumIp,
		HealthCheckIntervalSeconds: aws.Int32(10), HealthCheckTimeoutSeconds: aws.Int32(4),
		HealthyThresholdCount: aws.Int32(3), UnhealthyThresholdCount: aws.Int32(4),
	})
	if err != nil {
		t.Fatal(err)
	}
	arn := created.TargetGroups[0].TargetGroupArn
	steps := []struct {
		name string
		in   sdkelb.ModifyTargetGroupInput
		err  string // the ValidationError's message, "" for success
		want string // healthCheckOf after the step
	}{
		{"path only", sdkelb.ModifyTargetGroupInput{HealthCheckPath: aws.String("/ready")}, "", "on 10/4 3/4 /ready"},
		{"enabled and interval", sdkelb.ModifyTargetGroupInput{HealthCheckEnabled: aws.Bool(true), HealthCheckIntervalSeconds: aws.Int32(20)}, "", "on 20/4 3/4 /ready"},
		{"thresholds", sdkelb.ModifyTargetGroupInput{UnhealthyThresholdCount: aws.Int32(10)}, "", "on 20/4 3/10 /ready"},
		{"disable", sdkelb.ModifyTargetGroupInput{HealthCheckEnabled: aws.Bool(false), HealthCheckIntervalSeconds: aws.Int32(60)}, "cannot be disabled", "on 20/4 3/10 /ready"},
		{"interval 0", sdkelb.ModifyTargetGroupInput{HealthCheckIntervalSeconds: aws.Int32(0)}, "HealthCheckIntervalSeconds", "on 20/4 3/10 /ready"},
		{"timeout 0", sdkelb.ModifyTargetGroupInput{HealthCheckTimeoutSeconds: aws.Int32(0)}, "HealthCheckTimeoutSeconds", "on 20/4 3/10 /ready"},
		{"timeout against the current interval", sdkelb.ModifyTargetGroupInput{HealthCheckTimeoutSeconds: aws.Int32(25)}, "greater than the timeout", "on 20/4 3/10 /ready"},
		{"nothing", sdkelb.ModifyTargetGroupInput{}, "", "on 20/4 3/10 /ready"},
	}
	for _, s := range steps {
		in := s.in
		in.TargetGroupArn = arn
		out, err := c.ModifyTargetGroup(ctx, &in)
		switch {
		case s.err != "":
			wantAPIError(t, err, validationError, s.err)
		case err != nil:
			t.Fatalf("%s: %v", s.name, err)
		case healthCheckOf(out.TargetGroups[0]) != s.want:
			t.Fatalf("%s: answered %s, want %s", s.name, healthCheckOf(out.TargetGroups[0]), s.want)
		}
		desc, err := c.DescribeTargetGroups(ctx, &sdkelb.DescribeTargetGroupsInput{TargetGroupArns: []string{aws.ToString(arn)}})
		if err != nil {
			t.Fatal(err)
		}
		if got := healthCheckOf(desc.TargetGroups[0]); got != s.want {
			t.Fatalf("%s: stored %s, want %s", s.name, got, s.want)
		}
	}
}

// TestForwardWeights: a target group a forward action names without a
// weight has weight 1; one given 0 keeps 0 (no traffic), even when every
// weight is 0, as AWS accepts.
func TestForwardWeights(t *testing.T) {
	f := newFixture(t)
	lb := f.createLB("web")
	a, b := f.createTG("a").TargetGroupArn, f.createTG("b").TargetGroupArn
	tuple := func(arn string, w *int32) elbv2types.TargetGroupTuple {
		return elbv2types.TargetGroupTuple{TargetGroupArn: arn, Weight: w}
	}
	tests := []struct {
		name   string
		action elbv2types.Action
		want   []int32 // the weights reported, or nil for an error
		msg    string
	}{
		{"target group arn", elbv2types.Action{Type: "forward", TargetGroupArn: a}, []int32{1}, ""},
		{"no weights", elbv2types.Action{Type: "forward", ForwardConfig: &elbv2types.ForwardActionConfig{
			TargetGroups: []elbv2types.TargetGroupTuple{tuple(a, nil), tuple(b, nil)}}}, []int32{1, 1}, ""},
		{"one zero", elbv2types.Action{Type: "forward", ForwardConfig: &elbv2types.ForwardActionConfig{
			TargetGroups: []elbv2types.TargetGroupTuple{tuple(a, nil), tuple(b, new(int32(0)))}}}, []int32{1, 0}, ""},
		{"all zero", elbv2types.Action{Type: "forward", ForwardConfig: &elbv2types.ForwardActionConfig{
			TargetGroups: []elbv2types.TargetGroupTuple{tuple(a, new(int32(0))), tuple(b, new(int32(0)))}}}, []int32{0, 0}, ""},
		{"given", elbv2types.Action{Type: "forward", ForwardConfig: &elbv2types.ForwardActionConfig{
			TargetGroups: []elbv2types.TargetGroupTuple{tuple(a, new(int32(5))), tuple(b, new(int32(999)))}}}, []int32{5, 999}, ""},
		{"negative", elbv2types.Action{Type: "forward", ForwardConfig: &elbv2types.ForwardActionConfig{
			TargetGroups: []elbv2types.TargetGroupTuple{tuple(a, new(int32(-1)))}}}, nil, "weight -1 is not valid"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := f.api.CreateListener(f.ctx, &elbv2types.CreateListenerInput{
				LoadBalancerArn: lb.LoadBalancerArn, Protocol: "HTTP", Port: new(int32(8000 + i)), DefaultActions: []elbv2types.Action{tt.action},
			})
			if tt.want == nil {
				wantErr(t, err, validationError, tt.msg)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []int32
			for _, g := range out.Listeners[0].DefaultActions[0].ForwardConfig.TargetGroups {
				if g.Weight == nil {
					t.Fatalf("target group %s without a weight", g.TargetGroupArn)
				}
				got = append(got, *g.Weight)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("weights %v, want %v", got, tt.want)
			}
		})
	}

	// On the wire: weight 0, stickiness off and IsDefault false are sent,
	// not left out.
	c := f.sdk()
	ls, err := c.DescribeListeners(t.Context(), &sdkelb.DescribeListenersInput{LoadBalancerArn: aws.String(lb.LoadBalancerArn)})
	if err != nil {
		t.Fatal(err)
	}
	var allZero *types.Listener
	for i, l := range ls.Listeners {
		if aws.ToInt32(l.Port) == 8003 {
			allZero = &ls.Listeners[i]
		}
	}
	if allZero == nil {
		t.Fatalf("no listener on 8003 in %+v", ls.Listeners)
	}
	fc := allZero.DefaultActions[0].ForwardConfig
	for _, g := range fc.TargetGroups {
		if g.Weight == nil || *g.Weight != 0 {
			t.Fatalf("weight %v, want 0 sent", g.Weight)
		}
	}
	if s := fc.TargetGroupStickinessConfig; s == nil || s.Enabled == nil || *s.Enabled || s.DurationSeconds != nil {
		t.Fatalf("stickiness %+v", s)
	}
	rule, err := c.CreateRule(t.Context(), &sdkelb.CreateRuleInput{
		ListenerArn: allZero.ListenerArn, Priority: aws.Int32(1), Actions: []types.Action{{Type: types.ActionTypeEnumForward, TargetGroupArn: aws.String(a)}},
		Conditions: []types.RuleCondition{{Field: aws.String("path-pattern"), Values: []string{"/a"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if r := rule.Rules[0]; r.IsDefault == nil || *r.IsDefault || aws.ToInt32(r.Actions[0].ForwardConfig.TargetGroups[0].Weight) != 1 {
		t.Fatalf("rule %+v", r)
	}
}

// TestActionOrder: an absent Order is reported as 1; 0 is refused.
func TestActionOrder(t *testing.T) {
	f := newFixture(t)
	lb := f.createLB("web")
	for i, tt := range []struct {
		order *int32
		want  int32
	}{{nil, 1}, {new(int32(3)), 3}, {new(int32(0)), 0}, {new(int32(50001)), 0}} {
		action := elbv2types.Action{Type: "fixed-response", Order: tt.order, FixedResponseConfig: &elbv2types.FixedResponseActionConfig{StatusCode: "200"}}
		out, err := f.api.CreateListener(f.ctx, &elbv2types.CreateListenerInput{
			LoadBalancerArn: lb.LoadBalancerArn, Protocol: "HTTP", Port: new(int32(8000 + i)), DefaultActions: []elbv2types.Action{action},
		})
		if tt.want == 0 {
			wantErr(t, err, validationError, "from 1 to 50000")
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if o := out.Listeners[0].DefaultActions[0].Order; o == nil || *o != tt.want {
			t.Fatalf("order %v, want %d", o, tt.want)
		}
	}
}

// TestModifyListenerKeepsPort: a modification without a port keeps the
// listener's; one with port 0 is refused.
func TestModifyListenerKeepsPort(t *testing.T) {
	f := newFixture(t)
	c := f.sdk()
	ctx := t.Context()
	lb := f.createLB("web")
	tg := f.createTG("app")
	l := f.createListener(lb.LoadBalancerArn, 8080, forward(tg.TargetGroupArn))
	steps := []struct {
		name string
		in   sdkelb.ModifyListenerInput
		err  string
		want int32
	}{
		{"actions only", sdkelb.ModifyListenerInput{DefaultActions: []types.Action{{Type: types.ActionTypeEnumFixedResponse,
			FixedResponseConfig: &types.FixedResponseActionConfig{StatusCode: aws.String("503")}}}}, "", 8080},
		{"protocol only", sdkelb.ModifyListenerInput{Protocol: types.ProtocolEnumHttp}, "", 8080},
		{"port", sdkelb.ModifyListenerInput{Port: aws.Int32(9090)}, "", 9090},
		{"port 0", sdkelb.ModifyListenerInput{Port: aws.Int32(0)}, "Port", 9090},
		{"nothing", sdkelb.ModifyListenerInput{}, "", 9090},
	}
	for _, s := range steps {
		in := s.in
		in.ListenerArn = aws.String(l.ListenerArn)
		out, err := c.ModifyListener(ctx, &in)
		switch {
		case s.err != "":
			wantAPIError(t, err, validationError, s.err)
		case err != nil:
			t.Fatalf("%s: %v", s.name, err)
		case aws.ToInt32(out.Listeners[0].Port) != s.want:
			t.Fatalf("%s: answered port %d, want %d", s.name, aws.ToInt32(out.Listeners[0].Port), s.want)
		}
		desc, err := c.DescribeListeners(ctx, &sdkelb.DescribeListenersInput{ListenerArns: []string{l.ListenerArn}})
		if err != nil {
			t.Fatal(err)
		}
		if got := desc.Listeners[0].Port; got == nil || *got != s.want {
			t.Fatalf("%s: stored port %v, want %d", s.name, got, s.want)
		}
	}
}
