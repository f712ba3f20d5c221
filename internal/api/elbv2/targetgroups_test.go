package elbv2_test

import (
	"reflect"
	"regexp"
	"slices"
	"testing"

	"github.com/berthdev/berth/internal/awsmodel/elbv2types"
)

func TestCreateTargetGroupDefaults(t *testing.T) {
	f := newFixture(t)
	tg := f.createTG("app", func(in *elbv2types.CreateTargetGroupInput) { in.TargetType, in.VpcId = "", "" })
	if !regexp.MustCompile(`^` + regexp.QuoteMeta(arnBase) + `targetgroup/app/[0-9a-f]{16}$`).MatchString(tg.TargetGroupArn) {
		t.Errorf("ARN %q", tg.TargetGroupArn)
	}
	want := elbv2types.TargetGroup{
		TargetGroupArn: tg.TargetGroupArn, TargetGroupName: "app", Protocol: "HTTP", Port: new(int32(8080)), VpcId: "vpc-berth",
		HealthCheckProtocol: "HTTP", HealthCheckPort: "traffic-port", HealthCheckEnabled: new(true),
		HealthCheckIntervalSeconds: new(int32(30)), HealthCheckTimeoutSeconds: new(int32(5)), HealthyThresholdCount: new(int32(5)), UnhealthyThresholdCount: new(int32(2)),
		HealthCheckPath: "/", Matcher: &elbv2types.Matcher{HttpCode: "200"}, TargetType: "instance", ProtocolVersion: "HTTP1", IpAddressType: "ipv4",
	}
	if !equalTG(tg, want) {
		t.Fatalf("target group\n got %+v\nwant %+v", tg, want)
	}
	grpc := f.createTG("rpc", func(in *elbv2types.CreateTargetGroupInput) { in.ProtocolVersion, in.Protocol = "grpc", "HTTPS" })
	if grpc.ProtocolVersion != "GRPC" || grpc.HealthCheckPath != "/AWS.ALB/healthcheck" || grpc.Matcher.GrpcCode != "12" || grpc.Matcher.HttpCode != "" {
		t.Fatalf("gRPC target group %+v %+v", grpc, grpc.Matcher)
	}
	custom := f.createTG("custom", func(in *elbv2types.CreateTargetGroupInput) {
		in.HealthCheckPath, in.HealthCheckPort, in.HealthCheckIntervalSeconds, in.HealthCheckTimeoutSeconds = "/healthz", "9000", new(int32(10)), new(int32(9))
		in.HealthyThresholdCount, in.UnhealthyThresholdCount, in.Matcher = new(int32(2)), new(int32(10)), &elbv2types.Matcher{HttpCode: "200-299,302"}
		in.HealthCheckEnabled = new(true)
	})
	if custom.HealthCheckPath != "/healthz" || custom.HealthCheckPort != "9000" || *custom.HealthCheckIntervalSeconds != 10 || *custom.HealthCheckTimeoutSeconds != 9 ||
		*custom.HealthyThresholdCount != 2 || *custom.UnhealthyThresholdCount != 10 || custom.Matcher.HttpCode != "200-299,302" || !*custom.HealthCheckEnabled {
		t.Fatalf("custom %+v", custom)
	}
}

// equalTG compares target groups by value (pointers by what they point
// to); no load balancers and an empty list of them are the same.
func equalTG(a, b elbv2types.TargetGroup) bool {
	if len(a.LoadBalancerArns) == 0 && len(b.LoadBalancerArns) == 0 {
		a.LoadBalancerArns, b.LoadBalancerArns = nil, nil
	}
	return reflect.DeepEqual(a, b)
}

