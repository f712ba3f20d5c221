package ecr_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/api/ecr"
	"github.com/berthdev/berth/internal/awsmodel/ecrtypes"
	"github.com/berthdev/berth/internal/registry"
	"github.com/berthdev/berth/internal/state"
)

func TestPushAndDescribeImage(t *testing.T) {
	f := newFixture(t)
	f.createRepo("app")
	pushedAt := f.clk.Now()
	digest := f.push("app", "v1", "one", "two")
	f.clk.Advance(time.Minute)

	imgs := f.describe("app")
	if len(imgs) != 1 {
		t.Fatalf("images = %+v", imgs)
	}
	d := imgs[0]
	checks := []struct {
		name      string
		got, want any
	}{
		{"registryId", d.RegistryId, account},
		{"repositoryName", d.RepositoryName, "app"},
		{"digest", d.ImageDigest, digest},
		{"tags", d.ImageTags, []string{"v1"}},
		{"size", d.ImageSizeInBytes, int64(len("layer one") + len("layer two"))},
		{"pushedAt", d.ImagePushedAt.Time, pushedAt},
		{"mediaType", d.ImageManifestMediaType, registry.MediaTypeDockerManifest},
		{"artifactMediaType", d.ArtifactMediaType, "application/vnd.docker.container.image.v1+json"},
		{"lastRecordedPullTime", d.LastRecordedPullTime == nil, true},
	}
	for _, c := range checks {
		if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}

	// A pull through BatchGetImage is recorded.
	got := must[*ecrtypes.BatchGetImageResponse](t)(f.api.BatchGetImage(f.ctx, &ecrtypes.BatchGetImageRequest{RepositoryName: "app", ImageIds: []ecrtypes.ImageIdentifier{{ImageTag: "v1"}}}))
	if len(got.Images) != 1 || got.Images[0].ImageId.ImageDigest != digest || got.Images[0].ImageManifestMediaType != registry.MediaTypeDockerManifest || digestOf([]byte(got.Images[0].ImageManifest)) != digest {
		t.Fatalf("BatchGetImage = %+v", got)
	}
	if d := f.describe("app")[0]; d.LastRecordedPullTime == nil || !d.LastRecordedPullTime.Time.Equal(f.clk.Now()) {
		t.Fatalf("lastRecordedPullTime = %v, want %v", d.LastRecordedPullTime, f.clk.Now())
	}

	// Retagging: PutImage of the same manifest with another tag.
	manifest := got.Images[0].ImageManifest
	must[*ecrtypes.PutImageResponse](t)(f.api.PutImage(f.ctx, &ecrtypes.PutImageRequest{RepositoryName: "app", ImageTag: "latest", ImageManifest: manifest}))
	if d := f.describe("app")[0]; !slices.Equal(d.ImageTags, []string{"latest", "v1"}) {
		t.Fatalf("tags after retag = %v", d.ImageTags)
	}
}

