package controller

import (
	"crypto/tls"
	"errors"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/awsmodel"
	"github.com/berthdev/berth/internal/awsmodel/elbv2types"
	"github.com/berthdev/berth/internal/lb"
	"github.com/berthdev/berth/internal/state"
)

// TestCompileLoadBalancer: the stored records become the data plane's
// configuration member by member: attributes, rules in both condition
// forms, the three action types, weights, target groups with their health
// check, algorithm and draining targets; an HTTPS listener whose
// certificate does not load is left out with its reason.
func TestCompileLoadBalancer(t *testing.T) {
	const tgA, tgB = "arn:aws:elasticloadbalancing:us-east-1:0:targetgroup/a/1", "arn:aws:elasticloadbalancing:us-east-1:0:targetgroup/b/2"
	until := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	v := &state.LoadBalancerView{
		LoadBalancer: &state.LoadBalancer{
			LoadBalancer: elbv2types.LoadBalancer{LoadBalancerArn: "lb-arn"}, Address: "127.0.1.1",
			Attributes: map[string]string{"idle_timeout.timeout_seconds": "120", "routing.http2.enabled": "false", "routing.http.xff_header_processing.mode": "preserve"},
		},
		Listeners: []state.ListenerView{
			{Listener: &state.Listener{Listener: elbv2types.Listener{ListenerArn: "l1", Port: new(int32(80)), Protocol: elbv2types.ProtocolEnumHttp}},
				Rules: []*state.Rule{
					{Rule: elbv2types.Rule{RuleArn: "r1", Priority: "10",
						Conditions: []elbv2types.RuleCondition{
							{Field: "path-pattern", Values: []string{"/api/*"}},
							{Field: "http-header", HttpHeaderConfig: &elbv2types.HttpHeaderConditionConfig{HttpHeaderName: "X-Env", Values: []string{"prod"}}},
						},
						Actions: []elbv2types.Action{{Type: elbv2types.ActionTypeEnumForward, ForwardConfig: &elbv2types.ForwardActionConfig{
							TargetGroups: []elbv2types.TargetGroupTuple{{TargetGroupArn: tgA, Weight: new(int32(3))}, {TargetGroupArn: tgB}}}}}}},
					{Rule: elbv2types.Rule{RuleArn: "r2", Priority: "20",
						Conditions: []elbv2types.RuleCondition{{Field: "query-string", QueryStringConfig: &elbv2types.QueryStringConditionConfig{Values: []elbv2types.QueryStringKeyValuePair{{Key: "v", Value: "2"}}}}},
						Actions:    []elbv2types.Action{{Type: elbv2types.ActionTypeEnumRedirect, RedirectConfig: &elbv2types.RedirectActionConfig{Protocol: "HTTPS", StatusCode: elbv2types.RedirectActionStatusCodeEnumHttp_301}}}}},
					{Rule: elbv2types.Rule{RuleArn: "rd", Priority: "default", IsDefault: new(true),
						Actions: []elbv2types.Action{{Type: elbv2types.ActionTypeEnumFixedResponse, FixedResponseConfig: &elbv2types.FixedResponseActionConfig{StatusCode: "404", MessageBody: "nope"}}}}},
				}},
			{Listener: &state.Listener{Listener: elbv2types.Listener{ListenerArn: "l2", Port: new(int32(443)), Protocol: elbv2types.ProtocolEnumHttps,
				Certificates: []elbv2types.Certificate{{CertificateArn: "arn:aws:acm:us-east-1:0:certificate/missing"}}}}},
		},
		TargetGroups: map[string]*state.TargetGroupView{
			tgA: {TargetGroup: &state.TargetGroup{TargetGroup: elbv2types.TargetGroup{HealthCheckPath: "/health", HealthCheckIntervalSeconds: new(int32(5)), HealthyThresholdCount: new(int32(2)), Matcher: &elbv2types.Matcher{HttpCode: "200-299"}},
				Attributes: map[string]string{"load_balancing.algorithm.type": "least_outstanding_requests", "slow_start.duration_seconds": "30"}},
				Targets: []*state.Target{
					{Target: elbv2types.TargetDescription{Id: "10.0.0.5", Port: new(int32(8080))}, Address: "10.0.0.5"},
					{Target: elbv2types.TargetDescription{Id: "i-1", Port: new(int32(32768))}, Address: "127.0.0.1", DrainUntil: awsmodel.NewTime(until)},
				}},
		},
	}
	failing := func(arn string) (*tls.Certificate, error) { return nil, errors.New("no such certificate") }
	l, groups, skipped := compileLoadBalancer(v, failing)
	if l.ID != "lb-arn" || l.Address != "127.0.1.1" || l.IdleTimeout != 120*time.Second || l.HTTP2 || l.XFFMode != "preserve" {
		t.Fatalf("load balancer %+v", l)
	}
	if len(l.Listeners) != 1 || skipped["l2"] == nil {
		t.Fatalf("listeners %d, skipped %v: the HTTPS one without a certificate must be left out", len(l.Listeners), skipped)
	}
	rules := l.Listeners[0].Rules
	if len(rules) != 3 || rules[0].Priority != 10 || !rules[2].IsDefault {
		t.Fatalf("rules %+v", rules)
	}
	if c := rules[0].Conditions[1]; c.Field != lb.FieldHTTPHeader || c.HeaderName != "X-Env" || c.Values[0] != "prod" {
		t.Fatalf("header condition %+v", c)
	}
	if f := rules[0].Action.Forward; len(f) != 2 || f[0].Weight != 3 || f[1].Weight != 1 {
		t.Fatalf("forward %+v", f)
	}
	if r := rules[1]; r.Conditions[0].Query[0] != (lb.QueryPair{Key: "v", Value: "2"}) || r.Action.Redirect.StatusCode != 301 || r.Action.Redirect.Protocol != "HTTPS" {
		t.Fatalf("redirect rule %+v", r)
	}
	if fx := rules[2].Action.Fixed; fx.StatusCode != 404 || fx.Body != "nope" {
		t.Fatalf("fixed response %+v", fx)
	}
	if len(groups) != 1 {
		t.Fatalf("groups %+v", groups)
	}
	g := groups[0]
	if g.ID != tgA || g.Algorithm != lb.LeastOutstandingRequests || g.SlowStart != 30*time.Second || g.HealthCheck.Interval != 5*time.Second ||
		g.HealthCheck.HealthyThreshold != 2 || g.HealthCheck.Matcher != "200-299" || g.HealthCheck.Path != "/health" {
		t.Fatalf("group %+v", g)
	}
	if g.Targets[0] != (lb.Target{ID: "10.0.0.5:8080", Addr: "10.0.0.5:8080"}) || !g.Targets[1].Draining || !g.Targets[1].DrainUntil.Equal(until) || g.Targets[1].Addr != "127.0.0.1:32768" {
		t.Fatalf("targets %+v", g.Targets)
	}
}

