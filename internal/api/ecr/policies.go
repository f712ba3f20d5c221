package ecr

import (
	"context"
	"encoding/json"
	"slices"
	"strings"

	"github.com/berthdev/berth/internal/api/paging"
	"github.com/berthdev/berth/internal/awsmodel"
	"github.com/berthdev/berth/internal/awsmodel/ecrtypes"
	"github.com/berthdev/berth/internal/registry/lifecycle"
	"github.com/berthdev/berth/internal/state"
	"github.com/berthdev/berth/internal/store"
)

// parseLifecyclePolicy validates a lifecycle policy text, wording a
// refusal as ECR does.
func parseLifecyclePolicy(text string) (*lifecycle.Policy, error) {
	p, err := lifecycle.Parse(text)
	if err != nil {
		return nil, invalidParam("Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: %s'", err.Error())
	}
	return p, nil
}

func (s *Service) lifecycleNotFound(repo string) error {
	return ecrtypes.NewLifecyclePolicyNotFoundException("Lifecycle policy does not exist for the repository with name '%s' in the registry with id '%s'", repo, s.account)
}

// PutLifecyclePolicy sets a repository's lifecycle policy, which the
// lifecycle controller applies from then on.
func (s *Service) PutLifecyclePolicy(ctx context.Context, in *ecrtypes.PutLifecyclePolicyRequest) (*ecrtypes.PutLifecyclePolicyResponse, error) {
	if _, err := parseLifecyclePolicy(in.LifecyclePolicyText); err != nil {
		return nil, err
	}
	if _, err := s.updateRepository(ctx, in.RegistryId, in.RepositoryName, func(r *state.Repository) error {
		r.LifecyclePolicy = in.LifecyclePolicyText
		r.LifecyclePolicyUpdatedAt = awsmodel.NewTime(s.now())
		return nil
	}); err != nil {
		return nil, err
	}
	s.log.Info("lifecycle policy put", "repository", in.RepositoryName)
	return &ecrtypes.PutLifecyclePolicyResponse{RegistryId: s.account, RepositoryName: in.RepositoryName, LifecyclePolicyText: in.LifecyclePolicyText}, nil
}

// GetLifecyclePolicy returns a repository's lifecycle policy.
func (s *Service) GetLifecyclePolicy(ctx context.Context, in *ecrtypes.GetLifecyclePolicyRequest) (*ecrtypes.GetLifecyclePolicyResponse, error) {
	rec, err := s.viewRepository(ctx, in.RegistryId, in.RepositoryName)
	if err != nil {
		return nil, err
	}
	if rec.LifecyclePolicy == "" {
		return nil, s.lifecycleNotFound(in.RepositoryName)
	}
	return &ecrtypes.GetLifecyclePolicyResponse{
		RegistryId: s.account, RepositoryName: in.RepositoryName,
		LifecyclePolicyText: rec.LifecyclePolicy, LastEvaluatedAt: rec.LifecycleEvaluatedAt,
	}, nil
}

// DeleteLifecyclePolicy removes a repository's lifecycle policy and returns it.
func (s *Service) DeleteLifecyclePolicy(ctx context.Context, in *ecrtypes.DeleteLifecyclePolicyRequest) (*ecrtypes.DeleteLifecyclePolicyResponse, error) {
	var text string
	var evaluated *awsmodel.Time
	if _, err := s.updateRepository(ctx, in.RegistryId, in.RepositoryName, func(r *state.Repository) error {
		if r.LifecyclePolicy == "" {
			return s.lifecycleNotFound(in.RepositoryName)
		}
		text, evaluated = r.LifecyclePolicy, r.LifecycleEvaluatedAt
		r.LifecyclePolicy, r.LifecyclePolicyUpdatedAt, r.LifecycleEvaluatedAt = "", nil, nil
		return nil
	}); err != nil {
		return nil, err
	}
	s.log.Info("lifecycle policy deleted", "repository", in.RepositoryName)
	return &ecrtypes.DeleteLifecyclePolicyResponse{
		RegistryId: s.account, RepositoryName: in.RepositoryName, LifecyclePolicyText: text, LastEvaluatedAt: evaluated,
	}, nil
}

