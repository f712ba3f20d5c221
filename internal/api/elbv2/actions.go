package elbv2

import (
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/berthdev/berth/internal/awsmodel"
	"github.com/berthdev/berth/internal/awsmodel/elbv2types"
	"github.com/berthdev/berth/internal/state"
	"github.com/berthdev/berth/internal/store"
)

// Redirect components that keep the request's value.
const (
	keepProtocol = "#{protocol}"
	keepPort     = "#{port}"
	keepHost     = "#{host}"
	keepPath     = "/#{path}"
	keepQuery    = "#{query}"
)

// fixedResponseTypes are the content types a fixed response may have.
var fixedResponseTypes = []string{"text/plain", "text/css", "text/html", "application/javascript", "application/json"}

var fixedStatus = regexp.MustCompile(`^[245]\d\d$`)

// defaultWeight is the weight of a target group a forward action names
// without one.
const defaultWeight int32 = 1

// checkActions checks the actions of a listener's default rule or of a
// rule for a listener with protocol proto on load balancer lb, and returns
// them as AWS reports them: Order set, a forward action with both its
// TargetGroupArn (one group) and its ForwardConfig, a redirect with every
// component. ruleID is the rule the actions replace ("" for a new one), so
// its groups are not counted twice against the load balancer's limit.
//
// Berth provides the routing actions (forward, redirect, fixed-response);
// the authentication actions need identity providers it does not have.
func (s *Service) checkActions(tx store.ReadTx, lb *state.LoadBalancer, proto elbv2types.ProtocolEnum, ruleID string, actions []elbv2types.Action) ([]elbv2types.Action, error) {
	if len(actions) == 0 {
		return nil, validation("At least one action must be specified")
	}
	for _, a := range actions {
		switch a.Type {
		case elbv2types.ActionTypeEnumAuthenticateOidc, elbv2types.ActionTypeEnumAuthenticateCognito, elbv2types.ActionTypeEnumJwtValidation:
			return nil, invalidAction("Berth does not support %s actions: it provides forward, redirect and fixed-response", a.Type)
		}
	}
	if len(actions) > 1 {
		return nil, invalidAction("A rule must have exactly one forward, redirect or fixed-response action, and Berth supports no other actions")
	}
	a := actions[0]
	// An absent Order is reported as 1, the only action's place.
	out := elbv2types.Action{Type: a.Type, Order: new(int32(1))}
	if a.Order != nil {
		if o := *a.Order; o < 1 || o > 50000 {
			return nil, validation("Action order %d is not valid: it must be from 1 to 50000", o)
		}
		out.Order = new(*a.Order)
	}
	var err error
	switch a.Type {
	case elbv2types.ActionTypeEnumForward:
		if a.RedirectConfig != nil || a.FixedResponseConfig != nil {
			return nil, validation("A forward action takes TargetGroupArn or ForwardConfig only")
		}
		out.TargetGroupArn, out.ForwardConfig, err = s.checkForward(tx, lb, ruleID, a)
	case elbv2types.ActionTypeEnumRedirect:
		if a.TargetGroupArn != "" || a.ForwardConfig != nil || a.FixedResponseConfig != nil {
			return nil, validation("A redirect action takes RedirectConfig only")
		}
		out.RedirectConfig, err = checkRedirect(a.RedirectConfig, proto)
	case elbv2types.ActionTypeEnumFixedResponse:
		if a.TargetGroupArn != "" || a.ForwardConfig != nil || a.RedirectConfig != nil {
			return nil, validation("A fixed-response action takes FixedResponseConfig only")
		}
		out.FixedResponseConfig, err = checkFixedResponse(a.FixedResponseConfig)
	default:
		return nil, validation("Action type '%s' is not valid: use forward, redirect or fixed-response", a.Type)
	}
	if err != nil {
		return nil, err
	}
	return []elbv2types.Action{out}, nil
}

