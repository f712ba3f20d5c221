package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/awsmodel/ecrtypes"
	"github.com/berthdev/berth/internal/state"
	"github.com/berthdev/berth/internal/store"
)

func TestManifestPushPull(t *testing.T) {
	e := newEnv(t)
	e.createRepo("team/web", "")
	m := e.image("team/web", "layer one", "layer two")
	d := Digest(m)

	resp := e.do("PUT", "/v2/team/web/manifests/v1", bytes.NewReader(m), "Content-Type", MediaTypeOCIManifest)
	expect(t, resp, http.StatusCreated, "")
	if resp.Header.Get("Location") != "/v2/team/web/manifests/"+d || resp.Header.Get("Docker-Content-Digest") != d {
		t.Errorf("PUT headers %v", resp.Header)
	}
	if resp.Header.Get("OCI-Subject") != "" {
		t.Errorf("OCI-Subject set without a subject")
	}
	accept := "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json"
	for _, ref := range []string{"v1", d} {
		resp = e.do("GET", "/v2/team/web/manifests/"+ref, nil, "Accept", accept)
		if got := expect(t, resp, http.StatusOK, ""); !bytes.Equal(got, m) {
			t.Errorf("GET %s: body differs", ref)
		}
		if resp.Header.Get("Content-Type") != MediaTypeOCIManifest || resp.Header.Get("Docker-Content-Digest") != d {
			t.Errorf("GET %s headers %v", ref, resp.Header)
		}
		resp = e.do("HEAD", "/v2/team/web/manifests/"+ref, nil, "Accept", accept)
		if got := expect(t, resp, http.StatusOK, ""); len(got) != 0 || resp.ContentLength != int64(len(m)) {
			t.Errorf("HEAD %s: body %d bytes, Content-Length %d", ref, len(got), resp.ContentLength)
		}
	}
	// The manifest is also readable as a blob of the repository.
	expect(t, e.do("HEAD", "/v2/team/web/blobs/"+d, nil), http.StatusOK, "")

	expect(t, e.do("GET", "/v2/team/web/manifests/v2", nil), http.StatusNotFound, "MANIFEST_UNKNOWN")
	expect(t, e.do("GET", "/v2/team/web/manifests/"+Digest([]byte("x")), nil), http.StatusNotFound, "MANIFEST_UNKNOWN")
	expect(t, e.do("PUT", "/v2/team/web/manifests/"+Digest([]byte("x")), bytes.NewReader(m), "Content-Type", MediaTypeOCIManifest), http.StatusBadRequest, "DIGEST_INVALID")
	expect(t, e.do("PUT", "/v2/team/web/manifests/bad%20tag", bytes.NewReader(m), "Content-Type", MediaTypeOCIManifest), http.StatusBadRequest, "TAG_INVALID")
	expect(t, e.do("PUT", "/v2/team/web/manifests/v3", bytes.NewReader(m), "Content-Type", MediaTypeDockerManifest), http.StatusBadRequest, "MANIFEST_INVALID")
	big := bytes.Repeat([]byte(" "), MaxManifestSize+1)
	expect(t, e.do("PUT", "/v2/team/web/manifests/v3", bytes.NewReader(big), "Content-Type", MediaTypeOCIManifest), http.StatusRequestEntityTooLarge, "SIZE_INVALID")

	// Pushing by digest, and the Docker media type read from the document.
	cfg := e.pushBlob("team/web", []byte(`{"os":"linux"}`))
	dm := mustJSON(t, manifestDoc{SchemaVersion: 2, MediaType: MediaTypeDockerManifest, Config: &descriptor{MediaType: mediaTypeDockerConfig, Digest: cfg, Size: 14}})
	img, err := e.r.PutManifest(context.Background(), "team/web", Digest(dm), "", dm)
	if err != nil {
		t.Fatal(err)
	}
	if img.MediaType != MediaTypeDockerManifest || len(img.Tags) != 0 {
		t.Errorf("image %+v", img)
	}
	resp = e.do("GET", "/v2/team/web/manifests/"+Digest(dm), nil, "Accept", MediaTypeOCIManifest)
	expect(t, resp, http.StatusOK, "")
	if resp.Header.Get("Content-Type") != MediaTypeDockerManifest {
		t.Errorf("Content-Type %q", resp.Header.Get("Content-Type"))
	}
}