func TestCreateTargetGroupErrors(t *testing.T) {
	ok := func(in *elbv2types.CreateTargetGroupInput) {
		*in = elbv2types.CreateTargetGroupInput{Name: "tg", Protocol: "HTTP", Port: new(int32(80)), VpcId: "vpc-1"}
	}
	tests := []struct {
		name   string
		change func(*elbv2types.CreateTargetGroupInput)
		msg    string
	}{
		{"lambda", func(in *elbv2types.CreateTargetGroupInput) { in.TargetType = "lambda" }, "does not support lambda targets"},
		{"alb", func(in *elbv2types.CreateTargetGroupInput) { in.TargetType = "alb" }, "does not support alb targets"},
		{"no protocol", func(in *elbv2types.CreateTargetGroupInput) { in.Protocol = "" }, "protocol must be specified"},
		{"tcp", func(in *elbv2types.CreateTargetGroupInput) { in.Protocol = "TCP" }, "protocol 'TCP' is not supported"},
		{"no port", func(in *elbv2types.CreateTargetGroupInput) { in.Port = nil }, "port must be specified"},
		{"port 0", func(in *elbv2types.CreateTargetGroupInput) { in.Port = new(int32(0)) }, "from 1 to 65535"},
		{"health checks off", func(in *elbv2types.CreateTargetGroupInput) { in.HealthCheckEnabled = new(false) }, "cannot be disabled"},
		{"health checks off for ip", func(in *elbv2types.CreateTargetGroupInput) {
			in.TargetType, in.HealthCheckEnabled = "ip", new(false)
		}, "cannot be disabled for target groups with target type 'ip'"},
		{"bad version", func(in *elbv2types.CreateTargetGroupInput) { in.ProtocolVersion = "HTTP3" }, "HTTP1, HTTP2 or GRPC"},
		{"tcp health check", func(in *elbv2types.CreateTargetGroupInput) { in.HealthCheckProtocol = "TCP" }, "Health check protocol 'TCP'"},
		{"timeout not below interval", func(in *elbv2types.CreateTargetGroupInput) {
			in.HealthCheckIntervalSeconds, in.HealthCheckTimeoutSeconds = new(int32(10)), new(int32(10))
		}, "interval must be greater than the timeout"},
		{"interval", func(in *elbv2types.CreateTargetGroupInput) { in.HealthCheckIntervalSeconds = new(int32(301)) }, "from 5 to 300"},
		{"timeout", func(in *elbv2types.CreateTargetGroupInput) { in.HealthCheckTimeoutSeconds = new(int32(1)) }, "from 2 to 120"},
		{"healthy", func(in *elbv2types.CreateTargetGroupInput) { in.HealthyThresholdCount = new(int32(11)) }, "Healthy threshold count"},
		{"unhealthy", func(in *elbv2types.CreateTargetGroupInput) { in.UnhealthyThresholdCount = new(int32(1)) }, "Unhealthy threshold count"},
		{"path", func(in *elbv2types.CreateTargetGroupInput) { in.HealthCheckPath = "health" }, "must begin with '/'"},
		{"port", func(in *elbv2types.CreateTargetGroupInput) { in.HealthCheckPort = "70000" }, "traffic-port or a port"},
		{"code 199", func(in *elbv2types.CreateTargetGroupInput) { in.Matcher = &elbv2types.Matcher{HttpCode: "199"} }, "from 200 to 499"},
		{"code 500", func(in *elbv2types.CreateTargetGroupInput) { in.Matcher = &elbv2types.Matcher{HttpCode: "200,500"} }, "not valid"},
		{"backwards range", func(in *elbv2types.CreateTargetGroupInput) { in.Matcher = &elbv2types.Matcher{HttpCode: "299-200"} }, "not valid"},
		{"words", func(in *elbv2types.CreateTargetGroupInput) { in.Matcher = &elbv2types.Matcher{HttpCode: "ok"} }, "not valid"},
		{"grpc code on http", func(in *elbv2types.CreateTargetGroupInput) { in.Matcher = &elbv2types.Matcher{GrpcCode: "0"} }, "HTTP code matcher"},
		{"http code on grpc", func(in *elbv2types.CreateTargetGroupInput) {
			in.ProtocolVersion, in.Matcher = "GRPC", &elbv2types.Matcher{HttpCode: "200"}
		}, "gRPC code matcher"},
		{"grpc code 100", func(in *elbv2types.CreateTargetGroupInput) {
			in.ProtocolVersion, in.Matcher = "GRPC", &elbv2types.Matcher{GrpcCode: "0-100"}
		}, "from 0 to 99"},
		{"name", func(in *elbv2types.CreateTargetGroupInput) { in.Name = "tg.1" }, "alphanumeric"},
	}
	f := newFixture(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var in elbv2types.CreateTargetGroupInput
			ok(&in)
			tt.change(&in)
			_, err := f.api.CreateTargetGroup(f.ctx, &in)
			wantErr(t, err, validationError, tt.msg)
		})
	}
}

