package state_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/awsmodel/elbv2types"
	"github.com/berthdev/berth/internal/state"
	"github.com/berthdev/berth/internal/store"
	"github.com/berthdev/berth/internal/store/bolt"
)

func openStore(t *testing.T) store.Store {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "s.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestAllocateLoopback(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	alloc := func(name string) string {
		t.Helper()
		var addr string
		_, err := st.Update(ctx, func(tx store.Tx) error {
			var err error
			addr, err = state.AllocateLoopback(tx, name)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return addr
	}
	release := func(addr string) {
		t.Helper()
		if _, err := st.Update(ctx, func(tx store.Tx) error { return state.ReleaseLoopback(tx, addr) }); err != nil {
			t.Fatal(err)
		}
	}
	if a, b := alloc("a"), alloc("b"); a != "127.0.1.1" || b != "127.0.1.2" {
		t.Fatalf("first addresses %s %s", a, b)
	}
	// A freed address is not handed out again at once.
	release("127.0.1.1")
	if c := alloc("c"); c != "127.0.1.3" {
		t.Fatalf("after a release %s", c)
	}
	// Past .254 the next x; at the end of the space the counter wraps and
	// skips what is in use (127.0.1.2 and .3).
	if _, err := st.Update(ctx, func(tx store.Tx) error { return tx.Put(state.LBAddressSeqKey, []byte(fmt.Sprint(253))) }); err != nil {
		t.Fatal(err)
	}
	if d, e := alloc("d"), alloc("e"); d != "127.0.1.254" || e != "127.0.2.1" {
		t.Fatalf("across x %s %s", d, e)
	}
	if _, err := st.Update(ctx, func(tx store.Tx) error { return tx.Put(state.LBAddressSeqKey, []byte(fmt.Sprint(254*254-1))) }); err != nil {
		t.Fatal(err)
	}
	if f, g := alloc("f"), alloc("g"); f != "127.0.254.254" || g != "127.0.1.1" {
		t.Fatalf("wrapping %s %s", f, g)
	}
	if h := alloc("h"); h != "127.0.1.4" {
		t.Fatalf("in-use addresses handed out again: %s", h)
	}
}

func TestParseELB(t *testing.T) {
	a := state.ARNs{Region: "us-east-1", Account: "000000000000"}
	lb := a.LoadBalancer("web", "0123456789abcdef")
	l := a.Listener("web", "0123456789abcdef", "1111111111111111")
	r := a.ListenerRule("web", "0123456789abcdef", "1111111111111111", "2222222222222222")
	tg := a.TargetGroup("app", "3333333333333333")
	tests := []struct {
		arn  string
		want state.ELBResource
		ok   bool
	}{
		{lb, state.ELBResource{Type: state.ELBLoadBalancer, Name: "web", LoadBalancerID: "0123456789abcdef", ID: "0123456789abcdef"}, true},
		{l, state.ELBResource{Type: state.ELBListener, Name: "web", LoadBalancerID: "0123456789abcdef", ListenerID: "1111111111111111", ID: "1111111111111111"}, true},
		{r, state.ELBResource{Type: state.ELBRule, Name: "web", LoadBalancerID: "0123456789abcdef", ListenerID: "1111111111111111", ID: "2222222222222222"}, true},
		{tg, state.ELBResource{Type: state.ELBTargetGroup, Name: "app", ID: "3333333333333333"}, true},
		{"arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/net/web/0123456789abcdef", state.ELBResource{}, false},
		{"arn:aws:elasticloadbalancing:eu-west-1:000000000000:targetgroup/app/3333333333333333", state.ELBResource{}, false},
		{lb + "/x", state.ELBResource{}, false},
		{"arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup//3333333333333333", state.ELBResource{}, false},
	}
	for _, tt := range tests {
		got, ok := a.ParseELB(tt.arn)
		if ok != tt.ok || got != tt.want {
			t.Errorf("ParseELB(%s) = %+v %v, want %+v %v", tt.arn, got, ok, tt.want, tt.ok)
		}
	}
	if lb != "arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/web/0123456789abcdef" {
		t.Errorf("load balancer ARN %s", lb)
	}
	for arn, want := range map[string]string{
		"arn:aws:acm:us-east-1:000000000000:certificate/web.example.com": "web.example.com",
		"arn:aws:acm:us-east-1:000000000000:certificate/../secret":       "",
		"arn:aws:acm:us-east-1:000000000000:certificate/a/b":             "",
		"arn:aws:acm:us-east-1:000000000000:certificate/..":              "",
		"arn:aws:acm:us-west-2:000000000000:certificate/web":             "",
	} {
		if got, ok := a.CertificateName(arn); got != want || ok != (want != "") {
			t.Errorf("CertificateName(%s) = %q %v", arn, got, ok)
		}
	}
	if crt, key := state.CertificateFiles("/data/certificates", "web"); crt != "/data/certificates/web.crt" || key != "/data/certificates/web.key" {
		t.Errorf("certificate files %s %s", crt, key)
	}
}

// TestTargetStateMachine checks who may move a target where.
func TestTargetStateMachine(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	update := func(fn func(tx store.Tx) error) {
		t.Helper()
		if _, err := st.Update(ctx, fn); err != nil {
			t.Fatal(err)
		}
	}
	healthOf := func(id string, port int32) elbv2types.TargetHealthStateEnum {
		t.Helper()
		var h elbv2types.TargetHealthStateEnum
		err := st.View(ctx, func(tx store.ReadTx) error {
			tt, ok, err := state.GetTarget(tx, "tg", id, port)
			if ok {
				h = tt.Health.State
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	target := func(id string) *state.Target {
		return &state.Target{Target: elbv2types.TargetDescription{Id: id, Port: new(int32(80))}, Address: id}
	}
	update(func(tx store.Tx) error {
		for _, id := range []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"} {
			if _, err := state.RegisterTarget(tx, "tg", target(id), now); err != nil {
				return err
			}
		}
		return nil
	})
	if h := healthOf("10.0.0.1", 80); h != "unused" {
		t.Fatalf("unused group's target is %s", h)
	}
	update(func(tx store.Tx) error {
		if err := tx.Put(state.TGRefKey("tg", "rule"), []byte("lb")); err != nil {
			return err
		}
		return state.SetTargetsInUse(tx, "tg", true)
	})
	update(func(tx store.Tx) error {
		if ok, err := state.SetTargetHealth(tx, "tg", "10.0.0.1", 80, elbv2types.TargetHealth{State: "healthy"}); !ok || err != nil {
			return fmt.Errorf("health not set: %v %v", ok, err)
		}
		if ok, err := state.SetTargetHealth(tx, "tg", "10.0.0.1", 80, elbv2types.TargetHealth{State: "draining"}); ok || err != nil {
			return fmt.Errorf("the health checker set draining: %v %v", ok, err)
		}
		if ok, err := state.SetTargetHealth(tx, "tg", "10.0.0.9", 80, elbv2types.TargetHealth{State: "healthy"}); ok || err != nil {
			return fmt.Errorf("an unknown target got health: %v %v", ok, err)
		}
		for i, id := range []string{"10.0.0.2", "10.0.0.3"} {
			if _, err := state.DeregisterTarget(tx, "tg", id, 80, time.Duration(i+1)*time.Minute, now); err != nil {
				return err
			}
		}
		return nil
	})
	if a, b := healthOf("10.0.0.1", 80), healthOf("10.0.0.2", 80); a != "healthy" || b != "draining" {
		t.Fatalf("states %s %s", a, b)
	}
	var removed int
	var next time.Time
	update(func(tx store.Tx) error {
		var err error
		removed, next, err = state.ReapDrainedTargets(tx, now.Add(time.Minute), 10)
		return err
	})
	if removed != 1 || !next.Equal(now.Add(2*time.Minute)) || healthOf("10.0.0.2", 80) != "" || healthOf("10.0.0.3", 80) != "draining" {
		t.Fatalf("reaped %d, next %v", removed, next)
	}
	// The data plane ends a drain early when nothing is in flight.
	update(func(tx store.Tx) error {
		ok, err := state.RemoveTarget(tx, "tg", "10.0.0.3", 80)
		if !ok {
			return fmt.Errorf("draining target not found")
		}
		return err
	})
	update(func(tx store.Tx) error {
		var err error
		removed, next, err = state.ReapDrainedTargets(tx, now.Add(time.Hour), 10)
		return err
	})
	if removed != 0 || !next.IsZero() {
		t.Fatalf("index entry left behind: %d %v", removed, next)
	}
}

// TestTargetCache: a read through the cache decodes only the targets whose
// records changed since the read before, returns what ListTargets returns,
// and lists no target that is gone.
func TestTargetCache(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	put := func(id string, port int32, addr string) {
		t.Helper()
		if _, err := st.Update(ctx, func(tx store.Tx) error {
			return state.Put(tx, state.TargetKey("tg1", id, port), &state.Target{
				TargetGroupArn: "arn:tg1",
				Target:         elbv2types.TargetDescription{Id: id, Port: &port},
				Address:        addr,
			})
		}); err != nil {
			t.Fatal(err)
		}
	}
	put("10.0.0.1", 80, "10.0.0.1")
	put("10.0.0.2", 80, "10.0.0.2")
	var cache state.TargetCache
	read := func() (cached, plain []*state.Target) {
		t.Helper()
		if err := st.View(ctx, func(tx store.ReadTx) error {
			cache.Begin()
			var err error
			if cached, err = cache.List(tx, "tg1"); err != nil {
				return err
			}
			plain, err = state.ListTargets(tx, "tg1")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if len(cached) != len(plain) {
			t.Fatalf("cache lists %d targets, ListTargets %d", len(cached), len(plain))
		}
		for i := range plain {
			if cached[i].Target.Id != plain[i].Target.Id || cached[i].Address != plain[i].Address {
				t.Fatalf("target %d: cache has %+v, ListTargets %+v", i, cached[i], plain[i])
			}
		}
		return cached, plain
	}
	first, _ := read()
	second, _ := read()
	if first[0] != second[0] || first[1] != second[1] {
		t.Fatal("unchanged targets were decoded again")
	}
	put("10.0.0.2", 80, "10.0.0.9") // a changed record
	third, _ := read()
	if third[0] != first[0] {
		t.Fatal("an unchanged target was decoded again")
	}
	if third[1] == first[1] || third[1].Address != "10.0.0.9" {
		t.Fatalf("a changed target was not decoded again: %+v", third[1])
	}
	if _, err := st.Update(ctx, func(tx store.Tx) error {
		return tx.Delete(state.TargetKey("tg1", "10.0.0.1", 80))
	}); err != nil {
		t.Fatal(err)
	}
	if fourth, _ := read(); len(fourth) != 1 || fourth[0] != third[1] {
		t.Fatalf("after a delete the cache lists %d targets", len(fourth))
	}
}

// TestStickinessKey: the first call stores its candidate, later ones get
// it back, and a stored key too short to use is replaced.
func TestStickinessKey(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	key := func(candidate string) string {
		t.Helper()
		var got []byte
		if _, err := st.Update(ctx, func(tx store.Tx) error {
			var err error
			got, err = state.StickinessKey(tx, []byte(candidate))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return string(got)
	}
	first := "0123456789abcdef0123456789abcdef"
	if got := key(first); got != first {
		t.Fatalf("first call: %q, want the candidate", got)
	}
	if got := key("another candidate, 32 bytes long"); got != first {
		t.Fatalf("second call: %q, want the stored key", got)
	}
	if _, err := st.Update(ctx, func(tx store.Tx) error { return tx.Put(state.StickinessKeyKey, nil) }); err != nil {
		t.Fatal(err)
	}
	if got := key("a fresh candidate, 32 bytes long"); got != "a fresh candidate, 32 bytes long" {
		t.Fatalf("after an empty key was stored: %q, want the candidate", got)
	}
}