func TestManifestBlobUnknown(t *testing.T) {
	e := newEnv(t)
	e.createRepo("app", "")
	cfg := e.pushBlob("app", []byte(`{}`))
	missing := Digest([]byte("never pushed"))
	m := mustJSON(t, manifestDoc{SchemaVersion: 2, MediaType: MediaTypeOCIManifest,
		Config: &descriptor{MediaType: mediaTypeOCIConfig, Digest: cfg, Size: 2},
		Layers: []descriptor{{MediaType: "application/vnd.oci.image.layer.v1.tar", Digest: missing, Size: 12}}})
	resp := e.do("PUT", "/v2/app/manifests/v1", bytes.NewReader(m), "Content-Type", MediaTypeOCIManifest)
	b := expect(t, resp, http.StatusBadRequest, "MANIFEST_BLOB_UNKNOWN")
	var eb wireErrorBody
	json.Unmarshal(b, &eb)
	if det, _ := eb.Errors[0].Detail.(map[string]any); det["digest"] != missing {
		t.Errorf("detail %v", eb.Errors[0].Detail)
	}
	expect(t, e.do("GET", "/v2/app/manifests/v1", nil), http.StatusNotFound, "MANIFEST_UNKNOWN")

	// A foreign layer with urls need not be stored.
	f := mustJSON(t, manifestDoc{SchemaVersion: 2, MediaType: MediaTypeDockerManifest,
		Config: &descriptor{MediaType: mediaTypeDockerConfig, Digest: cfg, Size: 2},
		Layers: []descriptor{{MediaType: "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", Digest: missing, Size: 12, URLs: []string{"https://example.com/l"}}}})
	e.putManifest("app", "foreign", f)

	// An index whose child is not an image of the repository.
	child := e.image("app", "child layer")
	idx := func(children ...string) []byte {
		doc := manifestDoc{SchemaVersion: 2, MediaType: MediaTypeOCIIndex, Manifests: []descriptor{}}
		for _, c := range children {
			doc.Manifests = append(doc.Manifests, descriptor{MediaType: MediaTypeOCIManifest, Digest: c, Size: 100})
		}
		return mustJSON(t, doc)
	}
	expect(t, e.do("PUT", "/v2/app/manifests/multi", bytes.NewReader(idx(Digest(child))), "Content-Type", MediaTypeOCIIndex), http.StatusBadRequest, "MANIFEST_BLOB_UNKNOWN")
	cd := e.putManifest("app", Digest(child), child)
	e.putManifest("app", "multi", idx(cd))
	img, _, err := e.r.Manifest(context.Background(), "app", "multi")
	if err != nil {
		t.Fatal(err)
	}
	if img.Size != int64(len("child layer")) || !slices.Equal(img.Manifests, []string{cd}) {
		t.Errorf("index image %+v", img)
	}
}

func TestDeleteManifestAndTag(t *testing.T) {
	e := newEnv(t)
	e.createRepo("app", "")
	m := e.image("app", "l")
	d := e.putManifest("app", "v1", m)
	e.putManifest("app", "v2", m)

	expect(t, e.do("DELETE", "/v2/app/manifests/v1", nil), http.StatusAccepted, "")
	expect(t, e.do("GET", "/v2/app/manifests/v1", nil), http.StatusNotFound, "MANIFEST_UNKNOWN")
	img, _, err := e.r.Manifest(context.Background(), "app", d)
	if err != nil || !slices.Equal(img.Tags, []string{"v2"}) {
		t.Fatalf("after untag: %+v, %v", img, err)
	}
	expect(t, e.do("DELETE", "/v2/app/manifests/"+d, nil), http.StatusAccepted, "")
	expect(t, e.do("GET", "/v2/app/manifests/"+d, nil), http.StatusNotFound, "MANIFEST_UNKNOWN")
	expect(t, e.do("GET", "/v2/app/manifests/v2", nil), http.StatusNotFound, "MANIFEST_UNKNOWN")
	expect(t, e.do("DELETE", "/v2/app/manifests/"+d, nil), http.StatusNotFound, "MANIFEST_UNKNOWN")
}

