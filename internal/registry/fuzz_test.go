package registry

import (
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary paths to the route parser and arbitrary
// documents to the manifest parser: neither may panic, and what they accept
// must be well formed.
func FuzzParse(f *testing.F) {
	for _, p := range []string{
		"/v2/", "/v2/token", "/v2/_catalog", "/v2/a/b/c/manifests/v1", "/v2/blobs/blobs/sha256:00",
		"/v2/x/blobs/uploads/", "/v2/x/blobs/uploads/blobs/uploads/id", "/v2/x/tags/list", "/v2/a__b/referrers/d",
		"/v2//manifests/x", "/v2/x--y/blobs/uploads",
	} {
		f.Add(p, "", []byte(`{"schemaVersion":2,"mediaType":"`+MediaTypeOCIManifest+`","config":{"digest":"sha256:`+strings.Repeat("a", 64)+`","size":1}}`))
	}
	f.Add("/v2/x/manifests/y", MediaTypeOCIIndex, []byte(`{"schemaVersion":2,"manifests":[{"digest":"sha256:`+strings.Repeat("b", 64)+`"}],"subject":{"digest":"x"}}`))
	f.Add("/v2/x/manifests/y", "", []byte(`{"schemaVersion":1,"fsLayers":[]}`))
	f.Fuzz(func(t *testing.T, path, mediaType string, doc []byte) {
		rt, err := parseRoute(path)
		if err == nil {
			switch rt.kind {
			case routeBase, routeToken, routeCatalog:
			default:
				if !validName(rt.name) {
					t.Fatalf("parseRoute(%q) accepted name %q", path, rt.name)
				}
				if !strings.HasPrefix(path, "/v2/"+rt.name+"/") {
					t.Fatalf("parseRoute(%q) = %+v: name is not the path's prefix", path, rt)
				}
				if strings.Contains(rt.ref, "/") {
					t.Fatalf("parseRoute(%q) = %+v: reference with a slash", path, rt)
				}
			}
		}
		pm, err := parseManifest(mediaType, doc)
		if err != nil {
			return
		}
		switch pm.mediaType {
		case MediaTypeOCIManifest, MediaTypeDockerManifest:
			if len(pm.blobs) == 0 || len(pm.children) != 0 {
				t.Fatalf("image manifest %+v", pm)
			}
		case MediaTypeOCIIndex, MediaTypeDockerManifestList:
			if len(pm.blobs) != 0 {
				t.Fatalf("index %+v", pm)
			}
		default:
			t.Fatalf("accepted media type %q", pm.mediaType)
		}
		for _, d := range append(append(pm.blobs, pm.children...), pm.subject) {
			if d != "" && !validDigest(d) {
				t.Fatalf("accepted digest %q", d)
			}
		}
	})
}
