// Package ecs implements the Amazon ECS API (AmazonEC2ContainerServiceV20141113)
// over Berth's store: one file per resource. Handlers validate requests with
// ECS's own rules on top of the model's, read and write the records that
// package state lays out, and answer with ECS's error types.
package ecs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/berthdev/berth/internal/api"
	"github.com/berthdev/berth/internal/api/paging"
	"github.com/berthdev/berth/internal/awsmodel/ecstypes"
	"github.com/berthdev/berth/internal/launch"
	"github.com/berthdev/berth/internal/state"
	"github.com/berthdev/berth/internal/store"
)

// Config configures the ECS API.
type Config struct {
	Store   store.Store
	Region  string
	Account string
	// Now is the clock; timestamps in records come from it.
	Now    func() time.Time
	Logger *slog.Logger
	// Connected reports whether an instance's agent is connected; nil means
	// none is (no agent server).
	Connected func(instanceID string) bool
}

// Service answers ECS operations. Operations it does not provide are
// answered by the embedded Unimplemented with an error naming them.
type Service struct {
	ecstypes.Unimplemented
	store     store.Store
	arns      state.ARNs
	now       func() time.Time
	log       *slog.Logger
	connected func(instanceID string) bool
	launcher  *launch.Launcher
}

// New returns the ECS API over cfg.Store.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Region == "" || cfg.Account == "" {
		return nil, fmt.Errorf("ecs: store, region and account are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Connected == nil {
		cfg.Connected = func(string) bool { return false }
	}
	arns := state.ARNs{Region: cfg.Region, Account: cfg.Account}
	return &Service{
		store:     cfg.Store,
		arns:      arns,
		now:       cfg.Now,
		log:       cfg.Logger.With("component", "ecs_api"),
		connected: cfg.Connected,
		launcher:  &launch.Launcher{ARNs: arns, Now: cfg.Now, Connected: cfg.Connected},
	}, nil
}

// JSONService describes the ECS API to the front door.
func (s *Service) JSONService() *api.JSONService {
	return &api.JSONService{
		TargetPrefix:       ecstypes.TargetPrefix,
		JSONVersion:        "1.1",
		SigningName:        ecstypes.SigningName,
		ValidationCode:     "InvalidParameterException",
		NotImplementedCode: "UnsupportedFeatureException",
		ServerErrorCode:    "ServerException",
		Dispatch: func(ctx context.Context, op string, body []byte) (any, error) {
			return ecstypes.Dispatch(ctx, s, op, body)
		},
	}
}

// caller returns the ARN of the request's principal.
func (s *Service) caller(ctx context.Context) string {
	if c, ok := api.CallerFrom(ctx); ok && c.ARN != "" {
		return c.ARN
	}
	return s.arns.Root()
}

// Errors with ECS's wording, shared by several handlers.
func invalidParam(format string, args ...any) error {
	return ecstypes.NewInvalidParameterException(format, args...)
}

func clientErr(format string, args ...any) error {
	return ecstypes.NewClientException(format, args...)
}

func clusterNotFound() error { return ecstypes.NewClusterNotFoundException("Cluster not found.") }

// page is one request's pagination (paging.Page).
type page = paging.Page

// newPage checks maxResults (1..max, default max) and decodes nextToken.
// Tokens are opaque to clients: the last key returned, base64url-encoded.
func newPage(maxResults *int32, nextToken string, max int) (page, error) {
	p := page{Limit: max}
	if maxResults != nil {
		if *maxResults < 1 || int(*maxResults) > max {
			return p, invalidParam("maxResults must be between 1 and %d.", max)
		}
		p.Limit = int(*maxResults)
	}
	if nextToken != "" {
		after, ok := paging.Decode(nextToken)
		if !ok {
			return p, invalidParam("The nextToken is not valid: pass the nextToken from the previous response unchanged.")
		}
		p.After = after
	}
	return p, nil
}

// scan walks keys under prefix after p.After in key order (paging.Walk).
func scan(tx store.ReadTx, prefix string, p page, keep func(store.KV) (bool, error)) (string, error) {
	return paging.Walk(tx.List, prefix, p, keep)
}

func ptr[T any](v T) *T { return &v }

// errStop ends a scan early without an error.
var errStop = errors.New("stop scanning")
