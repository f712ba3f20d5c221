package registry

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/prometheus/client_golang/prometheus"
)

// TestRealClient pushes and pulls random images with go-containerregistry's
// remote package, a real registry client (the one crane uses), through the
// Bearer challenge and token flow.
func TestRealClient(t *testing.T) {
	e := newEnv(t)
	e.createRepo("team/app", "")
	e.createRepo("team/copy", "")
	auth := remote.WithAuth(&authn.Basic{Username: "AWS", Password: e.token})
	ctx := context.Background()

	img, err := random.Image(300000, 4)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(e.r.Host()+"/team/app:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, auth, remote.WithContext(ctx)); err != nil {
		t.Fatal(err)
	}
	got, err := remote.Image(ref, auth)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	if d, _ := got.Digest(); d != want {
		t.Fatalf("pulled %s, pushed %s", d, want)
	}
	layers, _ := got.Layers()
	wantLayers, _ := img.Layers()
	if len(layers) != 4 {
		t.Fatalf("%d layers", len(layers))
	}
	for i, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		wrc, _ := wantLayers[i].Compressed()
		wb, _ := io.ReadAll(wrc)
		wrc.Close()
		if string(b) != string(wb) {
			t.Fatalf("layer %d differs", i)
		}
	}

	// Copy to another repository: the client mounts the layers.
	dst, _ := name.ParseReference(e.r.Host()+"/team/copy:v1", name.Insecure)
	if err := remote.Write(dst, got, auth); err != nil {
		t.Fatal(err)
	}
	// A multi-platform index.
	idx, err := random.Index(1000, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	iref, _ := name.ParseReference(e.r.Host()+"/team/app:multi", name.Insecure)
	if err := remote.WriteIndex(iref, idx, auth); err != nil {
		t.Fatal(err)
	}
	pulled, err := remote.Index(iref, auth)
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := idx.Digest()
	if d, _ := pulled.Digest(); d != wd {
		t.Fatalf("index %s, want %s", d, wd)
	}
	tags, err := remote.List(ref.Context(), auth)
	if err != nil || strings.Join(tags, ",") != "multi,v1" {
		t.Fatalf("tags %v, %v", tags, err)
	}

	// Wrong credentials fail with 401.
	_, err = remote.Image(ref, remote.WithAuth(&authn.Basic{Username: "AWS", Password: "bad"}))
	var terr *transport.Error
	if !errors.As(err, &terr) || terr.StatusCode != http.StatusUnauthorized {
		t.Fatalf("bad credentials: %v", err)
	}
	// Pushing to a repository that does not exist.
	nref, _ := name.ParseReference(e.r.Host()+"/nosuch:v1", name.Insecure)
	err = remote.Write(nref, img, auth)
	if !errors.As(err, &terr) || len(terr.Errors) == 0 || terr.Errors[0].Code != transport.NameUnknownErrorCode {
		t.Fatalf("push to unknown repository: %v", err)
	}
}

func TestMetrics(t *testing.T) {
	e := newEnv(t)
	reg := prometheus.NewRegistry()
	r, err := Open(Config{Store: e.store, Dir: e.dir, Host: e.r.Host(), TokenKey: testKey, Now: e.clk.Now, Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	e.r = r
	e.srv.Config.Handler = r
	e.createRepo("app", "")
	d := e.pushBlob("app", []byte("0123456789"))
	expect(t, e.do("GET", "/v2/app/blobs/"+d, nil), http.StatusOK, "")
	e.gc()
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"berth_registry_pushed_bytes_total", nil, 10},
		{"berth_registry_pulled_bytes_total", nil, 10},
		{"berth_registry_requests_total", map[string]string{"kind": "blob", "method": "GET", "code": "200"}, 1},
		{"berth_registry_gc_runs_total", nil, 1},
	} {
		if v := counter(t, reg, tc.name, tc.labels); v != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, v, tc.want)
		}
	}
}

// counter reads one counter from reg.
func counter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}
