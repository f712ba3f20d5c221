package elbv2_test

import (
	"fmt"
	"regexp"
	"slices"
	"testing"

	"github.com/berthdev/berth/internal/awsmodel/elbv2types"
	"github.com/berthdev/berth/internal/state"
	"github.com/berthdev/berth/internal/store"
)

func TestCreateLoadBalancerDefaults(t *testing.T) {
	f := newFixture(t)
	lb := f.createLB("web")
	if !regexp.MustCompile(`^` + regexp.QuoteMeta(arnBase) + `loadbalancer/app/web/[0-9a-f]{16}$`).MatchString(lb.LoadBalancerArn) {
		t.Errorf("ARN %q", lb.LoadBalancerArn)
	}
	if !regexp.MustCompile(`^web-[1-9][0-9]{9}\.us-east-1\.elb\.berth\.internal$`).MatchString(lb.DNSName) {
		t.Errorf("DNS name %q", lb.DNSName)
	}
	if lb.CanonicalHostedZoneId != "Z35SXDOTRQ7X7K" || lb.VpcId != "vpc-berth" || lb.Scheme != "internet-facing" ||
		lb.Type != "application" || lb.IpAddressType != "ipv4" || !lb.CreatedTime.Equal(f.clk.Now()) {
		t.Errorf("load balancer %+v", lb)
	}
	if lb.State == nil || lb.State.Code != "provisioning" {
		t.Errorf("state %+v, want provisioning until the data plane binds it", lb.State)
	}
	if len(lb.AvailabilityZones) != 2 || lb.AvailabilityZones[0].ZoneName != "us-east-1a" || lb.AvailabilityZones[0].SubnetId != "subnet-1" ||
		lb.AvailabilityZones[1].ZoneName != "us-east-1b" {
		t.Errorf("zones %+v", lb.AvailabilityZones)
	}

	internal := f.createLB("api", func(in *elbv2types.CreateLoadBalancerInput) {
		in.Scheme, in.Subnets, in.SecurityGroups = "internal", nil, []string{"sg-1"}
	})
	if !regexp.MustCompile(`^internal-api-[0-9]{10}\.us-east-1\.elb\.berth\.internal$`).MatchString(internal.DNSName) {
		t.Errorf("internal DNS name %q", internal.DNSName)
	}
	if len(internal.AvailabilityZones) != 2 || internal.AvailabilityZones[0].SubnetId != "subnet-berth-a" || !slices.Equal(internal.SecurityGroups, []string{"sg-1"}) {
		t.Errorf("internal %+v", internal)
	}

	// Each load balancer holds a loopback address of its own.
	var addrs []string
	err := f.st.View(f.ctx, func(tx store.ReadTx) error {
		for _, name := range []string{"web", "api"} {
			rec, _, err := state.Get[state.LoadBalancer](tx, state.LoadBalancerKey(name))
			if err != nil {
				return err
			}
			addrs = append(addrs, rec.Address)
		}
		return nil
	})
	if err != nil || !slices.Equal(addrs, []string{"127.0.1.1", "127.0.1.2"}) {
		t.Fatalf("addresses %v, %v", addrs, err)
	}
}

func TestCreateLoadBalancerIdempotent(t *testing.T) {
	f := newFixture(t)
	a := f.createLB("web")
	b := f.createLB("web", func(in *elbv2types.CreateLoadBalancerInput) { in.Subnets = []string{"subnet-2", "subnet-1"} })
	if a.LoadBalancerArn != b.LoadBalancerArn || a.DNSName != b.DNSName {
		t.Fatalf("same settings made a second load balancer: %s, %s", a.LoadBalancerArn, b.LoadBalancerArn)
	}
	_, err := f.api.CreateLoadBalancer(f.ctx, &elbv2types.CreateLoadBalancerInput{Name: "web", Scheme: "internal", Subnets: []string{"subnet-1", "subnet-2"}})
	wantErr(t, err, code(elbv2types.NewDuplicateLoadBalancerNameException), "same name 'web'")
}

