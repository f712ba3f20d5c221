package ecr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/berthdev/berth/internal/api/paging"
	"github.com/berthdev/berth/internal/awsmodel/ecrtypes"
	"github.com/berthdev/berth/internal/registry"
	"github.com/berthdev/berth/internal/state"
	"github.com/berthdev/berth/internal/store"
)

var (
	digestRE = regexp.MustCompile(`^[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+$`)
	tagRE    = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
)

// imageIDText is an imageId as ECR's messages print it.
func imageIDText(id ecrtypes.ImageIdentifier) string {
	q := func(s string) string {
		if s == "" {
			return "null"
		}
		return "'" + s + "'"
	}
	return fmt.Sprintf("{imageDigest:%s, imageTag:%s}", q(id.ImageDigest), q(id.ImageTag))
}

func imageFailure(id ecrtypes.ImageIdentifier, code ecrtypes.ImageFailureCode, reason string) *ecrtypes.ImageFailure {
	return &ecrtypes.ImageFailure{ImageId: &id, FailureCode: code, FailureReason: reason}
}

// resolveImage finds the image an imageId names in repo: by digest, by tag,
// or by both (which must agree). A malformed or unknown id is a failure,
// as the Batch operations report it.
func resolveImage(tx store.ReadTx, repo string, id ecrtypes.ImageIdentifier) (*state.Image, *ecrtypes.ImageFailure, error) {
	switch {
	case id.ImageDigest == "" && id.ImageTag == "":
		return nil, imageFailure(id, ecrtypes.ImageFailureCodeMissingDigestAndTag, "Invalid request parameters: both tag and digest cannot be null"), nil
	case id.ImageDigest != "" && !digestRE.MatchString(id.ImageDigest):
		return nil, imageFailure(id, ecrtypes.ImageFailureCodeInvalidImageDigest, "Invalid request parameters: image digest should satisfy the regex '[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'"), nil
	case id.ImageTag != "" && !tagRE.MatchString(id.ImageTag):
		return nil, imageFailure(id, ecrtypes.ImageFailureCodeInvalidImageTag, "Invalid request parameters: image tag should satisfy the regex '[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}'"), nil
	}
	digest := id.ImageDigest
	if id.ImageTag != "" {
		kv, ok, err := tx.Get(state.ImageTagKey(repo, id.ImageTag))
		if err != nil {
			return nil, nil, err
		}
		if !ok {
			return nil, imageFailure(id, ecrtypes.ImageFailureCodeImageNotFound, "Requested image not found"), nil
		}
		if digest != "" && digest != string(kv.Value) {
			return nil, imageFailure(id, ecrtypes.ImageFailureCodeImageTagDoesNotMatchDigest, "Invalid request parameters: the image tag and digest do not name the same image"), nil
		}
		digest = string(kv.Value)
	}
	img, ok, err := state.Get[state.Image](tx, state.ImageKey(repo, digest))
	if err != nil {
		return nil, nil, err
	}
	if !ok {
		return nil, imageFailure(id, ecrtypes.ImageFailureCodeImageNotFound, "Requested image not found"), nil
	}
	return img, nil, nil
}

// listEntry is one row of ListImages: one per tag, or the digest alone for
// an untagged image.
type listEntry struct{ digest, tag string }

