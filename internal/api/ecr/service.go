// Package ecr implements the Amazon ECR API (AmazonEC2ContainerRegistry_V20150921)
// over Berth's store and registry: one file per resource. Repositories,
// their policies and tags are records the handlers read and write through
// package state; images, tags, layers and uploads go through the registry
// (package registry), which also serves them at /v2/, so `docker push` and
// PutImage, `docker pull` and BatchGetImage see the same images.
package ecr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/berthdev/berth/internal/api"
	"github.com/berthdev/berth/internal/api/paging"
	"github.com/berthdev/berth/internal/awsmodel"
	"github.com/berthdev/berth/internal/awsmodel/ecrtypes"
	"github.com/berthdev/berth/internal/registry"
	"github.com/berthdev/berth/internal/state"
	"github.com/berthdev/berth/internal/store"
)

// MaxBodyBytes caps ECR request bodies: UploadLayerPart carries a layer part
// of up to 20 MiB (the model's LayerPartBlob limit), base64-encoded (4/3 of
// that), in a small JSON envelope.
const MaxBodyBytes = 28 << 20

// Registry is what the ECR API needs of the image store. *registry.Registry
// implements it; errors are its Err* classes (tested with errors.Is), with
// client-facing messages.
type Registry interface {
	// Host is host[:port] as image references name the registry.
	Host() string
	// MintToken returns a docker login password for user AWS.
	MintToken(principal string) (token string, expiresAt time.Time)
	PutManifest(ctx context.Context, repo, reference, mediaType string, manifest []byte) (*state.Image, error)
	Manifest(ctx context.Context, repo, reference string) (*state.Image, []byte, error)
	// DeleteImage deletes an image with all its tags.
	DeleteImage(ctx context.Context, repo, digest string) error
	// Untag removes a tag and returns its image as it is after.
	Untag(ctx context.Context, repo, tag string) (*state.Image, error)
	// DeleteUntagged deletes an image if no tag names it (checked in the
	// transaction that deletes) and reports whether it did.
	DeleteUntagged(ctx context.Context, repo, digest string) (bool, error)
	StartUpload(ctx context.Context, repo string) (id string, err error)
	// UploadPart appends body at offset, which must be the upload's size.
	UploadPart(ctx context.Context, repo, id string, offset int64, body io.Reader) (size int64, err error)
	UploadSize(ctx context.Context, repo, id string) (int64, error)
	CompleteUpload(ctx context.Context, repo, id, digest string) (size int64, err error)
	// Blob returns the size of a blob readable in repo.
	Blob(ctx context.Context, repo, digest string) (size int64, err error)
	// BlobURL is a signed URL that serves the blob.
	BlobURL(repo, digest string) string
}

// Config configures the ECR API.
type Config struct {
	Store    store.Store
	Registry Registry
	Region   string
	// Account is the registry id: the one registry Berth serves.
	Account string
	// Now is the clock; timestamps in records come from it.
	Now    func() time.Time
	Logger *slog.Logger
}

// Service answers ECR operations. Operations it does not provide are
// answered by the embedded Unimplemented with an error naming them.
type Service struct {
	ecrtypes.Unimplemented
	store   store.Store
	reg     Registry
	arns    state.ARNs
	account string
	now     func() time.Time
	log     *slog.Logger
}

// New returns the ECR API over cfg.Store and cfg.Registry.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Registry == nil || cfg.Region == "" || cfg.Account == "" {
		return nil, fmt.Errorf("ecr: store, registry, region and account are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{
		store:   cfg.Store,
		reg:     cfg.Registry,
		arns:    state.ARNs{Region: cfg.Region, Account: cfg.Account},
		account: cfg.Account,
		now:     cfg.Now,
		log:     cfg.Logger.With("component", "ecr_api"),
	}, nil
}

// JSONService describes the ECR API to the front door.
//
// Operations Berth does not implement answer UnsupportedCommandException
// (HTTP 400): ECR has no exception for that, and ECR Public's name for "not
// supported here" is a client error every SDK surfaces as such.
func (s *Service) JSONService() *api.JSONService {
	return &api.JSONService{
		TargetPrefix:       ecrtypes.TargetPrefix,
		JSONVersion:        "1.1",
		SigningName:        ecrtypes.SigningName,
		ValidationCode:     "InvalidParameterException",
		NotImplementedCode: "UnsupportedCommandException",
		ServerErrorCode:    "ServerException",
		MaxBodyBytes:       MaxBodyBytes,
		Dispatch:           s.dispatch,
	}
}

func (s *Service) dispatch(ctx context.Context, op string, body []byte) (any, error) {
	return ecrtypes.Dispatch(ctx, s, op, body)
}

// principal returns the ARN of the request's caller.
func (s *Service) principal(ctx context.Context) string {
	if c, ok := api.CallerFrom(ctx); ok && c.ARN != "" {
		return c.ARN
	}
	return s.arns.Root()
}

// Errors with ECR's wording, shared by several handlers.