// checkForward checks a forward action's target groups: they exist, are
// at most five, have weights from 0 to 999, and are used by no other load
// balancer; the load balancer forwards to at most 100 groups.
//
// An absent weight is 1, as AWS reports a single TargetGroupArn; 0 sends
// the group no traffic, and a forward whose weights are all 0 is accepted
// as AWS accepts it (the load balancer then has nowhere to send requests).
// Stickiness is off unless enabled, and then needs its duration.
func (s *Service) checkForward(tx store.ReadTx, lb *state.LoadBalancer, ruleID string, a elbv2types.Action) (string, *elbv2types.ForwardActionConfig, error) {
	var tuples []elbv2types.TargetGroupTuple
	var sticky *elbv2types.TargetGroupStickinessConfig
	if a.ForwardConfig != nil {
		tuples = slices.Clone(a.ForwardConfig.TargetGroups)
		sticky = a.ForwardConfig.TargetGroupStickinessConfig
	}
	switch {
	case a.TargetGroupArn != "" && len(tuples) == 0:
		tuples = []elbv2types.TargetGroupTuple{{TargetGroupArn: a.TargetGroupArn}}
	case a.TargetGroupArn != "" && (len(tuples) != 1 || tuples[0].TargetGroupArn != a.TargetGroupArn):
		return "", nil, validation("With both TargetGroupArn and ForwardConfig, ForwardConfig must name exactly the one target group TargetGroupArn names")
	case len(tuples) == 0:
		return "", nil, validation("A forward action must specify a target group: TargetGroupArn or ForwardConfig")
	case len(tuples) > maxTargetGroupsPerAction:
		return "", nil, validation("A forward action can have at most %d target groups", maxTargetGroupsPerAction)
	}
	seen := map[string]bool{}
	for i, t := range tuples {
		w := defaultWeight
		if t.Weight != nil {
			w = *t.Weight
		}
		if w < 0 || w > 999 {
			return "", nil, validation("Target group weight %d is not valid: it must be from 0 to 999", w)
		}
		tuples[i].Weight = new(w)
		if seen[t.TargetGroupArn] {
			return "", nil, validation("Target group '%s' is specified more than once in the forward action", t.TargetGroupArn)
		}
		seen[t.TargetGroupArn] = true
		tg, err := s.targetGroup(tx, t.TargetGroupArn)
		if err != nil {
			return "", nil, err
		}
		if len(tg.LoadBalancerArns) > 0 && !slices.Contains(tg.LoadBalancerArns, lb.LoadBalancerArn) {
			return "", nil, elbv2types.NewTargetGroupAssociationLimitException("The following target groups cannot be associated with more than one load balancer: %s", tg.TargetGroupArn)
		}
	}
	stick := &elbv2types.TargetGroupStickinessConfig{Enabled: new(false)}
	if sticky != nil && awsmodel.Value(sticky.Enabled) {
		if sticky.DurationSeconds == nil {
			return "", nil, validation("A target group stickiness duration must be specified when stickiness is enabled")
		}
		if d := *sticky.DurationSeconds; d < 1 || d > 604800 {
			return "", nil, validation("Target group stickiness duration %d is not valid: it must be from 1 to 604800 seconds", d)
		}
		stick = &elbv2types.TargetGroupStickinessConfig{Enabled: new(true), DurationSeconds: new(*sticky.DurationSeconds)}
	}
	used, err := s.lbTargetGroupArns(tx, lb, ruleID)
	if err != nil {
		return "", nil, err
	}
	for arn := range seen {
		if !slices.Contains(used, arn) {
			used = append(used, arn)
		}
	}
	if len(used) > maxTargetGroupsPerLB {
		return "", nil, elbv2types.NewTooManyUniqueTargetGroupsPerLoadBalancerException("A load balancer can forward to at most %d target groups", maxTargetGroupsPerLB)
	}
	single := ""
	if len(tuples) == 1 {
		single = tuples[0].TargetGroupArn
	}
	return single, &elbv2types.ForwardActionConfig{TargetGroups: tuples, TargetGroupStickinessConfig: stick}, nil
}

// checkRedirect fills a redirect's components (each keeps the request's
// value unless given) and refuses one that would redirect to itself.
func checkRedirect(c *elbv2types.RedirectActionConfig, proto elbv2types.ProtocolEnum) (*elbv2types.RedirectActionConfig, error) {
	if c == nil {
		return nil, validation("A redirect action must specify RedirectConfig")
	}
	out := *c
	for _, f := range []struct {
		v   *string
		def string
	}{{&out.Protocol, keepProtocol}, {&out.Port, keepPort}, {&out.Host, keepHost}, {&out.Path, keepPath}, {&out.Query, keepQuery}} {
		if *f.v == "" {
			*f.v = f.def
		}
	}
	switch out.StatusCode {
	case elbv2types.RedirectActionStatusCodeEnumHttp_301, elbv2types.RedirectActionStatusCodeEnumHttp_302:
	default:
		return nil, validation("Redirect status code '%s' is not valid: use HTTP_301 or HTTP_302", out.StatusCode)
	}
	switch out.Protocol {
	case "HTTP", "HTTPS", keepProtocol:
	default:
		return nil, validation("Redirect protocol '%s' is not valid: use HTTP, HTTPS or #{protocol}", out.Protocol)
	}
	if proto == elbv2types.ProtocolEnumHttps && out.Protocol == "HTTP" {
		return nil, invalidAction("You cannot redirect HTTPS to HTTP")
	}
	if out.Port != keepPort {
		if n, err := strconv.Atoi(out.Port); err != nil || n < 1 || n > 65535 {
			return nil, validation("Redirect port '%s' is not valid: use a port from 1 to 65535 or #{port}", out.Port)
		}
	}
	switch {
	case !strings.HasPrefix(out.Path, "/") || len(out.Path) > 128:
		return nil, validation("Redirect path '%s' is not valid: it must begin with '/' and be at most 128 characters long", out.Path)
	case len(out.Host) > 128 || len(out.Query) > 128:
		return nil, validation("Redirect host and query can be at most 128 characters long")
	case out.Protocol == keepProtocol && out.Port == keepPort && out.Host == keepHost && out.Path == keepPath:
		return nil, invalidAction("The redirect would loop: change at least one of protocol, port, host or path")
	}
	return &out, nil
}

