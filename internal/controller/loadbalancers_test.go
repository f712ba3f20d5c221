package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/awsmodel"
	"github.com/berthdev/berth/internal/awsmodel/elbv2types"
	"github.com/berthdev/berth/internal/lb"
	"github.com/berthdev/berth/internal/state"
	"github.com/berthdev/berth/internal/store"
	"github.com/berthdev/berth/internal/store/bolt"
)

// TestConfigChangedIgnoresObservations: health verdicts and load balancer
// states, the load balancer's own writes, do not rebuild the
// configuration; registrations, draining, other records and deletes do.
func TestConfigChangedIgnoresObservations(t *testing.T) {
	c := &LoadBalancers{}
	put := func(key string, v any) store.Event {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return store.Event{Type: store.EventPut, KV: store.KV{Key: key, Value: b}}
	}
	tkey := state.TargetKey("tg1", "10.0.0.5", 8080)
	target := state.Target{TargetGroupArn: "arn:tg1", Target: elbv2types.TargetDescription{Id: "10.0.0.5", Port: new(int32(8080))}, Address: "10.0.0.5",
		Health: elbv2types.TargetHealth{State: elbv2types.TargetHealthStateEnumInitial}}
	lkey := state.LoadBalancerKey("web")
	lbRec := state.LoadBalancer{LoadBalancer: elbv2types.LoadBalancer{LoadBalancerArn: "arn:lb"}, Address: "127.0.1.1"}

	steps := []struct {
		name string
		ev   func() store.Event
		want bool
	}{
		{"a new target", func() store.Event { return put(tkey, target) }, true},
		{"its health becomes healthy", func() store.Event {
			target.Health = elbv2types.TargetHealth{State: elbv2types.TargetHealthStateEnumHealthy}
			return put(tkey, target)
		}, false},
		{"its health becomes unhealthy", func() store.Event {
			target.Health = elbv2types.TargetHealth{State: elbv2types.TargetHealthStateEnumUnhealthy, Reason: "Target.FailedHealthChecks"}
			return put(tkey, target)
		}, false},
		{"it starts draining", func() store.Event {
			target.DrainUntil = awsmodel.NewTime(time.Unix(2000000000, 0))
			return put(tkey, target)
		}, true},
		{"a new load balancer", func() store.Event { return put(lkey, lbRec) }, true},
		{"its state becomes active", func() store.Event {
			lbRec.State = &elbv2types.LoadBalancerState{Code: elbv2types.LoadBalancerStateEnumActive}
			return put(lkey, lbRec)
		}, false},
		{"its attributes change", func() store.Event {
			lbRec.Attributes = map[string]string{"idle_timeout.timeout_seconds": "5"}
			return put(lkey, lbRec)
		}, true},
		{"a listener", func() store.Event { return put(state.ListenersPrefix+"lb/x", map[string]string{"a": "b"}) }, true},
		{"an undecodable target", func() store.Event {
			return store.Event{Type: store.EventPut, KV: store.KV{Key: tkey, Value: []byte("{")}}
		}, true},
		{"the target removed", func() store.Event { return store.Event{Type: store.EventDelete, KV: store.KV{Key: tkey}} }, true},
		{"registered again, as before", func() store.Event { return put(tkey, target) }, true},
	}
	for _, s := range steps {
		if got := c.configChanged(s.ev()); got != s.want {
			t.Fatalf("%s: configChanged = %v, want %v", s.name, got, s.want)
		}
	}
}

// lbFixture is a store holding one load balancer whose HTTP listener
// forwards to one target group of n ip targets (tgID), and a balancer.
func lbFixture(tb testing.TB, n int) (store.Store, state.ARNs, *lb.Balancer) {
	tb.Helper()
	st, err := bolt.Open(filepath.Join(tb.TempDir(), "s.db"), bolt.Options{NoSync: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = st.Close() })
	arns := state.ARNs{Region: "us-east-1", Account: "000000000000"}
	tgArn := arns.TargetGroup("tg", tgID)
	larn := arns.Listener("web", "00000000000000bb", "00000000000000cc")
	now := time.Now()
	_, err = st.Update(context.Background(), func(tx store.Tx) error {
		puts := map[string]any{
			state.LoadBalancerKey("web"): &state.LoadBalancer{LoadBalancer: elbv2types.LoadBalancer{LoadBalancerArn: arns.LoadBalancer("web", "00000000000000bb")},
				ID: "00000000000000bb", Address: "127.0.0.1"},
			state.ListenerKey("00000000000000bb", "00000000000000cc"): &state.Listener{Listener: elbv2types.Listener{ListenerArn: larn, Protocol: elbv2types.ProtocolEnumHttp, Port: new(int32(0))},
				ID: "00000000000000cc", LoadBalancerID: "00000000000000bb"},
			state.RuleKey("00000000000000cc", "00000000000000dd"): &state.Rule{Rule: elbv2types.Rule{RuleArn: "rule", Priority: "default", IsDefault: new(true),
				Actions: []elbv2types.Action{{Type: elbv2types.ActionTypeEnumForward, TargetGroupArn: tgArn}}}, ID: "00000000000000dd", ListenerArn: larn},
			state.TargetGroupKey("tg"): &state.TargetGroup{TargetGroup: elbv2types.TargetGroup{TargetGroupArn: tgArn, TargetGroupName: "tg",
				Port: new(int32(80)), Protocol: elbv2types.ProtocolEnumHttp, HealthCheckEnabled: new(false)}, ID: tgID},
		}
		for k, v := range puts {
			if err := state.Put(tx, k, v); err != nil {
				return err
			}
		}
		for i := range n {
			ip := fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
			rec := &state.Target{TargetGroupArn: tgArn, Address: ip, Target: elbv2types.TargetDescription{Id: ip, Port: new(int32(8080))}}
			if _, err := state.RegisterTarget(tx, tgID, rec, now); err != nil {
				return err
			}
		}
		return state.SetTargetsInUse(tx, tgID, true) // the listener forwards to it: initial
	})
	if err != nil {
		tb.Fatal(err)
	}
	bal, err := lb.New(lb.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = bal.Close() })
	return st, arns, bal
}

