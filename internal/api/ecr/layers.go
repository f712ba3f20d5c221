package ecr

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"slices"

	"github.com/berthdev/berth/internal/awsmodel"
	"github.com/berthdev/berth/internal/awsmodel/ecrtypes"
	"github.com/berthdev/berth/internal/registry"
	"github.com/berthdev/berth/internal/store"
)

const (
	// partSize is the layer part size InitiateLayerUpload reports: ECR's
	// maximum layer part size quota (10 MiB). Berth accepts any part size up
	// to maxPartBytes and does not enforce ECR's 5 MiB minimum.
	partSize = 10 << 20
	// maxPartBytes is the model's limit on one layerPartBlob.
	maxPartBytes = 20 << 20
)

// GetAuthorizationToken returns a docker login password for the registry:
// user AWS, valid for 12 hours, minted for the caller.
func (s *Service) GetAuthorizationToken(ctx context.Context, in *ecrtypes.GetAuthorizationTokenRequest) (*ecrtypes.GetAuthorizationTokenResponse, error) {
	for _, id := range in.RegistryIds {
		if err := s.checkRegistry(id, ""); err != nil {
			return nil, err
		}
	}
	tok, expires := s.reg.MintToken(s.principal(ctx))
	data := ecrtypes.AuthorizationData{
		AuthorizationToken: base64.StdEncoding.EncodeToString([]byte("AWS:" + tok)),
		ExpiresAt:          awsmodel.NewTime(expires),
		ProxyEndpoint:      "http://" + s.reg.Host(),
	}
	out := &ecrtypes.GetAuthorizationTokenResponse{AuthorizationData: []ecrtypes.AuthorizationData{data}}
	for range max(0, len(in.RegistryIds)-1) {
		out.AuthorizationData = append(out.AuthorizationData, data)
	}
	return out, nil
}

// BatchCheckLayerAvailability says which layers a repository holds.
func (s *Service) BatchCheckLayerAvailability(ctx context.Context, in *ecrtypes.BatchCheckLayerAvailabilityRequest) (*ecrtypes.BatchCheckLayerAvailabilityResponse, error) {
	if _, err := s.viewRepository(ctx, in.RegistryId, in.RepositoryName); err != nil {
		return nil, err
	}
	out := &ecrtypes.BatchCheckLayerAvailabilityResponse{}
	for _, d := range in.LayerDigests {
		switch {
		case d == "":
			out.Failures = append(out.Failures, ecrtypes.LayerFailure{LayerDigest: d, FailureCode: ecrtypes.LayerFailureCodeMissingLayerDigest, FailureReason: "Missing layer digest"})
			continue
		case !digestRE.MatchString(d):
			out.Failures = append(out.Failures, ecrtypes.LayerFailure{LayerDigest: d, FailureCode: ecrtypes.LayerFailureCodeInvalidLayerDigest, FailureReason: "Invalid layer digest"})
			continue
		}
		size, err := s.reg.Blob(ctx, in.RepositoryName, d)
		switch {
		case err == nil:
			out.Layers = append(out.Layers, ecrtypes.Layer{LayerDigest: d, LayerAvailability: ecrtypes.LayerAvailabilityAvailable, LayerSize: size})
		case errors.Is(err, registry.ErrBlobNotFound), errors.Is(err, registry.ErrDigestInvalid):
			out.Layers = append(out.Layers, ecrtypes.Layer{LayerDigest: d, LayerAvailability: ecrtypes.LayerAvailabilityUnavailable})
		default:
			return nil, registryError(err)
		}
	}
	return out, nil
}

// InitiateLayerUpload starts a layer upload.
func (s *Service) InitiateLayerUpload(ctx context.Context, in *ecrtypes.InitiateLayerUploadRequest) (*ecrtypes.InitiateLayerUploadResponse, error) {
	if err := s.checkRegistry(in.RegistryId, in.RepositoryName); err != nil {
		return nil, err
	}
	id, err := s.reg.StartUpload(ctx, in.RepositoryName)
	if err != nil {
		return nil, registryError(err)
	}
	return &ecrtypes.InitiateLayerUploadResponse{UploadId: id, PartSize: partSize}, nil
}

