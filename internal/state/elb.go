package state

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/awsmodel"
	"github.com/berthdev/berth/internal/awsmodel/elbv2types"
	"github.com/berthdev/berth/internal/errdefs"
	"github.com/berthdev/berth/internal/store"
)

// ELBv2 key layout. The ELBv2 API (package api/elbv2) writes every key;
// the data plane's wiring watches the /elb/ prefix (there is no separate
// generation counter: every change is a write under it), rebuilds the
// routing of the load balancers a change touches from the records
// (ReadLoadBalancer reads everything one load balancer needs, in one
// snapshot) and writes back only what the data plane observes: load
// balancer state (SetLoadBalancerState) and target health
// (SetTargetHealth, RemoveTarget).
//
//	/elb/lbs/<name>                                      LoadBalancer
//	/elb/addresses/<127.0.x.y>                           index: the loopback address a load balancer holds (value: its name)
//	/elb/address-seq                                     the next loopback address to try (decimal counter)
//	/elb/stickiness-key                                  the key of the stickiness cookies' values (raw bytes)
//	/elb/listeners/<lb id>/<listener id>                 Listener
//	/elb/rules/<listener id>/<rule id>                   Rule (the listener's default rule included)
//	/elb/tgs/<name>                                      TargetGroup
//	/elb/tg-refs/<tg id>/<rule id>                       index: rules whose actions forward to the group (value: the load balancer's ARN)
//	/elb/targets/<tg id>/<target id>:<port>              Target, with its health
//	/elb/draining/<until, unix ms, 13 digits>/<tg id>/<target id>:<port>
//	                                                     index: draining targets by when they are removed (value: empty)
//
// Load balancers and target groups are keyed by name (unique per region,
// and part of their ARNs, so an ARN resolves with one read and a check of
// the id); listeners, rules and targets by their parents' ids, so a load
// balancer's listeners, a listener's rules and a group's targets are one
// bounded List each.
//
// Target health is a small state machine shared by three writers:
//
//	RegisterTarget ──► initial (Elb.RegistrationInProgress)   group used by a listener or rule
//	               └─► unused  (Target.NotInUse)               group not used
//	SetTargetsInUse moves targets between those two as the group gains or loses its last user.
//	SetTargetHealth (data plane): initial|healthy|unhealthy|unavailable ─► any of those four
//	DeregisterTarget ──► draining (Target.DeregistrationInProgress) until DrainUntil, then
//	ReapDrainedTargets (or the data plane's RemoveTarget once nothing is in flight) deletes it.
//
// A target is never written by the data plane while draining or unused, so
// the API's transitions cannot be undone by a late health check.
const (
	ELBPrefix             = "/elb/"
	LoadBalancersPrefix   = "/elb/lbs/"
	LBAddressesPrefix     = "/elb/addresses/"
	LBAddressSeqKey       = "/elb/address-seq"
	StickinessKeyKey      = "/elb/stickiness-key"
	ListenersPrefix       = "/elb/listeners/"
	RulesPrefix           = "/elb/rules/"
	TargetGroupsPrefix    = "/elb/tgs/"
	TGRefsPrefix          = "/elb/tg-refs/"
	TargetsPrefix         = "/elb/targets/"
	DrainingTargetsPrefix = "/elb/draining/"
)

// LoadBalancer is one stored Application Load Balancer: the ELBv2 shape
// plus its attributes, tags and the loopback address its listeners bind.
type LoadBalancer struct {
	elbv2types.LoadBalancer
	// ID is the 16-hex-digit id at the end of its ARN.
	ID string `json:"berthId"`
	// Address is the loopback address (127.0.x.y) the data plane binds the
	// listeners to; the DNS name resolves to it.
	Address string `json:"berthAddress"`
	// Attributes holds every load balancer attribute with its value,
	// defaults included; a key missing from an older record has its default.
	Attributes map[string]string `json:"berthAttributes,omitempty"`
	Tags       []elbv2types.Tag  `json:"berthTags,omitempty"`
}

