package registry

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the registry's Prometheus metrics; a nil *metrics records
// nothing.
type metrics struct {
	pushedBytes prometheus.Counter
	pulledBytes prometheus.Counter
	requests    *prometheus.CounterVec
	gcRuns      prometheus.Counter
	gcFreed     prometheus.Counter
	gcBlobs     prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		pushedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "berth_registry_pushed_bytes_total",
			Help: "Blob bytes received by uploads (the /v2/ API and ECR's UploadLayerPart).",
		}),
		pulledBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "berth_registry_pulled_bytes_total",
			Help: "Blob and manifest bytes sent by GET requests under /v2/.",
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_registry_requests_total",
			Help: "Requests under /v2/, by what they address (blob, upload, manifest, tags, referrers, catalog, token, base), method and HTTP status.",
		}, []string{"kind", "method", "code"}),
		gcRuns: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "berth_registry_gc_runs_total",
			Help: "Garbage collections completed.",
		}),
		gcFreed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "berth_registry_gc_freed_bytes_total",
			Help: "Bytes of blob files garbage collection deleted.",
		}),
		gcBlobs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "berth_registry_gc_deleted_blobs_total",
			Help: "Blob files garbage collection deleted.",
		}),
	}
	for _, c := range []prometheus.Collector{m.pushedBytes, m.pulledBytes, m.requests, m.gcRuns, m.gcFreed, m.gcBlobs} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) pushed(n int64) {
	if m != nil {
		m.pushedBytes.Add(float64(n))
	}
}

// request records one answered request; body is the bytes of the body
// sent, counted as pulled for a successful GET of a blob or manifest.
func (m *metrics) request(kind routeKind, method string, status int, body int64) {
	if m == nil {
		return
	}
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
	default:
		method = "other"
	}
	m.requests.WithLabelValues(kind.String(), method, strconv.Itoa(status)).Inc()
	if method == http.MethodGet && status < 300 && (kind == routeBlob || kind == routeManifest) {
		m.pulledBytes.Add(float64(body))
	}
}

func (m *metrics) collected(res GCResult) {
	if m != nil {
		m.gcRuns.Inc()
		m.gcFreed.Add(float64(res.BytesFreed))
		m.gcBlobs.Add(float64(res.BlobsDeleted))
	}
}
