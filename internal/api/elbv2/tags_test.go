package elbv2_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/berthdev/berth/internal/awsmodel"
	"github.com/berthdev/berth/internal/awsmodel/elbv2types"
)

func TestTags(t *testing.T) {
	f := newFixture(t)
	lb := f.createLB("web", func(in *elbv2types.CreateLoadBalancerInput) { in.Tags = []elbv2types.Tag{{Key: "team", Value: "a"}} })
	tg := f.createTG("app")
	l := f.createListener(lb.LoadBalancerArn, 80, forward(tg.TargetGroupArn))
	r := f.createRule(l.ListenerArn, 1, pathIs("/x"), fixed("200"))
	all := []string{lb.LoadBalancerArn, tg.TargetGroupArn, l.ListenerArn, r.RuleArn}

	must[*elbv2types.AddTagsOutput](t)(f.api.AddTags(f.ctx, &elbv2types.AddTagsInput{ResourceArns: all, Tags: []elbv2types.Tag{{Key: "env", Value: "prod"}, {Key: "team", Value: "b"}}}))
	must[*elbv2types.RemoveTagsOutput](t)(f.api.RemoveTags(f.ctx, &elbv2types.RemoveTagsInput{ResourceArns: all[1:], TagKeys: []string{"team", "absent"}}))
	out := must[*elbv2types.DescribeTagsOutput](t)(f.api.DescribeTags(f.ctx, &elbv2types.DescribeTagsInput{ResourceArns: all}))
	text := func(tags []elbv2types.Tag) (s []string) {
		for _, t := range tags {
			s = append(s, t.Key+"="+t.Value)
		}
		return s
	}
	want := [][]string{{"team=b", "env=prod"}, {"env=prod"}, {"env=prod"}, {"env=prod"}}
	for i, d := range out.TagDescriptions {
		if d.ResourceArn != all[i] || !slices.Equal(text(d.Tags), want[i]) {
			t.Errorf("%s: %v, want %v", d.ResourceArn, text(d.Tags), want[i])
		}
	}
	must[*elbv2types.RemoveTagsOutput](t)(f.api.RemoveTags(f.ctx, &elbv2types.RemoveTagsInput{ResourceArns: all[1:2], TagKeys: []string{"env"}}))
	out = must[*elbv2types.DescribeTagsOutput](t)(f.api.DescribeTags(f.ctx, &elbv2types.DescribeTagsInput{ResourceArns: all[1:2]}))
	if out.TagDescriptions[0].Tags == nil || len(out.TagDescriptions[0].Tags) != 0 {
		t.Fatalf("untagged resource %+v", out.TagDescriptions[0])
	}

	var fifty []elbv2types.Tag
	for i := range 48 {
		fifty = append(fifty, elbv2types.Tag{Key: fmt.Sprintf("k%d", i)})
	}
	must[*elbv2types.AddTagsOutput](t)(f.api.AddTags(f.ctx, &elbv2types.AddTagsInput{ResourceArns: all[:1], Tags: fifty})) // 48 + team + env = 50
	tests := []struct {
		name string
		call func() error
		code string
		msg  string
	}{
		{"too many", func() error {
			_, err := f.api.AddTags(f.ctx, &elbv2types.AddTagsInput{ResourceArns: all, Tags: []elbv2types.Tag{{Key: "one-more"}}})
			return err
		}, code(elbv2types.NewTooManyTagsException), "50"},
		{"duplicate keys", func() error {
			_, err := f.api.AddTags(f.ctx, &elbv2types.AddTagsInput{ResourceArns: all, Tags: []elbv2types.Tag{{Key: "a"}, {Key: "a", Value: "2"}}})
			return err
		}, code(elbv2types.NewDuplicateTagKeysException), "a"},
		{"reserved", func() error {
			_, err := f.api.AddTags(f.ctx, &elbv2types.AddTagsInput{ResourceArns: all, Tags: []elbv2types.Tag{{Key: "AWS:x"}}})
			return err
		}, validationError, "reserved"},
		{"remove reserved", func() error {
			_, err := f.api.RemoveTags(f.ctx, &elbv2types.RemoveTagsInput{ResourceArns: all, TagKeys: []string{"aws:x"}})
			return err
		}, validationError, "reserved"},
		{"unknown target group", func() error {
			_, err := f.api.AddTags(f.ctx, &elbv2types.AddTagsInput{ResourceArns: []string{arnBase + "targetgroup/x/0000000000000000"}, Tags: []elbv2types.Tag{{Key: "a"}}})
			return err
		}, code(elbv2types.NewTargetGroupNotFoundException), "not found"},
		{"unknown rule", func() error {
			_, err := f.api.DescribeTags(f.ctx, &elbv2types.DescribeTagsInput{ResourceArns: []string{r.RuleArn + "0"}})
			return err
		}, code(elbv2types.NewRuleNotFoundException), "not found"},
		{"not an ARN", func() error {
			_, err := f.api.DescribeTags(f.ctx, &elbv2types.DescribeTagsInput{ResourceArns: []string{"web"}})
			return err
		}, validationError, "not a valid Elastic Load Balancing resource ARN"},
		{"21 ARNs", func() error {
			_, err := f.api.DescribeTags(f.ctx, &elbv2types.DescribeTagsInput{ResourceArns: slices.Repeat(all[:1], 21)})
			return err
		}, validationError, "up to 20"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantErr(t, tt.call(), tt.code, tt.msg) })
	}
	// A refused AddTags tagged nothing, not even the resources before the one refused.
	out = must[*elbv2types.DescribeTagsOutput](t)(f.api.DescribeTags(f.ctx, &elbv2types.DescribeTagsInput{ResourceArns: all[1:2]}))
	if len(out.TagDescriptions[0].Tags) != 0 {
		t.Fatalf("partial AddTags: %v", out.TagDescriptions[0].Tags)
	}
}

