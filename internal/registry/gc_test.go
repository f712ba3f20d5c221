package registry

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func (e *env) blobExists(digest string) bool {
	_, err := os.Stat(e.r.blobPath(digest))
	return err == nil
}

func (e *env) gc() GCResult {
	e.t.Helper()
	res, err := e.r.GC(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return res
}

func TestGC(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.createRepo("app", "")
	kept := e.putManifest("app", "v1", e.image("app", "kept layer"))
	keptLayer := Digest([]byte("kept layer"))
	orphan := e.pushBlob("app", []byte("uploaded, never referenced"))
	doomed := e.putManifest("app", "old", e.image("app", "doomed layer"))
	doomedLayer := Digest([]byte("doomed layer"))

	// Young: nothing is collected.
	if res := e.gc(); res != (GCResult{}) {
		t.Fatalf("young GC %+v", res)
	}
	if err := e.r.DeleteImage(ctx, "app", doomed); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(59 * time.Minute)
	if res := e.gc(); res.BlobsDeleted != 0 {
		t.Fatalf("GC within grace %+v", res)
	}

	e.clk.Advance(2 * time.Minute)
	res := e.gc()
	// The orphan, the deleted image's manifest, its config and its layer.
	if res.BlobsDeleted != 4 || res.LinksDropped != 3 || res.BytesFreed == 0 {
		t.Errorf("GC %+v", res)
	}
	for _, d := range []string{orphan, doomed, doomedLayer} {
		if e.blobExists(d) {
			t.Errorf("%s survived", d)
		}
	}
	for _, d := range []string{kept, keptLayer} {
		if !e.blobExists(d) {
			t.Errorf("%s collected while referenced", d)
		}
	}
	if _, _, err := e.r.Manifest(ctx, "app", "v1"); err != nil {
		t.Fatal(err)
	}
	expect(t, e.do("GET", "/v2/app/blobs/"+keptLayer, nil), http.StatusOK, "")
	if res := e.gc(); res != (GCResult{}) {
		t.Errorf("second GC %+v", res)
	}

	// A blob shared with another repository stays while that one links it.
	e.createRepo("b", "")
	shared := e.pushBlob("app", []byte("shared"))
	if _, err := e.r.Mount(ctx, "b", "app", shared); err != nil {
		t.Fatal(err)
	}
	e.putManifest("b", "v1", e.image("b", "shared"))
	e.clk.Advance(2 * time.Hour)
	e.gc()
	if !e.blobExists(shared) {
		t.Error("shared blob collected")
	}
}

func TestGCUploads(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.createRepo("app", "")
	idle, _ := e.r.StartUpload(ctx, "app")
	e.r.UploadPart(ctx, "app", idle, 0, strings.NewReader("abandoned"))
	e.clk.Advance(23 * time.Hour)
	active, _ := e.r.StartUpload(ctx, "app")
	if res := e.gc(); res.UploadsDeleted != 0 {
		t.Fatalf("GC %+v", res)
	}
	e.clk.Advance(2 * time.Hour)
	if res := e.gc(); res.UploadsDeleted != 1 {
		t.Fatalf("GC %+v", res)
	}
	if _, err := e.r.UploadSize(ctx, "app", idle); !errors.Is(err, ErrUploadNotFound) {
		t.Errorf("idle upload: %v", err)
	}
	if _, err := e.r.UploadSize(ctx, "app", active); err != nil {
		t.Errorf("active upload: %v", err)
	}
	if _, err := os.Stat(e.r.uploadPath(idle)); !os.IsNotExist(err) {
		t.Errorf("idle upload file: %v", err)
	}
}

// TestGCUploadActiveMeanwhile: a part that arrives after GC found an
// upload idle, and before GC locked it, keeps the upload.
func TestGCUploadActiveMeanwhile(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.createRepo("app", "")
	id, err := e.r.StartUpload(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.r.UploadPart(ctx, "app", id, 0, strings.NewReader("first")); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(25 * time.Hour) // idle past uploadTTL
	e.r.testHookUploadIdle = func(idle string) {
		if idle != id {
			return
		}
		if _, err := e.r.UploadPart(ctx, "app", id, -1, strings.NewReader(", second")); err != nil {
			t.Error(err)
		}
	}
	if res := e.gc(); res.UploadsDeleted != 0 {
		t.Errorf("GC %+v deleted an upload that had just received a part", res)
	}
	e.r.testHookUploadIdle = nil
	if _, err := e.r.CompleteUpload(ctx, "app", id, Digest([]byte("first, second"))); err != nil {
		t.Fatal(err)
	}
}

// TestGCCommitRace runs GC between an upload's rename into the blob store
// and the commit of its layer link, for a blob GC had listed as an old
// unreferenced candidate: the blob must survive.
func TestGCCommitRace(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.createRepo("app", "")
	e.createRepo("b", "")
	content := []byte("contended blob")
	d := e.pushBlob("app", content)
	expect(t, e.do("DELETE", "/v2/app/blobs/"+d, nil), http.StatusAccepted, "")
	e.clk.Advance(2 * time.Hour) // old and unreferenced: a GC candidate

	id, err := e.r.StartUpload(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.r.UploadPart(ctx, "b", id, 0, bytes.NewReader(content)); err != nil {
		t.Fatal(err)
	}

	listed, proceed := make(chan struct{}), make(chan struct{})
	e.r.testHookGCListed = func() { close(listed); <-proceed }
	committing, commit := make(chan struct{}), make(chan struct{})
	gcDone := make(chan GCResult)
	go func() {
		res, _ := e.r.GC(ctx)
		gcDone <- res
	}()
	<-listed // GC has the blob as a candidate

	e.store.setBeforeUpdate(func() { close(committing); <-commit })
	completeDone := make(chan error)
	go func() {
		_, err := e.r.CompleteUpload(ctx, "b", id, d)
		completeDone <- err
	}()
	<-committing // renamed into place, link not yet committed
	e.store.setBeforeUpdate(nil)
	if e.r.gcMu.TryLock() {
		t.Fatal("GC could sweep while a commit was in flight")
	}
	close(proceed) // GC now waits for the commit
	close(commit)
	if err := <-completeDone; err != nil {
		t.Fatal(err)
	}
	if res := <-gcDone; res.BlobsDeleted != 0 {
		t.Errorf("GC %+v", res)
	}
	if !e.blobExists(d) {
		t.Fatal("GC deleted a blob whose link was being committed")
	}
	expect(t, e.do("GET", "/v2/b/blobs/"+d, nil), http.StatusOK, "")
}

// TestCrashLeftovers: what a crash can leave (a temporary file, an upload
// file without a record, a blob file no record names) is never visible,
// and is cleaned by Open or GC.
func TestCrashLeftovers(t *testing.T) {
	e := newEnv(t)
	e.createRepo("app", "")
	content := []byte("written before the crash")
	d := Digest(content)

	tmp := filepath.Join(e.dir, "tmp", "blob-123")
	os.WriteFile(tmp, content[:5], 0o644) // a truncated write
	uploadID := "0b5e6a1c-1111-4222-8333-444455556666"
	os.WriteFile(filepath.Join(e.dir, "uploads", uploadID), content, 0o644)
	unnamed := []byte("renamed, record never committed")
	if err := os.MkdirAll(filepath.Dir(e.r.blobPath(Digest(unnamed))), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(e.r.blobPath(Digest(unnamed)), unnamed, 0o644)
	now := e.clk.Now()
	os.Chtimes(filepath.Join(e.dir, "uploads", uploadID), now, now)
	os.Chtimes(e.r.blobPath(Digest(unnamed)), now, now)

	r2 := e.open() // the restart
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Errorf("Open left the temporary file: %v", err)
	}
	e.srv.Config.Handler = r2
	e.r = r2
	expect(t, e.do("HEAD", "/v2/app/blobs/"+d, nil), http.StatusNotFound, "")
	expect(t, e.do("HEAD", "/v2/app/blobs/"+Digest(unnamed), nil), http.StatusNotFound, "")
	expect(t, e.do("GET", "/v2/app/blobs/uploads/"+uploadID, nil), http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
	expect(t, e.do("PUT", "/v2/app/blobs/uploads/"+uploadID+"?digest="+d, nil), http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")

	if res := e.gc(); res != (GCResult{}) {
		t.Errorf("GC within grace %+v", res)
	}
	e.clk.Advance(2 * time.Hour)
	res := e.gc()
	if res.BlobsDeleted != 1 || res.UploadsDeleted != 1 {
		t.Errorf("GC %+v", res)
	}
	if n := countFiles(t, e.dir); n != 0 {
		t.Errorf("%d files left", n)
	}
	// A pushed blob after all this is whole.
	e.pushBlob("app", content)
	if got := expect(t, e.do("GET", "/v2/app/blobs/"+d, nil), http.StatusOK, ""); !bytes.Equal(got, content) {
		t.Errorf("GET = %q", got)
	}
}
