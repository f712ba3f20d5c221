package lb

import (
	"context"
	"math"
	"net/http"
	"sync"
	"testing"
	"time"
)

// counts sends n requests and counts the answers by body.
func counts(t *testing.T, url string, n int) map[string]int {
	t.Helper()
	c := newClient()
	out := map[string]int{}
	for range n {
		code, body, _ := get(t, c, url)
		if code != 200 {
			body = http.StatusText(code)
		}
		out[body]++
	}
	return out
}

func TestRoundRobin(t *testing.T) {
	a, bb, c := newBackend(t, "a"), newBackend(t, "b"), newBackend(t, "c")
	b := newTestBalancer(t, Config{})
	apply(t, b, oneListener(targetsOf(a.addr(), bb.addr(), c.addr())...))
	got := counts(t, baseURL(t, b, "lb", "l"), 30)
	if got["a"] != 10 || got["b"] != 10 || got["c"] != 10 {
		t.Errorf("30 requests over 3 targets: %v", got)
	}
}

func TestLeastOutstandingRequests(t *testing.T) {
	release := make(chan struct{})
	busy := make(chan string, 1)
	handler := func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/slow" {
				busy <- name
				<-release
			}
			_, _ = w.Write([]byte(name))
		}
	}
	a := newBackendFunc(t, handler("a"))
	bb := newBackendFunc(t, handler("b"))
	b := newTestBalancer(t, Config{})
	snap := oneListener(targetsOf(a.Listener.Addr().String(), bb.Listener.Addr().String())...)
	snap.TargetGroups[0].Algorithm = LeastOutstandingRequests
	apply(t, b, snap)
	url := baseURL(t, b, "lb", "l")

	var wg sync.WaitGroup
	wg.Go(func() { get(t, newClient(), url+"/slow") })
	slow := <-busy
	got := counts(t, url, 10)
	close(release)
	wg.Wait()
	other := map[string]string{"a": "b", "b": "a"}[slow]
	if got[other] != 10 {
		t.Errorf("with %s busy, 10 requests went %v", slow, got)
	}
}

func TestWeightedForward(t *testing.T) {
	g1, g2, g3 := &group{id: "1"}, &group{id: "2"}, &group{id: "3"}
	a := &action{kind: actForward, groups: []weighted{{g: g1, weight: 1}, {g: g2, weight: 3}, {g: g3, weight: 0}}, total: 4}
	n := map[string]int{}
	const picks = 100_000
	for range picks {
		n[a.pickGroup().g.id]++
	}
	if n["3"] != 0 {
		t.Errorf("weight 0 got %d requests", n["3"])
	}
	if share := float64(n["2"]) / picks; math.Abs(share-0.75) > 0.02 {
		t.Errorf("weight 3 of 4 got %.3f of the requests", share)
	}
	zero := &action{kind: actForward, groups: []weighted{{g: g1}, {g: g2}}}
	if zero.pickGroup() != nil {
		t.Error("all weights 0 picked a group")
	}

	// Through a listener: two groups, one weighted 0.
	ba, bz := newBackend(t, "a"), newBackend(t, "zero")
	b := newTestBalancer(t, Config{})
	apply(t, b, Snapshot{
		LoadBalancers: []LoadBalancer{{ID: "lb", Address: "127.0.0.1", Listeners: []Listener{{ID: "l", Protocol: ProtocolHTTP,
			Rules: []Rule{{IsDefault: true, Action: Action{Type: ActionForward, Forward: []WeightedGroup{
				{TargetGroupID: "a", Weight: 10}, {TargetGroupID: "z", Weight: 0}}}}}}}}},
		TargetGroups: []TargetGroup{
			{ID: "a", HealthCheck: HealthCheck{Disabled: true}, Targets: targetsOf(ba.addr())},
			{ID: "z", HealthCheck: HealthCheck{Disabled: true}, Targets: targetsOf(bz.addr())},
		},
	})
	if got := counts(t, baseURL(t, b, "lb", "l"), 20); got["a"] != 20 {
		t.Errorf("weights 10/0: %v", got)
	}
}