func TestCreateLoadBalancerErrors(t *testing.T) {
	long := "a123456789012345678901234567890123"
	tests := []struct {
		name string
		in   elbv2types.CreateLoadBalancerInput
		code string
		msg  string
	}{
		{"network", elbv2types.CreateLoadBalancerInput{Name: "n", Type: "network"}, validationError, "type 'network' is not supported"},
		{"gateway", elbv2types.CreateLoadBalancerInput{Name: "g", Type: "gateway"}, validationError, "Application Load Balancers only"},
		{"no name", elbv2types.CreateLoadBalancerInput{}, validationError, "name must be specified"},
		{"long name", elbv2types.CreateLoadBalancerInput{Name: long}, validationError, "longer than 32"},
		{"leading hyphen", elbv2types.CreateLoadBalancerInput{Name: "-web"}, validationError, "begin or end with a hyphen"},
		{"trailing hyphen", elbv2types.CreateLoadBalancerInput{Name: "web-"}, validationError, "begin or end with a hyphen"},
		{"underscore", elbv2types.CreateLoadBalancerInput{Name: "my_web"}, validationError, "alphanumeric characters and hyphens"},
		{"internal prefix", elbv2types.CreateLoadBalancerInput{Name: "internal-web"}, validationError, "cannot begin with 'internal-'"},
		{"subnets and mappings", elbv2types.CreateLoadBalancerInput{Name: "w", Subnets: []string{"a"}, SubnetMappings: []elbv2types.SubnetMapping{{SubnetId: "b"}}}, validationError, "not both"},
		{"elastic ip", elbv2types.CreateLoadBalancerInput{Name: "w", SubnetMappings: []elbv2types.SubnetMapping{{SubnetId: "b", AllocationId: "eipalloc-1"}}}, validationError, "Elastic IP"},
		{"subnet twice", elbv2types.CreateLoadBalancerInput{Name: "w", Subnets: []string{"a", "a"}}, validationError, "more than once"},
		{"outposts", elbv2types.CreateLoadBalancerInput{Name: "w", CustomerOwnedIpv4Pool: "ipv4pool-coip-1"}, validationError, "customer-owned"},
		{"internal dualstack without public", elbv2types.CreateLoadBalancerInput{Name: "w", Scheme: "internal", IpAddressType: "dualstack-without-public-ipv4"}, validationError, "Internal load balancers"},
		{"tag twice", elbv2types.CreateLoadBalancerInput{Name: "w", Tags: []elbv2types.Tag{{Key: "a"}, {Key: "a"}}}, code(elbv2types.NewDuplicateTagKeysException), "more than once"},
		{"aws tag", elbv2types.CreateLoadBalancerInput{Name: "w", Tags: []elbv2types.Tag{{Key: "aws:x"}}}, validationError, "reserved"},
	}
	f := newFixture(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.api.CreateLoadBalancer(f.ctx, &tt.in)
			wantErr(t, err, tt.code, tt.msg)
		})
	}
	// Through the dispatcher the model's own constraints apply first.
	_, err := f.call("CreateLoadBalancer", map[string]any{"Name": "w", "Scheme": "external"})
	if err == nil {
		t.Fatal("an unknown scheme was accepted")
	}
}

func TestTooManyLoadBalancers(t *testing.T) {
	f := newFixture(t)
	for i := range 50 {
		f.createLB(fmt.Sprintf("lb-%d", i))
	}
	_, err := f.api.CreateLoadBalancer(f.ctx, &elbv2types.CreateLoadBalancerInput{Name: "one-more"})
	wantErr(t, err, code(elbv2types.NewTooManyLoadBalancersException), "50")
}

