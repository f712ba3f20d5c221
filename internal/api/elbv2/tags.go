package elbv2

import (
	"context"
	"slices"
	"strings"

	"github.com/berthdev/berth/internal/awsmodel/elbv2types"
	"github.com/berthdev/berth/internal/state"
	"github.com/berthdev/berth/internal/store"
)

// maxTags is how many tags an ELB resource may carry.
const maxTags = 50

// checkTags applies ELB's rules to the tags of one request (the model
// checks lengths and characters): each key once, none starting with the
// reserved aws: prefix, at most 50.
func checkTags(tags []elbv2types.Tag) error {
	seen := make(map[string]bool, len(tags))
	for _, t := range tags {
		if seen[t.Key] {
			return elbv2types.NewDuplicateTagKeysException("Tag key was specified more than once: %s", t.Key)
		}
		seen[t.Key] = true
		if err := checkTagKey(t.Key); err != nil {
			return err
		}
	}
	if len(tags) > maxTags {
		return tooManyTags()
	}
	return nil
}

func checkTagKey(k string) error {
	if k == "" {
		return validation("A tag key must be specified")
	}
	if strings.HasPrefix(strings.ToLower(k), "aws:") {
		return validation("Tag keys starting with 'aws:' are reserved for AWS use: %s", k)
	}
	return nil
}

func tooManyTags() error {
	return elbv2types.NewTooManyTagsException("The quota for the number of tags that can be assigned to a resource (%d) has been reached", maxTags)
}

// resourceType is the ELB resource type an ARN names, from its resource
// part.
func resourceType(arn string) (string, error) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) == 6 && parts[0] == "arn" && parts[2] == "elasticloadbalancing" {
		for _, typ := range []string{state.ELBRule, state.ELBListener, state.ELBLoadBalancer, state.ELBTargetGroup} {
			if strings.HasPrefix(parts[5], arnKinds[typ].resource) {
				return typ, nil
			}
		}
	}
	return "", validation("'%s' is not a valid Elastic Load Balancing resource ARN", arn)
}

// taggable reads the tags of the resource arn names and returns a function
// that stores new ones.
func (s *Service) taggable(tx store.ReadTx, arn string) ([]elbv2types.Tag, func(store.Tx, []elbv2types.Tag) error, error) {
	typ, err := resourceType(arn)
	if err != nil {
		return nil, nil, err
	}
	switch typ {
	case state.ELBLoadBalancer:
		lb, err := s.loadBalancer(tx, arn)
		if err != nil {
			return nil, nil, err
		}
		return lb.Tags, func(tx store.Tx, tags []elbv2types.Tag) error {
			lb.Tags = tags
			return state.Put(tx, state.LoadBalancerKey(lb.LoadBalancerName), lb)
		}, nil
	case state.ELBTargetGroup:
		tg, err := s.targetGroup(tx, arn)
		if err != nil {
			return nil, nil, err
		}
		return tg.Tags, func(tx store.Tx, tags []elbv2types.Tag) error {
			tg.Tags = tags
			return state.Put(tx, state.TargetGroupKey(tg.TargetGroupName), tg)
		}, nil
	case state.ELBListener:
		l, err := s.listener(tx, arn)
		if err != nil {
			return nil, nil, err
		}
		return l.Tags, func(tx store.Tx, tags []elbv2types.Tag) error {
			l.Tags = tags
			return state.Put(tx, state.ListenerKey(l.LoadBalancerID, l.ID), l)
		}, nil
	default:
		r, err := s.rule(tx, arn)
		if err != nil {
			return nil, nil, err
		}
		res, _ := s.arns.ParseELB(arn)
		return r.Tags, func(tx store.Tx, tags []elbv2types.Tag) error {
			r.Tags = tags
			return state.Put(tx, state.RuleKey(res.ListenerID, r.ID), r)
		}, nil
	}
}

// AddTags adds or overwrites tags on load balancers, target groups,
// listeners and rules, all of them or none.
func (s *Service) AddTags(ctx context.Context, in *elbv2types.AddTagsInput) (*elbv2types.AddTagsOutput, error) {
	if len(in.ResourceArns) == 0 {
		return nil, validation("At least one resource ARN must be specified")
	}
	if len(in.Tags) == 0 {
		return nil, validation("At least one tag must be specified")
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	_, err := s.store.Update(ctx, func(tx store.Tx) error {
		for _, arn := range in.ResourceArns {
			tags, save, err := s.taggable(tx, arn)
			if err != nil {
				return err
			}
			tags = slices.Clone(tags)
			for _, t := range in.Tags {
				if i := slices.IndexFunc(tags, func(x elbv2types.Tag) bool { return x.Key == t.Key }); i >= 0 {
					tags[i].Value = t.Value
				} else {
					tags = append(tags, t)
				}
			}
			if len(tags) > maxTags {
				return tooManyTags()
			}
			if err := save(tx, tags); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &elbv2types.AddTagsOutput{}, nil
}

// RemoveTags removes tags by key; keys a resource lacks are ignored.
func (s *Service) RemoveTags(ctx context.Context, in *elbv2types.RemoveTagsInput) (*elbv2types.RemoveTagsOutput, error) {
	if len(in.ResourceArns) == 0 {
		return nil, validation("At least one resource ARN must be specified")
	}
	for _, k := range in.TagKeys {
		if err := checkTagKey(k); err != nil {
			return nil, err
		}
	}
	_, err := s.store.Update(ctx, func(tx store.Tx) error {
		for _, arn := range in.ResourceArns {
			tags, save, err := s.taggable(tx, arn)
			if err != nil {
				return err
			}
			kept := slices.DeleteFunc(slices.Clone(tags), func(t elbv2types.Tag) bool { return slices.Contains(in.TagKeys, t.Key) })
			if len(kept) == len(tags) {
				continue
			}
			if len(kept) == 0 {
				kept = nil
			}
			if err := save(tx, kept); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &elbv2types.RemoveTagsOutput{}, nil
}

// DescribeTags lists the tags of up to 20 resources.
func (s *Service) DescribeTags(ctx context.Context, in *elbv2types.DescribeTagsInput) (*elbv2types.DescribeTagsOutput, error) {
	if len(in.ResourceArns) == 0 {
		return nil, validation("At least one resource ARN must be specified")
	}
	if len(in.ResourceArns) > maxDescribeARNs {
		return nil, validation("You can specify up to %d resource ARNs", maxDescribeARNs)
	}
	out := &elbv2types.DescribeTagsOutput{TagDescriptions: []elbv2types.TagDescription{}}
	err := s.store.View(ctx, func(tx store.ReadTx) error {
		for _, arn := range in.ResourceArns {
			tags, _, err := s.taggable(tx, arn)
			if err != nil {
				return err
			}
			if tags == nil {
				tags = []elbv2types.Tag{}
			}
			out.TagDescriptions = append(out.TagDescriptions, elbv2types.TagDescription{ResourceArn: arn, Tags: tags})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