const tgID = "00000000000000aa"

// BenchmarkLoadBalancersSync is the cost of one rebuild of the data plane's
// configuration (read every load balancer with its targets, compile,
// apply), what each health verdict cost before configChanged. The targets
// do not change between rebuilds, as few do between two real ones, so the
// decoded targets come from the controller's TargetCache:
//
//	go test -run '^$' -bench BenchmarkLoadBalancersSync ./internal/controller/
func BenchmarkLoadBalancersSync(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("targets=%d", n), func(b *testing.B) {
			st, arns, bal := lbFixture(b, n)
			c := &LoadBalancers{Store: st, ARNs: arns, Balancer: bal}
			log := slog.New(slog.DiscardHandler)
			b.ReportAllocs()
			for b.Loop() {
				if err := c.sync(context.Background(), log); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestRunRebuildsOnlyOnConfiguration: the running controller does not
// rebuild for health writes, and does for a registration.
func TestRunRebuildsOnlyOnConfiguration(t *testing.T) {
	st, arns, bal := lbFixture(t, 2)
	c := &LoadBalancers{Store: st, ARNs: arns, Balancer: bal}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitRebuilds := func(what string, want int64) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for c.rebuilds.Load() < want {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d rebuilds, want %d", what, c.rebuilds.Load(), want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	update := func(fn func(tx store.Tx) error) {
		t.Helper()
		if _, err := st.Update(ctx, fn); err != nil {
			t.Fatal(err)
		}
	}
	health := func(i int, s elbv2types.TargetHealthStateEnum) {
		t.Helper()
		update(func(tx store.Tx) error {
			changed, err := state.SetTargetHealth(tx, tgID, fmt.Sprintf("10.0.0.%d", i%2), 8080, elbv2types.TargetHealth{State: s})
			if err == nil && !changed {
				t.Errorf("health %s of target %d was not written", s, i%2)
			}
			return err
		})
	}
	waitRebuilds("start", 1)
	// The load balancer state the first rebuild wrote, then health
	// verdicts, settle: at most one more rebuild for the records first
	// seen, then none.
	time.Sleep(200 * time.Millisecond)
	base := c.rebuilds.Load()
	for i, s := range []elbv2types.TargetHealthStateEnum{"healthy", "healthy", "unhealthy", "unhealthy"} {
		health(i, s)
	}
	time.Sleep(200 * time.Millisecond)
	first := c.rebuilds.Load()
	for i, s := range []elbv2types.TargetHealthStateEnum{"healthy", "healthy", "unhealthy", "unhealthy"} {
		health(i, s)
	}
	time.Sleep(200 * time.Millisecond)
	if got := c.rebuilds.Load(); got != first || first > base+1 {
		t.Fatalf("health writes rebuilt: %d rebuilds before them, %d after the first batch, %d after the second", base, first, got)
	}
	update(func(tx store.Tx) error {
		rec := &state.Target{TargetGroupArn: arns.TargetGroup("tg", tgID), Address: "10.0.9.9", Target: elbv2types.TargetDescription{Id: "10.0.9.9", Port: new(int32(8080))}}
		_, err := state.RegisterTarget(tx, tgID, rec, time.Now())
		return err
	})
	waitRebuilds("a registration", first+1)
}

func TestSettleAfterFollowsRebuildCost(t *testing.T) {
	for _, c := range []struct{ took, want time.Duration }{
		{0, 20 * time.Millisecond},
		{5 * time.Millisecond, 20 * time.Millisecond},
		{80 * time.Millisecond, 160 * time.Millisecond},
		{5 * time.Second, 2 * time.Second},
	} {
		if got := settleAfter(c.took); got != c.want {
			t.Errorf("settleAfter(%v) = %v, want %v", c.took, got, c.want)
		}
	}
}