func TestPutImageRefuses(t *testing.T) {
	f := newFixture(t)
	f.createRepo("app")
	f.createRepo("locked", func(in *ecrtypes.CreateRepositoryRequest) {
		in.ImageTagMutability = ecrtypes.ImageTagMutabilityImmutable
	})
	manifest := string(f.image("app", "a"))
	digest := digestOf([]byte(manifest))
	must[*ecrtypes.PutImageResponse](t)(f.api.PutImage(f.ctx, &ecrtypes.PutImageRequest{RepositoryName: "app", ImageTag: "v1", ImageManifest: manifest}))
	f.push("locked", "v1", "b")
	other := string(f.image("locked", "c"))
	missingLayer := strings.Replace(manifest, digestOf([]byte("layer a")), digestOf([]byte("never uploaded")), 1)
	_, idxErr := f.index("app", "multi", digest, digestOf([]byte("no such manifest")))

	cases := []struct {
		name      string
		in        map[string]any
		code, msg string
	}{
		{"same tag and manifest", map[string]any{"repositoryName": "app", "imageTag": "v1", "imageManifest": manifest}, "ImageAlreadyExistsException",
			"Image with digest '" + digest + "' and tag 'v1' already exists in the repository with name 'app' in registry with id '000000000000'"},
		{"untagged again", map[string]any{"repositoryName": "app", "imageManifest": manifest}, "ImageAlreadyExistsException", "and tag null already exists"},
		{"immutable tag", map[string]any{"repositoryName": "locked", "imageTag": "v1", "imageManifest": other}, "ImageTagAlreadyExistsException",
			"The image tag 'v1' already exists in the 'locked' repository and cannot be overwritten because the repository is immutable."},
		{"digest mismatch", map[string]any{"repositoryName": "app", "imageTag": "v2", "imageManifest": manifest, "imageDigest": digestOf([]byte("x"))}, "ImageDigestDoesNotMatchException", "does not match"},
		{"missing layer", map[string]any{"repositoryName": "app", "imageTag": "v2", "imageManifest": missingLayer}, "LayersNotFoundException",
			"Layers with digests '[" + digestOf([]byte("never uploaded")) + "]' required for pushing image into repository with name 'app' in registry with id '000000000000' do not exist"},
		{"not json", map[string]any{"repositoryName": "app", "imageTag": "v2", "imageManifest": "nope"}, "InvalidParameterException", "Invalid parameter at 'ImageManifest'"},
		{"schema 1", map[string]any{"repositoryName": "app", "imageTag": "v2", "imageManifest": `{"schemaVersion":1}`}, "InvalidParameterException", "schema 1"},
		{"bad tag", map[string]any{"repositoryName": "app", "imageTag": "-x", "imageManifest": manifest}, "InvalidParameterException", "imageTag"},
		{"no repository", map[string]any{"repositoryName": "nope", "imageManifest": manifest}, "RepositoryNotFoundException", "'nope'"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := f.call("PutImage", c.in)
			wantErr(t, err, c.code, c.msg)
		})
	}
	wantErr(t, idxErr, "ReferencedImagesNotFoundException", digestOf([]byte("no such manifest")))
	// The same digest may be put again in an immutable repository under a new tag.
	must[*ecrtypes.PutImageResponse](t)(f.api.PutImage(f.ctx, &ecrtypes.PutImageRequest{RepositoryName: "locked", ImageTag: "v2", ImageManifest: other}))
}

// tagged pushes, into repo, images with the given tags (comma-separated;
// "" for untagged), a minute apart, and returns their digests.
func (f *fixture) tagged(repo string, tagLists ...string) []string {
	f.t.Helper()
	var out []string
	for i, tags := range tagLists {
		list := strings.Split(tags, ",")
		d := f.push(repo, list[0], fmt.Sprint(repo, i))
		manifest := must[*ecrtypes.BatchGetImageResponse](f.t)(f.api.BatchGetImage(f.ctx, &ecrtypes.BatchGetImageRequest{RepositoryName: repo, ImageIds: []ecrtypes.ImageIdentifier{{ImageDigest: d}}})).Images[0].ImageManifest
		for _, t := range list[1:] {
			must[*ecrtypes.PutImageResponse](f.t)(f.api.PutImage(f.ctx, &ecrtypes.PutImageRequest{RepositoryName: repo, ImageTag: t, ImageManifest: manifest}))
		}
		out = append(out, d)
		f.clk.Advance(time.Minute)
	}
	return out
}

func TestListImages(t *testing.T) {
	f := newFixture(t)
	f.createRepo("app")
	f.tagged("app", "a,b,c", "", "d", "", "e,f")
	all := func(status string) []string {
		var out []string
		for _, img := range f.describe("app") {
			if len(img.ImageTags) == 0 && status != "TAGGED" {
				out = append(out, short(img.ImageDigest)+":")
			}
			if status != "UNTAGGED" {
				for _, tg := range img.ImageTags {
					out = append(out, short(img.ImageDigest)+":"+tg)
				}
			}
		}
		return out
	}
	for _, status := range []string{"", "ANY", "TAGGED", "UNTAGGED"} {
		want := all(status)
		if status == "" {
			if len(want) != 8 {
				t.Fatalf("%d entries, want 8 (6 tags, 2 untagged)", len(want))
			}
		}
		for size := 0; size <= 9; size++ {
			var got []string
			token := ""
			for pages := 0; pages < 20; pages++ {
				body := map[string]any{"repositoryName": "app"}
				if size > 0 {
					body["maxResults"] = size
				}
				if token != "" {
					body["nextToken"] = token
				}
				if status != "" {
					body["filter"] = map[string]string{"tagStatus": status}
				}
				out, err := f.call("ListImages", body)
				if err != nil {
					t.Fatal(err)
				}
				resp := out.(*ecrtypes.ListImagesResponse)
				if size > 0 && len(resp.ImageIds) > size {
					t.Fatalf("page of %d, want at most %d", len(resp.ImageIds), size)
				}
				for _, id := range resp.ImageIds {
					got = append(got, short(id.ImageDigest)+":"+id.ImageTag)
				}
				if token = resp.NextToken; token == "" {
					break
				}
			}
			// Entries come in digest then tag order, as DescribeImages lists them.
			if !slices.Equal(got, want) {
				t.Errorf("status %q size %d: listed %v, want %v", status, size, got, want)
			}
		}
	}
	if out, err := f.call("ListImages", map[string]any{"repositoryName": "app", "filter": map[string]string{"imageStatus": "ARCHIVED"}}); err != nil || len(out.(*ecrtypes.ListImagesResponse).ImageIds) != 0 {
		t.Fatalf("ARCHIVED: %v %v", out, err)
	}
	_, err := f.call("ListImages", map[string]any{"repositoryName": "nope"})
	wantErr(t, err, "RepositoryNotFoundException", "The repository with name 'nope' does not exist in the registry with id '000000000000'")
	_, err = f.call("ListImages", map[string]any{"repositoryName": "app", "nextToken": token("no-separator")})
	wantErr(t, err, "InvalidParameterException", "nextToken")
}

