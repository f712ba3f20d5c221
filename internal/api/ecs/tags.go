package ecs

import (
	"context"
	"slices"
	"strings"

	"github.com/berthdev/berth/internal/awsmodel/ecstypes"
	"github.com/berthdev/berth/internal/launch"
	"github.com/berthdev/berth/internal/state"
	"github.com/berthdev/berth/internal/store"
)

// maxTags is ECS's limit of tags per resource.
const maxTags = 50

// checkTags applies ECS's tag rules beyond the model's lengths: keys are
// unique within a request and the aws: prefix is reserved.
func checkTags(tags []ecstypes.Tag) error {
	if len(tags) > maxTags {
		return invalidParam("The number of tags %d exceeds the limit of %d tags per resource.", len(tags), maxTags)
	}
	seen := make(map[string]bool, len(tags))
	for _, t := range tags {
		if t.Key == "" {
			return invalidParam("Tag keys must not be empty.")
		}
		if strings.HasPrefix(strings.ToLower(t.Key), "aws:") {
			return invalidParam("Tag key %q is reserved: keys starting with aws: are reserved for AWS use.", t.Key)
		}
		if seen[t.Key] {
			return invalidParam("Tag key %q appears more than once in the request.", t.Key)
		}
		seen[t.Key] = true
	}
	return nil
}

// dedupeTags returns nil for no tags, so records do not carry empty lists.
func dedupeTags(tags []ecstypes.Tag) []ecstypes.Tag {
	if len(tags) == 0 {
		return nil
	}
	return slices.Clone(tags)
}

// mergeTags adds or overwrites tags by key.
func mergeTags(have, add []ecstypes.Tag) ([]ecstypes.Tag, error) {
	out := launch.MergeTags(have, add)
	if len(out) > maxTags {
		return nil, invalidParam("The resource would have %d tags, more than the limit of %d.", len(out), maxTags)
	}
	return out, nil
}

// taggable is the tag list of one stored resource, with the way to save it.
type taggable struct {
	tags *[]ecstypes.Tag
	save func(tx store.Tx) error
}

// resolveTaggable finds the resource an ARN names.
func (s *Service) resolveTaggable(tx store.ReadTx, arn string) (*taggable, error) {
	typ, rest, ok := s.arns.Resource(arn)
	if !state.IsARN(arn) {
		return nil, invalidParam("Invalid resource ARN %q: tagging needs the full Amazon Resource Name.", arn)
	}
	notFound := ecstypes.NewResourceNotFoundException("The specified resource is not found: %s", arn)
	if !ok {
		return nil, notFound
	}
	switch typ {
	case "cluster":
		c, ok, err := state.Get[state.Cluster](tx, state.ClusterKey(rest))
		if err != nil {
			return nil, err
		}
		if !ok || c.Status != statusActive {
			return nil, clusterNotFound()
		}
		return &taggable{tags: &c.Tags, save: func(tx store.Tx) error { return state.Put(tx, state.ClusterKey(rest), c) }}, nil
	case "task-definition":
		family, rev, ok := s.arns.TaskDefinitionRef(arn)
		if !ok || rev == 0 {
			return nil, notFound
		}
		key := state.TaskDefKey(family, rev)
		td, ok, err := state.Get[state.TaskDefinition](tx, key)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, notFound
		}
		return &taggable{tags: &td.Tags, save: func(tx store.Tx) error { return state.Put(tx, key, td) }}, nil
	case "container-instance":
		cluster, id, ok := s.arns.ContainerInstanceID(arn)
		if !ok || cluster == "" {
			return nil, notFound
		}
		key := state.InstanceKey(cluster, id)
		ci, ok, err := state.Get[state.ContainerInstance](tx, key)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, notFound
		}
		return &taggable{tags: &ci.Tags, save: func(tx store.Tx) error { return state.Put(tx, key, ci) }}, nil
	case "service":
		// Only the long form service/<cluster>/<name> says which cluster.
		cluster, name, ok := strings.Cut(rest, "/")
		if !ok {
			return nil, notFound
		}
		key := state.ServiceKey(cluster, name)
		svc, ok, err := state.Get[state.Service](tx, key)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, notFound
		}
		return &taggable{tags: &svc.Tags, save: func(tx store.Tx) error {
			// Tags propagate to the tasks the service starts next: a change
			// the controller must see.
			svc.Generation++
			return state.Put(tx, key, svc)
		}}, nil
	}
	return nil, notFound
}

// TagResource adds or overwrites tags on a resource.
func (s *Service) TagResource(ctx context.Context, in *ecstypes.TagResourceRequest) (*ecstypes.TagResourceResponse, error) {
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	_, err := s.store.Update(ctx, func(tx store.Tx) error {
		r, err := s.resolveTaggable(tx, in.ResourceArn)
		if err != nil {
			return err
		}
		merged, err := mergeTags(*r.tags, in.Tags)
		if err != nil {
			return err
		}
		*r.tags = merged
		return r.save(tx)
	})
	if err != nil {
		return nil, err
	}
	return &ecstypes.TagResourceResponse{}, nil
}

// UntagResource removes tags by key; keys the resource lacks are ignored.
func (s *Service) UntagResource(ctx context.Context, in *ecstypes.UntagResourceRequest) (*ecstypes.UntagResourceResponse, error) {
	_, err := s.store.Update(ctx, func(tx store.Tx) error {
		r, err := s.resolveTaggable(tx, in.ResourceArn)
		if err != nil {
			return err
		}
		*r.tags = slices.DeleteFunc(slices.Clone(*r.tags), func(t ecstypes.Tag) bool { return slices.Contains(in.TagKeys, t.Key) })
		if len(*r.tags) == 0 {
			*r.tags = nil
		}
		return r.save(tx)
	})
	if err != nil {
		return nil, err
	}
	return &ecstypes.UntagResourceResponse{}, nil
}

// ListTagsForResource lists a resource's tags.
func (s *Service) ListTagsForResource(ctx context.Context, in *ecstypes.ListTagsForResourceRequest) (*ecstypes.ListTagsForResourceResponse, error) {
	out := &ecstypes.ListTagsForResourceResponse{}
	err := s.store.View(ctx, func(tx store.ReadTx) error {
		r, err := s.resolveTaggable(tx, in.ResourceArn)
		if err != nil {
			return err
		}
		out.Tags = *r.tags
		return nil
	})
	return out, err
}
