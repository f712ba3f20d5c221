package ecr_test

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/api"
	"github.com/berthdev/berth/internal/awsmodel/ecrtypes"
)

func TestGetAuthorizationToken(t *testing.T) {
	f := newFixture(t)
	f.ctx = api.WithCaller(f.ctx, api.Caller{ARN: "arn:aws:iam::000000000000:user/dev"})
	out := must[*ecrtypes.GetAuthorizationTokenResponse](t)(f.api.GetAuthorizationToken(f.ctx, &ecrtypes.GetAuthorizationTokenRequest{}))
	if len(out.AuthorizationData) != 1 {
		t.Fatalf("authorizationData = %+v", out.AuthorizationData)
	}
	a := out.AuthorizationData[0]
	raw, err := base64.StdEncoding.DecodeString(a.AuthorizationToken)
	if err != nil {
		t.Fatal(err)
	}
	user, password, _ := strings.Cut(string(raw), ":")
	if user != "AWS" {
		t.Fatalf("user = %q", user)
	}
	principal, err := f.reg.VerifyToken(password)
	if err != nil || principal != "arn:aws:iam::000000000000:user/dev" {
		t.Fatalf("token verifies as %q, %v", principal, err)
	}
	if want := f.clk.Now().Add(12 * time.Hour); !a.ExpiresAt.Time.Equal(want) || a.ProxyEndpoint != "http://"+host {
		t.Fatalf("expiresAt %v (want %v), proxyEndpoint %q", a.ExpiresAt, want, a.ProxyEndpoint)
	}
	two := must[*ecrtypes.GetAuthorizationTokenResponse](t)(f.api.GetAuthorizationToken(f.ctx, &ecrtypes.GetAuthorizationTokenRequest{RegistryIds: []string{account, account}}))
	if len(two.AuthorizationData) != 2 {
		t.Fatalf("one entry per registry id: %+v", two)
	}
	_, err = f.call("GetAuthorizationToken", map[string]any{"registryIds": []string{"123456789012"}})
	wantErr(t, err, "InvalidParameterException", "Berth serves one registry")
}

func TestLayerUpload(t *testing.T) {
	f := newFixture(t)
	f.createRepo("app")
	start := func() string {
		out := must[*ecrtypes.InitiateLayerUploadResponse](t)(f.api.InitiateLayerUpload(f.ctx, &ecrtypes.InitiateLayerUploadRequest{RepositoryName: "app"}))
		if out.PartSize != 10<<20 {
			t.Fatalf("partSize = %d", out.PartSize)
		}
		return out.UploadId
	}
	part := func(id string, first int64, data string) (*ecrtypes.UploadLayerPartResponse, error) {
		return f.api.UploadLayerPart(f.ctx, &ecrtypes.UploadLayerPartRequest{
			RepositoryName: "app", UploadId: id, PartFirstByte: first, PartLastByte: first + int64(len(data)) - 1, LayerPartBlob: []byte(data),
		})
	}
	complete := func(id, digest string) (*ecrtypes.CompleteLayerUploadResponse, error) {
		return f.api.CompleteLayerUpload(f.ctx, &ecrtypes.CompleteLayerUploadRequest{RepositoryName: "app", UploadId: id, LayerDigests: []string{digest}})
	}

	id := start()
	if r := must[*ecrtypes.UploadLayerPartResponse](t)(part(id, 0, "hello ")); r.LastByteReceived != 5 || r.UploadId != id || r.RegistryId != account {
		t.Fatalf("part 1 = %+v", r)
	}
	_, err := part(id, 10, "gap")
	wantErr(t, err, "InvalidLayerPartException", "the last valid byte received is 5")
	_, err = part(id, 3, "overlap")
	wantErr(t, err, "InvalidLayerPartException", "the last valid byte received is 5")
	_, err = f.api.UploadLayerPart(f.ctx, &ecrtypes.UploadLayerPartRequest{RepositoryName: "app", UploadId: id, PartFirstByte: 6, PartLastByte: 100, LayerPartBlob: []byte("short")})
	wantErr(t, err, "InvalidLayerPartException", "bytes 6 to 100 are 95 bytes, but layerPartBlob holds 5")
	if r := must[*ecrtypes.UploadLayerPartResponse](t)(part(id, 6, "world")); r.LastByteReceived != 10 {
		t.Fatalf("part 2 = %+v", r)
	}
	layer := []byte("hello world")
	_, err = complete(id, digestOf([]byte("something else")))
	wantErr(t, err, "InvalidLayerException", "")
	// A digest mismatch discards the upload, as distribution does.
	_, err = complete(id, digestOf(layer))
	wantErr(t, err, "UploadNotFoundException", id)

	id = start()
	must[*ecrtypes.UploadLayerPartResponse](t)(part(id, 0, string(layer)))
	done := must[*ecrtypes.CompleteLayerUploadResponse](t)(complete(id, digestOf(layer)))
	if done.LayerDigest != digestOf(layer) || done.UploadId != id || done.RepositoryName != "app" {
		t.Fatalf("complete = %+v", done)
	}
	_, err = complete(id, digestOf(layer))
	wantErr(t, err, "UploadNotFoundException", id)

	// The same layer again.
	id = start()
	must[*ecrtypes.UploadLayerPartResponse](t)(part(id, 0, string(layer)))
	_, err = complete(id, digestOf(layer))
	wantErr(t, err, "LayerAlreadyExistsException", "The layer '"+digestOf(layer)+"' already exists in the repository with name 'app' in registry with id '000000000000'")

	// No parts.
	id = start()
	_, err = complete(id, digestOf(nil))
	wantErr(t, err, "EmptyUploadException", "contains no layer parts")

	cases := []struct {
		op        string
		body      map[string]any
		code, msg string
	}{
		{"InitiateLayerUpload", map[string]any{"repositoryName": "nope"}, "RepositoryNotFoundException", "The repository with name 'nope' does not exist in the registry with id '000000000000'"},
		{"InitiateLayerUpload", map[string]any{"repositoryName": "app", "registryId": "123456789012"}, "RepositoryNotFoundException", "registry with id '123456789012'"},
		{"UploadLayerPart", map[string]any{"repositoryName": "app", "uploadId": "00000000-0000-4000-8000-000000000000", "partFirstByte": 0, "partLastByte": 0, "layerPartBlob": "YQ=="}, "UploadNotFoundException", "00000000-0000-4000-8000-000000000000"},
		{"CompleteLayerUpload", map[string]any{"repositoryName": "app", "uploadId": id, "layerDigests": []string{digestOf(layer), digestOf(layer)}}, "InvalidParameterException", "exactly one digest"},
		{"CompleteLayerUpload", map[string]any{"repositoryName": "app", "uploadId": "00000000-0000-4000-8000-000000000000", "layerDigests": []string{digestOf(layer)}}, "UploadNotFoundException", ""},
	}
	for _, c := range cases {
		_, err := f.call(c.op, c.body)
		wantErr(t, err, c.code, c.msg)
	}
	_, err = f.api.UploadLayerPart(f.ctx, &ecrtypes.UploadLayerPartRequest{RepositoryName: "app", UploadId: id, PartLastByte: 20<<20 + 1, LayerPartBlob: bytes.Repeat([]byte("x"), 20<<20+2)})
	wantErr(t, err, "InvalidParameterException", "at most 20971520 bytes")
}

