package elbv2_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/berthdev/berth/internal/awsmodel/elbv2types"
)

// ruleFixture is a load balancer with one HTTP listener and a target group.
func ruleFixture(t *testing.T) (*fixture, elbv2types.Listener, elbv2types.TargetGroup) {
	f := newFixture(t)
	lb := f.createLB("web")
	tg := f.createTG("app")
	return f, f.createListener(lb.LoadBalancerArn, 80, fixed("404")), tg
}

func priorities(rules []elbv2types.Rule) []string {
	var out []string
	for _, r := range rules {
		out = append(out, r.Priority)
	}
	return out
}

func TestCreateRule(t *testing.T) {
	f, l, tg := ruleFixture(t)
	r := f.createRule(l.ListenerArn, 10, pathIs("/api/*"), forward(tg.TargetGroupArn))
	if r.Priority != "10" || r.IsDefault == nil || *r.IsDefault || len(r.Conditions) != 1 || r.Actions[0].TargetGroupArn != tg.TargetGroupArn {
		t.Fatalf("rule %+v", r)
	}
	// The legacy Values form is reported with its configuration too.
	c := r.Conditions[0]
	if !slices.Equal(c.Values, []string{"/api/*"}) || c.PathPatternConfig == nil || !slices.Equal(c.PathPatternConfig.Values, []string{"/api/*"}) {
		t.Fatalf("condition %+v", c)
	}
	if got := f.describeTG(tg.TargetGroupArn).LoadBalancerArns; len(got) != 1 {
		t.Fatalf("a rule's target group is not in use: %v", got)
	}
	_, err := f.api.CreateRule(f.ctx, &elbv2types.CreateRuleInput{ListenerArn: l.ListenerArn, Priority: new(int32(10)), Conditions: pathIs("/x"), Actions: fixed("200")})
	wantErr(t, err, code(elbv2types.NewPriorityInUseException), "Priority '10'")
	for _, p := range []int32{0, 50001} {
		_, err = f.api.CreateRule(f.ctx, &elbv2types.CreateRuleInput{ListenerArn: l.ListenerArn, Priority: new(p), Conditions: pathIs("/x"), Actions: fixed("200")})
		wantErr(t, err, validationError, "from 1 to 50000")
	}
	_, err = f.api.CreateRule(f.ctx, &elbv2types.CreateRuleInput{ListenerArn: l.ListenerArn, Conditions: pathIs("/x"), Actions: fixed("200")})
	wantErr(t, err, validationError, "priority must be specified")
	_, err = f.api.CreateRule(f.ctx, &elbv2types.CreateRuleInput{ListenerArn: l.ListenerArn + "0", Priority: new(int32(11)), Conditions: pathIs("/x"), Actions: fixed("200")})
	wantErr(t, err, code(elbv2types.NewListenerNotFoundException), "not found")
	_, err = f.api.CreateRule(f.ctx, &elbv2types.CreateRuleInput{ListenerArn: l.ListenerArn, Priority: new(int32(11)), Conditions: pathIs("/x"), Actions: fixed("200"),
		Transforms: []elbv2types.RuleTransform{{Type: "url-rewrite"}}})
	wantErr(t, err, validationError, "transforms")
}

