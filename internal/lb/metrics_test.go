package lb

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// series gathers the non-zero series of a metric, keyed by their labels
// as "name=value,..." in label order.
func series(t *testing.T, reg *prometheus.Registry, name string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue() + float64(m.GetHistogram().GetSampleCount())
			if v != 0 {
				out[strings.Join(labels, ",")] = v
			}
		}
	}
	return out
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	be := newBackend(t, "a")
	b := newTestBalancer(t, Config{Metrics: reg})
	snap := oneListener(targetsOf(be.addr(), freeAddr(t))...)
	snap.LoadBalancers[0].Listeners[0].Rules = append(snap.LoadBalancers[0].Listeners[0].Rules,
		Rule{Priority: 1, Conditions: []Condition{on(FieldPathPattern, "/fixed")}, Action: fixed("f")})
	apply(t, b, snap)
	url := baseURL(t, b, "lb", "l")
	c := newClient()
	for range 4 {
		get(t, c, url) // two reach the backend, two the closed port (502)
	}
	get(t, c, url+"/fixed")

	for name, want := range map[string]map[string]float64{
		"berth_lb_requests_total": {
			"code=2xx,listener=l,load_balancer=lb,origin=elb,target_group=":      1,
			"code=2xx,listener=l,load_balancer=lb,origin=target,target_group=tg": 2,
			"code=5xx,listener=l,load_balancer=lb,origin=elb,target_group=tg":    2,
		},
		"berth_lb_target_response_seconds": {"load_balancer=lb,target_group=tg": 2},
		"berth_lb_healthy_targets":         {"target_group=tg": 2},
		"berth_lb_active_connections":      {"listener=l,load_balancer=lb": 1},
	} {
		got := series(t, reg, name)
		if len(got) != len(want) {
			t.Errorf("%s = %v, want %v", name, got, want)
			continue
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s{%s} = %v, want %v", name, k, got[k], v)
			}
		}
	}

	// Removing the listener and the group drops their series.
	apply(t, b, Snapshot{})
	for _, name := range []string{"berth_lb_requests_total", "berth_lb_healthy_targets", "berth_lb_target_response_seconds"} {
		if got := series(t, reg, name); len(got) != 0 {
			t.Errorf("%s after removal: %v", name, got)
		}
	}
}
