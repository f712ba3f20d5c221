package lb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Descriptions AWS gives with the reason codes.
const (
	descInitial      = "Initial health checks in progress"
	descTimeout      = "Request timed out"
	descFailed       = "Health checks failed"
	descDraining     = "Target deregistration is in progress"
	descNotRegister  = "Target is not registered to the target group"
	descDisabled     = "Health checks are disabled"
	descCodeMismatch = "Health checks failed with these codes: [%d]"
)

// healthCheck is a HealthCheck with its defaults filled and its matcher
// parsed.
type healthCheck struct {
	HealthCheck
	codes []codeRange
}

type codeRange struct{ lo, hi int }

func compileHealthCheck(h HealthCheck) (*healthCheck, error) {
	if h.Protocol == "" {
		h.Protocol = ProtocolHTTP
	}
	if h.Protocol != ProtocolHTTP && h.Protocol != ProtocolHTTPS {
		return nil, invalid("health check protocol %q is not HTTP or HTTPS", h.Protocol)
	}
	if h.Path == "" {
		h.Path = "/"
	}
	if !strings.HasPrefix(h.Path, "/") {
		return nil, invalid("health check path %q does not start with /", h.Path)
	}
	if h.Port == "" {
		h.Port = "traffic-port"
	}
	if h.Port != "traffic-port" && !validPort(h.Port) {
		return nil, invalid("health check port %q is not traffic-port or 1-65535", h.Port)
	}
	if h.Interval <= 0 {
		h.Interval = 30 * time.Second
	}
	if h.Timeout <= 0 {
		h.Timeout = min(5*time.Second, h.Interval)
	}
	if h.Timeout > h.Interval {
		return nil, invalid("health check timeout %v exceeds the interval %v", h.Timeout, h.Interval)
	}
	if h.HealthyThreshold <= 0 {
		h.HealthyThreshold = 5
	}
	if h.UnhealthyThreshold <= 0 {
		h.UnhealthyThreshold = 2
	}
	if h.Matcher == "" {
		h.Matcher = "200"
	}
	hc := &healthCheck{HealthCheck: h}
	for _, part := range strings.Split(h.Matcher, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err1 := strconv.Atoi(lo)
		b := a
		var err2 error
		if isRange {
			b, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || a < 100 || b > 599 || a > b {
			return nil, invalid("health check matcher %q: want codes like 200, 200-299 or 200,202", h.Matcher)
		}
		hc.codes = append(hc.codes, codeRange{a, b})
	}
	return hc, nil
}

func (hc *healthCheck) success(code int) bool {
	for _, r := range hc.codes {
		if code >= r.lo && code <= r.hi {
			return true
		}
	}
	return false
}

// probeResult is the outcome of one health check request.
type probeResult struct {
	// code is the response status, 0 when there was no response.
	code int
	// timeout is set when no response came within the timeout.
	timeout bool
	// err is why there was no response.
	err error
}

// prober sends health check requests. The balancer's is httpProber; tests
// substitute scripted ones.
type prober interface {
	probe(ctx context.Context, addr string, hc *healthCheck) probeResult
}

// httpProber checks over HTTP(S) with a fresh connection each time: ALB
// closes the connection after each health check.
type httpProber struct {
	client *http.Client
}

func newHTTPProber() httpProber {
	tr := newTransport(transportKey{connect: 10 * time.Second})
	tr.DisableKeepAlives = true
	tr.Protocols.SetHTTP2(false)
	return httpProber{client: &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (p httpProber) probe(ctx context.Context, addr string, hc *healthCheck) probeResult {
	ctx, cancel := context.WithTimeout(ctx, hc.Timeout)
	defer cancel()
	scheme := "http://"
	if hc.Protocol == ProtocolHTTPS {
		scheme = "https://"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+healthAddr(addr, hc.Port)+hc.Path, nil)
	if err != nil {
		return probeResult{err: err}
	}
	req.Header.Set("User-Agent", "ELB-HealthChecker/2.0")
	resp, err := p.client.Do(req)
	if err != nil {
		var ne net.Error
		timeout := errors.Is(ctx.Err(), context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
		return probeResult{err: err, timeout: timeout}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	return probeResult{code: resp.StatusCode}
}

// healthState is a target's position in the health state machine (see the
// package documentation).
type healthState struct {
	state       State
	reason      string
	description string
	// successes and failures count the consecutive outcomes.
	successes, failures int
}

func initialHealth() healthState {
	return healthState{state: StateInitial, reason: ReasonInitialHealthChecking, description: descInitial}
}

func disabledHealth() healthState {
	return healthState{state: StateUnavailable, reason: ReasonHealthCheckDisabled, description: descDisabled}
}

func drainingHealth() healthState {
	return healthState{state: StateDraining, reason: ReasonDeregistrationInProgress, description: descDraining}
}

func unusedHealth() healthState {
	return healthState{state: StateUnused, reason: ReasonNotRegistered, description: descNotRegister}
}

// observe returns the state after one more health check outcome.
func (h healthState) observe(r probeResult, hc *healthCheck) healthState {
	if r.err == nil && hc.success(r.code) {
		h.failures = 0
		h.successes++
		if h.state == StateInitial || (h.state == StateUnhealthy && h.successes >= hc.HealthyThreshold) {
			h.state, h.reason, h.description = StateHealthy, "", ""
		}
		return h
	}
	h.successes = 0
	h.failures++
	reason, desc := ReasonFailedHealthChecks, descFailed
	switch {
	case r.timeout:
		reason, desc = ReasonTimeout, descTimeout
	case r.err == nil:
		reason, desc = ReasonResponseCodeMismatch, fmt.Sprintf(descCodeMismatch, r.code)
	}
	switch {
	case h.state == StateUnhealthy:
		h.reason, h.description = reason, desc
	case h.failures >= hc.UnhealthyThreshold:
		h.state, h.reason, h.description = StateUnhealthy, reason, desc
	}
	return h
}

// sameReport reports whether a and b would be reported the same.
func (h healthState) sameReport(o healthState) bool {
	return h.state == o.state && h.reason == o.reason && h.description == o.description
}

func (h healthState) report(g *group, t *target) TargetHealth {
	return TargetHealth{TargetGroupID: g.id, TargetID: t.id, State: h.state, Reason: h.reason, Description: h.description}
}

// checkLoop health checks t every hc.Interval until ctx ends, the first
// time at once. Checks start at a fixed rate: a slow answer does not delay
// the next one (ALB's behaviour).
func (b *Balancer) checkLoop(ctx context.Context, g *group, t *target, hc *healthCheck) {
	tick := time.NewTicker(hc.Interval)
	defer tick.Stop()
	for {
		r := b.prober.probe(ctx, t.addr, hc)
		if ctx.Err() != nil {
			return
		}
		b.observe(g, t, hc, r)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// observe feeds one health check outcome to t's state machine.
func (b *Balancer) observe(g *group, t *target, hc *healthCheck, r probeResult) {
	g.mu.Lock()
	if t.removed || t.draining.Load() || g.hc != hc {
		g.mu.Unlock()
		return
	}
	old := t.health
	t.health = old.observe(r, hc)
	changed := !old.sameReport(t.health)
	if changed {
		now := b.cfg.Now()
		if t.health.state == StateHealthy {
			g.startSlowStart(t, now)
		} else {
			t.slowUntil.Store(0)
		}
		g.rebuildSet(now)
	}
	rep := t.health.report(g, t)
	g.mu.Unlock()
	if changed {
		b.report(rep, r)
	}
}

// drainLoop waits until draining t has no request in flight or its
// deadline passes, then reports it drained.
func (b *Balancer) drainLoop(ctx context.Context, g *group, t *target, until time.Time) {
	var deadline <-chan time.Time
	if !until.IsZero() {
		timer := time.NewTimer(max(0, until.Sub(b.cfg.Now())))
		defer timer.Stop()
		deadline = timer.C
	}
wait:
	for t.inflight.Load() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-t.idle:
		case <-deadline:
			break wait
		}
	}
	g.mu.Lock()
	if t.removed || !t.draining.Load() || t.drained || !t.drainUntil.Equal(until) {
		g.mu.Unlock()
		return
	}
	t.drained = true
	t.health = unusedHealth()
	tunnels := t.tunnels
	t.tunnels = nil
	rep := t.health.report(g, t)
	g.mu.Unlock()
	for c := range tunnels {
		_ = c.Close()
	}
	b.report(rep, probeResult{})
}
