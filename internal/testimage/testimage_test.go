package testimage_test

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/berthdev/berth/internal/errdefs"
	"github.com/berthdev/berth/internal/runtime/docker"
	"github.com/berthdev/berth/internal/testimage"
)

func TestBuildIsCachedAndReproducible(t *testing.T) {
	ctx := context.Background()
	a, err := testimage.Build(ctx, "berth-testapp-a:1")
	if err != nil {
		t.Fatal(err)
	}
	again, err := testimage.Build(ctx, "berth-testapp-a:1")
	if err != nil {
		t.Fatal(err)
	}
	if again != a {
		t.Error("second Build of the same ref built again")
	}
	b, err := testimage.Build(ctx, "berth-testapp-b:1")
	if err != nil {
		t.Fatal(err)
	}
	// The tag is not part of the image: the same binary gives the same id.
	if a.ID != b.ID || a.BinaryDigest != b.BinaryDigest {
		t.Errorf("ids differ for one binary: %s/%s vs %s/%s", a.ID, a.BinaryDigest, b.ID, b.BinaryDigest)
	}
}

func TestArchiveIsTheImage(t *testing.T) {
	img, err := testimage.Build(context.Background(), "berth-testapp-a:1")
	if err != nil {
		t.Fatal(err)
	}
	tag := name.MustParseReference("berth-testapp-a:1").(name.Tag)
	opener := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(img.Archive)), nil }
	read, err := tarball.Image(opener, &tag)
	if err != nil {
		t.Fatal(err)
	}
	id, err := read.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	if id.String() != img.ID {
		t.Errorf("archive config digest %s, want %s", id, img.ID)
	}
	cf, err := read.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if got := cf.Config.Entrypoint; len(got) != 1 || got[0] != "/app" {
		t.Errorf("entrypoint %q, want [/app]", got)
	}
	if cf.Config.Labels[testimage.BinaryDigestLabel] != img.BinaryDigest {
		t.Errorf("label %s = %q, want %q", testimage.BinaryDigestLabel, cf.Config.Labels[testimage.BinaryDigestLabel], img.BinaryDigest)
	}
	layers, err := read.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 {
		t.Fatalf("%d layers, want 1", len(layers))
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	modes := map[string]int64{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		modes[h.Name] = h.Mode
	}
	want := map[string]int64{"tmp/": 0o1777, "app": 0o755}
	if fmt.Sprint(modes) != fmt.Sprint(want) {
		t.Errorf("layer entries %v, want %v", modes, want)
	}
}

// recordingLoader is a Loader (and ImageRemover) holding one image id.
type recordingLoader struct {
	id      string // "" means absent
	loadsAs string // the id a load leaves
	loads   int
	removed []string
}

func (l *recordingLoader) ImageID(ctx context.Context, ref string) (string, error) {
	if l.id == "" {
		return "", fmt.Errorf("image %q: %w", ref, errdefs.ErrNotFound)
	}
	return l.id, nil
}

func (l *recordingLoader) LoadImage(ctx context.Context, archive io.Reader) error {
	l.loads++
	l.id = l.loadsAs
	return nil
}

func (l *recordingLoader) RemoveImage(ctx context.Context, id string) error {
	l.removed = append(l.removed, id)
	return nil
}

func TestLoadSkipsAnUpToDateImage(t *testing.T) {
	ctx := context.Background()
	img, err := testimage.Build(ctx, "berth-testapp-a:1")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		present     string
		loadsAs     string
		wantLoads   int
		wantRemoved []string
		wantErr     bool
	}{
		{name: "absent", loadsAs: img.ID, wantLoads: 1},
		{name: "up to date", present: img.ID, wantLoads: 0},
		{name: "stale", present: "sha256:0ld", loadsAs: img.ID, wantLoads: 1, wantRemoved: []string{"sha256:0ld"}},
		{name: "load without effect", present: "sha256:0ld", loadsAs: "sha256:0ld", wantLoads: 1, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := &recordingLoader{id: tt.present, loadsAs: tt.loadsAs}
			_, err := testimage.Load(ctx, l, "berth-testapp-a:1")
			if (err != nil) != tt.wantErr {
				t.Errorf("Load: error %v, want error %v", err, tt.wantErr)
			}
			if l.loads != tt.wantLoads {
				t.Errorf("%d loads, want %d", l.loads, tt.wantLoads)
			}
			if fmt.Sprint(l.removed) != fmt.Sprint(tt.wantRemoved) {
				t.Errorf("removed %v, want %v", l.removed, tt.wantRemoved)
			}
		})
	}
}

func TestRequireLoadsIntoTheEngine(t *testing.T) {
	ref := testimage.Require(t)
	rt, err := docker.New(docker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	img, err := testimage.Build(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	id, err := rt.ImageID(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if id != img.ID {
		t.Errorf("engine has %s as %s, want %s", ref, id, img.ID)
	}
	// A second Load finds the image up to date and loads nothing.
	counting := &countingLoader{Loader: rt}
	if _, err := testimage.Load(ctx, counting, ref); err != nil {
		t.Fatal(err)
	}
	if counting.loads != 0 {
		t.Errorf("Load of an up-to-date image loaded %d times", counting.loads)
	}
	if ref2 := testimage.Require(t); ref2 != ref {
		t.Errorf("Require changed its answer: %q then %q", ref, ref2)
	}
}

type countingLoader struct {
	testimage.Loader
	loads int
}

func (c *countingLoader) LoadImage(ctx context.Context, archive io.Reader) error {
	c.loads++
	return c.Loader.LoadImage(ctx, archive)
}
