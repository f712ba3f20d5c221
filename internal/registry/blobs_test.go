package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBase(t *testing.T) {
	e := newEnv(t)
	resp := e.do("GET", "/v2/", nil)
	if got := string(expect(t, resp, http.StatusOK, "")); got != "{}" {
		t.Errorf("body %q", got)
	}
	if v := resp.Header.Get("Docker-Distribution-API-Version"); v != "registry/2.0" {
		t.Errorf("Docker-Distribution-API-Version %q", v)
	}
}

func TestMonolithicUpload(t *testing.T) {
	e := newEnv(t)
	e.createRepo("team/app/web", "")
	blob := []byte("hello, layer")
	d := Digest(blob)
	resp := e.do("POST", "/v2/team/app/web/blobs/uploads/?digest="+d, bytes.NewReader(blob))
	expect(t, resp, http.StatusCreated, "")
	if loc := resp.Header.Get("Location"); loc != "/v2/team/app/web/blobs/"+d {
		t.Errorf("Location %q", loc)
	}
	resp = e.do("HEAD", "/v2/team/app/web/blobs/"+d, nil)
	expect(t, resp, http.StatusOK, "")
	if resp.ContentLength != int64(len(blob)) || resp.Header.Get("Docker-Content-Digest") != d {
		t.Errorf("HEAD: length %d digest %q", resp.ContentLength, resp.Header.Get("Docker-Content-Digest"))
	}
	if got := expect(t, e.do("GET", "/v2/team/app/web/blobs/"+d, nil), http.StatusOK, ""); !bytes.Equal(got, blob) {
		t.Errorf("GET = %q", got)
	}
	resp = e.do("GET", "/v2/team/app/web/blobs/"+d, nil, "Range", "bytes=7-11")
	if got := expect(t, resp, http.StatusPartialContent, ""); string(got) != "layer" {
		t.Errorf("ranged GET = %q", got)
	}
	// Another repository cannot read it without a link.
	e.createRepo("other", "")
	expect(t, e.do("HEAD", "/v2/other/blobs/"+d, nil), http.StatusNotFound, "")
	expect(t, e.do("GET", "/v2/other/blobs/"+d, nil), http.StatusNotFound, "BLOB_UNKNOWN")
}

