package lb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/berthdev/berth/internal/errdefs"
)

// Balancer serves the load balancers of the last applied Snapshot.
type Balancer struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	prober  prober
	// wg counts every goroutine the balancer starts; Close waits for them.
	wg sync.WaitGroup

	mu        sync.Mutex
	closed    bool
	running   bool
	runCtx    context.Context
	kick      chan struct{}
	groups    map[string]*group
	listeners map[string]*listener
	status    []ListenerStatus
}

// New returns a Balancer with no load balancers; Apply gives it some and
// Run starts its health checks.
func New(cfg Config) (*Balancer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Metrics)
	if err != nil {
		return nil, fmt.Errorf("lb metrics: %w", err)
	}
	return &Balancer{
		cfg:       cfg,
		log:       cfg.Logger.With("component", "lb"),
		metrics:   m,
		prober:    newHTTPProber(),
		kick:      make(chan struct{}, 1),
		groups:    map[string]*group{},
		listeners: map[string]*listener{},
	}, nil
}

// Run health checks the targets and ends the draining of deregistered
// ones until ctx ends; then it closes the balancer (see Close) and
// returns nil. Listeners serve from Apply on, whether Run runs or not;
// without Run every target stays in its initial state (so, failing open,
// every target that is not draining receives requests).
func (b *Balancer) Run(ctx context.Context) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return fmt.Errorf("lb: %w", errdefs.ErrClosed)
	}
	if b.running {
		b.mu.Unlock()
		return errors.New("lb: Run called twice")
	}
	b.running, b.runCtx = true, ctx
	b.mu.Unlock()
	defer b.Close()
	for {
		if !b.reconcile() {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-b.kick:
		}
	}
}

// reconcile starts the health checkers and drain watchers the targets
// need; it reports false once the balancer is closed.
func (b *Balancer) reconcile() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	for _, g := range b.groups {
		g.mu.Lock()
		for _, t := range g.targets {
			draining := t.draining.Load()
			if !draining && !g.hc.Disabled && t.check == nil {
				g, t, hc := g, t, g.hc
				t.check = b.start(func(ctx context.Context) { b.checkLoop(ctx, g, t, hc) })
			}
			if draining && !t.drained && t.drain == nil {
				g, t, until := g, t, t.drainUntil
				t.drain = b.start(func(ctx context.Context) { b.drainLoop(ctx, g, t, until) })
			}
		}
		g.mu.Unlock()
	}
	return true
}

// start runs f in a goroutine under Run's context; b.mu is held.
func (b *Balancer) start(f func(ctx context.Context)) *task {
	ctx, cancel := context.WithCancel(b.runCtx)
	b.wg.Go(func() { f(ctx) })
	return &task{cancel: cancel}
}

func (b *Balancer) wake() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// Close stops the health checks, closes every listener, lets the requests
// in flight finish for up to Config.ShutdownGrace, and returns when every
// goroutine of the balancer has ended. It is safe to call more than once.
func (b *Balancer) Close() error {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		for _, l := range b.listeners {
			l.close()
		}
		for _, g := range b.groups {
			g.stopTasks()
			g.conf.Load().up.closeIdle()
		}
		b.wake()
	}
	b.mu.Unlock()
	b.wg.Wait()
	return nil
}

// Status reports the listeners of the last snapshot.
func (b *Balancer) Status() []ListenerStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.status)
}

// Health reports the health of the targets of a group, in the order of
// the last snapshot (nil for an unknown group). Drained targets still in
// the snapshot are reported unused.
func (b *Balancer) Health(targetGroupID string) []TargetHealth {
	b.mu.Lock()
	g := b.groups[targetGroupID]
	b.mu.Unlock()
	if g == nil {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]TargetHealth, 0, len(g.targets))
	for _, t := range g.targets {
		out = append(out, t.health.report(g, t))
	}
	return out
}

// report logs a change of a target's health and passes it to OnHealth.
func (b *Balancer) report(h TargetHealth, r probeResult) {
	attrs := []any{"target_group", h.TargetGroupID, "target", h.TargetID, "state", h.State}
	if h.Reason != "" {
		attrs = append(attrs, "reason", h.Reason, "description", h.Description)
	}
	if r.err != nil {
		attrs = append(attrs, "err", r.err)
	}
	b.log.Info("target health changed", attrs...)
	if b.cfg.OnHealth != nil {
		b.cfg.OnHealth(h)
	}
}