// StartLifecyclePolicyPreview starts a preview of the given policy, or of
// the repository's own. Evaluation is pure and cheap, so the preview is
// computed when it is read (as of when it was started).
func (s *Service) StartLifecyclePolicyPreview(ctx context.Context, in *ecrtypes.StartLifecyclePolicyPreviewRequest) (*ecrtypes.StartLifecyclePolicyPreviewResponse, error) {
	if in.LifecyclePolicyText != "" {
		if _, err := parseLifecyclePolicy(in.LifecyclePolicyText); err != nil {
			return nil, err
		}
	}
	var text string
	if _, err := s.updateRepository(ctx, in.RegistryId, in.RepositoryName, func(r *state.Repository) error {
		text = in.LifecyclePolicyText
		if text == "" {
			text = r.LifecyclePolicy
		}
		if text == "" {
			return s.lifecycleNotFound(in.RepositoryName)
		}
		r.LifecyclePreview, r.LifecyclePreviewAt = text, awsmodel.NewTime(s.now())
		return nil
	}); err != nil {
		return nil, err
	}
	return &ecrtypes.StartLifecyclePolicyPreviewResponse{
		RegistryId: s.account, RepositoryName: in.RepositoryName, LifecyclePolicyText: text,
		Status: ecrtypes.LifecyclePolicyPreviewStatusInProgress,
	}, nil
}

// GetLifecyclePolicyPreview returns the images the previewed policy would
// expire, in digest order.
func (s *Service) GetLifecyclePolicyPreview(ctx context.Context, in *ecrtypes.GetLifecyclePolicyPreviewRequest) (*ecrtypes.GetLifecyclePolicyPreviewResponse, error) {
	if len(in.ImageIds) > 0 && (in.MaxResults != 0 || in.NextToken != "") {
		return nil, invalidParam("Invalid parameter: maxResults and nextToken cannot be used when images are specified with imageIds")
	}
	p, err := newPage(in.MaxResults, in.NextToken, defaultPage)
	if err != nil {
		return nil, err
	}
	var rec *state.Repository
	var all []*state.Image
	err = s.store.View(ctx, func(tx store.ReadTx) error {
		if rec, err = s.repository(tx, in.RegistryId, in.RepositoryName); err != nil {
			return err
		}
		all, err = images(tx, in.RepositoryName)
		return err
	})
	if err != nil {
		return nil, err
	}
	if rec.LifecyclePreview == "" {
		return nil, ecrtypes.NewLifecyclePolicyPreviewNotFoundException("There is no lifecycle policy preview for the repository with name '%s' in the registry with id '%s'", in.RepositoryName, s.account)
	}
	policy, err := parseLifecyclePolicy(rec.LifecyclePreview)
	if err != nil {
		return nil, err
	}
	byDigest := map[string]*state.Image{}
	for _, img := range all {
		byDigest[img.Digest] = img
	}
	expiries := policy.Evaluate(lifecycleImages(all), rec.LifecyclePreviewAt.Time)
	slices.SortFunc(expiries, func(a, b lifecycle.Expiry) int { return strings.Compare(a.Digest, b.Digest) })
	out := &ecrtypes.GetLifecyclePolicyPreviewResponse{
		RegistryId: s.account, RepositoryName: in.RepositoryName, LifecyclePolicyText: rec.LifecyclePreview,
		Status:  ecrtypes.LifecyclePolicyPreviewStatusComplete,
		Summary: &ecrtypes.LifecyclePolicyPreviewSummary{ExpiringImageTotalCount: int32(len(expiries))},
	}
	for _, e := range expiries {
		img := byDigest[e.Digest]
		if e.Digest <= p.After || !previewWanted(in, img) {
			continue
		}
		if len(out.PreviewResults) == p.Limit {
			out.NextToken = paging.Token(out.PreviewResults[p.Limit-1].ImageDigest)
			break
		}
		r := ecrtypes.LifecyclePolicyPreviewResult{
			ImageTags: slices.Clone(img.Tags), ImageDigest: img.Digest, ImagePushedAt: timePtr(img.PushedAt),
			Action:              &ecrtypes.LifecyclePolicyRuleAction{Type: ecrtypes.ImageActionTypeExpire},
			AppliedRulePriority: int32(e.Rule.Priority),
		}
		out.PreviewResults = append(out.PreviewResults, r)
	}
	return out, nil
}

