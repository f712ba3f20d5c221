package ecs

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/berthdev/berth/internal/api/paging"
	"github.com/berthdev/berth/internal/awsmodel/ecstypes"
	"github.com/berthdev/berth/internal/state"
	"github.com/berthdev/berth/internal/store"
)

// Attribute rules from the ECS documentation.
const maxCustomAttributes = 10

var (
	attrNameRE  = regexp.MustCompile(`^[a-zA-Z0-9_./\\-]{1,128}$`)
	attrValueRE = regexp.MustCompile(`^[a-zA-Z0-9_.@/\\: -]{1,128}$`)
)

// builtinAttribute reports whether an attribute is one the agent sets (not
// counted against the custom attribute limit).
func builtinAttribute(name string) bool {
	return strings.HasPrefix(name, "ecs.") || strings.HasPrefix(name, "com.amazonaws.ecs.")
}

func checkAttribute(a ecstypes.Attribute, withValue bool) error {
	if a.TargetType != "" && a.TargetType != ecstypes.TargetTypeContainerInstance {
		return invalidParam("Attribute %q: the only targetType is container-instance.", a.Name)
	}
	if !attrNameRE.MatchString(a.Name) {
		return invalidParam("Attribute name %q must be 1 to 128 letters, numbers, hyphens, underscores, periods, forward slashes or back slashes.", a.Name)
	}
	if withValue && a.Value != "" && (!attrValueRE.MatchString(a.Value) || strings.TrimSpace(a.Value) != a.Value) {
		return invalidParam("Attribute %q: values are 1 to 128 letters, numbers, hyphens, underscores, periods, at signs, slashes, colons or spaces, with no leading or trailing space.", a.Name)
	}
	if a.TargetId == "" {
		return invalidParam("Attribute %q needs a targetId: the container instance ID or ARN.", a.Name)
	}
	if !state.IsARN(a.TargetId) && a.TargetType == "" {
		return invalidParam("Attribute %q: targetType is required when targetId is a short ID rather than the full ARN.", a.Name)
	}
	return nil
}

// instanceFor resolves an attribute's target within cluster.
func (s *Service) instanceFor(tx store.ReadTx, cluster, target string) (string, *state.ContainerInstance, error) {
	c, id, ok := s.arns.ContainerInstanceID(target)
	if !ok || (c != "" && c != cluster) {
		return "", nil, ecstypes.NewTargetNotFoundException("Could not find %s.", target)
	}
	key := state.InstanceKey(cluster, id)
	ci, ok, err := state.Get[state.ContainerInstance](tx, key)
	if err != nil {
		return "", nil, err
	}
	if !ok {
		return "", nil, ecstypes.NewTargetNotFoundException("Could not find %s.", target)
	}
	return key, ci, nil
}

