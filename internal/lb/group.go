package lb

import (
	"context"
	"crypto/tls"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// group is the runtime of a target group. It outlives Apply calls (keyed
// by ID) so its targets keep their health and in-flight counts.
type group struct {
	id string
	// token names the group in AWSALBTG cookies; seal keys the MACs of its
	// AWSALBAPP-0 cookies (sticky.go).
	token string
	seal  [16]byte
	// tgCookieBatch caches its AWSALBTG cookies.
	tgCookieBatch atomic.Pointer[cookieBatch]

	// conf and set are what the request path reads, without locks.
	conf atomic.Pointer[groupConf]
	set  atomic.Pointer[targetSet]
	rr   atomic.Uint64

	mu sync.Mutex // guards the fields below and every target's guarded fields
	hc *healthCheck
	// targets are in the order of the snapshot; byID indexes them.
	targets []*target
	byID    map[string]*target
	// tkey is the transport's settings, to rebuild it only on change.
	tkey    transportKey
	metrics *groupMetrics
}

// groupConf is a group's request-path configuration.
type groupConf struct {
	scheme    string // "http" or "https"
	lor       bool
	slowStart time.Duration
	// sticky is the group's stickiness; nil when off.
	sticky *stickiness
	up     upstream
}

type transportKey struct {
	idle    time.Duration
	connect time.Duration
	https   bool
	h2      bool
}

// newUpstream returns the connection pool to a group's targets: Berth's
// own HTTP/1.1 client for plain HTTP targets, net/http's Transport for
// HTTPS ones.
func newUpstream(k transportKey) upstream {
	if !k.https {
		return newPool(k)
	}
	return stdTransport{newTransport(k)}
}

// targetSet is the set requests are balanced over: the healthy targets
// that are not draining or, failing open, every target that is not.
type targetSet struct {
	list     []*target
	failOpen bool
	// slow is set when some target was in slow start when the set was
	// built.
	slow bool
	// sticky indexes list by token when the group has stickiness: a
	// cookie sticks to the targets found there.
	sticky map[string]*target
}

// target is the runtime of one target.
type target struct {
	g    *group
	id   string
	addr string
	// token names the target in stickiness cookies; cookies caches them.
	token   string
	cookies atomic.Pointer[cookieBatch]

	inflight atomic.Int64
	draining atomic.Bool
	// slowUntil ends the target's slow start (Unix nanoseconds; 0 none).
	slowUntil atomic.Int64
	// idle receives a token when a draining target's last request ends.
	idle chan struct{}

	// Guarded by g.mu.
	health     healthState
	drainUntil time.Time
	drained    bool
	removed    bool
	check      *task // running health checker
	drain      *task // running drain watcher
	tunnels    map[io.Closer]struct{}
}

// task is a goroutine the Run loop started for a target; cancel stops it.
type task struct {
	cancel func()
}

func (t *task) stop() {
	if t != nil {
		t.cancel()
	}
}

// acquire counts a request to t in flight.
func (t *target) acquire() { t.inflight.Add(1) }

// release ends a request to t; the last request of a draining target wakes
// its drain watcher.
func (t *target) release() {
	if t.inflight.Add(-1) == 0 && t.draining.Load() {
		select {
		case t.idle <- struct{}{}:
		default:
		}
	}
}

// pick chooses the target of a request, or nil when the group has none to
// send to.
func (g *group) pick(now func() time.Time) *target {
	s := g.set.Load()
	n := uint64(len(s.list))
	switch n {
	case 0:
		return nil
	case 1:
		return s.list[0]
	}
	c := g.conf.Load()
	i := g.rr.Add(1)
	if c.lor {
		var best *target
		var bestN int64
		for k := range n {
			t := s.list[(i+k)%n]
			v := t.inflight.Load()
			if best == nil || v < bestN {
				best, bestN = t, v
				if v == 0 {
					break
				}
			}
		}
		return best
	}
	if s.slow && c.slowStart > 0 {
		// A target in slow start takes its turn with the probability of
		// the fraction of slow start it has completed.
		nowN := now().UnixNano()
		for k := range n {
			t := s.list[(i+k)%n]
			until := t.slowUntil.Load()
			if until == 0 || nowN >= until {
				return t
			}
			done := 1 - float64(until-nowN)/float64(c.slowStart)
			if rand.Float64() < done {
				return t
			}
		}
	}
	return s.list[i%n]
}

// routable reports whether t receives requests when the group does not
// fail open.
func (t *target) routable() bool {
	st := t.health.state
	return !t.draining.Load() && (st == StateHealthy || st == StateUnavailable)
}

// rebuildSet recomputes the set requests are balanced over; g.mu is held.
func (g *group) rebuildSet(now time.Time) {
	s := &targetSet{}
	var open []*target
	unhealthy := 0
	for _, t := range g.targets {
		if t.draining.Load() {
			continue
		}
		open = append(open, t)
		if t.routable() {
			s.list = append(s.list, t)
			if u := t.slowUntil.Load(); u != 0 && now.UnixNano() < u {
				s.slow = true
			}
		} else if t.health.state == StateUnhealthy {
			unhealthy++
		}
	}
	healthy := len(s.list)
	if healthy == 0 {
		s.list, s.failOpen = open, true
	}
	if g.conf.Load().sticky != nil {
		s.sticky = make(map[string]*target, len(s.list))
		for _, t := range s.list {
			s.sticky[t.token] = t
		}
	}
	g.set.Store(s)
	g.metrics.setCounts(healthy, unhealthy)
}

// startSlowStart puts t, newly healthy, in slow start when the group has
// it configured and another healthy target out of slow start; g.mu is
// held.
func (g *group) startSlowStart(t *target, now time.Time) {
	c := g.conf.Load()
	if c.slowStart <= 0 {
		return
	}
	for _, o := range g.targets {
		if o != t && o.routable() && o.health.state == StateHealthy {
			if u := o.slowUntil.Load(); u == 0 || now.UnixNano() >= u {
				t.slowUntil.Store(now.Add(c.slowStart).UnixNano())
				return
			}
		}
	}
}

// newTransport returns the connection pool to a group's targets.
func newTransport(k transportKey) *http.Transport {
	d := &net.Dialer{Timeout: k.connect, KeepAlive: 30 * time.Second}
	t := &http.Transport{
		Proxy: nil, // never the environment's proxy
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return fast(c), nil
		},
		MaxIdleConnsPerHost:    1024,
		IdleConnTimeout:        k.idle,
		ResponseHeaderTimeout:  k.idle,
		DisableCompression:     true,
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
		TLSClientConfig:        &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // ALB does not verify target certificates
		TLSHandshakeTimeout:    k.connect,
		WriteBufferSize:        16 << 10,
		ReadBufferSize:         16 << 10,
	}
	t.Protocols = new(http.Protocols)
	t.Protocols.SetHTTP1(true)
	t.Protocols.SetHTTP2(k.h2)
	return t
}

