// Package registry is Berth's container registry: an OCI Distribution API
// handler (/v2/) over a content-addressed blob store on disk, with the
// repository, image, tag and layer records in Berth's store (package state
// lays them out). The ECR API (package api/ecr) and the agent protocol use
// the same Registry, so an image pushed with `docker push` is the image
// DescribeImages lists and the agent pulls.
//
// Consistency: blob and manifest bytes are written to a temporary file,
// verified against their digest, fsync'd and renamed into place before any
// store record names them; a crash at any point leaves at most an
// unreferenced file, which garbage collection removes. The store is the
// source of truth for what exists.
//
// Authorization: every /v2/ request carries a token minted by MintToken
// (what `aws ecr get-login-password` prints), as Basic AWS:<token> or, after
// the Bearer challenge and the /v2/token endpoint, as Bearer <token>; blob
// reads may instead carry the signed query parameters of a BlobURL. Tokens
// are HMACs under Config.TokenKey, so they need no storage and survive a
// restart.
//
// Errors: operations return *Error values that unwrap to the Err* classes
// below; toWire (http.go) is the one place they become distribution-spec
// error documents.
package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berthdev/berth/internal/errdefs"
	"github.com/berthdev/berth/internal/store"
)

// Config configures a Registry. Validate fills defaults.
type Config struct {
	// Store holds the repository, image, tag, layer and upload records (required).
	Store store.Store
	// Dir holds blobs and uploads (required; created if missing).
	Dir string
	// Host is the registry's host[:port] as clients name it in image
	// references and repositoryUri (required), e.g. "127.0.0.1:4566".
	Host    string
	Region  string
	Account string
	// TokenKey signs authorization tokens (required, at least 32 bytes);
	// the control plane keeps it in its data directory so tokens survive a
	// restart.
	TokenKey []byte
	// TokenTTL is how long an authorization token is valid; 0 means 12 hours (ECR's).
	TokenTTL time.Duration
	// GCInterval is how often unreferenced blobs are collected; 0 means 10 minutes.
	GCInterval time.Duration
	// GCGrace keeps unreferenced blobs, layer links and uploads younger than
	// this (a push uploads its layers before its manifest); 0 means 1 hour.
	GCGrace time.Duration
	// LifecycleInterval is how often lifecycle policies are applied; 0 means 1 minute.
	LifecycleInterval time.Duration
	// Now is the clock.
	Now    func() time.Time
	Logger *slog.Logger
	// Metrics, when set, registers the registry's Prometheus metrics.
	Metrics prometheus.Registerer
}

// Errors. Each wraps an errdefs class; handlers match them with errors.Is
// and map them to the distribution-spec codes or the ECR exceptions.
var (
	// ErrRepositoryNotFound: NAME_UNKNOWN / RepositoryNotFoundException.
	ErrRepositoryNotFound = fmt.Errorf("repository not found: %w", errdefs.ErrNotFound)
	// ErrImageNotFound: MANIFEST_UNKNOWN / ImageNotFoundException.
	ErrImageNotFound = fmt.Errorf("image not found: %w", errdefs.ErrNotFound)
	// ErrBlobNotFound: BLOB_UNKNOWN / LayersNotFoundException.
	ErrBlobNotFound = fmt.Errorf("blob not found: %w", errdefs.ErrNotFound)
	// ErrUploadNotFound: BLOB_UPLOAD_UNKNOWN / UploadNotFoundException.
	ErrUploadNotFound = fmt.Errorf("upload not found: %w", errdefs.ErrNotFound)
	// ErrDigestMismatch: DIGEST_INVALID / InvalidLayerException.
	ErrDigestMismatch = fmt.Errorf("digest mismatch: %w", errdefs.ErrInvalidArgument)
	// ErrManifestInvalid: MANIFEST_INVALID / InvalidParameterException.
	ErrManifestInvalid = fmt.Errorf("manifest invalid: %w", errdefs.ErrInvalidArgument)
	// ErrManifestBlobUnknown: MANIFEST_BLOB_UNKNOWN / LayersNotFoundException.
	ErrManifestBlobUnknown = fmt.Errorf("manifest references an unknown blob: %w", errdefs.ErrInvalidArgument)
	// ErrTagImmutable: TAG_INVALID / ImageTagAlreadyExistsException.
	ErrTagImmutable = fmt.Errorf("tag is immutable: %w", errdefs.ErrFailedPrecondition)
	// ErrRangeInvalid: BLOB_UPLOAD_INVALID with 416 / InvalidLayerPartException.
	ErrRangeInvalid = fmt.Errorf("upload range invalid: %w", errdefs.ErrInvalidArgument)
	// ErrDigestInvalid: DIGEST_INVALID / InvalidParameterException. The
	// digest is not "sha256:" and 64 lowercase hex digits.
	ErrDigestInvalid = fmt.Errorf("digest invalid: %w", errdefs.ErrInvalidArgument)
	// ErrTagInvalid: TAG_INVALID / InvalidParameterException. The tag does
	// not match [A-Za-z0-9_][A-Za-z0-9._-]{0,127}.
	ErrTagInvalid = fmt.Errorf("tag invalid: %w", errdefs.ErrInvalidArgument)
	// ErrUnauthorized: UNAUTHORIZED (401). The token is missing, malformed,
	// forged or expired. It wraps no errdefs class: no AWS error of the
	// JSON APIs corresponds to it (SigV4 guards those).
	ErrUnauthorized = errors.New("unauthorized")
)

