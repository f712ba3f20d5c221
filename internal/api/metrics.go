package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/berthdev/berth/internal/awsmodel"
)

// MetricsPath serves the Prometheus exposition of the control plane.
const MetricsPath = "/_berth/metrics"

// Metrics are the front door's Prometheus metrics.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	handler  http.Handler
}

// NewMetrics registers the front door's metrics with reg and serves
// everything gathered from it at MetricsPath.
func NewMetrics(reg *prometheus.Registry) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_api_requests_total",
			Help: "AWS API requests answered, by service, operation and result code (OK or the AWS error code).",
		}, []string{"service", "operation", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "berth_api_request_duration_seconds",
			Help:    "Time to answer an AWS API request, from routing to the reply, by service and operation.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"service", "operation"}),
		handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

// observe records one answered request. Operations that are not in the
// model are counted as "unknown" so clients cannot grow the label set.
func (m *Metrics) observe(service, op string, err error, code string, took time.Duration) {
	if m == nil {
		return
	}
	var unk *awsmodel.UnknownOperationError
	if errors.As(err, &unk) {
		op = "unknown"
	}
	if err == nil {
		code = "OK"
	}
	m.requests.WithLabelValues(service, op, code).Inc()
	m.duration.WithLabelValues(service, op).Observe(took.Seconds())
}