func token(s string) string {
	b, _ := json.Marshal([]byte(s)) // standard base64 in quotes
	return strings.NewReplacer(`"`, "", "+", "-", "/", "_", "=", "").Replace(string(b))
}

func TestDescribeImages(t *testing.T) {
	f := newFixture(t)
	f.createRepo("app")
	digests := f.tagged("app", "v1", "", "v3,latest")
	// Paging by digest with a tag filter.
	for _, c := range []struct {
		status string
		want   int
	}{{"", 3}, {"TAGGED", 2}, {"UNTAGGED", 1}} {
		var got []string
		token := ""
		for range 10 {
			body := map[string]any{"repositoryName": "app", "maxResults": 1}
			if c.status != "" {
				body["filter"] = map[string]string{"tagStatus": c.status}
			}
			if token != "" {
				body["nextToken"] = token
			}
			out, err := f.call("DescribeImages", body)
			if err != nil {
				t.Fatal(err)
			}
			resp := out.(*ecrtypes.DescribeImagesResponse)
			for _, d := range resp.ImageDetails {
				got = append(got, d.ImageDigest)
			}
			if token = resp.NextToken; token == "" {
				break
			}
		}
		if len(got) != c.want || !slices.IsSorted(got) {
			t.Errorf("status %q: %v", c.status, got)
		}
	}
	// By id: tag, digest, both; the same image twice is described once.
	out, err := f.call("DescribeImages", map[string]any{"repositoryName": "app", "imageIds": []map[string]string{
		{"imageTag": "latest"}, {"imageDigest": digests[2]}, {"imageDigest": digests[0], "imageTag": "v1"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if got := out.(*ecrtypes.DescribeImagesResponse).ImageDetails; len(got) != 2 || got[0].ImageDigest != digests[2] || got[1].ImageDigest != digests[0] {
		t.Fatalf("by id = %+v", got)
	}
	cases := []struct {
		body      map[string]any
		code, msg string
	}{
		{map[string]any{"repositoryName": "app", "imageIds": []map[string]string{{"imageTag": "nope"}}}, "ImageNotFoundException",
			"The image with imageId {imageDigest:null, imageTag:'nope'} does not exist within the repository with name 'app' in the registry with id '000000000000'"},
		{map[string]any{"repositoryName": "app", "imageIds": []map[string]string{{"imageDigest": digestOf([]byte("x"))}}}, "ImageNotFoundException", "imageTag:null"},
		{map[string]any{"repositoryName": "app", "imageIds": []map[string]string{{"imageDigest": digests[1], "imageTag": "v1"}}}, "InvalidParameterException", "do not name the same image"},
		{map[string]any{"repositoryName": "app", "imageIds": []map[string]string{{"imageTag": "v1"}}, "maxResults": 5}, "InvalidParameterException", "cannot be used when images are specified"},
		{map[string]any{"repositoryName": "nope"}, "RepositoryNotFoundException", "'nope'"},
	}
	for _, c := range cases {
		_, err := f.call("DescribeImages", c.body)
		wantErr(t, err, c.code, c.msg)
	}
}

func TestBatchGetImage(t *testing.T) {
	f := newFixture(t)
	f.createRepo("app")
	digests := f.tagged("app", "v1", "v2")
	out, err := f.call("BatchGetImage", map[string]any{"repositoryName": "app", "imageIds": []map[string]string{
		{"imageTag": "v1"},
		{"imageDigest": digests[1]},
		{"imageDigest": digests[0], "imageTag": "v2"},
		{},
		{"imageDigest": "not-a-digest"},
		{"imageTag": "nope"},
		{"imageTag": "-bad"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	resp := out.(*ecrtypes.BatchGetImageResponse)
	var images []string
	for _, img := range resp.Images {
		images = append(images, short(img.ImageId.ImageDigest)+":"+img.ImageId.ImageTag)
	}
	if want := []string{short(digests[0]) + ":v1", short(digests[1]) + ":"}; !slices.Equal(images, want) {
		t.Errorf("images = %v, want %v", images, want)
	}
	var failures []string
	for _, fl := range resp.Failures {
		failures = append(failures, string(fl.FailureCode)+": "+fl.FailureReason)
	}
	want := []string{
		"ImageTagDoesNotMatchDigest: Invalid request parameters: the image tag and digest do not name the same image",
		"MissingDigestAndTag: Invalid request parameters: both tag and digest cannot be null",
		"InvalidImageDigest: Invalid request parameters: image digest should satisfy the regex '[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'",
		"ImageNotFound: Requested image not found",
		"InvalidImageTag: Invalid request parameters: image tag should satisfy the regex '[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}'",
	}
	if !slices.Equal(failures, want) {
		t.Errorf("failures:\n%s\nwant:\n%s", strings.Join(failures, "\n"), strings.Join(want, "\n"))
	}
	// acceptedMediaTypes that exclude the manifest's.
	resp = must[*ecrtypes.BatchGetImageResponse](t)(f.api.BatchGetImage(f.ctx, &ecrtypes.BatchGetImageRequest{
		RepositoryName: "app", ImageIds: []ecrtypes.ImageIdentifier{{ImageTag: "v1"}}, AcceptedMediaTypes: []string{registry.MediaTypeOCIManifest},
	}))
	if len(resp.Images) != 0 || len(resp.Failures) != 1 || !strings.Contains(resp.Failures[0].FailureReason, "acceptedMediaTypes") {
		t.Errorf("acceptedMediaTypes: %+v", resp)
	}
	resp = must[*ecrtypes.BatchGetImageResponse](t)(f.api.BatchGetImage(f.ctx, &ecrtypes.BatchGetImageRequest{
		RepositoryName: "app", ImageIds: []ecrtypes.ImageIdentifier{{ImageTag: "v1"}}, AcceptedMediaTypes: []string{registry.MediaTypeOCIManifest, registry.MediaTypeDockerManifest},
	}))
	if len(resp.Images) != 1 {
		t.Errorf("acceptedMediaTypes with the manifest's: %+v", resp)
	}
	_, err = f.call("BatchGetImage", map[string]any{"repositoryName": "nope", "imageIds": []map[string]string{{"imageTag": "v1"}}})
	wantErr(t, err, "RepositoryNotFoundException", "'nope'")
}

// manifestCounter counts the manifests a Service loads.
type manifestCounter struct {
	ecr.Registry
	n atomic.Int64
}

func (m *manifestCounter) Manifest(ctx context.Context, repo, reference string) (*state.Image, []byte, error) {
	m.n.Add(1)
	return m.Registry.Manifest(ctx, repo, reference)
}

// TestBatchGetImageDuplicates: ids that name one image (repeated, or a tag
// and its digest, or two tags) return it once, loading its manifest (up to
// 4 MiB) once.
func TestBatchGetImageDuplicates(t *testing.T) {
	f := newFixture(t)
	f.createRepo("app")
	digests := f.tagged("app", "v1,latest", "v2")
	reg := &manifestCounter{Registry: f.reg}
	api, err := ecr.New(ecr.Config{Store: f.st, Registry: reg, Region: region, Account: account, Now: f.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	ids := []ecrtypes.ImageIdentifier{{ImageTag: "v1"}, {ImageTag: "v2"}, {ImageTag: "nope"}}
	for range 19 { // 98 ids; the model allows 100
		ids = append(ids, ecrtypes.ImageIdentifier{ImageTag: "v1"}, ecrtypes.ImageIdentifier{ImageTag: "latest"},
			ecrtypes.ImageIdentifier{ImageDigest: digests[0]}, ecrtypes.ImageIdentifier{ImageDigest: digests[0], ImageTag: "latest"},
			ecrtypes.ImageIdentifier{ImageTag: "nope"})
	}
	resp := must[*ecrtypes.BatchGetImageResponse](t)(api.BatchGetImage(f.ctx, &ecrtypes.BatchGetImageRequest{RepositoryName: "app", ImageIds: ids}))
	var images []string
	for _, img := range resp.Images {
		images = append(images, short(img.ImageId.ImageDigest)+":"+img.ImageId.ImageTag)
	}
	if want := []string{short(digests[0]) + ":v1", short(digests[1]) + ":v2"}; !slices.Equal(images, want) {
		t.Errorf("images = %v, want %v", images, want)
	}
	if len(resp.Failures) != 1 || resp.Failures[0].ImageId.ImageTag != "nope" {
		t.Errorf("failures = %+v, want one for tag nope", resp.Failures)
	}
	if n := reg.n.Load(); n != 2 {
		t.Errorf("loaded %d manifests for 2 images", n)
	}
}

func TestBatchDeleteImage(t *testing.T) {
	f := newFixture(t)
	f.createRepo("app")
	d := f.tagged("app", "a1,a2", "b1", "c1,c2", "")
	idx, err := f.index("app", "multi", d[3])
	if err != nil {
		t.Fatal(err)
	}
	out, err := f.call("BatchDeleteImage", map[string]any{"repositoryName": "app", "imageIds": []map[string]string{
		{"imageTag": "a1"},         // a2 remains: the image stays
		{"imageTag": "b1"},         // its last tag: the image goes
		{"imageDigest": d[2]},      // the image and both its tags
		{"imageDigest": d[3]},      // listed by the index
		{"imageTag": "nope"},       // not there
		{"imageTag": "a1"},         // a duplicate is ignored
		{"imageDigest": "sha256:"}, // malformed
	}})
	if err != nil {
		t.Fatal(err)
	}
	resp := out.(*ecrtypes.BatchDeleteImageResponse)
	if got, want := idText(resp.ImageIds), idText([]ecrtypes.ImageIdentifier{
		{ImageDigest: d[0], ImageTag: "a1"}, {ImageDigest: d[1], ImageTag: "b1"}, {ImageDigest: d[2], ImageTag: "c1"}, {ImageDigest: d[2], ImageTag: "c2"},
	}); got != want {
		t.Errorf("deleted %s, want %s", got, want)
	}
	var failures []string
	for _, fl := range resp.Failures {
		failures = append(failures, string(fl.FailureCode)+": "+fl.FailureReason)
	}
	if want := []string{
		"ImageNotFound: Requested image not found",
		"InvalidImageDigest: Invalid request parameters: image digest should satisfy the regex '[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'",
		"ImageReferencedByManifestList: Requested image referenced by manifest list: [" + idx + "]",
	}; !slices.Equal(failures, want) {
		t.Errorf("failures:\n%s\nwant:\n%s", strings.Join(failures, "\n"), strings.Join(want, "\n"))
	}
	var left []string
	for _, img := range f.describe("app") {
		left = append(left, short(img.ImageDigest)+":"+strings.Join(img.ImageTags, ","))
	}
	slices.Sort(left)
	want := []string{short(d[0]) + ":a2", short(d[3]) + ":", short(idx) + ":multi"}
	slices.Sort(want)
	if !slices.Equal(left, want) {
		t.Errorf("left %v, want %v", left, want)
	}
	_, err = f.call("BatchDeleteImage", map[string]any{"repositoryName": "nope", "imageIds": []map[string]string{{"imageTag": "v1"}}})
	wantErr(t, err, "RepositoryNotFoundException", "'nope'")
}

// retagOnUntag is the registry with a push that lands right after each
// Untag: the same image, tagged "again".
type retagOnUntag struct {
	*registry.Registry
	manifest []byte
}

func (r retagOnUntag) Untag(ctx context.Context, repo, tag string) (*state.Image, error) {
	img, err := r.Registry.Untag(ctx, repo, tag)
	if err == nil {
		_, err = r.Registry.PutManifest(ctx, repo, "again", "", r.manifest)
	}
	return img, err
}

// TestBatchDeleteImageTaggedMeanwhile: removing an image's last tag deletes
// the image, unless a push tagged it again in between; that tag must not
// go with it.
func TestBatchDeleteImageTaggedMeanwhile(t *testing.T) {
	f := newFixture(t)
	f.createRepo("app")
	d := f.push("app", "only", "a")
	_, manifest, err := f.reg.Manifest(f.ctx, "app", d)
	if err != nil {
		t.Fatal(err)
	}
	api, err := ecr.New(ecr.Config{Store: f.st, Registry: retagOnUntag{f.reg, manifest}, Region: region, Account: account, Now: f.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.BatchDeleteImage(f.ctx, &ecrtypes.BatchDeleteImageRequest{RepositoryName: "app", ImageIds: []ecrtypes.ImageIdentifier{{ImageTag: "only"}}}); err != nil {
		t.Fatal(err)
	}
	if imgs := f.describe("app"); len(imgs) != 1 || imgs[0].ImageDigest != d || !slices.Equal(imgs[0].ImageTags, []string{"again"}) {
		t.Fatalf("images %+v, want %s tagged again", imgs, short(d))
	}
}