func TestRuleConditions(t *testing.T) {
	strs := func(v ...string) []string { return v }
	host := func(v ...string) elbv2types.RuleCondition {
		return elbv2types.RuleCondition{Field: "host-header", HostHeaderConfig: &elbv2types.HostHeaderConditionConfig{Values: v}}
	}
	path := func(v ...string) elbv2types.RuleCondition {
		return elbv2types.RuleCondition{Field: "path-pattern", PathPatternConfig: &elbv2types.PathPatternConditionConfig{Values: v}}
	}
	header := func(name string, v ...string) elbv2types.RuleCondition {
		return elbv2types.RuleCondition{Field: "http-header", HttpHeaderConfig: &elbv2types.HttpHeaderConditionConfig{HttpHeaderName: name, Values: v}}
	}
	method := func(v ...string) elbv2types.RuleCondition {
		return elbv2types.RuleCondition{Field: "http-request-method", HttpRequestMethodConfig: &elbv2types.HttpRequestMethodConditionConfig{Values: v}}
	}
	query := func(kv ...string) elbv2types.RuleCondition {
		c := &elbv2types.QueryStringConditionConfig{}
		for i := 0; i < len(kv); i += 2 {
			c.Values = append(c.Values, elbv2types.QueryStringKeyValuePair{Key: kv[i], Value: kv[i+1]})
		}
		return elbv2types.RuleCondition{Field: "query-string", QueryStringConfig: c}
	}
	source := func(v ...string) elbv2types.RuleCondition {
		return elbv2types.RuleCondition{Field: "source-ip", SourceIpConfig: &elbv2types.SourceIpConditionConfig{Values: v}}
	}
	tests := []struct {
		name  string
		conds []elbv2types.RuleCondition
		msg   string // "" means accepted
	}{
		{"every kind", []elbv2types.RuleCondition{host("*.example.com"), path("/api/*"), header("X-Env", "prod"), method("GET"), source("10.0.0.0/8")}, ""},
		{"legacy host", []elbv2types.RuleCondition{{Field: "host-header", Values: strs("api.example.com")}}, ""},
		{"query key and value", []elbv2types.RuleCondition{query("version", "v1", "", "debug")}, ""},
		{"ipv6 source", []elbv2types.RuleCondition{source("2001:db8::/32")}, ""},
		{"escaped wildcards", []elbv2types.RuleCondition{query("q", `a\*b\?c\*d\?e\*f`)}, ""},
		{"none", nil, "at least one condition"},
		{"six values", []elbv2types.RuleCondition{path("/a", "/b", "/c"), host("a.example.com", "b.example.com", "c.example.com")}, "at most 5 condition values"},
		{"four in one", []elbv2types.RuleCondition{path("/a", "/b", "/c", "/d")}, "at most 3 values"},
		{"six wildcards", []elbv2types.RuleCondition{path("/*/*/*"), host("*.*.*.example.com")}, "at most 5 wildcards"},
		{"two paths", []elbv2types.RuleCondition{path("/a"), path("/b")}, "only one 'path-pattern'"},
		{"two headers are fine", []elbv2types.RuleCondition{header("A", "1"), header("B", "2")}, ""},
		{"empty condition", []elbv2types.RuleCondition{path()}, "at least one value"},
		{"regex", []elbv2types.RuleCondition{{Field: "path-pattern", RegexValues: strs("^/api/v[0-9]+/")}}, ""},
		{"regex in config", []elbv2types.RuleCondition{{Field: "http-header", HttpHeaderConfig: &elbv2types.HttpHeaderConditionConfig{HttpHeaderName: "User-Agent", RegexValues: strs("(?i)curl")}}}, ""},
		{"lookahead", []elbv2types.RuleCondition{{Field: "host-header", HostHeaderConfig: &elbv2types.HostHeaderConditionConfig{RegexValues: strs("^(?!www)")}}}, "not valid"},
		{"regex and values", []elbv2types.RuleCondition{{Field: "path-pattern", PathPatternConfig: &elbv2types.PathPatternConditionConfig{Values: strs("/a"), RegexValues: strs("^/b")}}}, "not both"},
		{"regex on method", []elbv2types.RuleCondition{{Field: "http-request-method", RegexValues: strs("GET"), HttpRequestMethodConfig: &elbv2types.HttpRequestMethodConditionConfig{Values: strs("GET")}}}, "RegexValues can be specified only"},
		{"unknown field", []elbv2types.RuleCondition{{Field: "cookie", Values: strs("x")}}, "must be one of"},
		{"wrong config", []elbv2types.RuleCondition{{Field: "path-pattern", HostHeaderConfig: &elbv2types.HostHeaderConditionConfig{Values: strs("a.b")}}}, "cannot have the configuration"},
		{"values and config", []elbv2types.RuleCondition{{Field: "path-pattern", Values: strs("/a"), PathPatternConfig: &elbv2types.PathPatternConditionConfig{Values: strs("/b")}}}, "not both"},
		{"legacy values elsewhere", []elbv2types.RuleCondition{{Field: "http-request-method", Values: strs("GET")}}, "only for host-header and path-pattern"},
		{"two legacy values", []elbv2types.RuleCondition{{Field: "path-pattern", Values: strs("/a", "/b")}}, "one value in Values"},
		{"host without dot", []elbv2types.RuleCondition{host("localhost")}, "at least one '.'"},
		{"host ending in digits", []elbv2types.RuleCondition{host("example.c0m")}, "only letters after"},
		{"host underscore", []elbv2types.RuleCondition{host("my_host.example.com")}, "can contain only"},
		{"path with space", []elbv2types.RuleCondition{path("/a b")}, "can contain only"},
		{"long path", []elbv2types.RuleCondition{path("/" + fmt.Sprintf("%0128d", 0))}, "1 to 128 characters"},
		{"host header condition", []elbv2types.RuleCondition{header("Host", "a.example.com")}, "host-header condition"},
		{"header name", []elbv2types.RuleCondition{header("X Env", "a")}, "not a valid token"},
		{"header without config", []elbv2types.RuleCondition{{Field: "http-header"}}, "HttpHeaderConfig"},
		{"lowercase method", []elbv2types.RuleCondition{method("get")}, "A-Z"},
		{"query without value", []elbv2types.RuleCondition{query("k", "")}, "must specify a Value"},
		{"bad cidr", []elbv2types.RuleCondition{source("10.0.0.1")}, "not a valid CIDR"},
		{"nlb source type", []elbv2types.RuleCondition{{Field: "source-ip", SourceIpConfig: &elbv2types.SourceIpConditionConfig{Values: strs("10.0.0.0/8"), IpAddressType: "ipv4"}}}, "Network Load Balancers"},
	}
	f, l, _ := ruleFixture(t)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.api.CreateRule(f.ctx, &elbv2types.CreateRuleInput{ListenerArn: l.ListenerArn, Priority: new(int32(i + 1)), Conditions: tt.conds, Actions: fixed("200")})
			if tt.msg == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantErr(t, err, validationError, tt.msg)
		})
	}
}