func TestTagMovesBetweenImages(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.createRepo("app", "")
	d1 := e.putManifest("app", "latest", e.image("app", "a"))
	e.putManifest("app", "b", e.image("app", "a"))
	d2 := e.putManifest("app", "latest", e.image("app", "b"))
	old, _, _ := e.r.Manifest(ctx, "app", d1)
	cur, _, _ := e.r.Manifest(ctx, "app", d2)
	if !slices.Equal(old.Tags, []string{"b"}) || !slices.Equal(cur.Tags, []string{"latest"}) {
		t.Errorf("tags: old %v, new %v", old.Tags, cur.Tags)
	}
	img, err := e.r.Untag(ctx, "app", "latest")
	if err != nil || img.Digest != d2 || len(img.Tags) != 0 {
		t.Errorf("Untag = %+v, %v", img, err)
	}
	if _, err := e.r.Untag(ctx, "app", "latest"); !errors.Is(err, ErrImageNotFound) {
		t.Errorf("second Untag: %v", err)
	}
}

func TestTagsList(t *testing.T) {
	e := newEnv(t)
	e.createRepo("app", "")
	e.createRepo("app-other", "") // a name that extends "app" must not leak in
	m := e.image("app", "l")
	for _, tag := range []string{"e", "c", "a", "d", "b"} {
		e.putManifest("app", tag, m)
	}
	e.putManifest("app-other", "zzz", e.image("app-other", "l"))
	type list struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}
	get := func(q string) (list, string) {
		resp := e.do("GET", "/v2/app/tags/list"+q, nil)
		var l list
		json.Unmarshal(expect(t, resp, http.StatusOK, ""), &l)
		return l, resp.Header.Get("Link")
	}
	l, link := get("")
	if l.Name != "app" || !slices.Equal(l.Tags, []string{"a", "b", "c", "d", "e"}) || link != "" {
		t.Fatalf("all: %+v link %q", l, link)
	}
	l, link = get("?n=2")
	if !slices.Equal(l.Tags, []string{"a", "b"}) || link != `</v2/app/tags/list?n=2&last=b>; rel="next"` {
		t.Fatalf("page 1: %v link %q", l.Tags, link)
	}
	l, link = get("?n=2&last=b")
	if !slices.Equal(l.Tags, []string{"c", "d"}) || link == "" {
		t.Fatalf("page 2: %v link %q", l.Tags, link)
	}
	l, link = get("?n=2&last=d")
	if !slices.Equal(l.Tags, []string{"e"}) || link != "" {
		t.Fatalf("page 3: %v link %q", l.Tags, link)
	}
	if l, _ = get("?n=0"); l.Tags == nil || len(l.Tags) != 0 {
		t.Fatalf("n=0: %v", l.Tags)
	}
	expect(t, e.do("GET", "/v2/app/tags/list?n=-1", nil), http.StatusBadRequest, "")

	var cat struct {
		Repositories []string `json:"repositories"`
	}
	resp := e.do("GET", "/v2/_catalog?n=1", nil)
	json.Unmarshal(expect(t, resp, http.StatusOK, ""), &cat)
	if !slices.Equal(cat.Repositories, []string{"app"}) || resp.Header.Get("Link") != `</v2/_catalog?n=1&last=app>; rel="next"` {
		t.Fatalf("catalog %v link %q", cat.Repositories, resp.Header.Get("Link"))
	}
}