func TestDescribeLoadBalancers(t *testing.T) {
	f := newFixture(t)
	var all []string
	for _, n := range []string{"c", "a", "e", "b", "d"} {
		all = append(all, f.createLB(n).LoadBalancerArn)
	}
	names := func(lbs []elbv2types.LoadBalancer) (out []string) {
		for _, lb := range lbs {
			out = append(out, lb.LoadBalancerName)
		}
		return out
	}
	// Pages of two, in name order.
	var got []string
	marker := ""
	for range 5 {
		out := must[*elbv2types.DescribeLoadBalancersOutput](t)(f.api.DescribeLoadBalancers(f.ctx, &elbv2types.DescribeLoadBalancersInput{PageSize: new(int32(2)), Marker: marker}))
		got = append(got, names(out.LoadBalancers)...)
		if marker = out.NextMarker; marker == "" {
			break
		}
	}
	if !slices.Equal(got, []string{"a", "b", "c", "d", "e"}) {
		t.Fatalf("paged %v", got)
	}
	out := must[*elbv2types.DescribeLoadBalancersOutput](t)(f.api.DescribeLoadBalancers(f.ctx, &elbv2types.DescribeLoadBalancersInput{Names: []string{"e", "a"}}))
	if !slices.Equal(names(out.LoadBalancers), []string{"e", "a"}) {
		t.Fatalf("by name %v", names(out.LoadBalancers))
	}
	out = must[*elbv2types.DescribeLoadBalancersOutput](t)(f.api.DescribeLoadBalancers(f.ctx, &elbv2types.DescribeLoadBalancersInput{LoadBalancerArns: all[:2]}))
	if !slices.Equal(names(out.LoadBalancers), []string{"c", "a"}) {
		t.Fatalf("by ARN %v", names(out.LoadBalancers))
	}

	tests := []struct {
		name string
		in   elbv2types.DescribeLoadBalancersInput
		code string
		msg  string
	}{
		{"missing names", elbv2types.DescribeLoadBalancersInput{Names: []string{"a", "x", "y"}}, code(elbv2types.NewLoadBalancerNotFoundException), "Load balancers '[x, y]' not found"},
		{"missing ARN", elbv2types.DescribeLoadBalancersInput{LoadBalancerArns: []string{arnBase + "loadbalancer/app/a/0000000000000000"}}, code(elbv2types.NewLoadBalancerNotFoundException), "not found"},
		{"other region", elbv2types.DescribeLoadBalancersInput{LoadBalancerArns: []string{"arn:aws:elasticloadbalancing:eu-west-1:" + account + ":loadbalancer/app/a/0000000000000000"}}, code(elbv2types.NewLoadBalancerNotFoundException), "not found"},
		{"network ARN", elbv2types.DescribeLoadBalancersInput{LoadBalancerArns: []string{arnBase + "loadbalancer/net/a/0000000000000000"}}, code(elbv2types.NewLoadBalancerNotFoundException), "not found"},
		{"malformed ARN", elbv2types.DescribeLoadBalancersInput{LoadBalancerArns: []string{"web"}}, validationError, "'web' is not a valid load balancer ARN"},
		{"target group ARN", elbv2types.DescribeLoadBalancersInput{LoadBalancerArns: []string{arnBase + "targetgroup/a/0000000000000000"}}, validationError, "not a valid load balancer ARN"},
		{"names and ARNs", elbv2types.DescribeLoadBalancersInput{Names: []string{"a"}, LoadBalancerArns: all[:1]}, validationError, "same time"},
		{"bad marker", elbv2types.DescribeLoadBalancersInput{Marker: "%%%"}, validationError, "marker"},
		{"page size", elbv2types.DescribeLoadBalancersInput{PageSize: new(int32(401))}, validationError, "between 1 and 400"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.api.DescribeLoadBalancers(f.ctx, &tt.in)
			wantErr(t, err, tt.code, tt.msg)
		})
	}
}