// PutAttributes creates or updates custom attributes on container instances.
func (s *Service) PutAttributes(ctx context.Context, in *ecstypes.PutAttributesRequest) (*ecstypes.PutAttributesResponse, error) {
	if len(in.Attributes) > maxCustomAttributes {
		return nil, invalidParam("You can put at most %d attributes in one call.", maxCustomAttributes)
	}
	for _, a := range in.Attributes {
		if err := checkAttribute(a, true); err != nil {
			return nil, err
		}
	}
	err := s.changeAttributes(ctx, in.Cluster, in.Attributes, func(ci *state.ContainerInstance, a ecstypes.Attribute) error {
		stored := ecstypes.Attribute{Name: a.Name, Value: a.Value}
		if i := slices.IndexFunc(ci.Attributes, func(x ecstypes.Attribute) bool { return x.Name == a.Name }); i >= 0 {
			ci.Attributes[i] = stored
		} else {
			ci.Attributes = append(ci.Attributes, stored)
		}
		custom := 0
		for _, x := range ci.Attributes {
			if !builtinAttribute(x.Name) {
				custom++
			}
		}
		if custom > maxCustomAttributes {
			return ecstypes.NewAttributeLimitExceededException("A container instance can have at most %d custom attributes; %s would have %d.", maxCustomAttributes, a.TargetId, custom)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &ecstypes.PutAttributesResponse{Attributes: in.Attributes}, nil
}

// DeleteAttributes removes custom attributes from container instances.
func (s *Service) DeleteAttributes(ctx context.Context, in *ecstypes.DeleteAttributesRequest) (*ecstypes.DeleteAttributesResponse, error) {
	for _, a := range in.Attributes {
		if err := checkAttribute(a, false); err != nil {
			return nil, err
		}
	}
	err := s.changeAttributes(ctx, in.Cluster, in.Attributes, func(ci *state.ContainerInstance, a ecstypes.Attribute) error {
		ci.Attributes = slices.DeleteFunc(ci.Attributes, func(x ecstypes.Attribute) bool { return x.Name == a.Name })
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &ecstypes.DeleteAttributesResponse{Attributes: in.Attributes}, nil
}

// changeAttributes applies change to the target instance of each attribute,
// all in one transaction: an instance named by several attributes is loaded
// once and sees the earlier changes.
func (s *Service) changeAttributes(ctx context.Context, clusterRef string, attrs []ecstypes.Attribute, change func(*state.ContainerInstance, ecstypes.Attribute) error) error {
	_, err := s.store.Update(ctx, func(tx store.Tx) error {
		cluster, err := s.activeCluster(tx, clusterRef)
		if err != nil {
			return err
		}
		changed := map[string]*state.ContainerInstance{}
		for _, a := range attrs {
			key, ci, err := s.instanceFor(tx, cluster.ClusterName, a.TargetId)
			if err != nil {
				return err
			}
			if prev, ok := changed[key]; ok {
				ci = prev
			}
			if err := change(ci, a); err != nil {
				return err
			}
			changed[key] = ci
		}
		for key, ci := range changed {
			if err := state.Put(tx, key, ci); err != nil {
				return err
			}
		}
		return nil
	})
	return err
}

// ListAttributes lists the attributes of a cluster's container instances,
// filtered by name and value, at most maxResults per page. A page may end
// inside one instance's attributes: the token names the instance and the
// position of the last attribute returned.
func (s *Service) ListAttributes(ctx context.Context, in *ecstypes.ListAttributesRequest) (*ecstypes.ListAttributesResponse, error) {
	if in.TargetType != ecstypes.TargetTypeContainerInstance {
		return nil, invalidParam("targetType must be container-instance.")
	}
	if in.AttributeValue != "" && in.AttributeName == "" {
		return nil, invalidParam("attributeValue can only be used together with attributeName.")
	}
	p, err := newPage(in.MaxResults, in.NextToken, 100)
	if err != nil {
		return nil, err
	}
	resumeKey, resumeIdx := "", -1
	if p.After != "" {
		k, idx, ok := strings.Cut(p.After, sepToken)
		n, err := strconv.Atoi(idx)
		if !ok || err != nil || n < 0 {
			return nil, invalidParam("The nextToken is not valid: pass the nextToken from the previous response unchanged.")
		}
		resumeKey, resumeIdx = k, n
	}
	out := &ecstypes.ListAttributesResponse{}
	err = s.store.View(ctx, func(tx store.ReadTx) error {
		cluster, err := s.activeCluster(tx, in.Cluster)
		if err != nil {
			return err
		}
		prefix := state.InstancesClusterPrefix(cluster.ClusterName)
		// collect appends the matching attributes of one instance from
		// position from on, and reports whether the page is full.
		collect := func(kv store.KV, from int) (bool, error) {
			ci, err := state.Decode[state.ContainerInstance](kv)
			if err != nil {
				return false, err
			}
			for i := from; i < len(ci.Attributes); i++ {
				a := ci.Attributes[i]
				if (in.AttributeName != "" && a.Name != in.AttributeName) || (in.AttributeValue != "" && a.Value != in.AttributeValue) {
					continue
				}
				out.Attributes = append(out.Attributes, ecstypes.Attribute{
					Name: a.Name, Value: a.Value,
					TargetType: ecstypes.TargetTypeContainerInstance,
					TargetId:   ci.ContainerInstanceArn,
				})
				if len(out.Attributes) == p.Limit {
					out.NextToken = paging.Token(kv.Key + sepToken + strconv.Itoa(i))
					return true, nil
				}
			}
			return false, nil
		}
		after := ""
		if resumeKey != "" {
			if !strings.HasPrefix(resumeKey, prefix) {
				return invalidParam("The nextToken belongs to another cluster's listing.")
			}
			kv, ok, err := tx.Get(resumeKey)
			if err != nil {
				return err
			}
			if ok {
				if full, err := collect(kv, resumeIdx+1); full || err != nil {
					return err
				}
			}
			after = resumeKey
		}
		_, err = scan(tx, prefix, page{After: after, Limit: -1}, func(kv store.KV) (bool, error) {
			full, err := collect(kv, 0)
			if full {
				return false, errStop
			}
			return false, err
		})
		if errors.Is(err, errStop) {
			return nil
		}
		return err
	})
	return out, err
}

// sepToken separates the instance key from the attribute position in a
// ListAttributes token.
const sepToken = "\x00"