// setHealth drives a target's state machine to state, as its checks
// would.
func setHealth(t *testing.T, b *Balancer, groupID, targetID string, state State) {
	t.Helper()
	b.mu.Lock()
	g := b.groups[groupID]
	b.mu.Unlock()
	g.mu.Lock()
	tg, hc := g.byID[targetID], g.hc
	g.mu.Unlock()
	res := probeResult{code: 200}
	if state == StateUnhealthy {
		res = probeResult{code: 500}
	}
	for range max(hc.HealthyThreshold, hc.UnhealthyThreshold) {
		b.observe(g, tg, hc, res)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if tg.health.state != state {
		t.Fatalf("%s is %s, want %s", targetID, tg.health.state, state)
	}
}

func TestFailOpen(t *testing.T) {
	a, bb := newBackend(t, "a"), newBackend(t, "b")
	b := newTestBalancer(t, Config{})
	snap := oneListener(targetsOf(a.addr(), bb.addr())...)
	snap.TargetGroups[0].HealthCheck = HealthCheck{} // enabled, but Run does not run: nothing checks
	apply(t, b, snap)
	url := baseURL(t, b, "lb", "l")

	// Both initial: no healthy target, so both receive requests.
	if got := counts(t, url, 10); got["a"] != 5 || got["b"] != 5 {
		t.Errorf("both initial: %v", got)
	}
	// One healthy: the initial one gets nothing.
	setHealth(t, b, "tg", a.addr(), StateHealthy)
	if got := counts(t, url, 10); got["a"] != 10 {
		t.Errorf("a healthy, b initial: %v", got)
	}
	// One healthy, one unhealthy.
	setHealth(t, b, "tg", bb.addr(), StateUnhealthy)
	if got := counts(t, url, 10); got["a"] != 10 {
		t.Errorf("a healthy, b unhealthy: %v", got)
	}
	// Both unhealthy: fail open.
	setHealth(t, b, "tg", a.addr(), StateUnhealthy)
	if got := counts(t, url, 10); got["a"] != 5 || got["b"] != 5 {
		t.Errorf("both unhealthy: %v", got)
	}
	// Draining targets never receive requests, even failing open.
	snap.TargetGroups[0].Targets[1].Draining = true
	snap.TargetGroups[0].Targets[1].DrainUntil = time.Now().Add(time.Hour)
	apply(t, b, snap)
	if got := counts(t, url, 10); got["a"] != 10 {
		t.Errorf("a unhealthy, b draining: %v", got)
	}
	snap.TargetGroups[0].Targets[0].Draining = true
	apply(t, b, snap)
	if got := counts(t, url, 3); got["Service Unavailable"] != 3 {
		t.Errorf("every target draining: %v", got)
	}
}

func TestSlowStart(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	clock := func() time.Time { return now }
	b := newTestBalancer(t, Config{Now: clock})
	snap := Snapshot{TargetGroups: []TargetGroup{{ID: "tg", SlowStart: 100 * time.Second, Targets: targetsOf("10.0.0.1:80", "10.0.0.2:80")}}}
	if err := b.Apply(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
	setHealth(t, b, "tg", "10.0.0.1:80", StateHealthy)
	// The second target becomes healthy while the first is: slow start.
	setHealth(t, b, "tg", "10.0.0.2:80", StateHealthy)
	g := b.groups["tg"]
	share := func() float64 {
		n := 0
		const picks = 20_000
		for range picks {
			if g.pick(clock).id == "10.0.0.2:80" {
				n++
			}
		}
		return float64(n) / picks
	}
	// Round robin alternates; the new target takes its turn with the
	// probability of the slow start done, so its share is done/2.
	for _, tc := range []struct {
		at   time.Duration
		want float64
	}{{0, 0}, {20 * time.Second, 0.1}, {50 * time.Second, 0.25}, {100 * time.Second, 0.5}, {200 * time.Second, 0.5}} {
		now = time.Unix(1_000_000, 0).Add(tc.at)
		if got := share(); math.Abs(got-tc.want) > 0.03 {
			t.Errorf("after %v: share %.3f, want %.2f", tc.at, got, tc.want)
		}
	}
	// The first target became healthy alone: no slow start for it.
	if u := g.byID["10.0.0.1:80"].slowUntil.Load(); u != 0 {
		t.Errorf("first healthy target in slow start until %v", time.Unix(0, u))
	}
}
