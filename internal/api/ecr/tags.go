package ecr

import (
	"context"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/berthdev/berth/internal/awsmodel/ecrtypes"
	"github.com/berthdev/berth/internal/state"
	"github.com/berthdev/berth/internal/store"
)

// ECR's tag limits.
const (
	maxTags        = 50
	maxTagKeyLen   = 128
	maxTagValueLen = 256
)

// checkTags applies ECR's rules to the tags of one request: keys of 1 to 128
// characters, unique, not starting with the reserved aws: prefix; values of
// at most 256 characters; at most 50 tags.
func checkTags(tags []ecrtypes.Tag) error {
	if len(tags) > maxTags {
		return tooManyTags(len(tags))
	}
	seen := make(map[string]bool, len(tags))
	for _, t := range tags {
		switch {
		case t.Key == "" || utf8.RuneCountInString(t.Key) > maxTagKeyLen:
			return ecrtypes.NewInvalidTagParameterException("Invalid tag key %q: keys are 1 to %d characters long", t.Key, maxTagKeyLen)
		case utf8.RuneCountInString(t.Value) > maxTagValueLen:
			return ecrtypes.NewInvalidTagParameterException("Invalid value for tag key %q: values are at most %d characters long", t.Key, maxTagValueLen)
		case strings.HasPrefix(strings.ToLower(t.Key), "aws:"):
			return ecrtypes.NewInvalidTagParameterException("Invalid tag key %q: keys starting with aws: are reserved for AWS use", t.Key)
		case seen[t.Key]:
			return ecrtypes.NewInvalidTagParameterException("Tag key %q appears more than once in the request", t.Key)
		}
		seen[t.Key] = true
	}
	return nil
}

func tooManyTags(n int) error {
	return ecrtypes.NewTooManyTagsException("The resource would have %d tags; the limit is %d tags per resource", n, maxTags)
}

// taggedRepository resolves a repository ARN of this region and account to
// its name.
func (s *Service) taggedRepository(arn string) (string, error) {
	prefix := s.arns.Repository("")
	name, ok := strings.CutPrefix(arn, prefix)
	if !ok || name == "" {
		if strings.HasPrefix(arn, "arn:") && strings.Contains(arn, ":repository/") {
			// Another region or account: no repository of this registry.
			_, name, _ = strings.Cut(arn, ":repository/")
			return "", s.repoNotFound("", name)
		}
		return "", invalidParam("Invalid parameter at 'resourceArn' failed to satisfy constraint: 'Invalid ARN': %q is not the ARN of an ECR repository (%s<name>)", arn, prefix)
	}
	return name, nil
}

// TagResource adds or overwrites tags on a repository.
func (s *Service) TagResource(ctx context.Context, in *ecrtypes.TagResourceRequest) (*ecrtypes.TagResourceResponse, error) {
	name, err := s.taggedRepository(in.ResourceArn)
	if err != nil {
		return nil, err
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	_, err = s.updateRepository(ctx, "", name, func(r *state.Repository) error {
		tags := slices.Clone(r.Tags)
		for _, t := range in.Tags {
			if i := slices.IndexFunc(tags, func(x ecrtypes.Tag) bool { return x.Key == t.Key }); i >= 0 {
				tags[i].Value = t.Value
			} else {
				tags = append(tags, t)
			}
		}
		if len(tags) > maxTags {
			return tooManyTags(len(tags))
		}
		r.Tags = tags
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &ecrtypes.TagResourceResponse{}, nil
}

// UntagResource removes tags by key; keys the repository lacks are ignored.
func (s *Service) UntagResource(ctx context.Context, in *ecrtypes.UntagResourceRequest) (*ecrtypes.UntagResourceResponse, error) {
	name, err := s.taggedRepository(in.ResourceArn)
	if err != nil {
		return nil, err
	}
	for _, k := range in.TagKeys {
		if strings.HasPrefix(strings.ToLower(k), "aws:") {
			return nil, ecrtypes.NewInvalidTagParameterException("Invalid tag key %q: keys starting with aws: are reserved for AWS use", k)
		}
	}
	_, err = s.updateRepository(ctx, "", name, func(r *state.Repository) error {
		r.Tags = slices.DeleteFunc(slices.Clone(r.Tags), func(t ecrtypes.Tag) bool { return slices.Contains(in.TagKeys, t.Key) })
		if len(r.Tags) == 0 {
			r.Tags = nil
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &ecrtypes.UntagResourceResponse{}, nil
}

// ListTagsForResource lists a repository's tags.
func (s *Service) ListTagsForResource(ctx context.Context, in *ecrtypes.ListTagsForResourceRequest) (*ecrtypes.ListTagsForResourceResponse, error) {
	name, err := s.taggedRepository(in.ResourceArn)
	if err != nil {
		return nil, err
	}
	out := &ecrtypes.ListTagsForResourceResponse{}
	err = s.store.View(ctx, func(tx store.ReadTx) error {
		rec, err := s.repository(tx, "", name)
		if err != nil {
			return err
		}
		out.Tags = slices.Clone(rec.Tags)
		return nil
	})
	return out, err
}