// UploadLayerPart appends one part to a layer upload. Parts must follow
// each other without gap or overlap.
func (s *Service) UploadLayerPart(ctx context.Context, in *ecrtypes.UploadLayerPartRequest) (*ecrtypes.UploadLayerPartResponse, error) {
	if err := s.checkRegistry(in.RegistryId, in.RepositoryName); err != nil {
		return nil, err
	}
	n := int64(len(in.LayerPartBlob))
	if n > maxPartBytes {
		return nil, invalidParam("Invalid parameter at 'layerPartBlob': a layer part is at most %d bytes, not %d", maxPartBytes, n)
	}
	if in.PartLastByte < in.PartFirstByte || in.PartLastByte-in.PartFirstByte+1 != n {
		return nil, ecrtypes.NewInvalidLayerPartException("The layer part is not valid: bytes %d to %d are %d bytes, but layerPartBlob holds %d", in.PartFirstByte, in.PartLastByte, in.PartLastByte-in.PartFirstByte+1, n)
	}
	size, err := s.reg.UploadPart(ctx, in.RepositoryName, in.UploadId, in.PartFirstByte, bytes.NewReader(in.LayerPartBlob))
	if errors.Is(err, registry.ErrRangeInvalid) {
		return nil, ecrtypes.NewInvalidLayerPartException("The layer part of upload '%s' starts at byte %d, but the last valid byte received is %d: parts must follow each other without gaps or overlaps (lastValidByteReceived %d)", in.UploadId, in.PartFirstByte, size-1, size-1)
	}
	if err != nil {
		return nil, registryError(err)
	}
	return &ecrtypes.UploadLayerPartResponse{
		RegistryId: s.account, RepositoryName: in.RepositoryName, UploadId: in.UploadId, LastByteReceived: size - 1,
	}, nil
}

// CompleteLayerUpload ends a layer upload: its bytes must have the digest
// given; they become a layer of the repository.
func (s *Service) CompleteLayerUpload(ctx context.Context, in *ecrtypes.CompleteLayerUploadRequest) (*ecrtypes.CompleteLayerUploadResponse, error) {
	if err := s.checkRegistry(in.RegistryId, in.RepositoryName); err != nil {
		return nil, err
	}
	if len(in.LayerDigests) != 1 {
		return nil, invalidParam("Invalid parameter at 'layerDigests': an upload completes one layer, so give exactly one digest, not %d", len(in.LayerDigests))
	}
	repo, id, digest := in.RepositoryName, in.UploadId, in.LayerDigests[0]
	size, err := s.reg.UploadSize(ctx, repo, id)
	if err != nil {
		return nil, registryError(err)
	}
	if size == 0 {
		return nil, ecrtypes.NewEmptyUploadException("The upload with id '%s' in the repository with name '%s' contains no layer parts", id, repo)
	}
	if _, err := s.reg.Blob(ctx, repo, digest); err == nil {
		return nil, ecrtypes.NewLayerAlreadyExistsException("The layer '%s' already exists in the repository with name '%s' in registry with id '%s'", digest, repo, s.account)
	} else if !errors.Is(err, registry.ErrBlobNotFound) {
		return nil, registryError(err)
	}
	if _, err := s.reg.CompleteUpload(ctx, repo, id, digest); err != nil {
		return nil, registryError(err)
	}
	return &ecrtypes.CompleteLayerUploadResponse{RegistryId: s.account, RepositoryName: repo, UploadId: id, LayerDigest: digest}, nil
}

// GetDownloadUrlForLayer returns a URL that serves a layer of an image in
// the repository.
func (s *Service) GetDownloadUrlForLayer(ctx context.Context, in *ecrtypes.GetDownloadUrlForLayerRequest) (*ecrtypes.GetDownloadUrlForLayerResponse, error) {
	if err := s.checkRegistry(in.RegistryId, in.RepositoryName); err != nil {
		return nil, err
	}
	repo, digest := in.RepositoryName, in.LayerDigest
	if _, err := s.reg.Blob(ctx, repo, digest); err != nil {
		return nil, registryError(err)
	}
	// A layer that no image references (uploaded, never pushed with a
	// manifest) is not served: ECR's LayerInaccessibleException.
	used := false
	err := s.store.View(ctx, func(tx store.ReadTx) error {
		all, err := images(tx, repo)
		for _, img := range all {
			if slices.Contains(img.Blobs, digest) {
				used = true
				break
			}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if !used {
		return nil, ecrtypes.NewLayerInaccessibleException("The layer with digest '%s' is not associated with an image in the repository with name '%s'; unassociated layers may be cleaned up at any time", digest, repo)
	}
	return &ecrtypes.GetDownloadUrlForLayerResponse{DownloadUrl: s.reg.BlobURL(repo, digest), LayerDigest: digest}, nil
}
