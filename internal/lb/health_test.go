package lb

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func TestHealthStateMachine(t *testing.T) {
	hc, err := compileHealthCheck(HealthCheck{HealthyThreshold: 3, UnhealthyThreshold: 2, Matcher: "200-299"})
	if err != nil {
		t.Fatal(err)
	}
	ok := probeResult{code: 204}
	code500 := probeResult{code: 500}
	timeout := probeResult{err: errors.New("deadline"), timeout: true}
	refused := probeResult{err: errors.New("connection refused")}
	type step struct {
		r      probeResult
		state  State
		reason string
		desc   string
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"initial passes one check", []step{
			{ok, StateHealthy, "", ""},
		}},
		{"initial fails to unhealthy after the threshold", []step{
			{code500, StateInitial, ReasonInitialHealthChecking, descInitial},
			{code500, StateUnhealthy, ReasonResponseCodeMismatch, "Health checks failed with these codes: [500]"},
		}},
		{"a success resets the failures", []step{
			{ok, StateHealthy, "", ""},
			{timeout, StateHealthy, "", ""},
			{ok, StateHealthy, "", ""},
			{timeout, StateHealthy, "", ""},
			{timeout, StateUnhealthy, ReasonTimeout, "Request timed out"},
		}},
		{"unhealthy needs the healthy threshold", []step{
			{refused, StateInitial, ReasonInitialHealthChecking, descInitial},
			{refused, StateUnhealthy, ReasonFailedHealthChecks, "Health checks failed"},
			{ok, StateUnhealthy, ReasonFailedHealthChecks, "Health checks failed"},
			{ok, StateUnhealthy, ReasonFailedHealthChecks, "Health checks failed"},
			{code500, StateUnhealthy, ReasonResponseCodeMismatch, "Health checks failed with these codes: [500]"},
			{ok, StateUnhealthy, ReasonResponseCodeMismatch, "Health checks failed with these codes: [500]"},
			{ok, StateUnhealthy, ReasonResponseCodeMismatch, "Health checks failed with these codes: [500]"},
			{ok, StateHealthy, "", ""},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := initialHealth()
			for i, s := range tc.steps {
				h = h.observe(s.r, hc)
				if h.state != s.state || h.reason != s.reason || h.description != s.desc {
					t.Fatalf("step %d: %s %s %q, want %s %s %q", i, h.state, h.reason, h.description, s.state, s.reason, s.desc)
				}
			}
		})
	}
}

func TestMatcher(t *testing.T) {
	hc, err := compileHealthCheck(HealthCheck{Matcher: "200,202, 300-302"})
	if err != nil {
		t.Fatal(err)
	}
	for code, want := range map[int]bool{200: true, 201: false, 202: true, 300: true, 301: true, 302: true, 303: false, 500: false} {
		if hc.success(code) != want {
			t.Errorf("%d: %v", code, !want)
		}
	}
	for _, bad := range []string{"abc", "200-", "300-200", "99", "200,,"} {
		if _, err := compileHealthCheck(HealthCheck{Matcher: bad}); err == nil {
			t.Errorf("matcher %q accepted", bad)
		}
	}
	if _, err := compileHealthCheck(HealthCheck{Interval: 5 * time.Second, Timeout: 6 * time.Second}); err == nil {
		t.Error("timeout over the interval accepted")
	}
}

// scriptedProber answers health checks from a per-target script; past
// its end a script repeats its last result. It records when each check
// happened.
type scriptedProber struct {
	mu     sync.Mutex
	script map[string][]probeResult
	calls  map[string][]time.Time
}

func (p *scriptedProber) probe(_ context.Context, addr string, _ *healthCheck) probeResult {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls[addr] = append(p.calls[addr], time.Now())
	s := p.script[addr]
	if len(s) == 0 {
		return probeResult{code: 200}
	}
	r := s[0]
	if len(s) > 1 {
		p.script[addr] = s[1:]
	}
	return r
}

