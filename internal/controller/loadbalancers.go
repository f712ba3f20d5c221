package controller

import (
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berthdev/berth/internal/awsmodel/elbv2types"
	"github.com/berthdev/berth/internal/lb"
	"github.com/berthdev/berth/internal/state"
	"github.com/berthdev/berth/internal/store"
)

// LoadBalancers runs Berth's load balancers from the store: it compiles the
// ELBv2 records into the data plane's snapshot whenever anything under
// /elb/ changes and applies it to the Balancer, and it records what the
// data plane observes: a load balancer goes active once its listeners are
// bound (active_impaired with the reason when one cannot be), health check
// verdicts become the targets' health, and a draining target with nothing
// left in flight is removed. It also keeps the hosts file naming each load
// balancer's DNS name, when it has one.
type LoadBalancers struct {
	Store    store.Store
	ARNs     state.ARNs
	Balancer *lb.Balancer
	// CertificateDir holds the PEM pairs HTTPS listeners name.
	CertificateDir string
	// Hosts, when set, is kept in step with the load balancers' DNS names.
	Hosts  *HostsFile
	Logger *slog.Logger

	mu      sync.Mutex
	pending []lb.TargetHealth
	wake    chan struct{}

	// rebuilds counts the configuration rebuilds of Run.
	rebuilds atomic.Int64
	// prints are, by key, the parts of target and load balancer records
	// the data plane's configuration depends on, as last seen in a watch
	// event (Run's goroutine only); see configChanged.
	prints map[string]string
	// targets keeps sync's decoded targets between rebuilds (sync's
	// goroutine only).
	targets state.TargetCache
}

// OnHealth is the Balancer's health callback: verdicts are queued and
// written to the store in batches by Run.
func (c *LoadBalancers) OnHealth(h lb.TargetHealth) {
	c.mu.Lock()
	c.pending = append(c.pending, h)
	c.mu.Unlock()
	c.poke()
}

func (c *LoadBalancers) poke() {
	c.mu.Lock()
	if c.wake == nil {
		c.wake = make(chan struct{}, 1)
	}
	w := c.wake
	c.mu.Unlock()
	select {
	case w <- struct{}{}:
	default:
	}
}