func TestDescribeRules(t *testing.T) {
	f, l, tg := ruleFixture(t)
	var arns []string
	for _, p := range []int32{30, 5, 200, 1} {
		arns = append(arns, f.createRule(l.ListenerArn, p, pathIs(fmt.Sprintf("/%d", p)), forward(tg.TargetGroupArn)).RuleArn)
	}
	rules := f.rules(l.ListenerArn)
	if got := priorities(rules); !slices.Equal(got, []string{"1", "5", "30", "200", "default"}) {
		t.Fatalf("priorities %v", got)
	}
	if last := rules[len(rules)-1]; !*last.IsDefault || last.Actions[0].Type != "fixed-response" {
		t.Fatalf("default rule %+v", last)
	}
	var paged []string
	marker := ""
	for range 5 {
		out := must[*elbv2types.DescribeRulesOutput](t)(f.api.DescribeRules(f.ctx, &elbv2types.DescribeRulesInput{ListenerArn: l.ListenerArn, PageSize: new(int32(2)), Marker: marker}))
		paged = append(paged, priorities(out.Rules)...)
		if marker = out.NextMarker; marker == "" {
			break
		}
	}
	if !slices.Equal(paged, []string{"1", "5", "30", "200", "default"}) {
		t.Fatalf("paged %v", paged)
	}
	out := must[*elbv2types.DescribeRulesOutput](t)(f.api.DescribeRules(f.ctx, &elbv2types.DescribeRulesInput{RuleArns: []string{arns[2], arns[0]}}))
	if got := priorities(out.Rules); !slices.Equal(got, []string{"200", "30"}) {
		t.Fatalf("by ARN %v", got)
	}
	_, err := f.api.DescribeRules(f.ctx, &elbv2types.DescribeRulesInput{ListenerArn: l.ListenerArn, RuleArns: arns[:1]})
	wantErr(t, err, validationError, "not both")
	_, err = f.api.DescribeRules(f.ctx, &elbv2types.DescribeRulesInput{RuleArns: []string{arns[0] + "0"}})
	wantErr(t, err, code(elbv2types.NewRuleNotFoundException), "not found")
	_, err = f.api.DescribeRules(f.ctx, &elbv2types.DescribeRulesInput{RuleArns: []string{l.ListenerArn}})
	wantErr(t, err, validationError, "not a valid listener rule ARN")
}