// Apply makes snap the balancer's configuration: it binds the listeners
// that are new (or whose address, port or protocol changed), swaps the
// routing of the others without touching their connections, closes the
// listeners that are gone gracefully, and updates the target groups,
// keeping the health of the targets they still have.
//
// It applies what it can. Problems are per listener or per group, reported
// in Status and in the returned error (errors.Join of them all): a
// listener whose configuration is invalid (wrapping
// errdefs.ErrInvalidArgument; a rule naming a group the snapshot lacks is
// one) keeps serving its previous configuration if it had one; a listener
// that cannot bind its new address (*BindError) keeps serving on its old
// one, unless only its protocol changed; a group whose configuration is
// invalid keeps its previous one. Identity errors (a load balancer without
// an ID, or twice) reject the whole snapshot. ctx is not used today: Apply
// does not block on the network.
func (b *Balancer) Apply(ctx context.Context, snap Snapshot) error {
	_ = ctx
	reports, err := b.apply(snap)
	for _, r := range reports {
		b.report(r, probeResult{})
	}
	return err
}

func (b *Balancer) apply(snap Snapshot) ([]TargetHealth, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, fmt.Errorf("lb: %w", errdefs.ErrClosed)
	}
	now := b.cfg.Now()
	var errs []error
	var reports []TargetHealth

	settings, idle, err := loadBalancerSettings(snap.LoadBalancers)
	if err != nil {
		return nil, err
	}

	groups := map[string]*group{}
	for i := range snap.TargetGroups {
		spec := &snap.TargetGroups[i]
		if spec.ID == "" {
			errs = append(errs, invalid("target group without an ID"))
			continue
		}
		if groups[spec.ID] != nil {
			errs = append(errs, invalid("target group %q appears twice", spec.ID))
			continue
		}
		gidle := idle[spec.ID]
		if gidle == 0 {
			gidle = defaultIdleTimeout
		}
		g, reps, err := b.upsertGroup(spec, gidle, now)
		reports = append(reports, reps...)
		if err != nil {
			errs = append(errs, fmt.Errorf("target group %q: %w", spec.ID, err))
			if g = b.groups[spec.ID]; g == nil {
				continue
			}
		}
		groups[spec.ID] = g
	}
	for id, g := range b.groups {
		if groups[id] == nil {
			g.mu.Lock()
			g.stopTasks()
			for _, t := range g.targets {
				t.removed = true
			}
			g.mu.Unlock()
			g.conf.Load().up.closeIdle()
			b.metrics.forgetGroup(id)
		}
	}
	b.groups = groups

	listeners := map[string]*listener{}
	b.status = b.status[:0]
	for i, lb := range snap.LoadBalancers {
		set := settings[i]
		for j := range lb.Listeners {
			l := &lb.Listeners[j]
			key := lb.ID + "\x00" + l.ID
			st := ListenerStatus{LoadBalancerID: lb.ID, ListenerID: l.ID, Protocol: l.Protocol,
				Addr: net.JoinHostPort(set.address, fmt.Sprint(l.Port))}
			x, err := b.applyListener(key, set, l)
			if x != nil {
				listeners[key] = x
				st.Addr = x.addr
			}
			if err != nil {
				st.Err = err
				errs = append(errs, err)
			}
			b.status = append(b.status, st)
		}
	}
	for key, x := range b.listeners {
		if listeners[key] == nil {
			x.close()
			b.metrics.forgetListener(x.lbID, x.id)
		}
	}
	b.listeners = listeners
	b.wake()
	return reports, errors.Join(errs...)
}

const defaultIdleTimeout = 60 * time.Second

// loadBalancerSettings validates the load balancers' attributes and
// identities, and computes each target group's idle timeout: the longest
// of the load balancers whose rules forward to it.
func loadBalancerSettings(lbs []LoadBalancer) ([]*lbSettings, map[string]time.Duration, error) {
	out := make([]*lbSettings, len(lbs))
	idle := map[string]time.Duration{}
	seen := map[string]bool{}
	for i, lb := range lbs {
		if lb.ID == "" {
			return nil, nil, invalid("load balancer without an ID")
		}
		if seen[lb.ID] {
			return nil, nil, invalid("load balancer %q appears twice", lb.ID)
		}
		seen[lb.ID] = true
		s := &lbSettings{id: lb.ID, address: lb.Address, idleTimeout: lb.IdleTimeout, http2: lb.HTTP2,
			dropInvalid: lb.DropInvalidHeaders, xff: lb.XFFMode, xffPort: lb.XFFClientPort}
		if s.idleTimeout <= 0 {
			s.idleTimeout = defaultIdleTimeout
		}
		switch s.xff {
		case "":
			s.xff = XFFAppend
		case XFFAppend, XFFPreserve, XFFRemove:
		default:
			return nil, nil, invalid("load balancer %q: X-Forwarded-For mode %q is not append, preserve or remove", lb.ID, lb.XFFMode)
		}
		ids := map[string]bool{}
		for _, l := range lb.Listeners {
			if l.ID == "" || ids[l.ID] {
				return nil, nil, invalid("load balancer %q: listener ID %q is empty or appears twice", lb.ID, l.ID)
			}
			ids[l.ID] = true
			for _, r := range l.Rules {
				for _, wg := range r.Action.Forward {
					idle[wg.TargetGroupID] = max(idle[wg.TargetGroupID], s.idleTimeout)
				}
			}
		}
		out[i] = s
	}
	return out, idle, nil
}