// Listener is one stored listener.
type Listener struct {
	elbv2types.Listener
	ID             string `json:"berthId"`
	LoadBalancerID string `json:"berthLoadBalancerId"`
	// DefaultRuleArn is the ARN of its default rule, a Rule record whose
	// actions are the listener's DefaultActions.
	DefaultRuleArn string           `json:"berthDefaultRuleArn"`
	Tags           []elbv2types.Tag `json:"berthTags,omitempty"`
}

// Rule is one stored listener rule. Priority is "1" to "50000", or
// "default" for the default rule (IsDefault).
type Rule struct {
	elbv2types.Rule
	ID              string           `json:"berthId"`
	ListenerArn     string           `json:"berthListenerArn"`
	LoadBalancerArn string           `json:"berthLoadBalancerArn"`
	Tags            []elbv2types.Tag `json:"berthTags,omitempty"`
}

// PriorityValue is the rule's priority as a number; the default rule sorts
// last.
func (r *Rule) PriorityValue() int {
	if awsmodel.Value(r.IsDefault) {
		return math.MaxInt32
	}
	n, err := strconv.Atoi(r.Priority)
	if err != nil {
		return math.MaxInt32
	}
	return n
}

// TargetGroup is one stored target group. LoadBalancerArns (in the shape)
// names the load balancer whose rules forward to it, if any: a group is
// used by at most one load balancer.
type TargetGroup struct {
	elbv2types.TargetGroup
	ID string `json:"berthId"`
	// Attributes holds every target group attribute with its value,
	// defaults included; a key missing from an older record has its default.
	Attributes map[string]string `json:"berthAttributes,omitempty"`
	Tags       []elbv2types.Tag  `json:"berthTags,omitempty"`
}

// DefaultDeregistrationDelay is deregistration_delay.timeout_seconds'
// default.
const DefaultDeregistrationDelay = 300 * time.Second

// DeregistrationDelay is how long a deregistered target drains.
func (tg *TargetGroup) DeregistrationDelay() time.Duration {
	n, err := strconv.Atoi(tg.Attributes["deregistration_delay.timeout_seconds"])
	if err != nil || n < 0 {
		return DefaultDeregistrationDelay
	}
	return time.Duration(n) * time.Second
}

// Target is one registered target of a target group, with its health.
type Target struct {
	TargetGroupArn string `json:"targetGroupArn"`
	// Target is the registration: its Id (an IP address, or an EC2-style
	// instance id), the Port traffic goes to (the group's unless the
	// registration overrode it; always set) and the AvailabilityZone given.
	Target elbv2types.TargetDescription `json:"target"`
	// Address is the IP address the data plane connects to: Id for an ip
	// target, the instance's host address for an instance target.
	Address string `json:"address"`
	// Health is what DescribeTargetHealth reports.
	Health       elbv2types.TargetHealth `json:"health"`
	RegisteredAt awsmodel.Time           `json:"registeredAt"`
	// DrainUntil is when a draining target's record goes: when it was
	// deregistered plus the group's deregistration delay.
	DrainUntil *awsmodel.Time `json:"drainUntil,omitempty"`
}

// Target health descriptions, as AWS words them.
const (
	DescRegistrationInProgress   = "Target registration is in progress"
	DescInitialHealthChecking    = "Initial health checks in progress"
	DescNotInUse                 = "Target group is not configured to receive traffic from the load balancer"
	DescNotRegistered            = "Target is not registered to the target group"
	DescDeregistrationInProgress = "Target deregistration is in progress"
	DescFailedHealthChecks       = "Health checks failed"
	DescTimeout                  = "Request timed out"
	DescHealthCheckDisabled      = "Health checks are disabled"
	DescInternalError            = "Health checks failed due to an internal error"
)

// ResponseCodeMismatch is the description of a target whose health check
// answered code.
func ResponseCodeMismatch(code int) string {
	return fmt.Sprintf("Health checks failed with these codes: [%d]", code)
}

func registeredHealth(inUse bool) elbv2types.TargetHealth {
	if inUse {
		return elbv2types.TargetHealth{State: elbv2types.TargetHealthStateEnumInitial, Reason: elbv2types.TargetHealthReasonEnumElbRegistrationInProgress, Description: DescRegistrationInProgress}
	}
	return elbv2types.TargetHealth{State: elbv2types.TargetHealthStateEnumUnused, Reason: elbv2types.TargetHealthReasonEnumTargetNotInUse, Description: DescNotInUse}
}