func TestModifyAndDeleteRules(t *testing.T) {
	f, l, tg := ruleFixture(t)
	other := f.createTG("other")
	r := f.createRule(l.ListenerArn, 1, pathIs("/a"), forward(tg.TargetGroupArn))
	mod := must[*elbv2types.ModifyRuleOutput](t)(f.api.ModifyRule(f.ctx, &elbv2types.ModifyRuleInput{RuleArn: r.RuleArn, Conditions: pathIs("/b")})).Rules[0]
	if mod.Conditions[0].Values[0] != "/b" || mod.Actions[0].TargetGroupArn != tg.TargetGroupArn || mod.Priority != "1" {
		t.Fatalf("modified conditions %+v", mod)
	}
	mod = must[*elbv2types.ModifyRuleOutput](t)(f.api.ModifyRule(f.ctx, &elbv2types.ModifyRuleInput{RuleArn: r.RuleArn, Actions: forward(other.TargetGroupArn)})).Rules[0]
	if mod.Actions[0].TargetGroupArn != other.TargetGroupArn || mod.Conditions[0].Values[0] != "/b" {
		t.Fatalf("modified actions %+v", mod)
	}
	if len(f.describeTG(tg.TargetGroupArn).LoadBalancerArns) != 0 || len(f.describeTG(other.TargetGroupArn).LoadBalancerArns) != 1 {
		t.Fatal("target group use not moved")
	}
	_, err := f.api.ModifyRule(f.ctx, &elbv2types.ModifyRuleInput{RuleArn: r.RuleArn})
	wantErr(t, err, validationError, "Either conditions or actions")

	// The default rule takes actions, which are its listener's, and no conditions.
	def := f.rules(l.ListenerArn)[1]
	_, err = f.api.ModifyRule(f.ctx, &elbv2types.ModifyRuleInput{RuleArn: def.RuleArn, Conditions: pathIs("/x")})
	wantErr(t, err, code(elbv2types.NewOperationNotPermittedException), "default rule")
	must[*elbv2types.ModifyRuleOutput](t)(f.api.ModifyRule(f.ctx, &elbv2types.ModifyRuleInput{RuleArn: def.RuleArn, Actions: fixed("503")}))
	ls := must[*elbv2types.DescribeListenersOutput](t)(f.api.DescribeListeners(f.ctx, &elbv2types.DescribeListenersInput{ListenerArns: []string{l.ListenerArn}})).Listeners
	if ls[0].DefaultActions[0].FixedResponseConfig.StatusCode != "503" {
		t.Fatalf("listener default actions %+v", ls[0].DefaultActions[0])
	}

	_, err = f.api.DeleteRule(f.ctx, &elbv2types.DeleteRuleInput{RuleArn: def.RuleArn})
	wantErr(t, err, code(elbv2types.NewOperationNotPermittedException), "cannot be deleted")
	must[*elbv2types.DeleteRuleOutput](t)(f.api.DeleteRule(f.ctx, &elbv2types.DeleteRuleInput{RuleArn: r.RuleArn}))
	_, err = f.api.DeleteRule(f.ctx, &elbv2types.DeleteRuleInput{RuleArn: r.RuleArn})
	wantErr(t, err, code(elbv2types.NewRuleNotFoundException), "not found")
	if len(f.describeTG(other.TargetGroupArn).LoadBalancerArns) != 0 {
		t.Fatal("a deleted rule still uses its target group")
	}
}

