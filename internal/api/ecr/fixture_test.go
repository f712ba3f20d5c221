package ecr_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/api/ecr"
	"github.com/berthdev/berth/internal/awsmodel"
	"github.com/berthdev/berth/internal/awsmodel/ecrtypes"
	"github.com/berthdev/berth/internal/clocktest"
	"github.com/berthdev/berth/internal/registry"
	"github.com/berthdev/berth/internal/store"
	"github.com/berthdev/berth/internal/store/bolt"
)

// The real registry is what the ECR API runs over.
var _ ecr.Registry = (*registry.Registry)(nil)

const (
	region  = "us-east-1"
	account = "000000000000"
	host    = "127.0.0.1:4566"
	arnBase = "arn:aws:ecr:" + region + ":" + account + ":repository/"
)

type clock = clocktest.Clock

// fixture is the ECR API over a real registry and bolt store in a temp dir.
type fixture struct {
	t   testing.TB
	api *ecr.Service
	reg *registry.Registry
	st  store.Store
	clk *clock
	ctx context.Context
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	dir := t.TempDir()
	st, err := bolt.Open(filepath.Join(dir, "s.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clk := clocktest.New(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	reg, err := registry.Open(registry.Config{
		Store: st, Dir: filepath.Join(dir, "registry"), Host: host, Region: region, Account: account,
		TokenKey: []byte("0123456789abcdef0123456789abcdef"), Now: clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	api, err := ecr.New(ecr.Config{Store: st, Registry: reg, Region: region, Account: account, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, api: api, reg: reg, st: st, clk: clk, ctx: context.Background()}
}

// call runs op through the service's dispatcher, as the front door does:
// decoding, model validation, then the handler.
func (f *fixture) call(op string, body any) (any, error) {
	b, err := json.Marshal(body)
	if err != nil {
		f.t.Fatal(err)
	}
	return f.api.JSONService().Dispatch(f.ctx, op, b)
}

func must[T any](t testing.TB) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// wantErr checks that err is the AWS error code with a message containing msg.
func wantErr(t testing.TB, err error, code, msg string) {
	t.Helper()
	var ae *awsmodel.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("got %v, want %s %q", err, code, msg)
	}
	if ae.Code != code || !strings.Contains(ae.Message, msg) {
		t.Fatalf("got %s %q, want %s containing %q", ae.Code, ae.Message, code, msg)
	}
}

func (f *fixture) createRepo(name string, change ...func(*ecrtypes.CreateRepositoryRequest)) *ecrtypes.Repository {
	f.t.Helper()
	in := &ecrtypes.CreateRepositoryRequest{RepositoryName: name}
	for _, c := range change {
		c(in)
	}
	return must[*ecrtypes.CreateRepositoryResponse](f.t)(f.api.CreateRepository(f.ctx, in)).Repository
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// upload stores data as a layer of repo through the ECR layer API, in
// parts of at most part bytes, and returns its digest.
func (f *fixture) upload(repo string, data []byte, part int) string {
	f.t.Helper()
	id := must[*ecrtypes.InitiateLayerUploadResponse](f.t)(f.api.InitiateLayerUpload(f.ctx, &ecrtypes.InitiateLayerUploadRequest{RepositoryName: repo})).UploadId
	for off := 0; off < len(data); off += part {
		end := min(off+part, len(data))
		must[*ecrtypes.UploadLayerPartResponse](f.t)(f.api.UploadLayerPart(f.ctx, &ecrtypes.UploadLayerPartRequest{
			RepositoryName: repo, UploadId: id, PartFirstByte: int64(off), PartLastByte: int64(end - 1), LayerPartBlob: data[off:end],
		}))
	}
	d := digestOf(data)
	must[*ecrtypes.CompleteLayerUploadResponse](f.t)(f.api.CompleteLayerUpload(f.ctx, &ecrtypes.CompleteLayerUploadRequest{
		RepositoryName: repo, UploadId: id, LayerDigests: []string{d},
	}))
	return d
}

// image uploads a config and one layer per content string to repo and
// returns a Docker schema 2 manifest referencing them.
func (f *fixture) image(repo string, contents ...string) []byte {
	f.t.Helper()
	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"comment":"` + strings.Join(contents, ",") + `"}`)
	type desc struct {
		MediaType string `json:"mediaType"`
		Size      int    `json:"size"`
		Digest    string `json:"digest"`
	}
	m := struct {
		SchemaVersion int    `json:"schemaVersion"`
		MediaType     string `json:"mediaType"`
		Config        desc   `json:"config"`
		Layers        []desc `json:"layers"`
	}{SchemaVersion: 2, MediaType: registry.MediaTypeDockerManifest}
	m.Config = desc{"application/vnd.docker.container.image.v1+json", len(config), f.upload(repo, config, 1<<20)}
	m.Layers = []desc{}
	for _, c := range contents {
		data := []byte("layer " + c)
		m.Layers = append(m.Layers, desc{"application/vnd.docker.image.rootfs.diff.tar.gzip", len(data), f.upload(repo, data, 1<<20)})
	}
	b, err := json.Marshal(m)
	if err != nil {
		f.t.Fatal(err)
	}
	return b
}

// push uploads an image with the given layer contents and puts it with tag
// ("" for untagged); it returns the image's digest.
func (f *fixture) push(repo, tag string, contents ...string) string {
	f.t.Helper()
	manifest := f.image(repo, contents...)
	out := must[*ecrtypes.PutImageResponse](f.t)(f.api.PutImage(f.ctx, &ecrtypes.PutImageRequest{
		RepositoryName: repo, ImageTag: tag, ImageManifest: string(manifest),
	}))
	return out.Image.ImageId.ImageDigest
}

// index puts an OCI index listing children in repo with tag.
func (f *fixture) index(repo, tag string, children ...string) (string, error) {
	f.t.Helper()
	type desc struct {
		MediaType string `json:"mediaType"`
		Size      int    `json:"size"`
		Digest    string `json:"digest"`
	}
	var ms []desc
	for _, c := range children {
		ms = append(ms, desc{registry.MediaTypeDockerManifest, 100, c})
	}
	b, _ := json.Marshal(struct {
		SchemaVersion int    `json:"schemaVersion"`
		MediaType     string `json:"mediaType"`
		Manifests     []desc `json:"manifests"`
	}{2, registry.MediaTypeOCIIndex, ms})
	out, err := f.api.PutImage(f.ctx, &ecrtypes.PutImageRequest{RepositoryName: repo, ImageTag: tag, ImageManifest: string(b)})
	if err != nil {
		return "", err
	}
	return out.Image.ImageId.ImageDigest, nil
}

func (f *fixture) describe(repo string) []ecrtypes.ImageDetail {
	f.t.Helper()
	return must[*ecrtypes.DescribeImagesResponse](f.t)(f.api.DescribeImages(f.ctx, &ecrtypes.DescribeImagesRequest{RepositoryName: repo})).ImageDetails
}

func idText(ids []ecrtypes.ImageIdentifier) string {
	var parts []string
	for _, id := range ids {
		parts = append(parts, fmt.Sprintf("%s:%s", short(id.ImageDigest), id.ImageTag))
	}
	return strings.Join(parts, " ")
}

// short is a digest's first hex digits, for readable failures.
func short(d string) string {
	if len(d) < 15 {
		return d
	}
	return d[7:15]
}