func TestLayerAvailabilityAndDownload(t *testing.T) {
	f := newFixture(t)
	f.createRepo("app")
	f.push("app", "v1", "used")
	loose := f.upload("app", []byte("loose layer"), 4)
	used := digestOf([]byte("layer used"))
	unknown := digestOf([]byte("unknown"))

	out, err := f.call("BatchCheckLayerAvailability", map[string]any{"repositoryName": "app", "layerDigests": []string{used, loose, unknown, "bogus", ""}})
	if err != nil {
		t.Fatal(err)
	}
	resp := out.(*ecrtypes.BatchCheckLayerAvailabilityResponse)
	want := []ecrtypes.Layer{
		{LayerDigest: used, LayerAvailability: ecrtypes.LayerAvailabilityAvailable, LayerSize: int64(len("layer used"))},
		{LayerDigest: loose, LayerAvailability: ecrtypes.LayerAvailabilityAvailable, LayerSize: int64(len("loose layer"))},
		{LayerDigest: unknown, LayerAvailability: ecrtypes.LayerAvailabilityUnavailable},
	}
	if len(resp.Layers) != len(want) {
		t.Fatalf("layers = %+v", resp.Layers)
	}
	for i := range want {
		if resp.Layers[i] != want[i] {
			t.Errorf("layer %d = %+v, want %+v", i, resp.Layers[i], want[i])
		}
	}
	if len(resp.Failures) != 2 || resp.Failures[0].FailureCode != ecrtypes.LayerFailureCodeInvalidLayerDigest || resp.Failures[1].FailureCode != ecrtypes.LayerFailureCodeMissingLayerDigest {
		t.Errorf("failures = %+v", resp.Failures)
	}
	_, err = f.call("BatchCheckLayerAvailability", map[string]any{"repositoryName": "nope", "layerDigests": []string{used}})
	wantErr(t, err, "RepositoryNotFoundException", "'nope'")

	dl := must[*ecrtypes.GetDownloadUrlForLayerResponse](t)(f.api.GetDownloadUrlForLayer(f.ctx, &ecrtypes.GetDownloadUrlForLayerRequest{RepositoryName: "app", LayerDigest: used}))
	if !strings.HasPrefix(dl.DownloadUrl, "http://"+host+"/v2/app/blobs/"+used+"?") || dl.LayerDigest != used {
		t.Fatalf("download = %+v", dl)
	}
	cases := []struct {
		digest, code, msg string
	}{
		{loose, "LayerInaccessibleException", "is not associated with an image"},
		{unknown, "LayersNotFoundException", "The layer with digest '" + unknown + "' does not exist in the repository with name 'app'"},
	}
	for _, c := range cases {
		_, err := f.call("GetDownloadUrlForLayer", map[string]any{"repositoryName": "app", "layerDigest": c.digest})
		wantErr(t, err, c.code, c.msg)
	}
}