// recorder collects OnHealth reports.
type recorder struct {
	mu      sync.Mutex
	reports []TargetHealth
}

func (r *recorder) add(h TargetHealth) {
	r.mu.Lock()
	r.reports = append(r.reports, h)
	r.mu.Unlock()
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, h := range r.reports {
		out = append(out, h.TargetID+" "+string(h.State)+" "+h.Reason)
	}
	r.reports = nil
	return out
}

func TestHealthChecker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		p := &scriptedProber{calls: map[string][]time.Time{}, script: map[string][]probeResult{
			"a:80": {{code: 200}, {code: 200}, {code: 503}, {code: 503}, {code: 200}, {code: 200}},
			"b:80": {{code: 500}},
		}}
		b, err := New(Config{OnHealth: rec.add})
		if err != nil {
			t.Fatal(err)
		}
		b.prober = p
		hc := HealthCheck{Interval: 10 * time.Second, Timeout: 5 * time.Second, HealthyThreshold: 2, UnhealthyThreshold: 2}
		snap := Snapshot{TargetGroups: []TargetGroup{{ID: "tg", HealthCheck: hc, Targets: targetsOf("a:80", "b:80")}}}
		if err := b.Apply(context.Background(), snap); err != nil {
			t.Fatal(err)
		}
		if got := rec.take(); strings.Join(got, ",") != "a:80 initial Elb.InitialHealthChecking,b:80 initial Elb.InitialHealthChecking" {
			t.Errorf("registration: %v", got)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- b.Run(ctx) }()
		start := time.Now()

		synctest.Wait() // the first checks, at once
		if got := rec.take(); strings.Join(got, ",") != "a:80 healthy " {
			t.Errorf("after the first check: %v", got)
		}
		time.Sleep(10 * time.Second) // second check: a ok, b fails again
		synctest.Wait()
		if got := rec.take(); strings.Join(got, ",") != "b:80 unhealthy Target.ResponseCodeMismatch" {
			t.Errorf("after the second check: %v", got)
		}
		time.Sleep(20 * time.Second) // a fails twice
		synctest.Wait()
		if got := rec.take(); strings.Join(got, ",") != "a:80 unhealthy Target.ResponseCodeMismatch" {
			t.Errorf("after four checks: %v", got)
		}
		time.Sleep(20 * time.Second) // a passes twice
		synctest.Wait()
		if got := rec.take(); strings.Join(got, ",") != "a:80 healthy " {
			t.Errorf("after six checks: %v", got)
		}
		h := b.Health("tg")
		if len(h) != 2 || h[0].State != StateHealthy || h[1].State != StateUnhealthy ||
			h[1].Description != "Health checks failed with these codes: [500]" {
			t.Errorf("Health = %+v", h)
		}
		p.mu.Lock()
		for i, at := range p.calls["a:80"] {
			if want := start.Add(time.Duration(i) * 10 * time.Second); !at.Equal(want) {
				t.Errorf("check %d at %v, want %v", i, at.Sub(start), want.Sub(start))
			}
		}
		p.mu.Unlock()

		// A new health check configuration restarts the checks, keeping
		// the states.
		snap.TargetGroups[0].HealthCheck.Interval = 30 * time.Second
		if err := b.Apply(context.Background(), snap); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if got := rec.take(); len(got) != 0 {
			t.Errorf("after changing the interval: %v", got)
		}
		// Disabling health checks makes every target unavailable.
		snap.TargetGroups[0].HealthCheck.Disabled = true
		if err := b.Apply(context.Background(), snap); err != nil {
			t.Fatal(err)
		}
		if got := rec.take(); strings.Join(got, ",") != "a:80 unavailable Target.HealthCheckDisabled,b:80 unavailable Target.HealthCheckDisabled" {
			t.Errorf("after disabling: %v", got)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

func TestHTTPProber(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	be := newBackendFunc(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("User-Agent") != "ELB-HealthChecker/2.0" {
			w.WriteHeader(400)
			return
		}
		switch r.URL.Path {
		case "/ok":
			w.WriteHeader(200)
		case "/slow":
			<-release
		case "/moved":
			http.Redirect(w, r, "/ok", http.StatusFound)
		default:
			w.WriteHeader(500)
		}
	})
	addr := be.Listener.Addr().String()
	p := newHTTPProber()
	for _, tc := range []struct {
		hc     HealthCheck
		addr   string
		want   State
		reason string
		desc   string
	}{
		{HealthCheck{Path: "/ok"}, addr, StateHealthy, "", ""},
		{HealthCheck{Path: "/fail"}, addr, StateUnhealthy, ReasonResponseCodeMismatch, "Health checks failed with these codes: [500]"},
		{HealthCheck{Path: "/moved", Matcher: "302"}, addr, StateHealthy, "", ""},
		{HealthCheck{Path: "/slow", Timeout: 100 * time.Millisecond, Interval: time.Second}, addr, StateUnhealthy, ReasonTimeout, "Request timed out"},
		{HealthCheck{Path: "/ok"}, freeAddr(t), StateUnhealthy, ReasonFailedHealthChecks, "Health checks failed"},
		{HealthCheck{Path: "/ok", Port: strings.Split(addr, ":")[1]}, "127.0.0.1:1", StateHealthy, "", ""},
	} {
		hc, err := compileHealthCheck(tc.hc)
		if err != nil {
			t.Fatal(err)
		}
		hc.UnhealthyThreshold = 1
		h := initialHealth().observe(p.probe(context.Background(), tc.addr, hc), hc)
		if h.state != tc.want || h.reason != tc.reason || h.description != tc.desc {
			t.Errorf("%+v on %s: %s %s %q", tc.hc, tc.addr, h.state, h.reason, h.description)
		}
	}
}