// Run applies the configuration and records observations until ctx ends.
func (c *LoadBalancers) Run(ctx context.Context) error {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	log := c.Logger.With("component", "lb_controller")
	c.poke()
	for {
		rev := c.Store.Revision()
		if err := c.sync(ctx, log); err != nil && ctx.Err() == nil {
			log.Error("applying load balancer configuration", "err", err)
		}
		c.rebuilds.Add(1)
		watch, err := c.Store.Watch(ctx, state.ELBPrefix, rev+1)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if err := c.loop(ctx, log, watch); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// loop reacts to changes and health verdicts until the watch ends (then
// Run resynchronises) or ctx does.
func (c *LoadBalancers) loop(ctx context.Context, log *slog.Logger, watch <-chan store.WatchResponse) error {
	c.mu.Lock()
	if c.wake == nil {
		c.wake = make(chan struct{}, 1)
	}
	wake := c.wake
	c.mu.Unlock()
	// Changes are coalesced: one rebuild for a burst of writes, and a
	// burst that lasts (a rollout registering thousands of tasks) gets
	// rebuilds spaced by settleAfter, so they take at most a third of a
	// core.
	var timer <-chan time.Time
	var took time.Duration
	for {
		select {
		case <-ctx.Done():
			return nil
		case resp, ok := <-watch:
			if !ok || resp.Err != nil {
				return nil
			}
			changed := false
			for _, ev := range resp.Events {
				changed = c.configChanged(ev) || changed
			}
			if changed && timer == nil {
				timer = time.After(settleAfter(took))
			}
		case <-timer:
			timer = nil
			start := time.Now()
			if err := c.sync(ctx, log); err != nil && ctx.Err() == nil {
				log.Error("applying load balancer configuration", "err", err)
			}
			took = time.Since(start)
			c.rebuilds.Add(1)
		case <-wake:
			if err := c.record(ctx); err != nil && ctx.Err() == nil {
				log.Error("recording target health", "err", err)
			}
		}
	}
}

// settleAfter is how long a change waits for others before a rebuild,
// given how long the last rebuild took: 20 ms, or twice that rebuild (a
// rebuild over 10,000 targets takes about 13 ms), up to 2 s.
func settleAfter(lastRebuild time.Duration) time.Duration {
	return min(max(20*time.Millisecond, 2*lastRebuild), 2*time.Second)
}

// configChanged reports whether a change under /elb/ can change the data
// plane's configuration. Most writes there are the load balancer's own
// observations: a target's health (every health check verdict that
// changes a state) and a load balancer's state. Those leave the compiled
// configuration as it was, so they are recognised here by a fingerprint of
// the record without them and do not cost a rebuild of every load
// balancer. Any other key, a delete, or a record not seen before counts as
// a change.
func (c *LoadBalancers) configChanged(ev store.Event) bool {
	key := ev.KV.Key
	if ev.Type == store.EventDelete {
		delete(c.prints, key)
		return true
	}
	var print []byte
	var err error
	switch {
	case strings.HasPrefix(key, state.TargetsPrefix):
		var t state.Target
		if err = json.Unmarshal(ev.KV.Value, &t); err == nil {
			t.Health = elbv2types.TargetHealth{}
			print, err = json.Marshal(&t)
		}
	case strings.HasPrefix(key, state.LoadBalancersPrefix):
		var l state.LoadBalancer
		if err = json.Unmarshal(ev.KV.Value, &l); err == nil {
			l.State = nil
			print, err = json.Marshal(&l)
		}
	default:
		return true
	}
	if err != nil {
		return true
	}
	if c.prints == nil {
		c.prints = map[string]string{}
	}
	if old, ok := c.prints[key]; ok && old == string(print) {
		return false
	}
	c.prints[key] = string(print)
	return true
}

// sync reads every load balancer, applies the snapshot, and records each
// load balancer's state and the hosts file.
func (c *LoadBalancers) sync(ctx context.Context, log *slog.Logger) error {
	var views []*state.LoadBalancerView
	err := c.Store.View(ctx, func(tx store.ReadTx) error {
		views = views[:0]
		c.targets.Begin()
		kvs, err := tx.List(state.LoadBalancersPrefix, "", 0)
		if err != nil {
			return err
		}
		for _, kv := range kvs {
			name := strings.TrimPrefix(kv.Key, state.LoadBalancersPrefix)
			v, ok, err := state.ReadLoadBalancer(tx, c.ARNs, name, &c.targets)
			if err != nil {
				return err
			}
			if ok {
				views = append(views, v)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	certs := loadCertificate(c.ARNs, c.CertificateDir)
	var snap lb.Snapshot
	skipped := map[string]error{}
	seen := map[string]bool{}
	for _, v := range views {
		l, groups, bad := compileLoadBalancer(v, certs)
		snap.LoadBalancers = append(snap.LoadBalancers, l)
		for _, g := range groups {
			if !seen[g.ID] {
				seen[g.ID] = true
				snap.TargetGroups = append(snap.TargetGroups, g)
			}
		}
		for k, e := range bad {
			skipped[k] = e
		}
	}
	if err := c.Balancer.Apply(ctx, snap); err != nil {
		log.Warn("some listeners do not serve", "err", err)
	}
	// Each load balancer's state follows its listeners.
	problems := map[string][]string{}
	for _, st := range c.Balancer.Status() {
		if st.Err != nil {
			problems[st.LoadBalancerID] = append(problems[st.LoadBalancerID], st.Err.Error())
		}
	}
	for _, v := range views {
		for _, lv := range v.Listeners {
			if e := skipped[lv.Listener.ListenerArn]; e != nil {
				problems[v.LoadBalancer.LoadBalancerArn] = append(problems[v.LoadBalancer.LoadBalancerArn], e.Error())
			}
		}
	}
	if _, err := c.Store.Update(ctx, func(tx store.Tx) error {
		for _, v := range views {
			code, reason := elbv2types.LoadBalancerStateEnumActive, ""
			if p := problems[v.LoadBalancer.LoadBalancerArn]; len(p) > 0 {
				code, reason = elbv2types.LoadBalancerStateEnumActiveImpaired, strings.Join(p, "; ")
			}
			if _, err := state.SetLoadBalancerState(tx, v.LoadBalancer.LoadBalancerName, v.LoadBalancer.ID, code, reason); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return err
	}
	if c.Hosts != nil {
		entries := map[string]string{}
		for _, v := range views {
			if v.LoadBalancer.Address != "" && v.LoadBalancer.DNSName != "" {
				entries[v.LoadBalancer.DNSName] = v.LoadBalancer.Address
			}
		}
		if err := c.Hosts.Set(entries); err != nil {
			log.Warn("updating the hosts file", "path", c.Hosts.Path, "err", err)
		}
	}
	return nil
}

// record writes the queued health verdicts in one transaction: checker
// verdicts to the targets, and drained targets removed.
func (c *LoadBalancers) record(ctx context.Context) error {
	c.mu.Lock()
	batch := c.pending
	c.pending = nil
	c.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	_, err := c.Store.Update(ctx, func(tx store.Tx) error {
		for _, h := range batch {
			tgID, ok := targetGroupID(h.TargetGroupID)
			id, port, ok2 := splitTarget(h.TargetID)
			if !ok || !ok2 {
				continue
			}
			if h.State == lb.StateUnused && h.Reason == lb.ReasonNotRegistered {
				// Drained: nothing in flight any more, or the delay passed.
				if _, err := state.RemoveTarget(tx, tgID, id, port); err != nil {
					return err
				}
				continue
			}
			th := elbv2types.TargetHealth{
				State:       elbv2types.TargetHealthStateEnum(h.State),
				Reason:      elbv2types.TargetHealthReasonEnum(h.Reason),
				Description: h.Description,
			}
			if _, err := state.SetTargetHealth(tx, tgID, id, port, th); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		// Keep the verdicts for the next attempt.
		c.mu.Lock()
		c.pending = append(batch, c.pending...)
		c.mu.Unlock()
	}
	return err
}

// targetGroupID is the id at the end of a target group ARN.
func targetGroupID(arn string) (string, bool) {
	i := strings.LastIndexByte(arn, '/')
	if i < 0 || i == len(arn)-1 {
		return "", false
	}
	return arn[i+1:], true
}

// splitTarget splits a target name "<id>:<port>".
func splitTarget(name string) (string, int32, bool) {
	i := strings.LastIndexByte(name, ':')
	if i <= 0 {
		return "", 0, false
	}
	p, err := strconv.ParseInt(name[i+1:], 10, 32)
	if err != nil {
		return "", 0, false
	}
	return name[:i], int32(p), true
}