// ListImages lists a repository's image ids: one entry per tag, and the
// digest alone for each untagged image, in digest then tag order.
func (s *Service) ListImages(ctx context.Context, in *ecrtypes.ListImagesRequest) (*ecrtypes.ListImagesResponse, error) {
	status := ecrtypes.TagStatusAny
	if in.Filter != nil && in.Filter.TagStatus != "" {
		status = in.Filter.TagStatus
	}
	p, err := newPage(in.MaxResults, in.NextToken, defaultPage)
	if err != nil {
		return nil, err
	}
	afterDigest, afterTag, resume := strings.Cut(p.After, "\x00")
	if p.After != "" && (!resume || afterDigest == "") {
		return nil, invalidParam("Invalid parameter at 'nextToken': pass the nextToken of the previous response unchanged")
	}
	entries := func(img *state.Image) []listEntry {
		if !imageStatusMatches(in.Filter) {
			return nil
		}
		if len(img.Tags) == 0 {
			if status == ecrtypes.TagStatusTagged {
				return nil
			}
			return []listEntry{{digest: img.Digest}}
		}
		if status == ecrtypes.TagStatusUntagged {
			return nil
		}
		tags := slices.Sorted(slices.Values(img.Tags))
		out := make([]listEntry, len(tags))
		for i, t := range tags {
			out[i] = listEntry{digest: img.Digest, tag: t}
		}
		return out
	}
	out := &ecrtypes.ListImagesResponse{}
	err = s.store.View(ctx, func(tx store.ReadTx) error {
		if _, err := s.repository(tx, in.RegistryId, in.RepositoryName); err != nil {
			return err
		}
		// Collect one entry beyond the page, to know whether another follows.
		var got []listEntry
		add := func(es []listEntry) bool {
			got = append(got, es...)
			return len(got) > p.Limit
		}
		from := ""
		if resume {
			key := state.ImageKey(in.RepositoryName, afterDigest)
			from = key
			img, ok, err := state.Get[state.Image](tx, key)
			if err != nil {
				return err
			}
			if ok && afterTag != "" {
				add(slices.DeleteFunc(entries(img), func(e listEntry) bool { return e.tag <= afterTag }))
			}
		}
		for len(got) <= p.Limit {
			kvs, err := tx.List(state.ImagesRepoPrefix(in.RepositoryName), from, 256)
			if err != nil {
				return err
			}
			for _, kv := range kvs {
				img, err := state.Decode[state.Image](kv)
				if err != nil {
					return err
				}
				if add(entries(img)) {
					break
				}
			}
			if len(kvs) < 256 {
				break
			}
			from = kvs[len(kvs)-1].Key
		}
		if len(got) > p.Limit {
			got = got[:p.Limit]
			last := got[len(got)-1]
			out.NextToken = paging.Token(last.digest + "\x00" + last.tag)
		}
		for _, e := range got {
			out.ImageIds = append(out.ImageIds, ecrtypes.ImageIdentifier{ImageDigest: e.digest, ImageTag: e.tag})
		}
		return nil
	})
	return out, err
}

// imageStatusMatches applies a filter's imageStatus: every Berth image is
// ACTIVE (there is no archive storage class).
func imageStatusMatches(f *ecrtypes.ListImagesFilter) bool {
	return f == nil || f.ImageStatus == "" || f.ImageStatus == ecrtypes.ImageStatusFilterActive || f.ImageStatus == ecrtypes.ImageStatusFilterAny
}

// DescribeImages describes the named images, or pages through all of the
// repository's images in digest order.
func (s *Service) DescribeImages(ctx context.Context, in *ecrtypes.DescribeImagesRequest) (*ecrtypes.DescribeImagesResponse, error) {
	out := &ecrtypes.DescribeImagesResponse{}
	if len(in.ImageIds) > 0 {
		if in.MaxResults != 0 || in.NextToken != "" {
			return nil, invalidParam("Invalid parameter: maxResults and nextToken cannot be used when images are specified with imageIds")
		}
		err := s.store.View(ctx, func(tx store.ReadTx) error {
			if _, err := s.repository(tx, in.RegistryId, in.RepositoryName); err != nil {
				return err
			}
			seen := map[string]bool{}
			for _, id := range in.ImageIds {
				img, failure, err := resolveImage(tx, in.RepositoryName, id)
				if err != nil {
					return err
				}
				if failure != nil {
					if failure.FailureCode == ecrtypes.ImageFailureCodeImageNotFound {
						return ecrtypes.NewImageNotFoundException("The image with imageId %s does not exist within the repository with name '%s' in the registry with id '%s'", imageIDText(id), in.RepositoryName, s.account)
					}
					return invalidParam("Invalid parameter at 'imageIds': %s", failure.FailureReason)
				}
				if !seen[img.Digest] {
					seen[img.Digest] = true
					out.ImageDetails = append(out.ImageDetails, s.imageDetail(img))
				}
			}
			return nil
		})
		return out, err
	}
	var status ecrtypes.TagStatus
	filter := &ecrtypes.ListImagesFilter{}
	if in.Filter != nil {
		status = in.Filter.TagStatus
		filter.ImageStatus = in.Filter.ImageStatus
	}
	p, err := newPage(in.MaxResults, in.NextToken, defaultPage)
	if err != nil {
		return nil, err
	}
	err = s.store.View(ctx, func(tx store.ReadTx) error {
		if _, err := s.repository(tx, in.RegistryId, in.RepositoryName); err != nil {
			return err
		}
		if !imageStatusMatches(filter) {
			return nil
		}
		out.NextToken, err = scan(tx, state.ImagesRepoPrefix(in.RepositoryName), p, func(kv store.KV) (bool, error) {
			img, err := state.Decode[state.Image](kv)
			if err != nil {
				return false, err
			}
			if (status == ecrtypes.TagStatusTagged && len(img.Tags) == 0) || (status == ecrtypes.TagStatusUntagged && len(img.Tags) > 0) {
				return false, nil
			}
			out.ImageDetails = append(out.ImageDetails, s.imageDetail(img))
			return true, nil
		})
		return err
	})
	return out, err
}

