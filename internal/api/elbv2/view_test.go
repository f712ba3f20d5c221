package elbv2_test

import (
	"slices"
	"testing"

	"github.com/berthdev/berth/internal/awsmodel/elbv2types"
	"github.com/berthdev/berth/internal/state"
	"github.com/berthdev/berth/internal/store"
)

// TestReadLoadBalancer checks what the data plane's config compiler reads
// of one load balancer: its listeners by port, their rules by priority
// with the default last, and only the target groups they forward to, with
// their targets.
func TestReadLoadBalancer(t *testing.T) {
	f := newFixture(t)
	lb := f.createLB("web")
	api, admin, spare := f.createTG("api"), f.createTG("admin"), f.createTG("spare")
	f.register(api.TargetGroupArn, elbv2types.TargetDescription{Id: "10.0.0.1"}, elbv2types.TargetDescription{Id: "10.0.0.2"})
	f.register(spare.TargetGroupArn, elbv2types.TargetDescription{Id: "10.0.0.3"})
	l80 := f.createListener(lb.LoadBalancerArn, 80, forward(api.TargetGroupArn))
	f.createListener(lb.LoadBalancerArn, 8, fixed("404"))
	f.createRule(l80.ListenerArn, 20, pathIs("/admin/*"), forward(admin.TargetGroupArn))
	f.createRule(l80.ListenerArn, 10, pathIs("/health"), fixed("200"))

	var v *state.LoadBalancerView
	err := f.st.View(f.ctx, func(tx store.ReadTx) error {
		var ok bool
		var err error
		v, ok, err = state.ReadLoadBalancer(tx, arns, "web", nil)
		if !ok && err == nil {
			t.Fatal("load balancer not found")
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if v.LoadBalancer.Address != "127.0.1.1" || len(v.Listeners) != 2 || *v.Listeners[0].Listener.Port != 8 || *v.Listeners[1].Listener.Port != 80 {
		t.Fatalf("view %+v", v)
	}
	var prios []string
	for _, r := range v.Listeners[1].Rules {
		prios = append(prios, r.Priority)
	}
	if !slices.Equal(prios, []string{"10", "20", "default"}) {
		t.Fatalf("rules %v", prios)
	}
	if len(v.TargetGroups) != 2 || v.TargetGroups[spare.TargetGroupArn] != nil {
		t.Fatalf("target groups %v", v.TargetGroups)
	}
	if g := v.TargetGroups[api.TargetGroupArn]; g == nil || len(g.Targets) != 2 || g.Targets[0].Address != "10.0.0.1" || g.Targets[0].Health.State != "initial" {
		t.Fatalf("api group %+v", g)
	}
	if g := v.TargetGroups[admin.TargetGroupArn]; g == nil || len(g.Targets) != 0 || g.TargetGroup.Attributes["deregistration_delay.timeout_seconds"] != "300" {
		t.Fatalf("admin group %+v", g)
	}
}