func TestCreateTargetGroupIdempotent(t *testing.T) {
	f := newFixture(t)
	a := f.createTG("app")
	b := f.createTG("app")
	if a.TargetGroupArn != b.TargetGroupArn {
		t.Fatalf("same settings made a second target group")
	}
	_, err := f.api.CreateTargetGroup(f.ctx, &elbv2types.CreateTargetGroupInput{Name: "app", Protocol: "HTTP", Port: new(int32(9090)), VpcId: "vpc-1", TargetType: "ip"})
	wantErr(t, err, code(elbv2types.NewDuplicateTargetGroupNameException), "same name 'app'")
}

func TestDescribeTargetGroups(t *testing.T) {
	f := newFixture(t)
	var arns []string
	for _, n := range []string{"b", "a", "c"} {
		arns = append(arns, f.createTG(n).TargetGroupArn)
	}
	lb := f.createLB("web")
	l := f.createListener(lb.LoadBalancerArn, 80, forward(arns[2]))
	f.createRule(l.ListenerArn, 1, pathIs("/b"), forward(arns[0]))
	names := func(in elbv2types.DescribeTargetGroupsInput) (out []string, next string) {
		t.Helper()
		res := must[*elbv2types.DescribeTargetGroupsOutput](t)(f.api.DescribeTargetGroups(f.ctx, &in))
		for _, tg := range res.TargetGroups {
			out = append(out, tg.TargetGroupName)
		}
		return out, res.NextMarker
	}
	if got, _ := names(elbv2types.DescribeTargetGroupsInput{}); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("all %v", got)
	}
	got, next := names(elbv2types.DescribeTargetGroupsInput{PageSize: new(int32(2))})
	rest, last := names(elbv2types.DescribeTargetGroupsInput{PageSize: new(int32(2)), Marker: next})
	if !slices.Equal(got, []string{"a", "b"}) || !slices.Equal(rest, []string{"c"}) || next == "" || last != "" {
		t.Fatalf("pages %v %q %v %q", got, next, rest, last)
	}
	if got, _ := names(elbv2types.DescribeTargetGroupsInput{LoadBalancerArn: lb.LoadBalancerArn}); !slices.Equal(got, []string{"b", "c"}) {
		t.Fatalf("by load balancer %v", got)
	}
	got, next = names(elbv2types.DescribeTargetGroupsInput{LoadBalancerArn: lb.LoadBalancerArn, PageSize: new(int32(1))})
	rest, _ = names(elbv2types.DescribeTargetGroupsInput{LoadBalancerArn: lb.LoadBalancerArn, PageSize: new(int32(1)), Marker: next})
	if !slices.Equal(got, []string{"b"}) || !slices.Equal(rest, []string{"c"}) {
		t.Fatalf("load balancer pages %v %v", got, rest)
	}
	if got, _ := names(elbv2types.DescribeTargetGroupsInput{Names: []string{"c", "a"}}); !slices.Equal(got, []string{"c", "a"}) {
		t.Fatalf("by name %v", got)
	}
	if got, _ := names(elbv2types.DescribeTargetGroupsInput{TargetGroupArns: arns[:1]}); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("by ARN %v", got)
	}
	_, err := f.api.DescribeTargetGroups(f.ctx, &elbv2types.DescribeTargetGroupsInput{Names: []string{"a", "zz"}})
	wantErr(t, err, code(elbv2types.NewTargetGroupNotFoundException), "not found")
	_, err = f.api.DescribeTargetGroups(f.ctx, &elbv2types.DescribeTargetGroupsInput{Names: []string{"a"}, TargetGroupArns: arns[:1]})
	wantErr(t, err, validationError, "cannot be specified together")
	_, err = f.api.DescribeTargetGroups(f.ctx, &elbv2types.DescribeTargetGroupsInput{LoadBalancerArn: arnBase + "loadbalancer/app/x/0000000000000000"})
	wantErr(t, err, code(elbv2types.NewLoadBalancerNotFoundException), "not found")
}