func TestReferrers(t *testing.T) {
	e := newEnv(t)
	e.createRepo("app", "")
	subject := e.putManifest("app", "v1", e.image("app", "base"))
	empty := e.pushBlob("app", []byte("{}"))
	referrer := func(artifactType, note string) []byte {
		return mustJSON(t, map[string]any{
			"schemaVersion": 2, "mediaType": MediaTypeOCIManifest, "artifactType": artifactType,
			"config":      descriptor{MediaType: "application/vnd.oci.empty.v1+json", Digest: empty, Size: 2},
			"layers":      []descriptor{{MediaType: "application/vnd.oci.empty.v1+json", Digest: empty, Size: 2}},
			"subject":     descriptor{MediaType: MediaTypeOCIManifest, Digest: subject, Size: 100},
			"annotations": map[string]string{"note": note},
		})
	}
	sig, sbom := referrer("application/vnd.example.sig", "s"), referrer("application/vnd.example.sbom", "b")
	resp := e.do("PUT", "/v2/app/manifests/"+Digest(sig), bytes.NewReader(sig), "Content-Type", MediaTypeOCIManifest)
	expect(t, resp, http.StatusCreated, "")
	if resp.Header.Get("OCI-Subject") != subject {
		t.Errorf("OCI-Subject %q", resp.Header.Get("OCI-Subject"))
	}
	e.putManifest("app", Digest(sbom), sbom)

	get := func(q string) (referrersIndex, *http.Response) {
		resp := e.do("GET", "/v2/app/referrers/"+subject+q, nil)
		var idx referrersIndex
		json.Unmarshal(expect(t, resp, http.StatusOK, ""), &idx)
		if resp.Header.Get("Content-Type") != MediaTypeOCIIndex {
			t.Errorf("Content-Type %q", resp.Header.Get("Content-Type"))
		}
		return idx, resp
	}
	idx, resp := get("")
	if idx.SchemaVersion != 2 || idx.MediaType != MediaTypeOCIIndex || len(idx.Manifests) != 2 || resp.Header.Get("OCI-Filters-Applied") != "" {
		t.Fatalf("referrers %+v", idx)
	}
	idx, resp = get("?artifactType=application/vnd.example.sbom")
	if len(idx.Manifests) != 1 || idx.Manifests[0].Digest != Digest(sbom) || idx.Manifests[0].ArtifactType != "application/vnd.example.sbom" ||
		idx.Manifests[0].Annotations["note"] != "b" || idx.Manifests[0].Size != int64(len(sbom)) {
		t.Fatalf("filtered referrers %+v", idx)
	}
	if resp.Header.Get("OCI-Filters-Applied") != "artifactType" {
		t.Errorf("OCI-Filters-Applied %q", resp.Header.Get("OCI-Filters-Applied"))
	}
	// A subject nobody refers to has an empty list; deleting a referrer
	// removes it from the list.
	if idx, _ = get(""); len(idx.Manifests) != 2 {
		t.Fatal(idx)
	}
	expect(t, e.do("DELETE", "/v2/app/manifests/"+Digest(sig), nil), http.StatusAccepted, "")
	if idx, _ = get(""); len(idx.Manifests) != 1 {
		t.Fatalf("after delete: %+v", idx)
	}
	resp = e.do("GET", "/v2/app/referrers/"+Digest([]byte("x")), nil)
	if b := expect(t, resp, http.StatusOK, ""); !bytes.Contains(b, []byte(`"manifests":[]`)) {
		t.Errorf("empty referrers %s", b)
	}
}