// previewWanted applies GetLifecyclePolicyPreview's imageIds and filter.
func previewWanted(in *ecrtypes.GetLifecyclePolicyPreviewRequest, img *state.Image) bool {
	if in.Filter != nil {
		switch in.Filter.TagStatus {
		case ecrtypes.TagStatusTagged:
			if len(img.Tags) == 0 {
				return false
			}
		case ecrtypes.TagStatusUntagged:
			if len(img.Tags) > 0 {
				return false
			}
		}
	}
	if len(in.ImageIds) == 0 {
		return true
	}
	return slices.ContainsFunc(in.ImageIds, func(id ecrtypes.ImageIdentifier) bool {
		return (id.ImageDigest == "" || id.ImageDigest == img.Digest) &&
			(id.ImageTag == "" || slices.Contains(img.Tags, id.ImageTag)) &&
			(id.ImageDigest != "" || id.ImageTag != "")
	})
}

// lifecycleImages is what lifecycle evaluation needs of images.
func lifecycleImages(all []*state.Image) []lifecycle.Image {
	out := make([]lifecycle.Image, 0, len(all))
	for _, img := range all {
		out = append(out, lifecycle.Image{Digest: img.Digest, Tags: img.Tags, PushedAt: img.PushedAt.Time, Manifests: img.Manifests})
	}
	return out
}

func (s *Service) repositoryPolicyNotFound(repo string) error {
	return ecrtypes.NewRepositoryPolicyNotFoundException("Repository policy does not exist for the repository with name '%s' in the registry with id '%s'", repo, s.account)
}

// SetRepositoryPolicy sets a repository's permissions policy. Berth keeps
// and returns it; access is governed by Berth's own keys, not by it.
func (s *Service) SetRepositoryPolicy(ctx context.Context, in *ecrtypes.SetRepositoryPolicyRequest) (*ecrtypes.SetRepositoryPolicyResponse, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal([]byte(in.PolicyText), &doc); err != nil || doc == nil {
		return nil, invalidParam("Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid repository policy provided': the policy must be a JSON object")
	}
	if _, ok := doc["Statement"]; !ok {
		return nil, invalidParam("Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid repository policy provided': the policy has no Statement")
	}
	if _, err := s.updateRepository(ctx, in.RegistryId, in.RepositoryName, func(r *state.Repository) error {
		r.Policy = in.PolicyText
		return nil
	}); err != nil {
		return nil, err
	}
	return &ecrtypes.SetRepositoryPolicyResponse{RegistryId: s.account, RepositoryName: in.RepositoryName, PolicyText: in.PolicyText}, nil
}

// GetRepositoryPolicy returns a repository's permissions policy.
func (s *Service) GetRepositoryPolicy(ctx context.Context, in *ecrtypes.GetRepositoryPolicyRequest) (*ecrtypes.GetRepositoryPolicyResponse, error) {
	rec, err := s.viewRepository(ctx, in.RegistryId, in.RepositoryName)
	if err != nil {
		return nil, err
	}
	if rec.Policy == "" {
		return nil, s.repositoryPolicyNotFound(in.RepositoryName)
	}
	return &ecrtypes.GetRepositoryPolicyResponse{RegistryId: s.account, RepositoryName: in.RepositoryName, PolicyText: rec.Policy}, nil
}

// DeleteRepositoryPolicy removes a repository's permissions policy and
// returns it.
func (s *Service) DeleteRepositoryPolicy(ctx context.Context, in *ecrtypes.DeleteRepositoryPolicyRequest) (*ecrtypes.DeleteRepositoryPolicyResponse, error) {
	var text string
	if _, err := s.updateRepository(ctx, in.RegistryId, in.RepositoryName, func(r *state.Repository) error {
		if r.Policy == "" {
			return s.repositoryPolicyNotFound(in.RepositoryName)
		}
		text, r.Policy = r.Policy, ""
		return nil
	}); err != nil {
		return nil, err
	}
	return &ecrtypes.DeleteRepositoryPolicyResponse{RegistryId: s.account, RepositoryName: in.RepositoryName, PolicyText: text}, nil
}
