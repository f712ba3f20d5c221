package elbv2_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	sdkelb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/aws/smithy-go"

	"github.com/berthdev/berth/internal/api"
	"github.com/berthdev/berth/internal/api/sigv4"
	"github.com/berthdev/berth/internal/sdkhttp"
	"github.com/berthdev/berth/internal/state"
	"github.com/berthdev/berth/internal/store"
)

// sdk returns the AWS Go SDK's ELBv2 client, SigV4-signed, talking to the
// fixture's API through the real front door over the Query protocol.
func (f *fixture) sdk() *sdkelb.Client {
	f.t.Helper()
	const keyID, secret = "AKIDBERTHTEST0000001", "berth-test-secret-key-0000000000000000000"
	front, err := api.New(api.Config{
		Region: region, Account: account,
		Auth: &sigv4.Verifier{Lookup: func(_ context.Context, id string) (sigv4.Credentials, bool) {
			return sigv4.Credentials{AccessKeyID: keyID, SecretAccessKey: secret}, id == keyID
		}},
		QueryServices: []*api.QueryService{f.api.QueryService()},
	})
	if err != nil {
		f.t.Fatal(err)
	}
	srv := httptest.NewServer(front)
	f.t.Cleanup(srv.Close)
	return sdkelb.NewFromConfig(aws.Config{
		Region:           region,
		Credentials:      credentials.NewStaticCredentialsProvider(keyID, secret, ""),
		BaseEndpoint:     aws.String(srv.URL),
		RetryMaxAttempts: 1,
		HTTPClient:       sdkhttp.Client(),
	})
}