func TestPostThenPutWithBody(t *testing.T) {
	e := newEnv(t)
	e.createRepo("app", "")
	resp := e.do("POST", "/v2/app/blobs/uploads/", nil)
	expect(t, resp, http.StatusAccepted, "")
	loc, id := resp.Header.Get("Location"), resp.Header.Get("Docker-Upload-UUID")
	if loc != "/v2/app/blobs/uploads/"+id || resp.Header.Get("Range") != "0-0" {
		t.Fatalf("Location %q, UUID %q, Range %q", loc, id, resp.Header.Get("Range"))
	}
	blob := []byte("whole blob in the PUT")
	d := Digest(blob)
	resp = e.do("PUT", loc+"?digest="+d, bytes.NewReader(blob))
	expect(t, resp, http.StatusCreated, "")
	if resp.Header.Get("Location") != "/v2/app/blobs/"+d || resp.Header.Get("Docker-Content-Digest") != d {
		t.Errorf("PUT headers %v", resp.Header)
	}
	if got := expect(t, e.do("GET", "/v2/app/blobs/"+d, nil), http.StatusOK, ""); !bytes.Equal(got, blob) {
		t.Errorf("GET = %q", got)
	}
	// The upload is over.
	expect(t, e.do("GET", loc, nil), http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
}

func TestChunkedUpload(t *testing.T) {
	e := newEnv(t)
	e.createRepo("app", "")
	resp := e.do("POST", "/v2/app/blobs/uploads/", nil)
	expect(t, resp, http.StatusAccepted, "")
	loc := resp.Header.Get("Location")
	blob := []byte("0123456789abcdefghij")

	resp = e.do("PATCH", loc, bytes.NewReader(blob[:5]), "Content-Range", "0-4", "Content-Type", "application/octet-stream")
	expect(t, resp, http.StatusAccepted, "")
	if resp.Header.Get("Range") != "0-4" || resp.Header.Get("Location") != loc {
		t.Fatalf("first chunk: Range %q Location %q", resp.Header.Get("Range"), resp.Header.Get("Location"))
	}
	resp = e.do("PATCH", loc, bytes.NewReader(blob[5:10]), "Content-Range", "5-9")
	expect(t, resp, http.StatusAccepted, "")
	if resp.Header.Get("Range") != "0-9" {
		t.Fatalf("second chunk: Range %q", resp.Header.Get("Range"))
	}
	// Out of order: 416 and the upload unchanged.
	resp = e.do("PATCH", loc, bytes.NewReader(blob[15:]), "Content-Range", "15-19")
	expect(t, resp, http.StatusRequestedRangeNotSatisfiable, "BLOB_UPLOAD_INVALID")
	if resp.Header.Get("Range") != "0-9" {
		t.Errorf("416 Range %q", resp.Header.Get("Range"))
	}
	// A Content-Range that disagrees with the body length is refused too.
	expect(t, e.do("PATCH", loc, bytes.NewReader(blob[10:12]), "Content-Range", "10-14"), http.StatusRequestedRangeNotSatisfiable, "BLOB_UPLOAD_INVALID")
	resp = e.do("GET", loc, nil)
	expect(t, resp, http.StatusNoContent, "")
	if resp.Header.Get("Range") != "0-9" || resp.Header.Get("Docker-Upload-UUID") == "" {
		t.Errorf("status: Range %q UUID %q", resp.Header.Get("Range"), resp.Header.Get("Docker-Upload-UUID"))
	}
	// The last chunk rides on the PUT.
	d := Digest(blob)
	expect(t, e.do("PUT", loc+"?digest="+d, bytes.NewReader(blob[10:]), "Content-Range", "10-19"), http.StatusCreated, "")
	if got := expect(t, e.do("GET", "/v2/app/blobs/"+d, nil), http.StatusOK, ""); !bytes.Equal(got, blob) {
		t.Errorf("GET = %q", got)
	}
}

func TestStreamedPatch(t *testing.T) {
	e := newEnv(t)
	e.createRepo("app", "")
	resp := e.do("POST", "/v2/app/blobs/uploads", nil)
	expect(t, resp, http.StatusAccepted, "")
	loc := resp.Header.Get("Location")
	blob := bytes.Repeat([]byte("streamed "), 300000) // ~2.7 MB, more than one copy buffer
	// An io.Reader that is not a *bytes.Reader makes the client send it
	// chunked, with no Content-Length, as docker does.
	resp = e.do("PATCH", loc, io.MultiReader(bytes.NewReader(blob)))
	expect(t, resp, http.StatusAccepted, "")
	if want := fmt.Sprintf("0-%d", len(blob)-1); resp.Header.Get("Range") != want {
		t.Fatalf("Range %q, want %q", resp.Header.Get("Range"), want)
	}
	d := Digest(blob)
	expect(t, e.do("PUT", resp.Header.Get("Location")+"?digest="+d, nil), http.StatusCreated, "")
	resp = e.do("HEAD", "/v2/app/blobs/"+d, nil)
	expect(t, resp, http.StatusOK, "")
	if resp.ContentLength != int64(len(blob)) {
		t.Errorf("size %d", resp.ContentLength)
	}
}

func TestCancelUpload(t *testing.T) {
	e := newEnv(t)
	e.createRepo("app", "")
	resp := e.do("POST", "/v2/app/blobs/uploads/", nil)
	loc, id := resp.Header.Get("Location"), resp.Header.Get("Docker-Upload-UUID")
	expect(t, e.do("PATCH", loc, strings.NewReader("partial")), http.StatusAccepted, "")
	expect(t, e.do("DELETE", loc, nil), http.StatusNoContent, "")
	expect(t, e.do("GET", loc, nil), http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
	expect(t, e.do("PATCH", loc, strings.NewReader("more")), http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
	if _, err := os.Stat(filepath.Join(e.dir, "uploads", id)); !os.IsNotExist(err) {
		t.Errorf("upload file still there: %v", err)
	}
	// An upload is only reachable through its own repository.
	e.createRepo("other", "")
	resp = e.do("POST", "/v2/app/blobs/uploads/", nil)
	id = resp.Header.Get("Docker-Upload-UUID")
	expect(t, e.do("GET", "/v2/other/blobs/uploads/"+id, nil), http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
	expect(t, e.do("GET", "/v2/app/blobs/uploads/not-an-id", nil), http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
}

func TestCrossRepositoryMount(t *testing.T) {
	e := newEnv(t)
	e.createRepo("base", "")
	e.createRepo("team/app", "")
	d := e.pushBlob("base", []byte("shared layer"))

	resp := e.do("POST", "/v2/team/app/blobs/uploads/?mount="+d+"&from=base", nil)
	expect(t, resp, http.StatusCreated, "")
	if resp.Header.Get("Location") != "/v2/team/app/blobs/"+d || resp.Header.Get("Docker-Content-Digest") != d {
		t.Errorf("mount headers %v", resp.Header)
	}
	expect(t, e.do("HEAD", "/v2/team/app/blobs/"+d, nil), http.StatusOK, "")

	// Not mountable (unknown blob, unknown source): an upload session.
	missing := Digest([]byte("nowhere"))
	for _, q := range []string{"?mount=" + missing + "&from=base", "?mount=" + d + "&from=nosuchrepo", "?mount=" + d} {
		resp = e.do("POST", "/v2/team/app/blobs/uploads/"+q, nil)
		expect(t, resp, http.StatusAccepted, "")
		if !strings.HasPrefix(resp.Header.Get("Location"), "/v2/team/app/blobs/uploads/") {
			t.Errorf("%s: Location %q", q, resp.Header.Get("Location"))
		}
	}
}

func TestDigestMismatch(t *testing.T) {
	e := newEnv(t)
	e.createRepo("app", "")
	blob := []byte("the real content")
	claimed := Digest([]byte("something else"))
	expect(t, e.do("POST", "/v2/app/blobs/uploads/?digest="+claimed, bytes.NewReader(blob)), http.StatusBadRequest, "DIGEST_INVALID")
	expect(t, e.do("HEAD", "/v2/app/blobs/"+claimed, nil), http.StatusNotFound, "")
	expect(t, e.do("HEAD", "/v2/app/blobs/"+Digest(blob), nil), http.StatusNotFound, "")

	resp := e.do("POST", "/v2/app/blobs/uploads/", nil)
	loc := resp.Header.Get("Location")
	expect(t, e.do("PATCH", loc, bytes.NewReader(blob)), http.StatusAccepted, "")
	expect(t, e.do("PUT", loc+"?digest="+claimed, nil), http.StatusBadRequest, "DIGEST_INVALID")
	expect(t, e.do("HEAD", "/v2/app/blobs/"+Digest(blob), nil), http.StatusNotFound, "")
	expect(t, e.do("PUT", loc+"?digest=sha256:nothex", nil), http.StatusBadRequest, "DIGEST_INVALID")

	// Nothing was stored: no blob file, no temporary file.
	if n := countFiles(t, filepath.Join(e.dir, "blobs")); n != 0 {
		t.Errorf("%d blob files after rejected uploads", n)
	}
	if n := countFiles(t, filepath.Join(e.dir, "tmp")); n != 0 {
		t.Errorf("%d temporary files after rejected uploads", n)
	}
}

func countFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return nil
	})
	return n
}

func TestDeleteBlob(t *testing.T) {
	e := newEnv(t)
	e.createRepo("app", "")
	d := e.pushBlob("app", []byte("to unlink"))
	expect(t, e.do("DELETE", "/v2/app/blobs/"+d, nil), http.StatusAccepted, "")
	expect(t, e.do("HEAD", "/v2/app/blobs/"+d, nil), http.StatusNotFound, "")
	expect(t, e.do("DELETE", "/v2/app/blobs/"+d, nil), http.StatusNotFound, "BLOB_UNKNOWN")
}

func TestNameUnknown(t *testing.T) {
	e := newEnv(t)
	b := expect(t, e.do("POST", "/v2/nosuch/blobs/uploads/", nil), http.StatusNotFound, "NAME_UNKNOWN")
	want := "The repository with name 'nosuch' does not exist in the registry with id '000000000000'"
	if got := errorMessage(t, b); got != want {
		t.Errorf("message %q, want %q", got, want)
	}
	expect(t, e.do("GET", "/v2/nosuch/tags/list", nil), http.StatusNotFound, "NAME_UNKNOWN")
	expect(t, e.do("PUT", "/v2/nosuch/manifests/v1", strings.NewReader("{}")), http.StatusNotFound, "")
	expect(t, e.do("GET", "/v2/Bad_Name/tags/list", nil), http.StatusBadRequest, "NAME_INVALID")
	expect(t, e.do("GET", "/v2/app/nothing/here", nil), http.StatusNotFound, "UNSUPPORTED")
	expect(t, e.do("POST", "/v2/", nil), http.StatusMethodNotAllowed, "UNSUPPORTED")
}

func TestUploadAPI(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.createRepo("app", "")
	if _, err := e.r.StartUpload(ctx, "nosuch"); !errors.Is(err, ErrRepositoryNotFound) {
		t.Fatalf("StartUpload(nosuch) = %v", err)
	}
	id, err := e.r.StartUpload(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := e.r.UploadPart(ctx, "app", id, 0, strings.NewReader("abc")); err != nil || n != 3 {
		t.Fatalf("UploadPart = %d, %v", n, err)
	}
	if _, err := e.r.UploadPart(ctx, "app", id, 2, strings.NewReader("x")); !errors.Is(err, ErrRangeInvalid) {
		t.Fatalf("overlapping part: %v", err)
	}
	// A part whose body fails midway leaves the upload as it was.
	if _, err := e.r.UploadPart(ctx, "app", id, 3, io.MultiReader(strings.NewReader("zz"), failingReader{})); err == nil {
		t.Fatal("failed body accepted")
	}
	if n, err := e.r.UploadSize(ctx, "app", id); err != nil || n != 3 {
		t.Fatalf("UploadSize after a failed part = %d, %v", n, err)
	}
	if _, err := e.r.UploadPart(ctx, "app", id, 3, strings.NewReader("def")); err != nil {
		t.Fatal(err)
	}
	n, err := e.r.CompleteUpload(ctx, "app", id, Digest([]byte("abcdef")))
	if err != nil || n != 6 {
		t.Fatalf("CompleteUpload = %d, %v", n, err)
	}
	if n, err := e.r.Blob(ctx, "app", Digest([]byte("abcdef"))); err != nil || n != 6 {
		t.Fatalf("Blob = %d, %v", n, err)
	}
	if _, err := e.r.UploadSize(ctx, "app", id); !errors.Is(err, ErrUploadNotFound) {
		t.Fatalf("UploadSize after completion: %v", err)
	}
	if _, err := e.r.Blob(ctx, "app", "sha512:abc"); !errors.Is(err, ErrDigestInvalid) {
		t.Fatalf("Blob(bad digest): %v", err)
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

// TestUploadSurvivesRestart continues an upload with a new Registry over
// the same store and directory: the hash state is rebuilt from the file.
func TestUploadSurvivesRestart(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.createRepo("app", "")
	id, err := e.r.StartUpload(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.r.UploadPart(ctx, "app", id, 0, strings.NewReader("first half, ")); err != nil {
		t.Fatal(err)
	}
	r2 := e.open()
	if _, err := r2.UploadPart(ctx, "app", id, 12, strings.NewReader("second half")); err != nil {
		t.Fatal(err)
	}
	if _, err := r2.CompleteUpload(ctx, "app", id, Digest([]byte("first half, second half"))); err != nil {
		t.Fatal(err)
	}
}
