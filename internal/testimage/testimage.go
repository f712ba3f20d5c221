// Package testimage is how Berth's tests get container images on machines
// without internet access: it compiles the test application (package
// testapp beside this one, a static multi-tool) with the go command on PATH,
// packs it as a one-layer image with go-containerregistry and loads it into
// the Docker Engine.
//
// Tests call Require, which does all of this once per test binary and
// returns the image reference. Build gives the image itself (a
// go-containerregistry image and a "docker save" archive), for tests that
// push it to a registry; Load puts it into any engine under any tag. Equal
// binaries give equal image ids, so an engine that already holds the
// current image is not loaded again.
//
// The image holds /app (the test application, the entrypoint) and an empty
// /tmp; see testapp's documentation for its commands, for example
// ["serve", "-port", "8080"] or ["exit", "3"].
package testimage

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// DefaultRef is the reference Require loads the test application under.
const DefaultRef = "berth-testapp:latest"

// BinaryDigestLabel is the image label that holds the sha256 of /app.
const BinaryDigestLabel = "dev.berth.testapp.binary-sha256"

// appPackage is the import path of the test application.
const appPackage = "github.com/berthdev/berth/internal/testimage/testapp"

// Image is the test application packed as a one-layer image.
type Image struct {
	// Ref is the reference the image is tagged with, as given to Build.
	Ref string
	// ID is the digest of the image config ("sha256:..."), which is also the
	// engine's image id once loaded.
	ID string
	// BinaryDigest is the hex sha256 of /app, also in BinaryDigestLabel.
	BinaryDigest string
	// Image is the image for go-containerregistry, for example to push it
	// with remote.Write.
	Image v1.Image
	// Archive is the image as a "docker save" archive tagged Ref, which
	// "docker load" and tarball.ImageFromPath accept. It is shared: callers
	// must not modify it.
	Archive []byte
}

var (
	binaryOnce   sync.Once
	binary       []byte
	binaryErr    error
	buildsMu     sync.Mutex
	builds       = map[string]*build{}
	imageCreated = time.Unix(0, 0).UTC() // fixed, so that equal binaries give equal image ids
)

// build is one image build, done once per reference and process.
type build struct {
	once sync.Once
	img  *Image
	err  error
}

// Build compiles the test application and packs it as an image tagged ref.
// Within one process the compilation happens once, and the image for a
// given ref is built once: later calls return the first result (including a
// failure). ctx bounds the first call's compilation.
func Build(ctx context.Context, ref string) (*Image, error) {
	buildsMu.Lock()
	b, ok := builds[ref]
	if !ok {
		b = &build{}
		builds[ref] = b
	}
	buildsMu.Unlock()
	b.once.Do(func() {
		binaryOnce.Do(func() { binary, binaryErr = compile(ctx) })
		if binaryErr != nil {
			b.err = binaryErr
			return
		}
		b.img, b.err = pack(ref, binary)
	})
	return b.img, b.err
}

// compile builds the test application as a static linux binary for this
// machine's architecture and returns its bytes.
func compile(ctx context.Context) ([]byte, error) {
	dir, err := os.MkdirTemp("", "berth-testapp-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "app")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, appPackage)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goruntime.GOARCH)
	// Build from this package's source directory when it is known, so that
	// the caller's working directory does not matter; with -trimpath test
	// binaries the file name is not a path and the working directory (inside
	// the module, as tests run) is used.
	if _, file, _, ok := goruntime.Caller(0); ok {
		if st, err := os.Stat(filepath.Dir(file)); err == nil && st.IsDir() {
			cmd.Dir = filepath.Dir(file)
		}
	}
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build %s: %v\n%s", appPackage, err, trimOutput(msg))
	}
	return os.ReadFile(out)
}

// pack makes the one-layer image holding bin as /app, tagged ref.
func pack(ref string, bin []byte) (*Image, error) {
	tag, err := name.NewTag(ref)
	if err != nil {
		return nil, fmt.Errorf("image reference %q: %w", ref, err)
	}
	sum := sha256.Sum256(bin)
	digest := hex.EncodeToString(sum[:])

	layerTar, err := layerArchive(bin)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithCompressedCaching)
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS = "linux"
	cf.Architecture = goruntime.GOARCH
	cf.Created = v1.Time{Time: imageCreated}
	cf.Config = v1.Config{
		Entrypoint: []string{"/app"},
		Cmd:        []string{"serve"},
		Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		WorkingDir: "/",
		Labels:     map[string]string{BinaryDigestLabel: digest},
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, err
	}
	id, err := img.ConfigName()
	if err != nil {
		return nil, err
	}
	var archive bytes.Buffer
	if err := tarball.Write(tag, img, &archive); err != nil {
		return nil, fmt.Errorf("write image archive: %w", err)
	}
	return &Image{Ref: ref, ID: id.String(), BinaryDigest: digest, Image: img, Archive: archive.Bytes()}, nil
}

// layerArchive is the layer's tar: /tmp (world-writable, sticky) and /app.
func layerArchive(bin []byte) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	entries := []struct {
		hdr  tar.Header
		body []byte
	}{
		{tar.Header{Typeflag: tar.TypeDir, Name: "tmp/", Mode: 0o1777}, nil},
		{tar.Header{Typeflag: tar.TypeReg, Name: "app", Mode: 0o755, Size: int64(len(bin))}, bin},
	}
	for _, e := range entries {
		e.hdr.ModTime = imageCreated
		e.hdr.Format = tar.FormatPAX
		if err := tw.WriteHeader(&e.hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// trimOutput shortens a command's output for an error message.
func trimOutput(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 2000 {
		s = s[:2000] + "..."
	}
	return s
}