// TestCompileStickiness: the stickiness attributes of a target group and
// the target group stickiness of a forward reach the data plane; disabled
// stickiness compiles to the zero value, whatever the other attributes.
func TestCompileStickiness(t *testing.T) {
	group := func(attrs map[string]string) lb.Stickiness {
		return compileTargetGroup("tg", &state.TargetGroupView{TargetGroup: &state.TargetGroup{Attributes: attrs}}).Stickiness
	}
	for _, tc := range []struct {
		name  string
		attrs map[string]string
		want  lb.Stickiness
	}{
		{"default attributes", map[string]string{"stickiness.enabled": "false", "stickiness.type": "lb_cookie", "stickiness.lb_cookie.duration_seconds": "86400"}, lb.Stickiness{}},
		{"lb_cookie", map[string]string{"stickiness.enabled": "true", "stickiness.type": "lb_cookie", "stickiness.lb_cookie.duration_seconds": "300",
			"stickiness.app_cookie.duration_seconds": "86400"},
			lb.Stickiness{Enabled: true, Type: lb.StickinessLBCookie, Duration: 300 * time.Second}},
		{"app_cookie", map[string]string{"stickiness.enabled": "true", "stickiness.type": "app_cookie", "stickiness.lb_cookie.duration_seconds": "86400",
			"stickiness.app_cookie.cookie_name": "JSESSIONID", "stickiness.app_cookie.duration_seconds": "120"},
			lb.Stickiness{Enabled: true, Type: lb.StickinessAppCookie, Duration: 120 * time.Second, CookieName: "JSESSIONID"}},
	} {
		if got := group(tc.attrs); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}

	forward := func(sc *elbv2types.TargetGroupStickinessConfig) lb.Action {
		return compileAction(elbv2types.Action{Type: elbv2types.ActionTypeEnumForward, ForwardConfig: &elbv2types.ForwardActionConfig{
			TargetGroups:                []elbv2types.TargetGroupTuple{{TargetGroupArn: "a", Weight: new(int32(1))}, {TargetGroupArn: "b", Weight: new(int32(2))}},
			TargetGroupStickinessConfig: sc,
		}})
	}
	if a := forward(&elbv2types.TargetGroupStickinessConfig{Enabled: new(true), DurationSeconds: new(int32(3600))}); a.GroupStickiness != time.Hour || len(a.Forward) != 2 {
		t.Errorf("group stickiness enabled: %+v", a)
	}
	for _, sc := range []*elbv2types.TargetGroupStickinessConfig{nil, {Enabled: new(false)}, {Enabled: new(false), DurationSeconds: new(int32(60))}} {
		if a := forward(sc); a.GroupStickiness != 0 {
			t.Errorf("group stickiness %+v: %v, want off", sc, a.GroupStickiness)
		}
	}
}