// checkerOwned reports whether the health checker may change a target in
// state s.
func checkerOwned(s elbv2types.TargetHealthStateEnum) bool {
	switch s {
	case elbv2types.TargetHealthStateEnumInitial, elbv2types.TargetHealthStateEnumHealthy,
		elbv2types.TargetHealthStateEnumUnhealthy, elbv2types.TargetHealthStateEnumUnavailable:
		return true
	}
	return false
}

// LoadBalancerKey is the key of load balancer name.
func LoadBalancerKey(name string) string { return LoadBalancersPrefix + name }

// ListenersLBPrefix is the prefix of the listeners of load balancer lbID.
func ListenersLBPrefix(lbID string) string { return ListenersPrefix + lbID + "/" }

// ListenerKey is the key of listener id of load balancer lbID.
func ListenerKey(lbID, id string) string { return ListenersLBPrefix(lbID) + id }

// RulesListenerPrefix is the prefix of the rules of listener listenerID.
func RulesListenerPrefix(listenerID string) string { return RulesPrefix + listenerID + "/" }

// RuleKey is the key of rule id of listener listenerID.
func RuleKey(listenerID, id string) string { return RulesListenerPrefix(listenerID) + id }

// TargetGroupKey is the key of target group name.
func TargetGroupKey(name string) string { return TargetGroupsPrefix + name }

// TGRefsPrefixFor is the prefix of the rules that forward to target group tgID.
func TGRefsPrefixFor(tgID string) string { return TGRefsPrefix + tgID + "/" }

// TGRefKey records that rule ruleID forwards to target group tgID.
func TGRefKey(tgID, ruleID string) string { return TGRefsPrefixFor(tgID) + ruleID }

// TargetsTGPrefix is the prefix of the targets of target group tgID.
func TargetsTGPrefix(tgID string) string { return TargetsPrefix + tgID + "/" }

// TargetName is a target's name within its group: "<id>:<port>".
func TargetName(id string, port int32) string { return id + ":" + strconv.Itoa(int(port)) }

// TargetKey is the key of target id:port of target group tgID.
func TargetKey(tgID, id string, port int32) string {
	return TargetsTGPrefix(tgID) + TargetName(id, port)
}

func drainingKey(until time.Time, tgID, id string, port int32) string {
	return fmt.Sprintf("%s%013d/%s/%s", DrainingTargetsPrefix, until.UnixMilli(), tgID, TargetName(id, port))
}

// LBAddressKey is the index key of loopback address addr.
func LBAddressKey(addr string) string { return LBAddressesPrefix + addr }

// loopbackSpace is how many addresses 127.0.x.y with x and y in 1..254
// there are.
const loopbackSpace = 254 * 254

// AllocateLoopback takes a free loopback address 127.0.x.y (x and y in
// 1..254, so never 127.0.0.1 nor a .0 or .255) for load balancer name. A
// counter walks the space so an address freed by a deleted load balancer is
// not handed out again until the counter comes round; an address in use is
// never handed out.
func AllocateLoopback(tx store.Tx, name string) (string, error) {
	seq := 0
	if kv, ok, err := tx.Get(LBAddressSeqKey); err != nil {
		return "", err
	} else if ok {
		seq, _ = strconv.Atoi(string(kv.Value))
	}
	for range loopbackSpace {
		n := seq % loopbackSpace
		seq++
		addr := fmt.Sprintf("127.0.%d.%d", 1+n/254, 1+n%254)
		if _, used, err := tx.Get(LBAddressKey(addr)); err != nil {
			return "", err
		} else if used {
			continue
		}
		if err := tx.Put(LBAddressSeqKey, []byte(strconv.Itoa(seq%loopbackSpace))); err != nil {
			return "", err
		}
		return addr, tx.Put(LBAddressKey(addr), []byte(name))
	}
	return "", fmt.Errorf("every loopback address for load balancers is in use: %w", errdefs.ErrFailedPrecondition)
}

