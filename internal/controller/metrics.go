package controller

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ServiceMetrics are the service scheduler's Prometheus metrics.
type ServiceMetrics struct {
	passes      prometheus.Counter
	passSeconds prometheus.Histogram
	started     prometheus.Counter
	stopped     *prometheus.CounterVec
	deployments *prometheus.CounterVec
	queued      prometheus.GaugeFunc
}

// NewServiceMetrics registers the service scheduler's metrics with reg;
// queued reports the services waiting in its work queue.
func NewServiceMetrics(reg prometheus.Registerer, s *Services) *ServiceMetrics {
	m := &ServiceMetrics{
		passes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "berth_service_passes_total",
			Help: "Reconcile passes of the service scheduler (one store transaction each).",
		}),
		passSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "berth_service_pass_duration_seconds",
			Help:    "Time of one reconcile pass over one service, commit included.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		started: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "berth_service_tasks_started_total",
			Help: "Tasks the service scheduler placed and started.",
		}),
		stopped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_service_tasks_stopped_total",
			Help: "Tasks the service scheduler stopped, by why: scaling (scale-in, rollouts, draining) or unhealthy.",
		}, []string{"reason"}),
		deployments: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_service_deployments_finished_total",
			Help: "Service deployments that ended, by their final ServiceDeployment status.",
		}, []string{"status"}),
		queued: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "berth_service_queue_length",
			Help: "Services waiting in the service scheduler's work queue.",
		}, func() float64 { return float64(s.queue.len()) }),
	}
	reg.MustRegister(m.passes, m.passSeconds, m.started, m.stopped, m.deployments, m.queued)
	return m
}

func (m *ServiceMetrics) pass(took time.Duration) {
	if m != nil {
		m.passes.Inc()
		m.passSeconds.Observe(took.Seconds())
	}
}

func (m *ServiceMetrics) tasksStarted(n int) {
	if m != nil {
		m.started.Add(float64(n))
	}
}

func (m *ServiceMetrics) taskStopped(reason string) {
	if m != nil {
		m.stopped.WithLabelValues(reason).Inc()
	}
}

func (m *ServiceMetrics) deploymentFinished(status string) {
	if m != nil {
		m.deployments.WithLabelValues(status).Inc()
	}
}
