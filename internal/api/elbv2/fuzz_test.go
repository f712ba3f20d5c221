package elbv2_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/berthdev/berth/internal/api/supporttest"
	"github.com/berthdev/berth/internal/awsmodel/elbv2types"
)

// FuzzHandlers sends arbitrary Query forms through the whole ELBv2 API
// path: form decoding, model validation, ELB's own rules and the store. A
// request may succeed or be refused with a client error; it must never
// panic or end in an internal or unmapped error, and the store must stay
// readable.
func FuzzHandlers(f *testing.F) {
	fx := newFixture(f)
	lb := fx.createLB("web")
	tg := fx.createTG("app")
	fx.register(tg.TargetGroupArn, elbv2types.TargetDescription{Id: "10.0.0.1"})
	l := fx.createListener(lb.LoadBalancerArn, 80, forward(tg.TargetGroupArn))
	r := fx.createRule(l.ListenerArn, 5, pathIs("/api/*"), forward(tg.TargetGroupArn))
	cert := fx.writeCert("web")
	subst := strings.NewReplacer("$LB", url.QueryEscape(lb.LoadBalancerArn), "$TG", url.QueryEscape(tg.TargetGroupArn),
		"$LISTENER", url.QueryEscape(l.ListenerArn), "$RULE", url.QueryEscape(r.RuleArn), "$CERT", url.QueryEscape(cert))
	seeds := []struct {
		op   string
		body string
	}{
		{"CreateLoadBalancer", "Name=api&Subnets.member.1=subnet-1&Subnets.member.2=subnet-2&Scheme=internal&Tags.member.1.Key=a&Tags.member.1.Value=b"},
		{"CreateLoadBalancer", "Name=net&Type=network&SubnetMappings.member.1.SubnetId=s&SubnetMappings.member.1.AllocationId=e"},
		{"DescribeLoadBalancers", "PageSize=1&Marker=L2VsYi9sYnMvYQ"},
		{"DescribeLoadBalancers", "Names.member.1=web&Names.member.2=nope"},
		{"DeleteLoadBalancer", "LoadBalancerArn=$LB"},
		{"ModifyLoadBalancerAttributes", "LoadBalancerArn=$LB&Attributes.member.1.Key=idle_timeout.timeout_seconds&Attributes.member.1.Value=120&Attributes.member.2.Key=deletion_protection.enabled&Attributes.member.2.Value=true"},
		{"DescribeLoadBalancerAttributes", "LoadBalancerArn=$LB"},
		{"CreateTargetGroup", "Name=api&Protocol=HTTP&Port=80&VpcId=v&TargetType=ip&HealthCheckIntervalSeconds=10&HealthCheckTimeoutSeconds=5&Matcher.HttpCode=200-299&ProtocolVersion=GRPC"},
		{"DescribeTargetGroups", "LoadBalancerArn=$LB&PageSize=1"},
		{"ModifyTargetGroup", "TargetGroupArn=$TG&HealthCheckPath=%2Fready&Matcher.GrpcCode=0"},
		{"ModifyTargetGroupAttributes", "TargetGroupArn=$TG&Attributes.member.1.Key=slow_start.duration_seconds&Attributes.member.1.Value=30"},
		{"DescribeTargetGroupAttributes", "TargetGroupArn=$TG"},
		{"DeleteTargetGroup", "TargetGroupArn=$TG"},
		{"CreateListener", "LoadBalancerArn=$LB&Protocol=HTTPS&Port=443&Certificates.member.1.CertificateArn=$CERT&DefaultActions.member.1.Type=redirect&DefaultActions.member.1.RedirectConfig.Protocol=HTTPS&DefaultActions.member.1.RedirectConfig.StatusCode=HTTP_301"},
		{"CreateListener", "LoadBalancerArn=$LB&Protocol=HTTP&Port=81&DefaultActions.member.1.Type=forward&DefaultActions.member.1.ForwardConfig.TargetGroups.member.1.TargetGroupArn=$TG&DefaultActions.member.1.ForwardConfig.TargetGroups.member.1.Weight=5&DefaultActions.member.1.ForwardConfig.TargetGroupStickinessConfig.Enabled=true&DefaultActions.member.1.ForwardConfig.TargetGroupStickinessConfig.DurationSeconds=10"},
		{"DescribeListeners", "LoadBalancerArn=$LB&PageSize=1"},
		{"ModifyListener", "ListenerArn=$LISTENER&Port=8080&DefaultActions.member.1.Type=fixed-response&DefaultActions.member.1.FixedResponseConfig.StatusCode=503&DefaultActions.member.1.FixedResponseConfig.ContentType=text%2Fplain"},
		{"DeleteListener", "ListenerArn=$LISTENER"},
		{"CreateRule", "ListenerArn=$LISTENER&Priority=7&Conditions.member.1.Field=host-header&Conditions.member.1.HostHeaderConfig.Values.member.1=*.example.com&Conditions.member.2.Field=query-string&Conditions.member.2.QueryStringConfig.Values.member.1.Key=a&Conditions.member.2.QueryStringConfig.Values.member.1.Value=b&Actions.member.1.Type=forward&Actions.member.1.TargetGroupArn=$TG"},
		{"CreateRule", "ListenerArn=$LISTENER&Priority=8&Conditions.member.1.Field=path-pattern&Conditions.member.1.RegexValues.member.1=%5E%2Fa&Actions.member.1.Type=fixed-response&Actions.member.1.FixedResponseConfig.StatusCode=200"},
		{"DescribeRules", "ListenerArn=$LISTENER&PageSize=1&Marker=MDAwMDAwMDAwNQ"},
		{"ModifyRule", "RuleArn=$RULE&Conditions.member.1.Field=source-ip&Conditions.member.1.SourceIpConfig.Values.member.1=10.0.0.0%2F8"},
		{"DeleteRule", "RuleArn=$RULE"},
		{"SetRulePriorities", "RulePriorities.member.1.RuleArn=$RULE&RulePriorities.member.1.Priority=9"},
		{"RegisterTargets", "TargetGroupArn=$TG&Targets.member.1.Id=10.0.0.2&Targets.member.1.Port=9000&Targets.member.2.Id=fd00%3A%3A1"},
		{"DeregisterTargets", "TargetGroupArn=$TG&Targets.member.1.Id=10.0.0.1"},
		{"DescribeTargetHealth", "TargetGroupArn=$TG&Targets.member.1.Id=10.0.0.1&Include.member.1=All"},
		{"AddTags", "ResourceArns.member.1=$LB&ResourceArns.member.2=$RULE&Tags.member.1.Key=k&Tags.member.1.Value=v"},
		{"RemoveTags", "ResourceArns.member.1=$TG&TagKeys.member.1=k"},
		{"DescribeTags", "ResourceArns.member.1=$LISTENER"},
		{"DescribeSSLPolicies", "Names.member.1=ELBSecurityPolicy-2016-08"},
		{"DescribeAccountLimits", "PageSize=2"},
		{"DescribeTrustStores", ""},
	}
	ops := make([]string, len(seeds))
	for i, s := range seeds {
		ops[i] = s.op
		f.Add(uint8(i), []byte(subst.Replace(s.body)))
	}
	dispatch := fx.api.QueryService().Dispatch
	f.Fuzz(func(t *testing.T, op uint8, body []byte) {
		name := ops[int(op)%len(ops)]
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return
		}
		_, err = dispatch(context.Background(), name, form)
		supporttest.RequireClientError(t, name, body, err)
		if _, err := dispatch(context.Background(), "DescribeLoadBalancers", url.Values{}); err != nil {
			t.Fatalf("store unreadable after %s(%q): %v", name, body, err)
		}
	})
}