// StickinessKey returns the key that the data plane keys its stickiness
// cookies with (lb.Config.StickinessKey), storing candidate, a random key
// of the caller's, when the store has none yet. One key for the life of
// the store keeps clients on their targets across restarts, and on
// whichever control plane serves them.
func StickinessKey(tx store.Tx, candidate []byte) ([]byte, error) {
	kv, ok, err := tx.Get(StickinessKeyKey)
	if err != nil {
		return nil, err
	}
	if ok && len(kv.Value) >= minStickinessKey {
		return kv.Value, nil
	}
	// None yet, or one too short to key anything (damaged): the candidate.
	return candidate, tx.Put(StickinessKeyKey, candidate)
}

// minStickinessKey is the shortest stored stickiness key used.
const minStickinessKey = 16

// ReleaseLoopback frees a load balancer's address.
func ReleaseLoopback(tx store.Tx, addr string) error {
	err := tx.Delete(LBAddressKey(addr))
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil
	}
	return err
}

// SetLoadBalancerState records the data plane's view of load balancer name
// (with id, so a load balancer deleted and created again under the same name
// is left alone): active once its listeners are bound, failed with a reason
// when they cannot be. It reports whether it changed anything.
func SetLoadBalancerState(tx store.Tx, name, id string, code elbv2types.LoadBalancerStateEnum, reason string) (bool, error) {
	lb, ok, err := Get[LoadBalancer](tx, LoadBalancerKey(name))
	if err != nil || !ok || lb.ID != id {
		return false, err
	}
	if lb.State != nil && lb.State.Code == code && lb.State.Reason == reason {
		return false, nil
	}
	lb.State = &elbv2types.LoadBalancerState{Code: code, Reason: reason}
	return true, Put(tx, LoadBalancerKey(name), lb)
}

// ForwardTargetGroups lists the target groups actions forward to, each
// once, in order.
func ForwardTargetGroups(actions []elbv2types.Action) []string {
	var out []string
	add := func(arn string) {
		if arn != "" && !slices.Contains(out, arn) {
			out = append(out, arn)
		}
	}
	for _, a := range actions {
		if a.Type != elbv2types.ActionTypeEnumForward {
			continue
		}
		add(a.TargetGroupArn)
		if a.ForwardConfig != nil {
			for _, t := range a.ForwardConfig.TargetGroups {
				add(t.TargetGroupArn)
			}
		}
	}
	return out
}

// TargetGroupInUse reports whether a listener or rule forwards to target
// group tgID.
func TargetGroupInUse(tx store.ReadTx, tgID string) (bool, error) {
	kvs, err := tx.List(TGRefsPrefixFor(tgID), "", 1)
	return len(kvs) > 0, err
}

// GetTargetGroup reads the target group arn names; ok is false when there
// is none (another region's ARN, a deleted group, or a group of that name
// created since).
func GetTargetGroup(tx store.ReadTx, arns ARNs, arn string) (*TargetGroup, bool, error) {
	res, ok := arns.ParseELB(arn)
	if !ok || res.Type != ELBTargetGroup {
		return nil, false, nil
	}
	tg, ok, err := Get[TargetGroup](tx, TargetGroupKey(res.Name))
	if err != nil || !ok || tg.ID != res.ID {
		return nil, false, err
	}
	return tg, true, nil
}

// GetTarget reads target id:port of target group tgID.
func GetTarget(tx store.ReadTx, tgID, id string, port int32) (*Target, bool, error) {
	return Get[Target](tx, TargetKey(tgID, id, port))
}

// RegisterTarget registers t in target group tgID (t.Target.Port set, and
// t.Address). A new target starts initial or unused by whether the group is
// in use; a draining one is registered again the same way; a registered one
// keeps its health and takes the new address and zone. It reports whether
// the target is new.
func RegisterTarget(tx store.Tx, tgID string, t *Target, now time.Time) (bool, error) {
	key := TargetKey(tgID, t.Target.Id, awsmodel.Value(t.Target.Port))
	old, ok, err := Get[Target](tx, key)
	if err != nil {
		return false, err
	}
	if ok && old.DrainUntil == nil {
		old.Address, old.Target.AvailabilityZone = t.Address, t.Target.AvailabilityZone
		return false, Put(tx, key, old)
	}
	if ok {
		if err := tx.Delete(drainingKey(old.DrainUntil.Time, tgID, t.Target.Id, awsmodel.Value(t.Target.Port))); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			return false, err
		}
	}
	used, err := TargetGroupInUse(tx, tgID)
	if err != nil {
		return false, err
	}
	rec := *t
	rec.Health = registeredHealth(used)
	rec.RegisteredAt = awsmodel.Time{Time: now.Truncate(time.Millisecond)}
	rec.DrainUntil = nil
	return !ok, Put(tx, key, &rec)
}

