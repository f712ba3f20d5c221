package docker

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/client"

	"github.com/berthdev/berth/internal/errdefs"
	"github.com/berthdev/berth/internal/runtime"
)

// Pull fetches an image unless it is already present, with auth if it is
// not nil. A reference the registry does not know is reported around
// errdefs.ErrNotFound. Without network the engine fails fast on DNS, but a
// registry that accepts the connection and never answers holds the call
// until ctx ends: give ctx a deadline.
func (r *Runtime) Pull(ctx context.Context, image string, auth *runtime.RegistryAuth) error {
	present, err := r.ImagePresent(ctx, image)
	if err != nil {
		return err
	}
	if present {
		return nil
	}
	opts := client.ImagePullOptions{}
	if auth != nil {
		opts.RegistryAuth, err = encodeAuth(auth)
		if err != nil {
			return err
		}
	}
	what := fmt.Sprintf("pull image %q", image)
	r.log.Info("pulling image", "image", image)
	resp, err := r.c.ImagePull(ctx, image, opts)
	if err != nil {
		return engineError(ctx, what, err, errdefs.ErrFailedPrecondition)
	}
	defer resp.Close()
	// Errors after the engine has started answering come inside the stream.
	if err := resp.Wait(ctx); err != nil {
		return engineError(ctx, what, err, errdefs.ErrFailedPrecondition)
	}
	r.log.Info("pulled image", "image", image)
	return nil
}

// encodeAuth renders credentials as the engine's X-Registry-Auth header:
// base64url of the JSON auth config.
func encodeAuth(auth *runtime.RegistryAuth) (string, error) {
	b, err := json.Marshal(registry.AuthConfig{
		Username:      auth.Username,
		Password:      auth.Password,
		ServerAddress: auth.ServerAddress,
	})
	if err != nil {
		return "", err
	}
	return base64.URLEncoding.EncodeToString(b), nil
}

// ImagePresent reports whether the image is available locally.
func (r *Runtime) ImagePresent(ctx context.Context, image string) (bool, error) {
	_, err := r.ImageID(ctx, image)
	if errors.Is(err, errdefs.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// ImageID returns the engine's id ("sha256:...", the digest of the image
// config) of a local image, or an error wrapping errdefs.ErrNotFound. It is
// not part of runtime.Runtime.
func (r *Runtime) ImageID(ctx context.Context, image string) (string, error) {
	res, err := r.c.ImageInspect(ctx, image)
	if err != nil {
		return "", engineError(ctx, fmt.Sprintf("inspect image %q", image), err, errdefs.ErrFailedPrecondition)
	}
	return res.ID, nil
}

// ImageDigest returns the manifest digest ("sha256:...") the engine
// recorded when it pulled image: the RepoDigests entry of image's
// repository. An image that was built or loaded, not pulled, has none
// (errdefs.ErrNotFound). It is not part of runtime.Runtime.
func (r *Runtime) ImageDigest(ctx context.Context, image string) (string, error) {
	res, err := r.c.ImageInspect(ctx, image)
	if err != nil {
		return "", engineError(ctx, fmt.Sprintf("inspect image %q", image), err, errdefs.ErrFailedPrecondition)
	}
	if d := repoDigest(image, res.RepoDigests); d != "" {
		return d, nil
	}
	return "", fmt.Errorf("image %q has no repository digest: %w", image, errdefs.ErrNotFound)
}

// repoDigest picks the digest of image's repository from an image's
// RepoDigests ("repo@sha256:..."). image may carry a tag or a digest.
func repoDigest(image string, repoDigests []string) string {
	repo := image
	if i := strings.Index(repo, "@"); i >= 0 {
		repo = repo[:i]
	} else if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	for _, rd := range repoDigests {
		name, digest, ok := strings.Cut(rd, "@")
		if ok && (name == repo || name == "docker.io/library/"+repo || name == "docker.io/"+repo) {
			return digest
		}
	}
	return ""
}

// LoadImage loads a "docker save" archive (as written by
// go-containerregistry's tarball.Write) into the engine, with the tags it
// carries. It is not part of runtime.Runtime: tests use it to get images
// without a registry.
func (r *Runtime) LoadImage(ctx context.Context, archive io.Reader) error {
	res, err := r.c.ImageLoad(ctx, archive, client.ImageLoadWithQuiet(true))
	if err != nil {
		return engineError(ctx, "load image", err, errdefs.ErrFailedPrecondition)
	}
	defer res.Close()
	dec := json.NewDecoder(res)
	for {
		var m jsonstream.Message
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return engineError(ctx, "load image", err, errdefs.ErrFailedPrecondition)
		}
		if m.Error != nil {
			return fmt.Errorf("load image: %s", m.Error.Message)
		}
	}
}

// RemoveImage deletes a local image, by reference or id, and its untagged
// parents. A missing image is not an error; one that containers use, or
// that an id names under several tags, is refused around
// errdefs.ErrFailedPrecondition. It is not part of runtime.Runtime.
func (r *Runtime) RemoveImage(ctx context.Context, image string) error {
	_, err := r.c.ImageRemove(ctx, image, client.ImageRemoveOptions{PruneChildren: true})
	err = engineError(ctx, fmt.Sprintf("remove image %q", image), err, errdefs.ErrFailedPrecondition)
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil
	}
	return err
}
