package elbv2

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/berthdev/berth/internal/awsmodel"
	"github.com/berthdev/berth/internal/awsmodel/elbv2types"
	"github.com/berthdev/berth/internal/state"
	"github.com/berthdev/berth/internal/store"
)

// Rule priorities run from 1 (evaluated first) to 50000.
const maxPriority = 50000

func checkPriority(p int32) error {
	if p < 1 || p > maxPriority {
		return validation("Rule priority must be from 1 to %d", maxPriority)
	}
	return nil
}

func priorityInUse(p int32) error {
	return elbv2types.NewPriorityInUseException("Priority '%d' is currently in use", p)
}

// countRules counts lb's rules, default rules not included.
func (s *Service) countRules(tx store.ReadTx, lb *state.LoadBalancer) (int, error) {
	ls, err := s.listenersOf(tx, lb)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, l := range ls {
		c, err := tx.Count(state.RulesListenerPrefix(l.ID))
		if err != nil {
			return 0, err
		}
		n += c - 1
	}
	return n, nil
}

// CreateRule adds a rule to a listener at a free priority.
func (s *Service) CreateRule(ctx context.Context, in *elbv2types.CreateRuleInput) (*elbv2types.CreateRuleOutput, error) {
	if in.Priority == nil {
		return nil, validation("A rule priority must be specified")
	}
	priority := *in.Priority
	if err := checkPriority(priority); err != nil {
		return nil, err
	}
	if len(in.Transforms) > 0 {
		return nil, validation("Berth does not support rule transforms")
	}
	conds, err := checkConditions(in.Conditions)
	if err != nil {
		return nil, err
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	id, err := s.newID()
	if err != nil {
		return nil, err
	}
	var rec *state.Rule
	_, err = s.store.Update(ctx, func(tx store.Tx) error {
		l, err := s.listener(tx, in.ListenerArn)
		if err != nil {
			return err
		}
		lb, err := s.loadBalancerOf(tx, l)
		if err != nil {
			return err
		}
		rules, err := state.ListRules(tx, l.ID)
		if err != nil {
			return err
		}
		for _, r := range rules {
			if r.PriorityValue() == int(priority) {
				return priorityInUse(priority)
			}
		}
		n, err := s.countRules(tx, lb)
		if err != nil {
			return err
		}
		if n >= maxRulesPerLB {
			return elbv2types.NewTooManyRulesException("A load balancer can have at most %d rules, not counting default rules", maxRulesPerLB)
		}
		actions, err := s.checkActions(tx, lb, l.Protocol, "", in.Actions)
		if err != nil {
			return err
		}
		rec = &state.Rule{
			Rule: elbv2types.Rule{
				RuleArn:    s.arns.ListenerRule(lb.LoadBalancerName, lb.ID, l.ID, id),
				Priority:   strconv.Itoa(int(priority)),
				Conditions: conds,
				Actions:    actions,
				IsDefault:  new(false),
			},
			ID: id, ListenerArn: l.ListenerArn, LoadBalancerArn: lb.LoadBalancerArn, Tags: slices.Clone(in.Tags),
		}
		if err := s.setRefs(tx, id, lb.LoadBalancerArn, nil, state.ForwardTargetGroups(actions)); err != nil {
			return err
		}
		return state.Create(tx, state.RuleKey(l.ID, id), rec)
	})
	if err != nil {
		return nil, err
	}
	return &elbv2types.CreateRuleOutput{Rules: []elbv2types.Rule{rec.Rule}}, nil
}

// priorityKey orders rules in markers: the priority, zero-padded, the
// default rule last.
func priorityKey(r *state.Rule) string { return fmt.Sprintf("%010d", r.PriorityValue()) }

// DescribeRules describes the named rules, or a listener's by priority with
// its default rule last (Priority "default", IsDefault true).
func (s *Service) DescribeRules(ctx context.Context, in *elbv2types.DescribeRulesInput) (*elbv2types.DescribeRulesOutput, error) {
	if (in.ListenerArn == "") == (len(in.RuleArns) == 0) {
		return nil, validation("You must specify either listener rule ARNs or a listener ARN, not both")
	}
	p, err := newPage(in.PageSize, in.Marker)
	if err != nil {
		return nil, err
	}
	out := &elbv2types.DescribeRulesOutput{Rules: []elbv2types.Rule{}}
	err = s.store.View(ctx, func(tx store.ReadTx) error {
		if len(in.RuleArns) > 0 {
			for _, arn := range in.RuleArns {
				r, err := s.rule(tx, arn)
				if err != nil {
					return err
				}
				out.Rules = append(out.Rules, r.Rule)
			}
			return nil
		}
		l, err := s.listener(tx, in.ListenerArn)
		if err != nil {
			return err
		}
		rules, err := state.ListRules(tx, l.ID)
		if err != nil {
			return err
		}
		rules, out.NextMarker = pageSlice(rules, priorityKey, p)
		for _, r := range rules {
			out.Rules = append(out.Rules, r.Rule)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ModifyRule replaces a rule's conditions, its actions, or both. The
// default rule takes new actions (its listener's default actions) only.
func (s *Service) ModifyRule(ctx context.Context, in *elbv2types.ModifyRuleInput) (*elbv2types.ModifyRuleOutput, error) {
	if len(in.Transforms) > 0 {
		return nil, validation("Berth does not support rule transforms")
	}
	if len(in.Conditions) == 0 && len(in.Actions) == 0 {
		return nil, validation("Either conditions or actions must be specified")
	}
	var conds []elbv2types.RuleCondition
	if len(in.Conditions) > 0 {
		var err error
		if conds, err = checkConditions(in.Conditions); err != nil {
			return nil, err
		}
	}
	var rec *state.Rule
	_, err := s.store.Update(ctx, func(tx store.Tx) error {
		r, err := s.rule(tx, in.RuleArn)
		if err != nil {
			return err
		}
		if awsmodel.Value(r.IsDefault) && conds != nil {
			return elbv2types.NewOperationNotPermittedException("The conditions of default rule '%s' cannot be modified", r.RuleArn)
		}
		l, err := s.listener(tx, r.ListenerArn)
		if err != nil {
			return err
		}
		lb, err := s.loadBalancerOf(tx, l)
		if err != nil {
			return err
		}
		if conds != nil {
			r.Conditions = conds
		}
		if len(in.Actions) > 0 {
			actions, err := s.checkActions(tx, lb, l.Protocol, r.ID, in.Actions)
			if err != nil {
				return err
			}
			if awsmodel.Value(r.IsDefault) {
				l.DefaultActions = actions
				if err := state.Put(tx, state.ListenerKey(l.LoadBalancerID, l.ID), l); err != nil {
					return err
				}
			}
			rec = r
			return s.replaceActions(tx, r, actions)
		}
		rec = r
		return state.Put(tx, state.RuleKey(l.ID, r.ID), r)
	})
	if err != nil {
		return nil, err
	}
	return &elbv2types.ModifyRuleOutput{Rules: []elbv2types.Rule{rec.Rule}}, nil
}

// DeleteRule deletes a rule; a listener's default rule goes only with the
// listener.
func (s *Service) DeleteRule(ctx context.Context, in *elbv2types.DeleteRuleInput) (*elbv2types.DeleteRuleOutput, error) {
	_, err := s.store.Update(ctx, func(tx store.Tx) error {
		r, err := s.rule(tx, in.RuleArn)
		if err != nil {
			return err
		}
		if awsmodel.Value(r.IsDefault) {
			return elbv2types.NewOperationNotPermittedException("Default rule '%s' cannot be deleted", r.RuleArn)
		}
		if err := s.setRefs(tx, r.ID, r.LoadBalancerArn, state.ForwardTargetGroups(r.Actions), nil); err != nil {
			return err
		}
		res, _ := s.arns.ParseELB(r.RuleArn)
		return tx.Delete(state.RuleKey(res.ListenerID, r.ID))
	})
	if err != nil {
		return nil, err
	}
	return &elbv2types.DeleteRuleOutput{}, nil
}

// SetRulePriorities gives rules new priorities in one step, so two rules
// can swap theirs. Each listener's priorities stay unique.
func (s *Service) SetRulePriorities(ctx context.Context, in *elbv2types.SetRulePrioritiesInput) (*elbv2types.SetRulePrioritiesOutput, error) {
	if len(in.RulePriorities) == 0 {
		return nil, validation("At least one rule priority must be specified")
	}
	seenRule := map[string]bool{}
	for _, rp := range in.RulePriorities {
		if rp.Priority == nil {
			return nil, validation("A priority must be specified for rule '%s'", rp.RuleArn)
		}
		if err := checkPriority(*rp.Priority); err != nil {
			return nil, err
		}
		if seenRule[rp.RuleArn] {
			return nil, validation("Rule '%s' was specified more than once", rp.RuleArn)
		}
		seenRule[rp.RuleArn] = true
	}
	out := &elbv2types.SetRulePrioritiesOutput{Rules: []elbv2types.Rule{}}
	_, err := s.store.Update(ctx, func(tx store.Tx) error {
		out.Rules = out.Rules[:0]
		changed := map[string][]*state.Rule{} // by listener id
		for _, rp := range in.RulePriorities {
			r, err := s.rule(tx, rp.RuleArn)
			if err != nil {
				return err
			}
			if awsmodel.Value(r.IsDefault) {
				return elbv2types.NewOperationNotPermittedException("The priority of default rule '%s' cannot be changed", r.RuleArn)
			}
			r.Priority = strconv.Itoa(int(*rp.Priority))
			res, _ := s.arns.ParseELB(r.RuleArn)
			changed[res.ListenerID] = append(changed[res.ListenerID], r)
		}
		for listenerID, rules := range changed {
			final := map[int]string{}
			for _, r := range rules {
				if other, dup := final[r.PriorityValue()]; dup && other != r.ID {
					return validation("Priority '%s' was provided multiple times", r.Priority)
				}
				final[r.PriorityValue()] = r.ID
			}
			existing, err := state.ListRules(tx, listenerID)
			if err != nil {
				return err
			}
			for _, e := range existing {
				if awsmodel.Value(e.IsDefault) || seenRule[e.RuleArn] {
					continue
				}
				if _, taken := final[e.PriorityValue()]; taken {
					return priorityInUse(int32(e.PriorityValue()))
				}
			}
			for _, r := range rules {
				if err := state.Put(tx, state.RuleKey(listenerID, r.ID), r); err != nil {
					return err
				}
			}
		}
		for _, rp := range in.RulePriorities {
			r, err := s.rule(tx, rp.RuleArn)
			if err != nil {
				return err
			}
			out.Rules = append(out.Rules, r.Rule)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