// DeregisterTarget starts draining target id:port of group tgID for delay:
// it stays (state draining) until ReapDrainedTargets or the data plane
// removes it. A target no listener sends traffic to (unused), or a delay of
// zero, is removed at once; a draining one keeps its deadline. It reports
// whether the target was registered.
func DeregisterTarget(tx store.Tx, tgID, id string, port int32, delay time.Duration, now time.Time) (bool, error) {
	key := TargetKey(tgID, id, port)
	t, ok, err := Get[Target](tx, key)
	if err != nil || !ok {
		return false, err
	}
	if t.DrainUntil != nil {
		return true, nil
	}
	if delay <= 0 || t.Health.State == elbv2types.TargetHealthStateEnumUnused {
		return true, tx.Delete(key)
	}
	until := now.Add(delay).Truncate(time.Millisecond)
	t.DrainUntil = &awsmodel.Time{Time: until}
	t.Health = elbv2types.TargetHealth{State: elbv2types.TargetHealthStateEnumDraining, Reason: elbv2types.TargetHealthReasonEnumTargetDeregistrationInProgress, Description: DescDeregistrationInProgress}
	if err := tx.Put(drainingKey(until, tgID, id, port), nil); err != nil {
		return false, err
	}
	return true, Put(tx, key, t)
}

// SetTargetHealth records the health checker's verdict on target id:port
// of group tgID. It applies only while the target is initial, healthy,
// unhealthy or unavailable, and only a verdict among those: registration,
// use and draining belong to the API, so a verdict of unused or draining
// is ignored (a drained target is removed with RemoveTarget). It reports
// whether it changed the record.
func SetTargetHealth(tx store.Tx, tgID, id string, port int32, h elbv2types.TargetHealth) (bool, error) {
	if !checkerOwned(h.State) {
		return false, nil
	}
	key := TargetKey(tgID, id, port)
	t, ok, err := Get[Target](tx, key)
	if err != nil || !ok || !checkerOwned(t.Health.State) || t.Health == h {
		return false, err
	}
	t.Health = h
	return true, Put(tx, key, t)
}

// RemoveTarget deletes target id:port of group tgID and its draining index
// entry: the reaper's end of draining, or the data plane's when a draining
// target has no request in flight. It reports whether the target existed.
func RemoveTarget(tx store.Tx, tgID, id string, port int32) (bool, error) {
	key := TargetKey(tgID, id, port)
	t, ok, err := Get[Target](tx, key)
	if err != nil || !ok {
		return false, err
	}
	if t.DrainUntil != nil {
		if err := tx.Delete(drainingKey(t.DrainUntil.Time, tgID, id, port)); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			return false, err
		}
	}
	return true, tx.Delete(key)
}

// ReapDrainedTargets removes up to limit draining targets whose
// DrainUntil is not after now. next is the deadline of the first draining
// target left (zero when none is).
func ReapDrainedTargets(tx store.Tx, now time.Time, limit int) (removed int, next time.Time, err error) {
	kvs, err := tx.List(DrainingTargetsPrefix, "", limit+1)
	if err != nil {
		return 0, time.Time{}, err
	}
	for _, kv := range kvs {
		rest := strings.TrimPrefix(kv.Key, DrainingTargetsPrefix)
		parts := strings.SplitN(rest, "/", 3)
		ms, perr := strconv.ParseInt(parts[0], 10, 64)
		if perr != nil || len(parts) != 3 {
			// Not a key this package wrote: drop it rather than stall.
			if err := tx.Delete(kv.Key); err != nil {
				return removed, time.Time{}, err
			}
			continue
		}
		until := time.UnixMilli(ms)
		if until.After(now) || removed == limit {
			return removed, until, nil
		}
		if err := tx.Delete(kv.Key); err != nil {
			return removed, time.Time{}, err
		}
		if err := tx.Delete(TargetsPrefix + parts[1] + "/" + parts[2]); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			return removed, time.Time{}, err
		}
		removed++
	}
	return removed, time.Time{}, nil
}

