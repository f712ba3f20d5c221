package lb

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the balancer's Prometheus metrics; a nil *metrics records
// nothing. The request path uses handles resolved when a snapshot is
// applied (listenerMetrics, pairMetrics), never a label lookup.
type metrics struct {
	requests   *prometheus.CounterVec
	targetTime *prometheus.HistogramVec
	healthy    *prometheus.GaugeVec
	unhealthy  *prometheus.GaugeVec
	conns      *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_lb_requests_total",
			Help: "Requests answered by the load balancers, by load balancer, listener, target group (\"\" when no group was chosen), origin of the answer (elb: the load balancer itself, target: a target) and status class (2xx ...).",
		}, []string{"load_balancer", "listener", "target_group", "origin", "code"}),
		targetTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "berth_lb_target_response_seconds",
			Help:    "Time from sending a request to a target to receiving its response headers, by load balancer and target group.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"load_balancer", "target_group"}),
		healthy: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "berth_lb_healthy_targets",
			Help: "Targets of a target group that are healthy (or unavailable: health checks disabled) and not draining.",
		}, []string{"target_group"}),
		unhealthy: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "berth_lb_unhealthy_targets",
			Help: "Targets of a target group that are unhealthy and not draining.",
		}, []string{"target_group"}),
		conns: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "berth_lb_active_connections",
			Help: "Client connections open to a listener.",
		}, []string{"load_balancer", "listener"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.targetTime, m.healthy, m.unhealthy, m.conns} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// classes are the values of the code label, indexed by status/100.
var classes = [6]string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"}

func classOf(status int) int {
	if c := status / 100; c >= 1 && c <= 5 {
		return c
	}
	return 0
}

// counters are request counters by status class.
type counters [6]prometheus.Counter

func (m *metrics) counters(lb, listener, tg, origin string) *counters {
	var c counters
	for i, class := range classes {
		c[i] = m.requests.WithLabelValues(lb, listener, tg, origin, class)
	}
	return &c
}

func (c *counters) inc(status int) {
	if c != nil {
		c[classOf(status)].Inc()
	}
}

// listenerMetrics are the handles of one listener.
type listenerMetrics struct {
	conns prometheus.Gauge
	// own counts answers given without a target group: redirects, fixed
	// responses, unmatched requests, rejected requests.
	own *counters
}

func (m *metrics) listener(lb, id string) *listenerMetrics {
	if m == nil {
		return nil
	}
	return &listenerMetrics{conns: m.conns.WithLabelValues(lb, id), own: m.counters(lb, id, "", "elb")}
}

func (m *listenerMetrics) answered(status int) {
	if m != nil {
		m.own.inc(status)
	}
}

func (m *listenerMetrics) connOpened() {
	if m != nil {
		m.conns.Inc()
	}
}

func (m *listenerMetrics) connClosed() {
	if m != nil {
		m.conns.Dec()
	}
}

// pairMetrics are the handles of one target group behind one listener.
type pairMetrics struct {
	elb, target *counters
	latency     prometheus.Observer
}

func (m *metrics) pair(lb, listener, tg string) *pairMetrics {
	if m == nil {
		return nil
	}
	return &pairMetrics{
		elb:     m.counters(lb, listener, tg, "elb"),
		target:  m.counters(lb, listener, tg, "target"),
		latency: m.targetTime.WithLabelValues(lb, tg),
	}
}

// byTarget counts a response from a target that took seconds.
func (m *pairMetrics) byTarget(status int, seconds float64) {
	if m != nil {
		m.target.inc(status)
		m.latency.Observe(seconds)
	}
}

// byELB counts an answer the load balancer gave for the group.
func (m *pairMetrics) byELB(status int) {
	if m != nil {
		m.elb.inc(status)
	}
}

// groupMetrics are the handles of one target group.
type groupMetrics struct {
	healthy, unhealthy prometheus.Gauge
}

func (m *metrics) group(id string) *groupMetrics {
	if m == nil {
		return nil
	}
	return &groupMetrics{healthy: m.healthy.WithLabelValues(id), unhealthy: m.unhealthy.WithLabelValues(id)}
}

func (m *groupMetrics) setCounts(healthy, unhealthy int) {
	if m != nil {
		m.healthy.Set(float64(healthy))
		m.unhealthy.Set(float64(unhealthy))
	}
}

// forgetListener drops the series of a removed listener.
func (m *metrics) forgetListener(lb, id string) {
	if m == nil {
		return
	}
	m.requests.DeletePartialMatch(prometheus.Labels{"load_balancer": lb, "listener": id})
	m.conns.DeleteLabelValues(lb, id)
}

// forgetGroup drops the series of a removed target group.
func (m *metrics) forgetGroup(id string) {
	if m == nil {
		return
	}
	m.requests.DeletePartialMatch(prometheus.Labels{"target_group": id})
	m.targetTime.DeletePartialMatch(prometheus.Labels{"target_group": id})
	m.healthy.DeleteLabelValues(id)
	m.unhealthy.DeleteLabelValues(id)
}