// checkFixedResponse checks a fixed response: a 2XX, 4XX or 5XX status, one
// of five content types, a body of at most 1024 bytes.
func checkFixedResponse(c *elbv2types.FixedResponseActionConfig) (*elbv2types.FixedResponseActionConfig, error) {
	if c == nil {
		return nil, validation("A fixed-response action must specify FixedResponseConfig")
	}
	switch {
	case !fixedStatus.MatchString(c.StatusCode):
		return nil, validation("Fixed response status code '%s' is not valid: use a 2XX, 4XX or 5XX code", c.StatusCode)
	case c.ContentType != "" && !slices.Contains(fixedResponseTypes, c.ContentType):
		return nil, validation("Fixed response content type '%s' is not valid: use one of %s", c.ContentType, strings.Join(fixedResponseTypes, ", "))
	case len(c.MessageBody) > 1024:
		return nil, validation("A fixed response message body can be at most 1024 characters long")
	}
	out := *c
	return &out, nil
}

// lbTargetGroupArns lists the target groups lb's listeners and rules
// forward to, leaving out rule skipRuleID.
func (s *Service) lbTargetGroupArns(tx store.ReadTx, lb *state.LoadBalancer, skipRuleID string) ([]string, error) {
	kvs, err := tx.List(state.ListenersLBPrefix(lb.ID), "", 0)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, kv := range kvs {
		l, err := state.Decode[state.Listener](kv)
		if err != nil {
			return nil, err
		}
		rules, err := state.ListRules(tx, l.ID)
		if err != nil {
			return nil, err
		}
		for _, r := range rules {
			if r.ID == skipRuleID {
				continue
			}
			for _, arn := range state.ForwardTargetGroups(r.Actions) {
				if !slices.Contains(out, arn) {
					out = append(out, arn)
				}
			}
		}
	}
	return out, nil
}

// setRefs moves rule ruleID's entries in the tg-refs index from the groups
// its old actions forward to to those its new ones do. A group that gains
// its first user records the load balancer (LoadBalancerArns) and its
// targets become initial; one that loses its last forgets it and its
// targets become unused.
func (s *Service) setRefs(tx store.Tx, ruleID, lbArn string, old, new []string) error {
	for _, arn := range old {
		if slices.Contains(new, arn) {
			continue
		}
		res, ok := s.arns.ParseELB(arn)
		if !ok {
			continue
		}
		if err := tx.Delete(state.TGRefKey(res.ID, ruleID)); err != nil {
			return err
		}
		used, err := state.TargetGroupInUse(tx, res.ID)
		if err != nil || used {
			return err
		}
		if err := s.setGroupUser(tx, res, ""); err != nil {
			return err
		}
	}
	for _, arn := range new {
		if slices.Contains(old, arn) {
			continue
		}
		res, ok := s.arns.ParseELB(arn)
		if !ok {
			continue
		}
		used, err := state.TargetGroupInUse(tx, res.ID)
		if err != nil {
			return err
		}
		if err := tx.Put(state.TGRefKey(res.ID, ruleID), []byte(lbArn)); err != nil {
			return err
		}
		if !used {
			if err := s.setGroupUser(tx, res, lbArn); err != nil {
				return err
			}
		}
	}
	return nil
}

// setGroupUser records lbArn ("" for none) as the load balancer using a
// target group, and moves its targets accordingly.
func (s *Service) setGroupUser(tx store.Tx, res state.ELBResource, lbArn string) error {
	tg, ok, err := state.Get[state.TargetGroup](tx, state.TargetGroupKey(res.Name))
	if err != nil || !ok || tg.ID != res.ID {
		return err
	}
	tg.LoadBalancerArns = nil
	if lbArn != "" {
		tg.LoadBalancerArns = []string{lbArn}
	}
	if err := state.Put(tx, state.TargetGroupKey(res.Name), tg); err != nil {
		return err
	}
	return state.SetTargetsInUse(tx, tg.ID, lbArn != "")
}