func TestAccountLimitsAndSSLPolicies(t *testing.T) {
	f := newFixture(t)
	limits := map[string]string{}
	marker := ""
	for range 10 {
		out := must[*elbv2types.DescribeAccountLimitsOutput](t)(f.api.DescribeAccountLimits(f.ctx, &elbv2types.DescribeAccountLimitsInput{PageSize: new(int32(4)), Marker: marker}))
		for _, l := range out.Limits {
			limits[l.Name] = l.Max
		}
		if marker = out.NextMarker; marker == "" {
			break
		}
	}
	for name, max := range map[string]string{
		"application-load-balancers": "50", "listeners-per-application-load-balancer": "50", "rules-per-application-load-balancer": "100",
		"target-groups": "3000", "targets-per-application-load-balancer": "1000", "condition-values-per-alb-rule": "5",
		"condition-wildcards-per-alb-rule": "5", "target-groups-per-action-on-application-load-balancer": "5",
	} {
		if limits[name] != max {
			t.Errorf("%s = %q, want %s", name, limits[name], max)
		}
	}

	all := must[*elbv2types.DescribeSSLPoliciesOutput](t)(f.api.DescribeSSLPolicies(f.ctx, &elbv2types.DescribeSSLPoliciesInput{})).SslPolicies
	if len(all) < 3 {
		t.Fatalf("%d policies", len(all))
	}
	one := must[*elbv2types.DescribeSSLPoliciesOutput](t)(f.api.DescribeSSLPolicies(f.ctx, &elbv2types.DescribeSSLPoliciesInput{Names: []string{"ELBSecurityPolicy-2016-08"}})).SslPolicies
	if len(one) != 1 || !slices.Equal(one[0].SslProtocols, []string{"TLSv1", "TLSv1.1", "TLSv1.2"}) || one[0].Ciphers[0].Name != "ECDHE-ECDSA-AES128-GCM-SHA256" || *one[0].Ciphers[0].Priority != 1 {
		t.Fatalf("2016-08 %+v", one)
	}
	_, err := f.api.DescribeSSLPolicies(f.ctx, &elbv2types.DescribeSSLPoliciesInput{Names: []string{"nope"}})
	wantErr(t, err, code(elbv2types.NewSSLPolicyNotFoundException), "nope")
	if got := must[*elbv2types.DescribeSSLPoliciesOutput](t)(f.api.DescribeSSLPolicies(f.ctx, &elbv2types.DescribeSSLPoliciesInput{LoadBalancerType: "gateway"})).SslPolicies; len(got) != 0 {
		t.Fatalf("gateway policies %v", got)
	}
}

// TestImplementedOperations keeps the list of operations Berth answers
// (the rest answer NotImplementedError, which the front door sends as
// InvalidAction) in one place, and proves no handler panics on an empty
// request.
func TestImplementedOperations(t *testing.T) {
	want := []string{
		"AddTags", "CreateListener", "CreateLoadBalancer", "CreateRule", "CreateTargetGroup", "DeleteListener", "DeleteLoadBalancer",
		"DeleteRule", "DeleteTargetGroup", "DeregisterTargets", "DescribeAccountLimits", "DescribeListeners",
		"DescribeLoadBalancerAttributes", "DescribeLoadBalancers", "DescribeRules", "DescribeSSLPolicies", "DescribeTags",
		"DescribeTargetGroupAttributes", "DescribeTargetGroups", "DescribeTargetHealth", "ModifyListener",
		"ModifyLoadBalancerAttributes", "ModifyRule", "ModifyTargetGroup", "ModifyTargetGroupAttributes", "RegisterTargets",
		"RemoveTags", "SetRulePriorities",
	}
	f := newFixture(t)
	v := reflect.ValueOf(f.api)
	var impl []string
	for _, op := range elbv2types.Operations {
		m := v.MethodByName(op)
		in := reflect.New(m.Type().In(1).Elem())
		res := m.Call([]reflect.Value{reflect.ValueOf(context.Background()), in})
		err, _ := res[1].Interface().(error)
		var nie *awsmodel.NotImplementedError
		if !errors.As(err, &nie) {
			impl = append(impl, op)
		}
	}
	if !slices.Equal(impl, want) {
		t.Fatalf("implemented %v\nwant %v", impl, want)
	}
}