// TestSDKRoundTrip drives the ELBv2 API with the AWS Go SDK's client,
// SigV4-signed, through the real front door over the Query protocol: the
// form encoding of nested inputs, the XML replies, error codes,
// paginators and waiters.
func TestSDKRoundTrip(t *testing.T) {
	f := newFixture(t)
	c := f.sdk()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	tg, err := c.CreateTargetGroup(ctx, &sdkelb.CreateTargetGroupInput{
		Name: aws.String("app"), Protocol: types.ProtocolEnumHttp, Port: aws.Int32(8080), VpcId: aws.String("vpc-1"),
		TargetType: types.TargetTypeEnumIp, HealthCheckPath: aws.String("/healthz"), Matcher: &types.Matcher{HttpCode: aws.String("200-299")},
		Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("web")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	g := tg.TargetGroups[0]
	if aws.ToInt32(g.HealthCheckIntervalSeconds) != 30 || aws.ToInt32(g.HealthCheckTimeoutSeconds) != 5 || aws.ToString(g.HealthCheckPort) != "traffic-port" ||
		aws.ToString(g.Matcher.HttpCode) != "200-299" || !aws.ToBool(g.HealthCheckEnabled) || g.TargetType != types.TargetTypeEnumIp {
		t.Fatalf("target group %+v", g)
	}
	tgArn := aws.ToString(g.TargetGroupArn)

	var lbArns []string
	for _, name := range []string{"web", "api", "admin"} {
		out, err := c.CreateLoadBalancer(ctx, &sdkelb.CreateLoadBalancerInput{Name: aws.String(name), Subnets: []string{"subnet-a", "subnet-b"}, SecurityGroups: []string{"sg-1"}})
		if err != nil {
			t.Fatal(err)
		}
		lb := out.LoadBalancers[0]
		if lb.State.Code != types.LoadBalancerStateEnumProvisioning || len(lb.AvailabilityZones) != 2 || !lb.CreatedTime.Equal(f.clk.Now()) || aws.ToString(lb.DNSName) == "" {
			t.Fatalf("load balancer %+v", lb)
		}
		lbArns = append(lbArns, aws.ToString(lb.LoadBalancerArn))
	}
	_, err = c.CreateLoadBalancer(ctx, &sdkelb.CreateLoadBalancerInput{Name: aws.String("web"), Scheme: types.LoadBalancerSchemeEnumInternal})
	var dup *types.DuplicateLoadBalancerNameException
	if !errors.As(err, &dup) {
		t.Fatalf("duplicate name: %v", err)
	}

	// The data plane makes it active; the SDK's waiter sees that.
	_, err = f.st.Update(ctx, func(tx store.Tx) error {
		res, _ := arns.ParseELB(lbArns[0])
		_, err := state.SetLoadBalancerState(tx, res.Name, res.ID, "active", "")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := sdkelb.NewLoadBalancerAvailableWaiter(c).Wait(ctx, &sdkelb.DescribeLoadBalancersInput{LoadBalancerArns: lbArns[:1]}, 5*time.Second); err != nil {
		t.Fatal(err)
	}

	var names []string
	for p := sdkelb.NewDescribeLoadBalancersPaginator(c, &sdkelb.DescribeLoadBalancersInput{PageSize: aws.Int32(1)}); p.HasMorePages(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, lb := range page.LoadBalancers {
			names = append(names, aws.ToString(lb.LoadBalancerName))
		}
	}
	if !slices.Equal(names, []string{"admin", "api", "web"}) {
		t.Fatalf("paginated %v", names)
	}

	l, err := c.CreateListener(ctx, &sdkelb.CreateListenerInput{
		LoadBalancerArn: aws.String(lbArns[0]), Protocol: types.ProtocolEnumHttp, Port: aws.Int32(80),
		DefaultActions: []types.Action{{Type: types.ActionTypeEnumForward, ForwardConfig: &types.ForwardActionConfig{
			TargetGroups: []types.TargetGroupTuple{{TargetGroupArn: aws.String(tgArn), Weight: aws.Int32(3)}},
		}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	la := l.Listeners[0].DefaultActions[0]
	if aws.ToString(la.TargetGroupArn) != tgArn || aws.ToInt32(la.Order) != 1 || aws.ToInt32(la.ForwardConfig.TargetGroups[0].Weight) != 3 {
		t.Fatalf("default action %+v", la)
	}
	listenerArn := aws.ToString(l.Listeners[0].ListenerArn)
	_, err = c.CreateRule(ctx, &sdkelb.CreateRuleInput{
		ListenerArn: aws.String(listenerArn), Priority: aws.Int32(10),
		Conditions: []types.RuleCondition{
			{Field: aws.String("path-pattern"), PathPatternConfig: &types.PathPatternConditionConfig{Values: []string{"/api/*", "/v2/*"}}},
			{Field: aws.String("http-header"), HttpHeaderConfig: &types.HttpHeaderConditionConfig{HttpHeaderName: aws.String("X-Env"), Values: []string{"prod"}}},
		},
		Actions: []types.Action{{Type: types.ActionTypeEnumRedirect, RedirectConfig: &types.RedirectActionConfig{Protocol: aws.String("HTTPS"), Port: aws.String("443"), StatusCode: types.RedirectActionStatusCodeEnumHttp301}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	rules, err := c.DescribeRules(ctx, &sdkelb.DescribeRulesInput{ListenerArn: aws.String(listenerArn)})
	if err != nil {
		t.Fatal(err)
	}
	if len(rules.Rules) != 2 || aws.ToString(rules.Rules[0].Priority) != "10" || aws.ToString(rules.Rules[1].Priority) != "default" || !aws.ToBool(rules.Rules[1].IsDefault) ||
		!slices.Equal(rules.Rules[0].Conditions[0].PathPatternConfig.Values, []string{"/api/*", "/v2/*"}) ||
		aws.ToString(rules.Rules[0].Actions[0].RedirectConfig.Path) != "/#{path}" {
		t.Fatalf("rules %+v", rules.Rules)
	}
	_, err = c.CreateRule(ctx, &sdkelb.CreateRuleInput{ListenerArn: aws.String(listenerArn), Priority: aws.Int32(10),
		Conditions: []types.RuleCondition{{Field: aws.String("path-pattern"), Values: []string{"/x"}}},
		Actions:    []types.Action{{Type: types.ActionTypeEnumFixedResponse, FixedResponseConfig: &types.FixedResponseActionConfig{StatusCode: aws.String("200")}}}})
	var inUse *types.PriorityInUseException
	if !errors.As(err, &inUse) {
		t.Fatalf("priority in use: %v", err)
	}

	if _, err := c.RegisterTargets(ctx, &sdkelb.RegisterTargetsInput{TargetGroupArn: aws.String(tgArn), Targets: []types.TargetDescription{
		{Id: aws.String("10.0.0.1")}, {Id: aws.String("10.0.0.2"), Port: aws.Int32(9000)},
	}}); err != nil {
		t.Fatal(err)
	}
	f.setHealth(tgArn, "10.0.0.1", 8080, "healthy")
	f.setHealth(tgArn, "10.0.0.2", 9000, "healthy")
	if err := sdkelb.NewTargetInServiceWaiter(c).Wait(ctx, &sdkelb.DescribeTargetHealthInput{TargetGroupArn: aws.String(tgArn)}, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	health, err := c.DescribeTargetHealth(ctx, &sdkelb.DescribeTargetHealthInput{TargetGroupArn: aws.String(tgArn), Targets: []types.TargetDescription{{Id: aws.String("10.0.0.9")}}})
	if err != nil || health.TargetHealthDescriptions[0].TargetHealth.State != types.TargetHealthStateEnumUnused ||
		health.TargetHealthDescriptions[0].TargetHealth.Reason != types.TargetHealthReasonEnumNotRegistered {
		t.Fatalf("unregistered target %+v, %v", health, err)
	}
	if _, err := c.DeregisterTargets(ctx, &sdkelb.DeregisterTargetsInput{TargetGroupArn: aws.String(tgArn), Targets: []types.TargetDescription{{Id: aws.String("10.0.0.1")}}}); err != nil {
		t.Fatal(err)
	}
	health, err = c.DescribeTargetHealth(ctx, &sdkelb.DescribeTargetHealthInput{TargetGroupArn: aws.String(tgArn), Targets: []types.TargetDescription{{Id: aws.String("10.0.0.1")}}})
	if err != nil || health.TargetHealthDescriptions[0].TargetHealth.State != types.TargetHealthStateEnumDraining ||
		aws.ToString(health.TargetHealthDescriptions[0].TargetHealth.Description) != "Target deregistration is in progress" {
		t.Fatalf("draining target %+v, %v", health, err)
	}

	attrs, err := c.ModifyLoadBalancerAttributes(ctx, &sdkelb.ModifyLoadBalancerAttributesInput{LoadBalancerArn: aws.String(lbArns[0]),
		Attributes: []types.LoadBalancerAttribute{{Key: aws.String("idle_timeout.timeout_seconds"), Value: aws.String("120")}}})
	if err != nil || !slices.ContainsFunc(attrs.Attributes, func(a types.LoadBalancerAttribute) bool {
		return aws.ToString(a.Key) == "idle_timeout.timeout_seconds" && aws.ToString(a.Value) == "120"
	}) {
		t.Fatalf("attributes %+v, %v", attrs, err)
	}
	_, err = c.ModifyLoadBalancerAttributes(ctx, &sdkelb.ModifyLoadBalancerAttributesInput{LoadBalancerArn: aws.String(lbArns[0]),
		Attributes: []types.LoadBalancerAttribute{{Key: aws.String("bogus.key"), Value: aws.String("1")}}})
	var badConfig *types.InvalidConfigurationRequestException
	if !errors.As(err, &badConfig) {
		t.Fatalf("unknown attribute: %v", err)
	}

	tags, err := c.DescribeTags(ctx, &sdkelb.DescribeTagsInput{ResourceArns: []string{tgArn}})
	if err != nil || aws.ToString(tags.TagDescriptions[0].Tags[0].Key) != "team" {
		t.Fatalf("tags %+v, %v", tags, err)
	}

	// ELB's ValidationError and a code the model does not know reach the
	// SDK as API errors with their codes.
	_, err = c.DescribeLoadBalancers(ctx, &sdkelb.DescribeLoadBalancersInput{LoadBalancerArns: []string{"web"}})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "ValidationError" || !strings.Contains(ae.ErrorMessage(), "not a valid load balancer ARN") {
		t.Fatalf("malformed ARN: %v", err)
	}
	_, err = c.DescribeTrustStores(ctx, &sdkelb.DescribeTrustStoresInput{})
	if !errors.As(err, &ae) || ae.ErrorCode() != "InvalidAction" || !strings.Contains(ae.ErrorMessage(), "DescribeTrustStores") {
		t.Fatalf("unimplemented: %v", err)
	}

	_, err = c.DeleteTargetGroup(ctx, &sdkelb.DeleteTargetGroupInput{TargetGroupArn: aws.String(tgArn)})
	var busy *types.ResourceInUseException
	if !errors.As(err, &busy) {
		t.Fatalf("deleting a group in use: %v", err)
	}
	if _, err := c.DeleteLoadBalancer(ctx, &sdkelb.DeleteLoadBalancerInput{LoadBalancerArn: aws.String(lbArns[0])}); err != nil {
		t.Fatal(err)
	}
	if err := sdkelb.NewLoadBalancersDeletedWaiter(c).Wait(ctx, &sdkelb.DescribeLoadBalancersInput{LoadBalancerArns: lbArns[:1]}, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteTargetGroup(ctx, &sdkelb.DeleteTargetGroupInput{TargetGroupArn: aws.String(tgArn)}); err != nil {
		t.Fatal(err)
	}
	_, err = c.DescribeTargetGroups(ctx, &sdkelb.DescribeTargetGroupsInput{Names: []string{"app"}})
	var noTG *types.TargetGroupNotFoundException
	if !errors.As(err, &noTG) {
		t.Fatalf("deleted target group: %v", err)
	}
}
