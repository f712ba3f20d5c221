// Package docker implements runtime.Runtime over the Docker Engine API.
//
// It speaks to the engine named by the usual environment (DOCKER_HOST and
// friends, /var/run/docker.sock by default) and negotiates the API version,
// so it works with engines as old as API 1.40 (Docker 19.03).
//
// Engine errors are mapped to errdefs classes here and nowhere else:
//
//	engine 404 (no such container, image, volume)  -> errdefs.ErrNotFound
//	engine 409 on create (name in use)             -> errdefs.ErrAlreadyExists
//	engine 409 elsewhere (in use, being removed)   -> errdefs.ErrFailedPrecondition
//	engine 400 (invalid spec)                      -> errdefs.ErrInvalidArgument
//
// Context cancellation is returned wrapped around ctx.Err().
package docker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/berthdev/berth/internal/errdefs"
	"github.com/berthdev/berth/internal/runtime"
)

// Options configures a Runtime.
type Options struct {
	// Host is the engine address (for example "unix:///var/run/docker.sock");
	// empty means the DOCKER_HOST environment variable or the platform default.
	Host string
	// Logger receives the runtime's logs; nil means slog.Default().
	Logger *slog.Logger
}

// Validate fills defaults.
func (o *Options) Validate() error {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return nil
}

// Runtime runs containers on a Docker Engine. It is safe for concurrent use.
type Runtime struct {
	c   *client.Client
	log *slog.Logger
}

var _ runtime.Runtime = (*Runtime)(nil)

// New returns a Runtime for the engine described by opts. It does not
// contact the engine; the first call does (use Info to check reachability).
func New(opts Options) (*Runtime, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	// API version negotiation is the client's default behaviour: the first
	// request pings the engine and settles on the highest common version.
	clientOpts := []client.Opt{client.FromEnv}
	if opts.Host != "" {
		clientOpts = append(clientOpts, client.WithHost(opts.Host))
	}
	c, err := client.New(clientOpts...)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	return &Runtime{c: c, log: opts.Logger.With("component", "runtime.docker")}, nil
}

// Close releases the connection to the engine.
func (r *Runtime) Close() error {
	return r.c.Close()
}

// engineError wraps err, from the engine call described by what, with the
// errdefs class it belongs to. conflict is the class a 409 maps to: a name in
// use on create, an object in use elsewhere.
func engineError(ctx context.Context, what string, err error, conflict error) error {
	if err == nil {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("%s: %w", what, ctxErr)
	}
	var class error
	switch {
	case cerrdefs.IsNotFound(err):
		class = errdefs.ErrNotFound
	case cerrdefs.IsConflict(err):
		class = conflict
	case cerrdefs.IsInvalidArgument(err):
		class = errdefs.ErrInvalidArgument
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: %w", what, err)
	}
	if class == nil {
		return fmt.Errorf("%s: %v", what, err)
	}
	// The engine's own message follows the class; only the class is wrapped,
	// so no engine type leaks to callers.
	return fmt.Errorf("%s: %w: %v", what, class, err)
}