func TestModifyTargetGroup(t *testing.T) {
	f := newFixture(t)
	tg := f.createTG("app")
	out := must[*elbv2types.ModifyTargetGroupOutput](t)(f.api.ModifyTargetGroup(f.ctx, &elbv2types.ModifyTargetGroupInput{
		TargetGroupArn: tg.TargetGroupArn, HealthCheckPath: "/ready", HealthCheckIntervalSeconds: new(int32(10)), Matcher: &elbv2types.Matcher{HttpCode: "200-399"},
	})).TargetGroups[0]
	if out.HealthCheckPath != "/ready" || *out.HealthCheckIntervalSeconds != 10 || *out.HealthCheckTimeoutSeconds != 5 ||
		out.Matcher.HttpCode != "200-399" || *out.HealthyThresholdCount != 5 || !*out.HealthCheckEnabled {
		t.Fatalf("modified %+v", out)
	}
	// The timeout must stay below the interval as a whole.
	_, err := f.api.ModifyTargetGroup(f.ctx, &elbv2types.ModifyTargetGroupInput{TargetGroupArn: tg.TargetGroupArn, HealthCheckTimeoutSeconds: new(int32(10))})
	wantErr(t, err, validationError, "greater than the timeout")
	if got := f.describeTG(tg.TargetGroupArn); *got.HealthCheckTimeoutSeconds != 5 || got.HealthCheckPath != "/ready" {
		t.Fatalf("after a refused change %+v", got)
	}
	_, err = f.api.ModifyTargetGroup(f.ctx, &elbv2types.ModifyTargetGroupInput{TargetGroupArn: arnBase + "targetgroup/app/0000000000000000"})
	wantErr(t, err, code(elbv2types.NewTargetGroupNotFoundException), "not found")
}