// applyListener configures one listener of the snapshot, binding it if it
// is new or its socket changed. It returns the listener that serves (the
// previous one when the new configuration is invalid), or nil.
func (b *Balancer) applyListener(key string, set *lbSettings, l *Listener) (*listener, error) {
	old := b.listeners[key]
	rt, err := b.compileRoutes(set, l)
	if err != nil {
		err = fmt.Errorf("load balancer %q listener %q: %w", set.id, l.ID, err)
		return old, err
	}
	x := old
	bind := net.JoinHostPort(set.address, fmt.Sprint(l.Port))
	if x != nil && (x.bind != bind || x.protocol != l.Protocol) {
		x = nil
		if old.bind == bind {
			// Same address, new protocol: the old socket must go first.
			old.close()
		}
	}
	fresh := x == nil
	if fresh {
		if x, err = b.bindListener(set, l); err != nil {
			if old != nil && old.bind != bind {
				// The new address is unusable: keep serving on the old.
				return old, err
			}
			return nil, err
		}
		if old != nil {
			old.close() // same labels as x: its metric series carry on
		}
	}
	rt.port = x.port
	rt.portHeader = []string{x.port}[:1:1]
	rt.metrics = x.metrics
	if l.Certificate != nil {
		x.cert.Store(l.Certificate)
	}
	x.routes.Store(rt)
	if fresh {
		// Serve only once the routes are in place.
		b.wg.Go(x.pump)
	}
	return x, nil
}

// compileRoutes compiles a listener's rules against the groups of the
// snapshot (b.groups, already updated).
func (b *Balancer) compileRoutes(set *lbSettings, l *Listener) (*routes, error) {
	rt := &routes{lb: set, listener: l.ID}
	switch l.Protocol {
	case ProtocolHTTP:
		rt.scheme = "http"
	case ProtocolHTTPS:
		rt.scheme = "https"
		if l.Certificate == nil {
			return nil, invalid("HTTPS listener without a certificate")
		}
	default:
		return nil, invalid("protocol %q is not HTTP or HTTPS", l.Protocol)
	}
	rt.protoHeader = []string{rt.scheme}[:1:1]
	if l.Port < 0 || l.Port > 65535 {
		return nil, invalid("port %d is not 1-65535", l.Port)
	}
	ordered, def, err := sortRules(l.Rules)
	if err != nil {
		return nil, err
	}
	for i := range ordered {
		r := &ordered[i]
		conds, err := compileConditions(r.Conditions)
		if err != nil {
			return nil, fmt.Errorf("rule %s: %w", ruleName(r), err)
		}
		a, err := b.compileAction(set, l, &r.Action)
		if err != nil {
			return nil, fmt.Errorf("rule %s: %w", ruleName(r), err)
		}
		rt.rules = append(rt.rules, rule{id: r.ID, conds: conds, action: *a})
	}
	if def != nil {
		if len(def.Conditions) > 0 {
			return nil, invalid("the default rule has conditions")
		}
		if rt.fallback, err = b.compileAction(set, l, &def.Action); err != nil {
			return nil, fmt.Errorf("default rule: %w", err)
		}
	}
	return rt, nil
}

func (b *Balancer) compileAction(set *lbSettings, l *Listener, a *Action) (*action, error) {
	switch a.Type {
	case ActionForward:
		if len(a.Forward) == 0 {
			return nil, invalid("forward action without target groups")
		}
		out := &action{kind: actForward}
		for _, wg := range a.Forward {
			g := b.groups[wg.TargetGroupID]
			if g == nil {
				return nil, invalid("forward to target group %q, which the snapshot does not have", wg.TargetGroupID)
			}
			if wg.Weight < 0 || wg.Weight > 999 {
				return nil, invalid("target group %q: weight %d is not 0-999", wg.TargetGroupID, wg.Weight)
			}
			out.groups = append(out.groups, weighted{g: g, weight: wg.Weight, m: b.metrics.pair(set.id, l.ID, g.id)})
			out.total += wg.Weight
		}
		if d := a.GroupStickiness; d != 0 {
			if d < time.Second || d > maxStickiness {
				return nil, invalid("target group stickiness duration %v is not 1 second to 7 days", d)
			}
			if len(out.groups) > 1 {
				out.stick = d
			}
		}
		return out, nil
	case ActionRedirect:
		rd, err := compileRedirect(a.Redirect)
		if err != nil {
			return nil, err
		}
		return &action{kind: actRedirect, redirect: rd}, nil
	case ActionFixedResponse:
		f, err := compileFixed(a.Fixed)
		if err != nil {
			return nil, err
		}
		return &action{kind: actFixed, fixed: f}, nil
	}
	return nil, invalid("action type %q is not forward, redirect or fixed-response", a.Type)
}