func (s *Service) imageDetail(img *state.Image) ecrtypes.ImageDetail {
	d := ecrtypes.ImageDetail{
		RegistryId:             s.account,
		RepositoryName:         img.Repository,
		ImageDigest:            img.Digest,
		ImageTags:              slices.Sorted(slices.Values(img.Tags)),
		ImageSizeInBytes:       img.Size,
		ImagePushedAt:          timePtr(img.PushedAt),
		ImageManifestMediaType: img.MediaType,
		ArtifactMediaType:      artifactMediaType(img),
		LastRecordedPullTime:   img.LastPulledAt,
		SubjectManifestDigest:  img.Subject,
	}
	if len(d.ImageTags) == 0 {
		d.ImageTags = nil
	}
	return d
}

// artifactMediaType is what ECR reports as an image's artifactMediaType:
// the OCI artifactType, or else the config's media type (which the registry
// records only when it is not a container image config).
func artifactMediaType(img *state.Image) string {
	if img.ArtifactType != "" {
		return img.ArtifactType
	}
	switch img.MediaType {
	case registry.MediaTypeDockerManifest:
		return "application/vnd.docker.container.image.v1+json"
	case registry.MediaTypeOCIManifest:
		return "application/vnd.oci.image.config.v1+json"
	}
	return ""
}