func invalidParam(format string, args ...any) error {
	return ecrtypes.NewInvalidParameterException(format, args...)
}

func (s *Service) repoNotFound(registryID, name string) error {
	if registryID == "" {
		registryID = s.account
	}
	return ecrtypes.NewRepositoryNotFoundException("The repository with name '%s' does not exist in the registry with id '%s'", name, registryID)
}

// checkRegistry refuses a registryId other than Berth's one registry. ECR
// answers a repository in a registry the caller cannot see as not found.
func (s *Service) checkRegistry(registryID, repo string) error {
	if registryID == "" || registryID == s.account {
		return nil
	}
	if repo == "" {
		return invalidParam("Invalid parameter at 'registryId': Berth serves one registry, '%s', not '%s'", s.account, registryID)
	}
	return s.repoNotFound(registryID, repo)
}

// repository reads repository name, or answers RepositoryNotFoundException.
func (s *Service) repository(tx store.ReadTx, registryID, name string) (*state.Repository, error) {
	if err := s.checkRegistry(registryID, name); err != nil {
		return nil, err
	}
	rec, ok, err := state.Get[state.Repository](tx, state.RepositoryKey(name))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, s.repoNotFound(registryID, name)
	}
	return rec, nil
}

// viewRepository reads a repository in its own snapshot.
func (s *Service) viewRepository(ctx context.Context, registryID, name string) (*state.Repository, error) {
	var rec *state.Repository
	err := s.store.View(ctx, func(tx store.ReadTx) error {
		var err error
		rec, err = s.repository(tx, registryID, name)
		return err
	})
	return rec, err
}

// updateRepository changes repository name in one transaction.
func (s *Service) updateRepository(ctx context.Context, registryID, name string, change func(*state.Repository) error) (*state.Repository, error) {
	var rec *state.Repository
	_, err := s.store.Update(ctx, func(tx store.Tx) error {
		var err error
		rec, err = s.repository(tx, registryID, name)
		if err != nil {
			return err
		}
		if err := change(rec); err != nil {
			return err
		}
		return state.Put(tx, state.RepositoryKey(name), rec)
	})
	return rec, err
}

// registryError turns an error of the registry into ECR's exception for
// it; anything else passes unchanged (an internal error).
func registryError(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	switch {
	case errors.Is(err, registry.ErrRepositoryNotFound):
		return ecrtypes.NewRepositoryNotFoundException("%s", msg)
	case errors.Is(err, registry.ErrImageNotFound):
		return ecrtypes.NewImageNotFoundException("%s", msg)
	case errors.Is(err, registry.ErrUploadNotFound):
		return ecrtypes.NewUploadNotFoundException("%s", msg)
	case errors.Is(err, registry.ErrBlobNotFound), errors.Is(err, registry.ErrManifestBlobUnknown):
		return ecrtypes.NewLayersNotFoundException("%s", msg)
	case errors.Is(err, registry.ErrDigestMismatch):
		return ecrtypes.NewInvalidLayerException("%s", msg)
	case errors.Is(err, registry.ErrTagImmutable):
		return ecrtypes.NewImageTagAlreadyExistsException("%s", msg)
	case errors.Is(err, registry.ErrRangeInvalid):
		return ecrtypes.NewInvalidLayerPartException("%s", msg)
	case errors.Is(err, registry.ErrManifestInvalid), errors.Is(err, registry.ErrDigestInvalid), errors.Is(err, registry.ErrTagInvalid):
		return ecrtypes.NewInvalidParameterException("%s", msg)
	}
	return err
}

// page is one request's pagination (paging.Page).
type page = paging.Page

// newPage checks maxResults (0 means absent: def) and decodes nextToken.
// Tokens are opaque to clients: the last key returned, base64url-encoded.
func newPage(maxResults int32, nextToken string, def int) (page, error) {
	p := page{Limit: def}
	if maxResults > 0 {
		p.Limit = int(maxResults)
	}
	if nextToken != "" {
		after, ok := paging.Decode(nextToken)
		if !ok {
			return p, invalidParam("Invalid parameter at 'nextToken': pass the nextToken of the previous response unchanged")
		}
		p.After = after
	}
	return p, nil
}

// scan walks keys under prefix after p.After in key order (paging.Walk).
func scan(tx store.ReadTx, prefix string, p page, keep func(store.KV) (bool, error)) (string, error) {
	return paging.Walk(tx.List, prefix, p, keep)
}

// images returns every image of repo.
func images(tx store.ReadTx, repo string) ([]*state.Image, error) {
	kvs, err := tx.List(state.ImagesRepoPrefix(repo), "", 0)
	if err != nil {
		return nil, err
	}
	out := make([]*state.Image, 0, len(kvs))
	for _, kv := range kvs {
		img, err := state.Decode[state.Image](kv)
		if err != nil {
			return nil, err
		}
		out = append(out, img)
	}
	return out, nil
}

func timePtr(t awsmodel.Time) *awsmodel.Time { return &t }