func TestDeleteLoadBalancer(t *testing.T) {
	f := newFixture(t)
	lb := f.createLB("web")
	tg := f.createTG("app")
	f.register(tg.TargetGroupArn, elbv2types.TargetDescription{Id: "10.0.0.1"})
	l := f.createListener(lb.LoadBalancerArn, 80, forward(tg.TargetGroupArn))
	f.createRule(l.ListenerArn, 10, pathIs("/api/*"), forward(tg.TargetGroupArn))
	if got := f.describeTG(tg.TargetGroupArn).LoadBalancerArns; !slices.Equal(got, []string{lb.LoadBalancerArn}) {
		t.Fatalf("target group used by %v", got)
	}

	// Deletion protection holds it.
	must[*elbv2types.ModifyLoadBalancerAttributesOutput](t)(f.api.ModifyLoadBalancerAttributes(f.ctx, &elbv2types.ModifyLoadBalancerAttributesInput{
		LoadBalancerArn: lb.LoadBalancerArn, Attributes: []elbv2types.LoadBalancerAttribute{{Key: "deletion_protection.enabled", Value: "true"}},
	}))
	_, err := f.api.DeleteLoadBalancer(f.ctx, &elbv2types.DeleteLoadBalancerInput{LoadBalancerArn: lb.LoadBalancerArn})
	wantErr(t, err, code(elbv2types.NewOperationNotPermittedException), "deletion protection")
	must[*elbv2types.ModifyLoadBalancerAttributesOutput](t)(f.api.ModifyLoadBalancerAttributes(f.ctx, &elbv2types.ModifyLoadBalancerAttributesInput{
		LoadBalancerArn: lb.LoadBalancerArn, Attributes: []elbv2types.LoadBalancerAttribute{{Key: "deletion_protection.enabled", Value: "false"}},
	}))

	for range 2 { // the second time it is already gone, which succeeds
		must[*elbv2types.DeleteLoadBalancerOutput](t)(f.api.DeleteLoadBalancer(f.ctx, &elbv2types.DeleteLoadBalancerInput{LoadBalancerArn: lb.LoadBalancerArn}))
	}
	_, err = f.api.DescribeLoadBalancers(f.ctx, &elbv2types.DescribeLoadBalancersInput{LoadBalancerArns: []string{lb.LoadBalancerArn}})
	wantErr(t, err, code(elbv2types.NewLoadBalancerNotFoundException), "not found")
	_, err = f.api.DescribeListeners(f.ctx, &elbv2types.DescribeListenersInput{ListenerArns: []string{l.ListenerArn}})
	wantErr(t, err, code(elbv2types.NewListenerNotFoundException), "not found")
	// Its target group stays, unused, and its targets with it.
	if got := f.describeTG(tg.TargetGroupArn).LoadBalancerArns; len(got) != 0 {
		t.Fatalf("deleted load balancer still uses the target group: %v", got)
	}
	if got := healthText(f.health(tg.TargetGroupArn)); got != "10.0.0.1:8080 unused Target.NotInUse" {
		t.Fatalf("targets %s", got)
	}
	// Nothing of it is left in the store but the unused target group.
	err = f.st.View(f.ctx, func(tx store.ReadTx) error {
		for _, prefix := range []string{state.LoadBalancersPrefix, state.ListenersPrefix, state.RulesPrefix, state.TGRefsPrefix, state.LBAddressesPrefix} {
			if n, err := tx.Count(prefix); err != nil || n != 0 {
				return fmt.Errorf("%d keys left under %s (%v)", n, prefix, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.api.DeleteLoadBalancer(f.ctx, &elbv2types.DeleteLoadBalancerInput{LoadBalancerArn: "nope"})
	wantErr(t, err, validationError, "not a valid load balancer ARN")
}

func TestLoadBalancerAttributes(t *testing.T) {
	f := newFixture(t)
	lb := f.createLB("web")
	attrs := func(list []elbv2types.LoadBalancerAttribute) map[string]string {
		m := map[string]string{}
		for _, a := range list {
			m[a.Key] = a.Value
		}
		return m
	}
	got := attrs(must[*elbv2types.DescribeLoadBalancerAttributesOutput](t)(f.api.DescribeLoadBalancerAttributes(f.ctx, &elbv2types.DescribeLoadBalancerAttributesInput{LoadBalancerArn: lb.LoadBalancerArn})).Attributes)
	for k, v := range map[string]string{
		"idle_timeout.timeout_seconds": "60", "deletion_protection.enabled": "false", "routing.http2.enabled": "true",
		"routing.http.drop_invalid_header_fields.enabled": "false", "routing.http.xff_header_processing.mode": "append",
		"routing.http.xff_client_port.enabled": "false", "routing.http.x_amzn_tls_version_and_cipher_suite.enabled": "false",
		"access_logs.s3.enabled": "false", "access_logs.s3.bucket": "", "client_keep_alive.seconds": "3600",
		"routing.http.desync_mitigation_mode": "defensive", "load_balancing.cross_zone.enabled": "true", "ipv6.deny_all_igw_traffic": "false",
	} {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}

	modify := func(kv ...string) (map[string]string, error) {
		var list []elbv2types.LoadBalancerAttribute
		for i := 0; i < len(kv); i += 2 {
			list = append(list, elbv2types.LoadBalancerAttribute{Key: kv[i], Value: kv[i+1]})
		}
		out, err := f.api.ModifyLoadBalancerAttributes(f.ctx, &elbv2types.ModifyLoadBalancerAttributesInput{LoadBalancerArn: lb.LoadBalancerArn, Attributes: list})
		if err != nil {
			return nil, err
		}
		return attrs(out.Attributes), nil
	}
	got = must[map[string]string](t)(modify("idle_timeout.timeout_seconds", "4000", "routing.http.xff_header_processing.mode", "remove",
		"access_logs.s3.enabled", "true", "access_logs.s3.bucket", "logs"))
	if got["idle_timeout.timeout_seconds"] != "4000" || got["routing.http.xff_header_processing.mode"] != "remove" || got["routing.http2.enabled"] != "true" {
		t.Fatalf("after modify %v", got)
	}

	tests := []struct {
		kv   []string
		code string
		msg  string
	}{
		{[]string{"idle_timeout.timeout_seconds", "0"}, validationError, "from 1 to 4000"},
		{[]string{"idle_timeout.timeout_seconds", "4001"}, validationError, "from 1 to 4000"},
		{[]string{"idle_timeout.timeout_seconds", "x"}, validationError, "not valid"},
		{[]string{"routing.http2.enabled", "yes"}, validationError, "one of true, false"},
		{[]string{"routing.http.xff_header_processing.mode", "drop"}, validationError, "append, preserve, remove"},
		{[]string{"client_keep_alive.seconds", "59"}, validationError, "from 60 to 604800"},
		{[]string{"load_balancing.cross_zone.enabled", "false"}, validationError, "one of true"},
		{[]string{"dns_record.client_routing_policy", "any_availability_zone"}, code(elbv2types.NewInvalidConfigurationRequestException), "Key dns_record.client_routing_policy not valid"},
		{[]string{"nonsense", "1"}, code(elbv2types.NewInvalidConfigurationRequestException), "not valid"},
		{[]string{"connection_logs.s3.enabled", "true"}, code(elbv2types.NewInvalidConfigurationRequestException), "connection_logs.s3.bucket"},
	}
	for _, tt := range tests {
		t.Run(tt.kv[0]+"="+tt.kv[1], func(t *testing.T) {
			_, err := modify(tt.kv...)
			wantErr(t, err, tt.code, tt.msg)
		})
	}
	// A refused change changes nothing.
	got = attrs(must[*elbv2types.DescribeLoadBalancerAttributesOutput](t)(f.api.DescribeLoadBalancerAttributes(f.ctx, &elbv2types.DescribeLoadBalancerAttributesInput{LoadBalancerArn: lb.LoadBalancerArn})).Attributes)
	if got["idle_timeout.timeout_seconds"] != "4000" {
		t.Fatalf("idle timeout %q", got["idle_timeout.timeout_seconds"])
	}
	internal := f.createLB("in", func(in *elbv2types.CreateLoadBalancerInput) { in.Scheme = "internal" })
	got = attrs(must[*elbv2types.DescribeLoadBalancerAttributesOutput](t)(f.api.DescribeLoadBalancerAttributes(f.ctx, &elbv2types.DescribeLoadBalancerAttributesInput{LoadBalancerArn: internal.LoadBalancerArn})).Attributes)
	if got["ipv6.deny_all_igw_traffic"] != "true" {
		t.Fatalf("internal load balancer lets IGW traffic in: %v", got)
	}
}

func TestLoadBalancerStateFromDataPlane(t *testing.T) {
	f := newFixture(t)
	lb := f.createLB("web")
	res, _ := arns.ParseELB(lb.LoadBalancerArn)
	_, err := f.st.Update(f.ctx, func(tx store.Tx) error {
		if ok, err := state.SetLoadBalancerState(tx, "web", "0000000000000000", "active", ""); ok || err != nil {
			return fmt.Errorf("another load balancer's id changed it: %v %v", ok, err)
		}
		_, err := state.SetLoadBalancerState(tx, "web", res.ID, "active", "")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	out := must[*elbv2types.DescribeLoadBalancersOutput](t)(f.api.DescribeLoadBalancers(f.ctx, &elbv2types.DescribeLoadBalancersInput{Names: []string{"web"}}))
	if out.LoadBalancers[0].State.Code != "active" {
		t.Fatalf("state %+v", out.LoadBalancers[0].State)
	}
}