func TestSetRulePriorities(t *testing.T) {
	f, l, _ := ruleFixture(t)
	a := f.createRule(l.ListenerArn, 1, pathIs("/a"), fixed("200"))
	b := f.createRule(l.ListenerArn, 2, pathIs("/b"), fixed("200"))
	c := f.createRule(l.ListenerArn, 3, pathIs("/c"), fixed("200"))
	out := must[*elbv2types.SetRulePrioritiesOutput](t)(f.api.SetRulePriorities(f.ctx, &elbv2types.SetRulePrioritiesInput{RulePriorities: []elbv2types.RulePriorityPair{
		{RuleArn: a.RuleArn, Priority: new(int32(2))}, {RuleArn: b.RuleArn, Priority: new(int32(1))},
	}}))
	if got := priorities(out.Rules); !slices.Equal(got, []string{"2", "1"}) {
		t.Fatalf("returned %v", got)
	}
	var paths []string
	for _, r := range f.rules(l.ListenerArn) {
		if !*r.IsDefault {
			paths = append(paths, r.Conditions[0].Values[0])
		}
	}
	if !slices.Equal(paths, []string{"/b", "/a", "/c"}) {
		t.Fatalf("after the swap %v", paths)
	}
	_, err := f.api.SetRulePriorities(f.ctx, &elbv2types.SetRulePrioritiesInput{RulePriorities: []elbv2types.RulePriorityPair{{RuleArn: a.RuleArn, Priority: new(int32(3))}}})
	wantErr(t, err, code(elbv2types.NewPriorityInUseException), "Priority '3'")
	_, err = f.api.SetRulePriorities(f.ctx, &elbv2types.SetRulePrioritiesInput{RulePriorities: []elbv2types.RulePriorityPair{
		{RuleArn: a.RuleArn, Priority: new(int32(9))}, {RuleArn: c.RuleArn, Priority: new(int32(9))},
	}})
	wantErr(t, err, validationError, "provided multiple times")
	_, err = f.api.SetRulePriorities(f.ctx, &elbv2types.SetRulePrioritiesInput{RulePriorities: []elbv2types.RulePriorityPair{{RuleArn: a.RuleArn}}})
	wantErr(t, err, validationError, "priority must be specified")
	def := f.rules(l.ListenerArn)[3]
	_, err = f.api.SetRulePriorities(f.ctx, &elbv2types.SetRulePrioritiesInput{RulePriorities: []elbv2types.RulePriorityPair{{RuleArn: def.RuleArn, Priority: new(int32(9))}}})
	wantErr(t, err, code(elbv2types.NewOperationNotPermittedException), "default rule")
	if got := priorities(f.rules(l.ListenerArn)); !slices.Equal(got, []string{"1", "2", "3", "default"}) {
		t.Fatalf("refused changes changed priorities: %v", got)
	}
}

func TestTooManyRules(t *testing.T) {
	f, l, _ := ruleFixture(t)
	lb := must[*elbv2types.DescribeLoadBalancersOutput](t)(f.api.DescribeLoadBalancers(f.ctx, &elbv2types.DescribeLoadBalancersInput{Names: []string{"web"}})).LoadBalancers[0]
	l2 := f.createListener(lb.LoadBalancerArn, 81, fixed("200"))
	for i := range 100 {
		target := l.ListenerArn
		if i%2 == 1 {
			target = l2.ListenerArn // the limit is per load balancer
		}
		f.createRule(target, int32(i+1), pathIs("/x"), fixed("200"))
	}
	_, err := f.api.CreateRule(f.ctx, &elbv2types.CreateRuleInput{ListenerArn: l.ListenerArn, Priority: new(int32(500)), Conditions: pathIs("/x"), Actions: fixed("200")})
	wantErr(t, err, code(elbv2types.NewTooManyRulesException), "100")
}
