package registry

import (
	"bytes"
	"crypto/rand"
	"io"
	"net/http"
	"testing"
)

// BenchmarkPushPull pushes a 64 MiB blob (POST, streamed PATCH, PUT) and
// pulls it back over loopback HTTP, as docker does:
//
//	go test -run '^$' -bench BenchmarkPushPull ./internal/registry
func BenchmarkPushPull(b *testing.B) {
	e := newEnv(b)
	e.createRepo("bench", "")
	blob := make([]byte, 64<<20)
	rand.Read(blob)
	d := Digest(blob)
	b.SetBytes(int64(2 * len(blob)))
	for b.Loop() {
		resp := e.do("POST", "/v2/bench/blobs/uploads/", nil)
		loc := resp.Header.Get("Location")
		resp = e.do("PATCH", loc, io.MultiReader(bytes.NewReader(blob)))
		if resp.StatusCode != http.StatusAccepted {
			b.Fatal(resp.Status)
		}
		resp = e.do("PUT", resp.Header.Get("Location")+"?digest="+d, nil)
		if resp.StatusCode != http.StatusCreated {
			b.Fatal(resp.Status)
		}
		resp = e.do("GET", "/v2/bench/blobs/"+d, nil)
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if n != int64(len(blob)) {
			b.Fatal(n)
		}
	}
}