func TestImmutableTags(t *testing.T) {
	for _, tc := range []struct {
		mut       ecrtypes.ImageTagMutability
		filters   []string
		immutable []string
		mutable   []string
	}{
		{ecrtypes.ImageTagMutabilityMutable, nil, nil, []string{"v1", "latest"}},
		{ecrtypes.ImageTagMutabilityImmutable, nil, []string{"v1", "latest"}, nil},
		{ecrtypes.ImageTagMutabilityImmutableWithExclusion, []string{"latest", "dev-*"}, []string{"v1", "release-1"}, []string{"latest", "dev-1"}},
		{ecrtypes.ImageTagMutabilityMutableWithExclusion, []string{"release-*"}, []string{"release-1"}, []string{"latest", "v1"}},
	} {
		t.Run(string(tc.mut), func(t *testing.T) {
			e := newEnv(t)
			e.createRepo("x", tc.mut, tc.filters...)
			m1, m2 := e.image("x", "one"), e.image("x", "two")
			for _, tag := range tc.immutable {
				e.putManifest("x", tag, m1)
				e.putManifest("x", tag, m1) // the same image again is fine
				resp := e.do("PUT", "/v2/x/manifests/"+tag, bytes.NewReader(m2), "Content-Type", MediaTypeOCIManifest)
				b := expect(t, resp, http.StatusBadRequest, "TAG_INVALID")
				want := fmt.Sprintf("The image tag '%s' already exists in the 'x' repository and cannot be overwritten because the repository is immutable.", tag)
				if got := errorMessage(t, b); got != want {
					t.Errorf("message %q", got)
				}
				if _, err := e.r.PutManifest(context.Background(), "x", tag, "", m2); !errors.Is(err, ErrTagImmutable) {
					t.Errorf("PutManifest: %v", err)
				}
			}
			for _, tag := range tc.mutable {
				e.putManifest("x", tag, m1)
				if d := e.putManifest("x", tag, m2); d != Digest(m2) {
					t.Errorf("tag %s moved to %s", tag, d)
				}
			}
		})
	}
}

func TestWildcardMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"latest", "latest", true}, {"latest", "latest1", false}, {"*", "", true}, {"*", "anything", true},
		{"dev-*", "dev-", true}, {"dev-*", "dev-12", true}, {"dev-*", "prod-1", false},
		{"*-rc*", "1.0-rc2", true}, {"*-rc*", "1.0", false}, {"a*b*c", "aXbYc", true}, {"a*b*c", "aXbY", false},
		{"a*a", "aaa", true}, {"**", "x", true}, {"", "", true}, {"", "x", false},
	} {
		if got := wildcardMatch(tc.pattern, tc.s); got != tc.want {
			t.Errorf("wildcardMatch(%q, %q) = %v", tc.pattern, tc.s, got)
		}
	}
}

func TestLastPulledAtHourly(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.createRepo("app", "")
	d := e.putManifest("app", "v1", e.image("app", "l"))
	img, _, err := e.r.Manifest(ctx, "app", "v1")
	if err != nil || img.LastPulledAt == nil {
		t.Fatalf("first pull: %+v %v", img, err)
	}
	first := img.LastPulledAt.Time
	e.clk.Advance(30 * time.Minute)
	img, _, _ = e.r.Manifest(ctx, "app", d)
	if !img.LastPulledAt.Equal(first) {
		t.Errorf("recorded again within the hour: %v", img.LastPulledAt)
	}
	e.clk.Advance(31 * time.Minute)
	e.r.Manifest(ctx, "app", d)
	img, _, _ = e.r.manifest(ctx, "app", d, false)
	if !img.LastPulledAt.After(first) {
		t.Errorf("not recorded after an hour: %v", img.LastPulledAt)
	}
}