// ListTargets returns every target of group tgID, draining ones included.
func ListTargets(tx store.ReadTx, tgID string) ([]*Target, error) {
	kvs, err := tx.List(TargetsTGPrefix(tgID), "", 0)
	if err != nil {
		return nil, err
	}
	out := make([]*Target, 0, len(kvs))
	for _, kv := range kvs {
		t, err := Decode[Target](kv)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// TargetCache keeps decoded targets from one read of every load balancer to
// the next, each for as long as its record is unchanged (its ModRevision):
// decoding is most of such a read, and between two reads few targets
// change. Begin starts a read; what the read before did not list is
// forgotten. The targets it returns are shared between reads and must not
// be modified. Not safe for concurrent use.
type TargetCache struct {
	prev, cur map[string]cachedTarget
}

type cachedTarget struct {
	rev int64
	t   *Target
}

// Begin starts a read.
func (c *TargetCache) Begin() {
	c.prev, c.cur = c.cur, make(map[string]cachedTarget, len(c.cur))
}

// List is ListTargets through the cache; a nil cache decodes every target.
func (c *TargetCache) List(tx store.ReadTx, tgID string) ([]*Target, error) {
	if c == nil {
		return ListTargets(tx, tgID)
	}
	if c.cur == nil {
		c.Begin()
	}
	kvs, err := tx.List(TargetsTGPrefix(tgID), "", 0)
	if err != nil {
		return nil, err
	}
	out := make([]*Target, 0, len(kvs))
	for _, kv := range kvs {
		e, ok := c.cur[kv.Key]
		if !ok || e.rev != kv.ModRevision {
			e, ok = c.prev[kv.Key]
		}
		if !ok || e.rev != kv.ModRevision {
			t, err := Decode[Target](kv)
			if err != nil {
				return nil, err
			}
			e = cachedTarget{rev: kv.ModRevision, t: t}
		}
		c.cur[kv.Key] = e
		out = append(out, e.t)
	}
	return out, nil
}

// SetTargetsInUse moves group tgID's targets as it gains its first user
// (unused → initial, Elb.RegistrationInProgress) or loses its last (every
// target but a draining one → unused, Target.NotInUse).
func SetTargetsInUse(tx store.Tx, tgID string, inUse bool) error {
	targets, err := ListTargets(tx, tgID)
	if err != nil {
		return err
	}
	for _, t := range targets {
		if t.DrainUntil != nil {
			continue
		}
		isUnused := t.Health.State == elbv2types.TargetHealthStateEnumUnused
		if inUse != isUnused {
			continue
		}
		t.Health = registeredHealth(inUse)
		if err := Put(tx, TargetKey(tgID, t.Target.Id, awsmodel.Value(t.Target.Port)), t); err != nil {
			return err
		}
	}
	return nil
}

// HostAddressAttribute is the container instance attribute that gives the
// address an instance target's traffic goes to: the agent's host, where
// tasks publish their host ports. An instance without it is taken to be
// the local agent, at LocalHostAddress.
const HostAddressAttribute = "berth.host-address"

// LocalHostAddress is where an instance target without a
// HostAddressAttribute is reached.
const LocalHostAddress = "127.0.0.1"

// InstanceHostAddress finds the live container instance whose EC2-style id
// is ec2ID (Ec2InstanceID) and returns the address its instance targets are
// reached at. ok is false when there is no such instance.
func InstanceHostAddress(tx store.ReadTx, ec2ID string) (addr string, ok bool, err error) {
	hex, found := strings.CutPrefix(ec2ID, "i-")
	if !found || hex == "" || strings.ContainsAny(hex, "/\x00") {
		return "", false, nil
	}
	// Instance ids start with the hex digits of their EC2-style id.
	kvs, err := tx.List(InstanceIDsPrefix+hex, "", 16)
	if err != nil {
		return "", false, err
	}
	for _, kv := range kvs {
		id := strings.TrimPrefix(kv.Key, InstanceIDsPrefix)
		if Ec2InstanceID(id) != ec2ID {
			continue
		}
		ci, ok, err := Get[ContainerInstance](tx, InstanceKey(string(kv.Value), id))
		if err != nil {
			return "", false, err
		}
		if !ok || ci.Status == InstanceInactive {
			continue
		}
		for _, a := range ci.Attributes {
			if a.Name == HostAddressAttribute && a.Value != "" {
				return a.Value, true, nil
			}
		}
		return LocalHostAddress, true, nil
	}
	return "", false, nil
}

// LoadBalancerView is everything the data plane needs to serve one load
// balancer, read in one snapshot.
type LoadBalancerView struct {
	LoadBalancer *LoadBalancer
	// Listeners in port order.
	Listeners []ListenerView
	// TargetGroups are the groups its rules forward to, by ARN.
	TargetGroups map[string]*TargetGroupView
}

// ListenerView is a listener with its rules by priority, the default rule
// last.
type ListenerView struct {
	Listener *Listener
	Rules    []*Rule
}

// TargetGroupView is a target group with its targets, draining ones
// included (they take no new requests).
type TargetGroupView struct {
	TargetGroup *TargetGroup
	Targets     []*Target
}

// ReadLoadBalancer reads load balancer name with its listeners, their
// rules, the target groups those forward to and their targets: one List per
// listener and per group. With a cache (optional), targets whose records
// have not changed since the cache's last read are not decoded again.
func ReadLoadBalancer(tx store.ReadTx, arns ARNs, name string, cache *TargetCache) (*LoadBalancerView, bool, error) {
	lb, ok, err := Get[LoadBalancer](tx, LoadBalancerKey(name))
	if err != nil || !ok {
		return nil, false, err
	}
	v := &LoadBalancerView{LoadBalancer: lb, TargetGroups: map[string]*TargetGroupView{}}
	kvs, err := tx.List(ListenersLBPrefix(lb.ID), "", 0)
	if err != nil {
		return nil, false, err
	}
	for _, kv := range kvs {
		l, err := Decode[Listener](kv)
		if err != nil {
			return nil, false, err
		}
		rules, err := ListRules(tx, l.ID)
		if err != nil {
			return nil, false, err
		}
		v.Listeners = append(v.Listeners, ListenerView{Listener: l, Rules: rules})
		for _, r := range rules {
			for _, arn := range ForwardTargetGroups(r.Actions) {
				if _, seen := v.TargetGroups[arn]; seen {
					continue
				}
				tg, ok, err := GetTargetGroup(tx, arns, arn)
				if err != nil {
					return nil, false, err
				}
				if !ok {
					continue
				}
				targets, err := cache.List(tx, tg.ID)
				if err != nil {
					return nil, false, err
				}
				v.TargetGroups[arn] = &TargetGroupView{TargetGroup: tg, Targets: targets}
			}
		}
	}
	slices.SortFunc(v.Listeners, func(a, b ListenerView) int {
		return int(awsmodel.Value(a.Listener.Port)) - int(awsmodel.Value(b.Listener.Port))
	})
	return v, true, nil
}

// ListRules returns the rules of listener listenerID by priority, the
// default rule last.
func ListRules(tx store.ReadTx, listenerID string) ([]*Rule, error) {
	kvs, err := tx.List(RulesListenerPrefix(listenerID), "", 0)
	if err != nil {
		return nil, err
	}
	out := make([]*Rule, 0, len(kvs))
	for _, kv := range kvs {
		r, err := Decode[Rule](kv)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b *Rule) int { return a.PriorityValue() - b.PriorityValue() })
	return out, nil
}

// CertificateFiles are the PEM files of the certificate named name in dir:
// <dir>/<name>.crt (the chain, leaf first) and <dir>/<name>.key. Berth has
// no certificate manager: the ARN arn:aws:acm:<region>:<account>:certificate/<name>
// (ARNs.Certificate) names this pair.
func CertificateFiles(dir, name string) (certFile, keyFile string) {
	return filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
}
