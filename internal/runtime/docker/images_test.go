package docker_test

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/errdefs"
	berthruntime "github.com/berthdev/berth/internal/runtime"
	"github.com/berthdev/berth/internal/testimage"
)

func TestImages(t *testing.T) {
	h := newHarness(t)

	present, err := h.rt.ImagePresent(h.ctx, h.image)
	if err != nil || !present {
		t.Errorf("ImagePresent(%s) = %v, %v; want true", h.image, present, err)
	}
	present, err = h.rt.ImagePresent(h.ctx, "berth-test-no-such-image:latest")
	if err != nil || present {
		t.Errorf("ImagePresent(missing) = %v, %v; want false, nil", present, err)
	}

	// A present image is not pulled again: with no registry reachable, a
	// pull would fail.
	auth := &berthruntime.RegistryAuth{Username: "u", Password: "p", ServerAddress: "127.0.0.1:1"}
	for _, a := range []*berthruntime.RegistryAuth{nil, auth} {
		if err := h.rt.Pull(h.ctx, h.image, a); err != nil {
			t.Errorf("Pull of a present image (auth %v): %v", a != nil, err)
		}
	}

	// A missing image from an unreachable registry fails fast and says which.
	for _, ref := range []string{
		"127.0.0.1:1/berth/nothing:latest",         // connection refused
		"nothing.invalid/berth/nothing:latest",     // no such host
		"berth-test-no-such-image-anywhere:latest", // the default registry, unreachable here
	} {
		ctx, cancel := context.WithTimeout(h.ctx, 15*time.Second)
		start := time.Now()
		err := h.rt.Pull(ctx, ref, auth)
		cancel()
		if err == nil || !strings.Contains(err.Error(), ref) {
			t.Errorf("Pull(%s) = %v, want an error naming the image", ref, err)
		}
		if errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Pull(%s) hung until its deadline", ref)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("Pull(%s) took %v", ref, d)
		}
	}

	// An invalid reference is the caller's error.
	if err := h.rt.Pull(h.ctx, "Not A Reference", nil); err == nil {
		t.Error("Pull of an invalid reference succeeded")
	}
	if _, err := h.rt.ImageID(h.ctx, "berth-test-no-such-image:latest"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("ImageID(missing) = %v, want ErrNotFound", err)
	}
}

func TestLoadAndRemoveImage(t *testing.T) {
	h := newHarness(t)
	// The test image under a tag of this test's own: loading it adds a tag
	// to the same image, removing the tag leaves the shared image alone.
	ref := "berth-test-" + h.id + ":tmp"
	img, err := testimage.Build(h.ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.rt.LoadImage(h.ctx, bytes.NewReader(img.Archive)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.rt.RemoveImage(context.Background(), ref) })
	id, err := h.rt.ImageID(h.ctx, ref)
	if err != nil || id != img.ID {
		t.Fatalf("ImageID(%s) = %s, %v; want %s", ref, id, err, img.ID)
	}
	if err := h.rt.RemoveImage(h.ctx, ref); err != nil {
		t.Fatal(err)
	}
	if ok, err := h.rt.ImagePresent(h.ctx, ref); ok || err != nil {
		t.Errorf("ImagePresent after RemoveImage = %v, %v", ok, err)
	}
	if ok, err := h.rt.ImagePresent(h.ctx, h.image); !ok || err != nil {
		t.Errorf("ImagePresent(%s) after removing another tag = %v, %v", h.image, ok, err)
	}
	if err := h.rt.RemoveImage(h.ctx, ref); err != nil {
		t.Errorf("RemoveImage of a missing image: %v", err)
	}
	// A broken archive is refused.
	if err := h.rt.LoadImage(h.ctx, strings.NewReader("not a tar")); err == nil {
		t.Error("LoadImage of garbage succeeded")
	}
}

func TestInfo(t *testing.T) {
	h := newHarness(t)
	info, err := h.rt.Info(h.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.CPUs <= 0 || info.MemoryBytes <= 0 || info.EngineVersion == "" || info.OS != "linux" ||
		info.Arch != runtime.GOARCH || info.Hostname == "" {
		t.Errorf("Info = %+v", info)
	}
}
