package testimage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/errdefs"
	"github.com/berthdev/berth/internal/runtime/docker"
)

// Loader is what Load needs from a container engine; *docker.Runtime
// implements it.
type Loader interface {
	// ImageID returns the engine's id of a local image, or an error wrapping
	// errdefs.ErrNotFound.
	ImageID(ctx context.Context, ref string) (string, error)
	// LoadImage loads a "docker save" archive.
	LoadImage(ctx context.Context, archive io.Reader) error
}

var (
	_ Loader       = (*docker.Runtime)(nil)
	_ ImageRemover = (*docker.Runtime)(nil)
)

// ImageRemover is implemented by Loaders that can delete images, as
// *docker.Runtime does. Load uses it to delete the image a reload replaced,
// so that rebuilding the test application does not pile up untagged images.
type ImageRemover interface {
	// RemoveImage deletes an image by id; it refuses one in use.
	RemoveImage(ctx context.Context, image string) error
}

// Load builds the image for ref (see Build) and loads it into the engine,
// unless the engine already has ref with the same image id, that is the same
// binary: a test binary run after an unchanged one loads nothing. When a
// stale image is replaced and l is an ImageRemover, the stale one is
// deleted if nothing uses it.
func Load(ctx context.Context, l Loader, ref string) (*Image, error) {
	img, err := Build(ctx, ref)
	if err != nil {
		return nil, err
	}
	stale, err := l.ImageID(ctx, ref)
	switch {
	case err == nil && stale == img.ID:
		return img, nil
	case errors.Is(err, errdefs.ErrNotFound):
		stale = ""
	case err != nil:
		return nil, err
	}
	if err := l.LoadImage(ctx, bytes.NewReader(img.Archive)); err != nil {
		return nil, err
	}
	id, err := l.ImageID(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("image %q after load: %w", ref, err)
	}
	if id != img.ID {
		// Another process may have loaded a different build concurrently.
		return nil, fmt.Errorf("image %q after load has id %s, want %s", ref, id, img.ID)
	}
	if rm, ok := l.(ImageRemover); ok && stale != "" {
		// Best effort: containers of the old image, or another tag of it,
		// keep it, and that is fine.
		_ = rm.RemoveImage(ctx, stale)
	}
	return img, nil
}

// Timeouts for Require: reaching the engine, and compiling and loading the
// image (a cold build cache compiles net/http).
const (
	pingTimeout = 5 * time.Second
	loadTimeout = 3 * time.Minute
)

var (
	requireOnce sync.Once
	// unreachable explains why the engine could not be reached, if it could not.
	unreachable string
	requireErr  error
)

// Require returns the reference of the test image (DefaultRef), loaded into
// the Docker Engine named by the environment. The first call in a test
// binary compiles and loads it; later calls reuse that result.
//
// If the engine is unreachable, the test is skipped when the CI environment
// variable is empty and fails when it is set: a CI machine must run the
// Docker tests. A failure to build or load the image always fails the test.
func Require(t testing.TB) string {
	t.Helper()
	requireOnce.Do(func() { unreachable, requireErr = require() })
	if unreachable != "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("Docker Engine required (CI is set): %s", unreachable)
		}
		t.Skipf("skipping: Docker Engine unreachable (%s); set CI=true to make this a failure", unreachable)
	}
	if requireErr != nil {
		t.Fatalf("test image %s: %v", DefaultRef, requireErr)
	}
	return DefaultRef
}

// require connects to the engine and loads the test image.
func require() (unreachable string, err error) {
	rt, err := docker.New(docker.Options{})
	if err != nil {
		return err.Error(), nil
	}
	defer rt.Close()
	ctx, cancel := context.WithTimeout(context.Background(), pingTimeout)
	_, err = rt.Info(ctx)
	cancel()
	if err != nil {
		return err.Error(), nil
	}
	ctx, cancel = context.WithTimeout(context.Background(), loadTimeout)
	defer cancel()
	_, err = Load(ctx, rt, DefaultRef)
	return "", err
}