func TestTargetGroupAttributes(t *testing.T) {
	f := newFixture(t)
	tg := f.createTG("app")
	attrs := func(list []elbv2types.TargetGroupAttribute) map[string]string {
		m := map[string]string{}
		for _, a := range list {
			m[a.Key] = a.Value
		}
		return m
	}
	got := attrs(must[*elbv2types.DescribeTargetGroupAttributesOutput](t)(f.api.DescribeTargetGroupAttributes(f.ctx, &elbv2types.DescribeTargetGroupAttributesInput{TargetGroupArn: tg.TargetGroupArn})).Attributes)
	for k, v := range map[string]string{
		"deregistration_delay.timeout_seconds": "300", "slow_start.duration_seconds": "0", "load_balancing.algorithm.type": "round_robin",
		"stickiness.enabled": "false", "stickiness.type": "lb_cookie", "stickiness.lb_cookie.duration_seconds": "86400",
		"load_balancing.cross_zone.enabled": "use_load_balancer_configuration",
	} {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	modify := func(kv ...string) (map[string]string, error) {
		var list []elbv2types.TargetGroupAttribute
		for i := 0; i < len(kv); i += 2 {
			list = append(list, elbv2types.TargetGroupAttribute{Key: kv[i], Value: kv[i+1]})
		}
		out, err := f.api.ModifyTargetGroupAttributes(f.ctx, &elbv2types.ModifyTargetGroupAttributesInput{TargetGroupArn: tg.TargetGroupArn, Attributes: list})
		if err != nil {
			return nil, err
		}
		return attrs(out.Attributes), nil
	}
	got = must[map[string]string](t)(modify("deregistration_delay.timeout_seconds", "0", "slow_start.duration_seconds", "30",
		"load_balancing.algorithm.type", "least_outstanding_requests", "stickiness.enabled", "true", "stickiness.type", "app_cookie",
		"stickiness.app_cookie.cookie_name", "session"))
	if got["deregistration_delay.timeout_seconds"] != "0" || got["load_balancing.algorithm.type"] != "least_outstanding_requests" || got["stickiness.type"] != "app_cookie" {
		t.Fatalf("after modify %v", got)
	}
	must[map[string]string](t)(modify("load_balancing.algorithm.type", "weighted_random", "load_balancing.algorithm.anomaly_mitigation", "on"))
	must[map[string]string](t)(modify("load_balancing.algorithm.anomaly_mitigation", "off", "load_balancing.algorithm.type", "round_robin"))

	tests := []struct {
		kv   []string
		code string
		msg  string
	}{
		{[]string{"deregistration_delay.timeout_seconds", "3601"}, validationError, "from 0 to 3600"},
		{[]string{"slow_start.duration_seconds", "29"}, validationError, "30 to 900"},
		{[]string{"slow_start.duration_seconds", "901"}, validationError, "30 to 900"},
		{[]string{"load_balancing.algorithm.type", "random"}, validationError, "round_robin, least_outstanding_requests, weighted_random"},
		{[]string{"load_balancing.algorithm.anomaly_mitigation", "on"}, code(elbv2types.NewInvalidConfigurationRequestException), "weighted_random"},
		{[]string{"stickiness.type", "source_ip"}, validationError, "lb_cookie, app_cookie"},
		{[]string{"stickiness.lb_cookie.duration_seconds", "604801"}, validationError, "1 to 604800"},
		{[]string{"stickiness.app_cookie.cookie_name", "AWSALBsession"}, validationError, "reserved"},
		{[]string{"stickiness.app_cookie.cookie_name", ""}, code(elbv2types.NewInvalidConfigurationRequestException), "cookie name"},
		{[]string{"proxy_protocol_v2.enabled", "true"}, code(elbv2types.NewInvalidConfigurationRequestException), "Key proxy_protocol_v2.enabled not valid"},
		{[]string{"target_group_health.dns_failover.minimum_healthy_targets.percentage", "101"}, validationError, "off or an integer from 1 to 100"},
	}
	for _, tt := range tests {
		t.Run(tt.kv[0]+"="+tt.kv[1], func(t *testing.T) {
			_, err := modify(tt.kv...)
			wantErr(t, err, tt.code, tt.msg)
		})
	}
}

func TestDeleteTargetGroup(t *testing.T) {
	f := newFixture(t)
	tg := f.createTG("app")
	other := f.createTG("other")
	f.register(tg.TargetGroupArn, elbv2types.TargetDescription{Id: "10.0.0.1"}, elbv2types.TargetDescription{Id: "10.0.0.2", Port: new(int32(9000))})
	lb := f.createLB("web")
	l := f.createListener(lb.LoadBalancerArn, 80, forward(other.TargetGroupArn))
	r := f.createRule(l.ListenerArn, 5, pathIs("/x"), forward(tg.TargetGroupArn))

	_, err := f.api.DeleteTargetGroup(f.ctx, &elbv2types.DeleteTargetGroupInput{TargetGroupArn: tg.TargetGroupArn})
	wantErr(t, err, code(elbv2types.NewResourceInUseException), "in use")
	_, err = f.api.DeleteTargetGroup(f.ctx, &elbv2types.DeleteTargetGroupInput{TargetGroupArn: other.TargetGroupArn})
	wantErr(t, err, code(elbv2types.NewResourceInUseException), "in use")

	must[*elbv2types.DeleteRuleOutput](t)(f.api.DeleteRule(f.ctx, &elbv2types.DeleteRuleInput{RuleArn: r.RuleArn}))
	for range 2 { // the second time it is gone, which succeeds
		must[*elbv2types.DeleteTargetGroupOutput](t)(f.api.DeleteTargetGroup(f.ctx, &elbv2types.DeleteTargetGroupInput{TargetGroupArn: tg.TargetGroupArn}))
	}
	_, err = f.api.DescribeTargetGroups(f.ctx, &elbv2types.DescribeTargetGroupsInput{TargetGroupArns: []string{tg.TargetGroupArn}})
	wantErr(t, err, code(elbv2types.NewTargetGroupNotFoundException), "not found")
	_, err = f.api.DeleteTargetGroup(f.ctx, &elbv2types.DeleteTargetGroupInput{TargetGroupArn: "app"})
	wantErr(t, err, validationError, "not a valid target group ARN")
	// A group of the same name starts without the old targets.
	again := f.createTG("app")
	if got := f.health(again.TargetGroupArn); len(got) != 0 {
		t.Fatalf("recreated group has targets: %s", healthText(got))
	}
}
