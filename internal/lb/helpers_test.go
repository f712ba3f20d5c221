package lb

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// newTestBalancer returns a Balancer closed at the end of the test.
func newTestBalancer(t testing.TB, cfg Config) *Balancer {
	t.Helper()
	if cfg.ShutdownGrace == 0 {
		cfg.ShutdownGrace = 5 * time.Second
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// runBalancer runs b's health checks until the end of the test.
func runBalancer(t testing.TB, b *Balancer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = b.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// backend is an httptest server that answers with its name and records
// the requests it saw.
type backend struct {
	name string
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []*http.Request
}

func newBackend(t testing.TB, name string) *backend {
	t.Helper()
	be := &backend{name: name}
	be.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		be.mu.Lock()
		be.reqs = append(be.reqs, r)
		be.mu.Unlock()
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("X-Backend", name)
		_, _ = io.WriteString(w, name)
	}))
	t.Cleanup(be.srv.Close)
	return be
}

// newBackendFunc is an httptest server with handler h.
func newBackendFunc(t testing.TB, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

func (be *backend) addr() string { return be.srv.Listener.Addr().String() }

func (be *backend) last() *http.Request {
	be.mu.Lock()
	defer be.mu.Unlock()
	if len(be.reqs) == 0 {
		return nil
	}
	return be.reqs[len(be.reqs)-1]
}

func (be *backend) count() int {
	be.mu.Lock()
	defer be.mu.Unlock()
	return len(be.reqs)
}

// targetsOf makes a target of each backend address.
func targetsOf(addrs ...string) []Target {
	out := make([]Target, len(addrs))
	for i, a := range addrs {
		out[i] = Target{ID: a, Addr: a}
	}
	return out
}

// forwardTo is a forward action to one group.
func forwardTo(id string) Action {
	return Action{Type: ActionForward, Forward: []WeightedGroup{{TargetGroupID: id, Weight: 1}}}
}

// oneListener is a snapshot of one load balancer on 127.0.0.1 with one
// HTTP listener on a free port whose default rule forwards to group "tg",
// which holds the given targets and does not health check.
func oneListener(targets ...Target) Snapshot {
	return Snapshot{
		LoadBalancers: []LoadBalancer{{
			ID: "lb", Address: "127.0.0.1",
			Listeners: []Listener{{ID: "l", Protocol: ProtocolHTTP, Rules: []Rule{{IsDefault: true, Action: forwardTo("tg")}}}},
		}},
		TargetGroups: []TargetGroup{{ID: "tg", HealthCheck: HealthCheck{Disabled: true}, Targets: targets}},
	}
}

// apply applies snap and fails the test on error.
func apply(t testing.TB, b *Balancer, snap Snapshot) {
	t.Helper()
	if err := b.Apply(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
}

// baseURL is the http URL of a listener.
func baseURL(t testing.TB, b *Balancer, lbID, listenerID string) string {
	t.Helper()
	for _, s := range b.Status() {
		if s.LoadBalancerID == lbID && s.ListenerID == listenerID {
			if s.Err != nil {
				t.Fatalf("listener %s/%s: %v", lbID, listenerID, s.Err)
			}
			scheme := "http"
			if s.Protocol == ProtocolHTTPS {
				scheme = "https"
			}
			return scheme + "://" + s.Addr
		}
	}
	t.Fatalf("no listener %s/%s", lbID, listenerID)
	return ""
}

// client is a keep-alive HTTP client that ignores the environment's
// proxy and does not follow redirects.
func newClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64, DisableCompression: true},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
		Timeout: 30 * time.Second,
	}
}

// get sends a request and returns the status and body.
func get(t testing.TB, c *http.Client, url string, hdr ...string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if strings.EqualFold(hdr[i], "Host") {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body), resp.Header
}

// eventually polls cond every few milliseconds until it holds or the
// deadline passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// freeAddr returns a loopback address with a port nobody listens on.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}