// BatchGetImage returns the manifests of the named images; ids it cannot
// serve are failures, not an error. Each image is returned once, under the
// first id that names it: ids repeated, or naming an image already named
// (a tag and its digest, two tags of one image), add nothing, so a request
// of up to 100 ids loads each manifest (up to 4 MiB) at most once.
func (s *Service) BatchGetImage(ctx context.Context, in *ecrtypes.BatchGetImageRequest) (*ecrtypes.BatchGetImageResponse, error) {
	type found struct {
		id     ecrtypes.ImageIdentifier
		digest string
	}
	var todo []found
	out := &ecrtypes.BatchGetImageResponse{}
	err := s.store.View(ctx, func(tx store.ReadTx) error {
		todo, out.Failures = nil, nil
		if _, err := s.repository(tx, in.RegistryId, in.RepositoryName); err != nil {
			return err
		}
		seenID := map[ecrtypes.ImageIdentifier]bool{}
		seenDigest := map[string]bool{}
		for _, id := range in.ImageIds {
			if seenID[id] {
				continue
			}
			seenID[id] = true
			img, failure, err := resolveImage(tx, in.RepositoryName, id)
			if err != nil {
				return err
			}
			if failure != nil {
				out.Failures = append(out.Failures, *failure)
				continue
			}
			if seenDigest[img.Digest] {
				continue
			}
			seenDigest[img.Digest] = true
			todo = append(todo, found{id, img.Digest})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, f := range todo {
		img, manifest, err := s.reg.Manifest(ctx, in.RepositoryName, f.digest)
		if errors.Is(err, registry.ErrImageNotFound) {
			out.Failures = append(out.Failures, *imageFailure(f.id, ecrtypes.ImageFailureCodeImageNotFound, "Requested image not found"))
			continue
		}
		if err != nil {
			return nil, registryError(err)
		}
		if len(in.AcceptedMediaTypes) > 0 && !slices.Contains(in.AcceptedMediaTypes, img.MediaType) {
			out.Failures = append(out.Failures, *imageFailure(f.id, ecrtypes.ImageFailureCodeImageNotFound,
				fmt.Sprintf("Requested image not found: its manifest media type %s is not one of the acceptedMediaTypes", img.MediaType)))
			continue
		}
		id := ecrtypes.ImageIdentifier{ImageDigest: img.Digest, ImageTag: f.id.ImageTag}
		out.Images = append(out.Images, ecrtypes.Image{
			RegistryId: s.account, RepositoryName: in.RepositoryName, ImageId: &id,
			ImageManifest: string(manifest), ImageManifestMediaType: img.MediaType,
		})
	}
	return out, nil
}

// BatchDeleteImage deletes images by digest (the image and all its tags) or
// removes tags (and the image with its last tag), as ECR does. Ids it
// cannot delete are failures, not an error.
func (s *Service) BatchDeleteImage(ctx context.Context, in *ecrtypes.BatchDeleteImageRequest) (*ecrtypes.BatchDeleteImageResponse, error) {
	type target struct {
		id  ecrtypes.ImageIdentifier
		img *state.Image
	}
	var todo []target
	referencedBy := map[string]string{} // child digest -> an index that lists it
	out := &ecrtypes.BatchDeleteImageResponse{}
	err := s.store.View(ctx, func(tx store.ReadTx) error {
		if _, err := s.repository(tx, in.RegistryId, in.RepositoryName); err != nil {
			return err
		}
		all, err := images(tx, in.RepositoryName)
		if err != nil {
			return err
		}
		for _, img := range all {
			for _, c := range img.Manifests {
				referencedBy[c] = img.Digest
			}
		}
		seen := map[ecrtypes.ImageIdentifier]bool{}
		for _, id := range in.ImageIds {
			if seen[id] {
				continue
			}
			seen[id] = true
			img, failure, err := resolveImage(tx, in.RepositoryName, id)
			if err != nil {
				return err
			}
			if failure != nil {
				out.Failures = append(out.Failures, *failure)
				continue
			}
			todo = append(todo, target{id, img})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	repo := in.RepositoryName
	notFound := func(id ecrtypes.ImageIdentifier) {
		out.Failures = append(out.Failures, *imageFailure(id, ecrtypes.ImageFailureCodeImageNotFound, "Requested image not found"))
	}
	for _, t := range todo {
		if t.id.ImageTag == "" {
			if index, ok := referencedBy[t.img.Digest]; ok {
				out.Failures = append(out.Failures, *imageFailure(t.id, ecrtypes.ImageFailureCodeImageReferencedByManifestList,
					fmt.Sprintf("Requested image referenced by manifest list: [%s]", index)))
				continue
			}
			err := s.reg.DeleteImage(ctx, repo, t.img.Digest)
			if errors.Is(err, registry.ErrImageNotFound) {
				notFound(t.id)
				continue
			}
			if err != nil {
				return nil, registryError(err)
			}
			if len(t.img.Tags) == 0 {
				out.ImageIds = append(out.ImageIds, ecrtypes.ImageIdentifier{ImageDigest: t.img.Digest})
			}
			for _, tag := range t.img.Tags {
				out.ImageIds = append(out.ImageIds, ecrtypes.ImageIdentifier{ImageDigest: t.img.Digest, ImageTag: tag})
			}
			s.log.Info("image deleted", "repository", repo, "digest", t.img.Digest)
			continue
		}
		img, err := s.reg.Untag(ctx, repo, t.id.ImageTag)
		if errors.Is(err, registry.ErrImageNotFound) {
			notFound(t.id)
			continue
		}
		if err != nil {
			return nil, registryError(err)
		}
		out.ImageIds = append(out.ImageIds, ecrtypes.ImageIdentifier{ImageDigest: img.Digest, ImageTag: t.id.ImageTag})
		if _, referenced := referencedBy[img.Digest]; len(img.Tags) == 0 && !referenced {
			// The last tag went: so does the image, unless a push tagged it
			// again since.
			deleted, err := s.reg.DeleteUntagged(ctx, repo, img.Digest)
			if err != nil && !errors.Is(err, registry.ErrImageNotFound) {
				return nil, registryError(err)
			}
			if deleted {
				s.log.Info("image deleted", "repository", repo, "digest", img.Digest, "last_tag", t.id.ImageTag)
			}
		}
	}
	return out, nil
}

// PutImage stores a manifest as an image, optionally tagged. Pushing a
// manifest that already carries the tag (or, untagged, already exists) is
// ImageAlreadyExistsException, as in ECR.
func (s *Service) PutImage(ctx context.Context, in *ecrtypes.PutImageRequest) (*ecrtypes.PutImageResponse, error) {
	repo, tag := in.RepositoryName, in.ImageTag
	manifest := []byte(in.ImageManifest)
	digest := registry.Digest(manifest)
	if in.ImageDigest != "" && in.ImageDigest != digest {
		return nil, ecrtypes.NewImageDigestDoesNotMatchException("Invalid parameter at 'imageDigest': the digest '%s' does not match the manifest's digest '%s'", in.ImageDigest, digest)
	}
	err := s.store.View(ctx, func(tx store.ReadTx) error {
		if _, err := s.repository(tx, in.RegistryId, repo); err != nil {
			return err
		}
		exists := false
		if tag != "" {
			kv, ok, err := tx.Get(state.ImageTagKey(repo, tag))
			if err != nil {
				return err
			}
			exists = ok && string(kv.Value) == digest
		} else {
			_, ok, err := tx.Get(state.ImageKey(repo, digest))
			if err != nil {
				return err
			}
			exists = ok
		}
		if exists {
			shown := "null"
			if tag != "" {
				shown = "'" + tag + "'"
			}
			return ecrtypes.NewImageAlreadyExistsException("Image with digest '%s' and tag %s already exists in the repository with name '%s' in registry with id '%s'", digest, shown, repo, s.account)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	img, err := s.reg.PutManifest(ctx, repo, tag, in.ImageManifestMediaType, manifest)
	if err != nil {
		return nil, s.putImageError(err, repo, manifest, in.ImageManifestMediaType)
	}
	s.log.Info("image put", "repository", repo, "tag", tag, "digest", img.Digest)
	return &ecrtypes.PutImageResponse{Image: &ecrtypes.Image{
		RegistryId: s.account, RepositoryName: repo,
		ImageId:                &ecrtypes.ImageIdentifier{ImageDigest: img.Digest, ImageTag: tag},
		ImageManifest:          in.ImageManifest,
		ImageManifestMediaType: img.MediaType,
	}}, nil
}

// putImageError words PutManifest's errors as ECR's PutImage does.
func (s *Service) putImageError(err error, repo string, manifest []byte, mediaType string) error {
	var rerr *registry.Error
	missing := ""
	if errors.As(err, &rerr) {
		missing = rerr.Digest
	}
	switch {
	case errors.Is(err, registry.ErrManifestBlobUnknown) && isIndexManifest(manifest, mediaType):
		return ecrtypes.NewReferencedImagesNotFoundException("Manifests with digests '[%s]' referenced by the manifest list do not exist in the repository with name '%s' in registry with id '%s'", missing, repo, s.account)
	case errors.Is(err, registry.ErrManifestBlobUnknown):
		return ecrtypes.NewLayersNotFoundException("Layers with digests '[%s]' required for pushing image into repository with name '%s' in registry with id '%s' do not exist", missing, repo, s.account)
	case errors.Is(err, registry.ErrDigestMismatch):
		return ecrtypes.NewImageDigestDoesNotMatchException("%s", err.Error())
	case errors.Is(err, registry.ErrManifestInvalid):
		return invalidParam("Invalid parameter at 'ImageManifest' failed to satisfy constraint: '%s'", err.Error())
	}
	return registryError(err)
}

// isIndexManifest reports whether a manifest is an image index (manifest
// list), whose missing references are images rather than layers.
func isIndexManifest(manifest []byte, mediaType string) bool {
	var m struct {
		MediaType string          `json:"mediaType"`
		Manifests json.RawMessage `json:"manifests"`
	}
	_ = json.Unmarshal(manifest, &m)
	if mediaType == "" {
		mediaType = m.MediaType
	}
	return mediaType == registry.MediaTypeOCIIndex || mediaType == registry.MediaTypeDockerManifestList || (mediaType == "" && m.Manifests != nil)
}