// Error is what the registry's operations return for a condition clients
// see: Message is the text to show them (ECR's wording where ECR has one,
// e.g. "The repository with name 'web' does not exist in the registry with
// id '000000000000'"), and the error unwraps to one of the Err* variables
// above. Callers test with errors.Is and may use Error() as the message.
type Error struct {
	// Message is the client-facing text.
	Message string
	// Digest names the blob or manifest concerned, when there is one.
	Digest string
	class  error
}

// Error returns the client-facing message.
func (e *Error) Error() string { return e.Message }

// Unwrap returns the error's class (one of the Err* variables).
func (e *Error) Unwrap() error { return e.class }

func errorf(class error, format string, args ...any) *Error {
	return &Error{Message: fmt.Sprintf(format, args...), class: class}
}

// errRepoNotFound is ErrRepositoryNotFound for repo, in ECR's words.
func (r *Registry) errRepoNotFound(repo string) error {
	return errorf(ErrRepositoryNotFound, "The repository with name '%s' does not exist in the registry with id '%s'", repo, r.cfg.Account)
}

// Defaults applied by Config.Validate.
const (
	DefaultTokenTTL          = 12 * time.Hour
	DefaultGCInterval        = 10 * time.Minute
	DefaultGCGrace           = time.Hour
	DefaultLifecycleInterval = time.Minute
	// MaxManifestSize is the largest manifest accepted (ECR's limit).
	MaxManifestSize = 4 << 20
)

// Validate fills defaults and rejects missing required fields.
func (c *Config) Validate() error {
	switch {
	case c.Store == nil:
		return fmt.Errorf("registry: Store is required: %w", errdefs.ErrInvalidArgument)
	case c.Dir == "":
		return fmt.Errorf("registry: Dir is required: %w", errdefs.ErrInvalidArgument)
	case c.Host == "":
		return fmt.Errorf("registry: Host is required: %w", errdefs.ErrInvalidArgument)
	case len(c.TokenKey) < 32:
		return fmt.Errorf("registry: TokenKey must be at least 32 bytes: %w", errdefs.ErrInvalidArgument)
	case c.TokenTTL < 0 || c.GCInterval < 0 || c.GCGrace < 0 || c.LifecycleInterval < 0:
		return fmt.Errorf("registry: negative duration: %w", errdefs.ErrInvalidArgument)
	}
	if c.TokenTTL == 0 {
		c.TokenTTL = DefaultTokenTTL
	}
	if c.GCInterval == 0 {
		c.GCInterval = DefaultGCInterval
	}
	if c.GCGrace == 0 {
		c.GCGrace = DefaultGCGrace
	}
	if c.LifecycleInterval == 0 {
		c.LifecycleInterval = DefaultLifecycleInterval
	}
	if c.Region == "" {
		c.Region = "us-east-1"
	}
	if c.Account == "" {
		c.Account = "000000000000"
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Registry is the blob store, the image and upload operations over it, and
// the OCI Distribution API handler (ServeHTTP) for everything under /v2/.
// It is safe for concurrent use.
type Registry struct {
	cfg     Config
	log     *slog.Logger
	store   store.Store
	metrics *metrics
	// keys are the HMAC keys derived from cfg.TokenKey, one per purpose.
	tokenKey, urlKey []byte

	// gcMu keeps a sweep from deleting a blob file that a commit is about to
	// make visible: every path that renames a blob into place or creates a
	// record that references a blob holds it for reading from before the
	// rename (or the check that the blob is readable) until its store
	// transaction has committed; GC holds it for writing while it reads the
	// references and deletes files.
	gcMu sync.RWMutex

	uploadsMu sync.Mutex
	uploads   map[string]*upload

	// testHookGCListed, when set, runs after GC has listed its candidates
	// and before it takes gcMu.
	testHookGCListed func()
	// testHookManifestResolved, when set, runs after a manifest read has
	// found the image's record and before it reads the file.
	testHookManifestResolved func()
	// testHookUploadIdle, when set, runs after GC has found an upload idle
	// and before it locks the upload to delete it.
	testHookUploadIdle func(id string)
}

// Open validates cfg, creates the directories under cfg.Dir and removes the
// temporary files a previous process left behind.
func Open(cfg Config) (*Registry, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &Registry{
		cfg:      cfg,
		log:      cfg.Logger.With("component", "registry"),
		store:    cfg.Store,
		tokenKey: deriveKey(cfg.TokenKey, "berth registry token"),
		urlKey:   deriveKey(cfg.TokenKey, "berth registry blob url"),
		uploads:  make(map[string]*upload),
	}
	for _, d := range []string{r.blobsDir(), r.uploadsDir(), r.tmpDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("registry: %w", err)
		}
	}
	// Temporary files are never named by a record: a leftover one is a
	// write that a crash interrupted.
	tmp, err := os.ReadDir(r.tmpDir())
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	for _, e := range tmp {
		if err := os.RemoveAll(filepath.Join(r.tmpDir(), e.Name())); err != nil {
			return nil, fmt.Errorf("registry: removing stale temporary file: %w", err)
		}
	}
	if len(tmp) > 0 {
		r.log.Info("removed stale temporary files", "count", len(tmp))
	}
	if cfg.Metrics != nil {
		m, err := newMetrics(cfg.Metrics)
		if err != nil {
			return nil, fmt.Errorf("registry: %w", err)
		}
		r.metrics = m
	}
	return r, nil
}

// Host is the registry's host[:port] as clients name it in image references.
func (r *Registry) Host() string { return r.cfg.Host }

// Run collects garbage every cfg.GCInterval until ctx ends; it returns nil
// then.
func (r *Registry) Run(ctx context.Context) error {
	t := time.NewTicker(r.cfg.GCInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if _, err := r.GC(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("garbage collection failed", "err", err)
		}
	}
}