// TestHealthTakesTargetsOut runs real health checks: a target whose
// checks fail stops receiving requests, and gets them again once it
// passes.
func TestHealthTakesTargetsOut(t *testing.T) {
	var mu sync.Mutex
	failing := false
	sick := newBackendFunc(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.URL.Path == "/health" && failing {
			w.WriteHeader(503)
			return
		}
		_, _ = w.Write([]byte("sick"))
	})
	well := newBackend(t, "well")
	rec := &recorder{}
	b := newTestBalancer(t, Config{OnHealth: rec.add})
	snap := oneListener(targetsOf(sick.Listener.Addr().String(), well.addr())...)
	snap.TargetGroups[0].HealthCheck = HealthCheck{Path: "/health", Interval: 20 * time.Millisecond, Timeout: 10 * time.Millisecond,
		HealthyThreshold: 2, UnhealthyThreshold: 2}
	apply(t, b, snap)
	runBalancer(t, b)
	healthy := func(n int) func() bool {
		return func() bool {
			c := 0
			for _, h := range b.Health("tg") {
				if h.State == StateHealthy {
					c++
				}
			}
			return c == n
		}
	}
	eventually(t, "both targets healthy", healthy(2))
	url := baseURL(t, b, "lb", "l")
	if got := counts(t, url, 10); got["sick"] != 5 {
		t.Errorf("both healthy: %v", got)
	}
	mu.Lock()
	failing = true
	mu.Unlock()
	eventually(t, "one target unhealthy", healthy(1))
	if got := counts(t, url, 10); got["well"] != 10 {
		t.Errorf("one unhealthy: %v", got)
	}
	mu.Lock()
	failing = false
	mu.Unlock()
	eventually(t, "both targets healthy again", healthy(2))
	found := false
	for _, r := range rec.take() {
		if strings.HasSuffix(r, "unhealthy Target.ResponseCodeMismatch") {
			found = true
		}
	}
	if !found {
		t.Error("no unhealthy report")
	}
}