func TestPurgeRepository(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.createRepo("app", "")
	e.createRepo("app2", "")
	e.putManifest("app", "v1", e.image("app", "l"))
	e.putManifest("app2", "v1", e.image("app2", "l"))
	if _, err := e.r.StartUpload(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Update(ctx, func(tx store.Tx) error { return PurgeRepository(tx, "app") }); err != nil {
		t.Fatal(err)
	}
	e.store.View(ctx, func(tx store.ReadTx) error {
		for _, p := range []string{"/ecr/images/", "/ecr/tags/", "/ecr/layers/", "/ecr/blob-refs/", "/ecr/uploads/"} {
			kvs, _ := tx.List(p, "", 0)
			for _, kv := range kvs {
				if bytes.HasPrefix([]byte(kv.Key), []byte(p+"app\x00")) || p == "/ecr/uploads/" {
					t.Errorf("left behind: %q", kv.Key)
				}
			}
		}
		return nil
	})
	if _, _, err := e.r.Manifest(ctx, "app2", "v1"); err != nil {
		t.Errorf("other repository touched: %v", err)
	}
}

// TestManifestRepeatedLayerReadOnce: a manifest may name one layer many
// times (up to ~40,000 in 4 MiB). When that layer is readable only through
// another image (its link deleted), checking it must not read every image
// of the repository once per mention, inside PutManifest's write
// transaction, where it would stall every writer of the store.
func TestManifestRepeatedLayerReadOnce(t *testing.T) {
	e := newEnv(t)
	e.createRepo("app", "")
	base := e.image("app", "shared layer")
	e.putManifest("app", "base", base)
	layer := Digest([]byte("shared layer"))
	expect(t, e.do("DELETE", "/v2/app/blobs/"+layer, nil), http.StatusAccepted, "") // readable only through "base" now

	var doc manifestDoc
	if err := json.Unmarshal(base, &doc); err != nil {
		t.Fatal(err)
	}
	for range 1000 {
		doc.Layers = append(doc.Layers, doc.Layers[0])
	}
	m := mustJSON(t, doc)

	c := &countingStore{Store: e.store}
	r := e.openOver(c)
	if _, err := r.PutManifest(context.Background(), "app", "many", MediaTypeOCIManifest, m); err != nil {
		t.Fatal(err)
	}
	// The layer is looked up through the blob-refs index once in the
	// check and once in the commit; the images are never listed.
	if n := c.lists(state.BlobRefsBlobPrefix("app", layer)); n != 2 {
		t.Errorf("PutManifest looked the layer up %d times, want 2", n)
	}
	if n := c.lists(state.ImagesRepoPrefix("app")); n != 0 {
		t.Errorf("PutManifest listed the repository's images %d times", n)
	}
}

// TestManifestDeletedWhileRead: an image deleted, and its manifest file
// collected, between a pull's read of the image record and its read of the
// file is a miss (ErrImageNotFound, MANIFEST_UNKNOWN), not a server error.
func TestManifestDeletedWhileRead(t *testing.T) {
	ctx := context.Background()
	// deleteOnRead makes the next manifest read of e lose the race.
	deleteOnRead := func(e *env, digest string) {
		e.r.testHookManifestResolved = func() {
			e.r.testHookManifestResolved = nil
			if err := e.r.DeleteImage(ctx, "app", digest); err != nil {
				t.Error(err)
			}
			if _, err := e.r.GC(ctx); err != nil {
				t.Error(err)
			}
			if e.blobExists(digest) {
				t.Error("GC kept the deleted image's manifest")
			}
		}
	}
	for _, byTag := range []bool{true, false} {
		e := newEnv(t)
		e.createRepo("app", "")
		d := e.putManifest("app", "v1", e.image("app", "l"))
		e.clk.Advance(2 * time.Hour) // past the grace period: collectable once deleted
		ref := d
		if byTag {
			ref = "v1"
		}
		deleteOnRead(e, d)
		if _, _, err := e.r.Manifest(ctx, "app", ref); !errors.Is(err, ErrImageNotFound) {
			t.Errorf("Manifest(%s): %v, want ErrImageNotFound", ref, err)
		}
	}

	e := newEnv(t)
	e.createRepo("app", "")
	d := e.putManifest("app", "v1", e.image("app", "l"))
	e.clk.Advance(2 * time.Hour)
	deleteOnRead(e, d)
	expect(t, e.do("GET", "/v2/app/manifests/v1", nil), http.StatusNotFound, "MANIFEST_UNKNOWN")
}