// targetAddrPort splits a target address for the health check port.
func healthAddr(addr, port string) string {
	if port == "" || port == "traffic-port" {
		return addr
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return net.JoinHostPort(host, port)
}

func validPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 1 && n <= 65535
}

// stopTasks stops the group's health checkers and drain watchers; g.mu is
// held.
func (g *group) stopTasks() {
	for _, t := range g.targets {
		t.check.stop()
		t.drain.stop()
		t.check, t.drain = nil, nil
	}
}

// upsertGroup creates or updates the group of spec. It returns the health
// reports of the targets whose state the update changed. On error the
// group is left as it was.
func (b *Balancer) upsertGroup(spec *TargetGroup, idle time.Duration, now time.Time) (*group, []TargetHealth, error) {
	conf := &groupConf{scheme: "http"}
	switch spec.Protocol {
	case "", ProtocolHTTP:
	case ProtocolHTTPS:
		conf.scheme = "https"
	default:
		return nil, nil, invalid("protocol %q is not HTTP or HTTPS", spec.Protocol)
	}
	switch spec.ProtocolVersion {
	case "", "HTTP1", "HTTP2":
	default:
		return nil, nil, invalid("protocol version %q is not HTTP1 or HTTP2", spec.ProtocolVersion)
	}
	switch spec.Algorithm {
	case "", RoundRobin:
	case LeastOutstandingRequests:
		conf.lor = true
	default:
		return nil, nil, invalid("algorithm %q is not round_robin or least_outstanding_requests", spec.Algorithm)
	}
	if spec.SlowStart < 0 {
		return nil, nil, invalid("slow start %v is negative", spec.SlowStart)
	}
	conf.slowStart = spec.SlowStart
	sticky, err := compileStickiness(spec.Stickiness)
	if err != nil {
		return nil, nil, err
	}
	conf.sticky = sticky
	hc, err := compileHealthCheck(spec.HealthCheck)
	if err != nil {
		return nil, nil, err
	}
	ids := map[string]bool{}
	for _, t := range spec.Targets {
		if t.ID == "" || ids[t.ID] {
			return nil, nil, invalid("target ID %q is empty or appears twice", t.ID)
		}
		ids[t.ID] = true
		if _, _, err := net.SplitHostPort(t.Addr); err != nil {
			return nil, nil, invalid("target %q: address %q is not host:port", t.ID, t.Addr)
		}
	}

	g := b.groups[spec.ID]
	if g == nil {
		g = &group{id: spec.ID, token: b.token("group", spec.ID), byID: map[string]*target{}, metrics: b.metrics.group(spec.ID)}
		copy(g.seal[:], b.mac("app", spec.ID))
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	k := transportKey{idle: idle, connect: b.cfg.ConnectTimeout, https: conf.scheme == "https",
		h2: spec.ProtocolVersion == "HTTP2" && conf.scheme == "https"}
	if prev := g.conf.Load(); prev != nil && g.tkey == k {
		conf.up = prev.up
	} else {
		conf.up = newUpstream(k)
		g.tkey = k
		if prev != nil {
			// Requests in flight finish on the old pool's connections.
			prev.up.closeIdle()
		}
	}
	g.conf.Store(conf)

	hcChanged := g.hc == nil || g.hc.HealthCheck != hc.HealthCheck
	if hcChanged {
		for _, t := range g.targets {
			t.check.stop()
			t.check = nil
		}
		g.hc = hc
	}
	fresh := func() healthState {
		if g.hc.Disabled {
			return disabledHealth()
		}
		return initialHealth()
	}

	var reports []TargetHealth
	set := func(t *target, h healthState) {
		if !t.health.sameReport(h) {
			reports = append(reports, h.report(g, t))
		}
		t.health = h
	}
	list := make([]*target, 0, len(spec.Targets))
	byID := make(map[string]*target, len(spec.Targets))
	for _, ts := range spec.Targets {
		t := g.byID[ts.ID]
		if t != nil && t.addr != ts.Addr {
			g.forget(t)
			t = nil
		}
		if t == nil {
			t = &target{g: g, id: ts.ID, addr: ts.Addr, token: b.token("target", g.id, ts.ID), idle: make(chan struct{}, 1)}
			set(t, fresh())
		}
		switch {
		case ts.Draining:
			if !t.draining.Load() {
				t.draining.Store(true)
				t.slowUntil.Store(0)
				t.check.stop()
				t.check = nil
				set(t, drainingHealth())
			}
			if !t.drained && !t.drainUntil.Equal(ts.DrainUntil) {
				t.drainUntil = ts.DrainUntil
				t.drain.stop()
				t.drain = nil
			}
		case t.draining.Load():
			// Registered again: its health is checked afresh.
			t.draining.Store(false)
			t.drain.stop()
			t.drain, t.drained, t.drainUntil = nil, false, time.Time{}
			set(t, fresh())
		case hcChanged && g.hc.Disabled != (t.health.state == StateUnavailable):
			set(t, fresh())
		}
		list = append(list, t)
		byID[t.id] = t
	}
	for id, t := range g.byID {
		if byID[id] != t {
			g.forget(t)
		}
	}
	g.targets, g.byID = list, byID
	g.rebuildSet(now)
	return g, reports, nil
}

// forget retires a target that left the group; g.mu is held. Its requests
// in flight finish.
func (g *group) forget(t *target) {
	t.removed = true
	t.check.stop()
	t.drain.stop()
	t.check, t.drain = nil, nil
}
