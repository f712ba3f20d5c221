package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/berthdev/berth/internal/state"
	"github.com/berthdev/berth/internal/store"
)

// TestBlobHeadCost: `docker push` HEADs every layer before uploading it,
// and most are misses. Deciding whether a blob is readable in a repository
// (linked, an image's manifest, or referenced by an image) must read a
// fixed number of records, not every image of the repository.
func TestBlobHeadCost(t *testing.T) {
	// cost returns the records read by a HEAD that misses and by one that
	// finds a blob only through an image, in a repository of n images.
	cost := func(n int) (miss, viaImage int) {
		e := newEnv(t)
		e.createRepo("app", "")
		for i := range n {
			e.putManifest("app", fmt.Sprintf("v%d", i), e.image("app", fmt.Sprintf("layer %d", i)))
		}
		layer := Digest([]byte("layer 0"))
		expect(t, e.do("DELETE", "/v2/app/blobs/"+layer, nil), http.StatusAccepted, "") // readable through v0 only

		c := &countingStore{Store: e.store}
		r := e.openOver(c)
		head := func(digest string, status int) int {
			t.Helper()
			c.reset()
			req := httptest.NewRequest(http.MethodHead, "/v2/app/blobs/"+digest, nil)
			req.Header.Set("Authorization", e.basic())
			rec := httptest.NewRecorder()
			r.ServeHTTP(rec, req)
			if rec.Code != status {
				t.Fatalf("HEAD %s with %d images: status %d, want %d", digest, n, rec.Code, status)
			}
			return c.reads()
		}
		return head(Digest([]byte("not pushed yet")), http.StatusNotFound), head(layer, http.StatusOK)
	}
	miss1, via1 := cost(1)
	missN, viaN := cost(40)
	if missN != miss1 || viaN != via1 {
		t.Errorf("records read: miss %d with 1 image, %d with 40; through an image %d with 1, %d with 40", miss1, missN, via1, viaN)
	}
	// The repository, the link, an image by that digest, one index entry.
	if miss1 > 4 || via1 > 4 {
		t.Errorf("records read: miss %d, through an image %d; want at most 4", miss1, via1)
	}
}

// TestBlobRefsFollowImages: a blob whose link is gone stays readable
// exactly while an image of the repository references it, through every
// path that deletes images; and deleting an image leaves no index entry
// naming it.
func TestBlobRefsFollowImages(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		purge bool // the whole repository goes, kept image included
		del   func(e *env, digest string) error
	}{
		{name: "DeleteImage", del: func(e *env, d string) error { return e.r.DeleteImage(ctx, "app", d) }},
		{name: "DeleteUntagged", del: func(e *env, d string) error {
			deleted, err := e.r.DeleteUntagged(ctx, "app", d)
			if err == nil && !deleted {
				err = errors.New("not deleted")
			}
			return err
		}},
		{name: "ExpireImages", del: func(e *env, d string) error {
			_, err := e.r.ExpireImages(ctx, "app", func(*state.Repository, []*state.Image) []string { return []string{d} })
			return err
		}},
		{name: "PurgeRepository", purge: true, del: func(e *env, _ string) error {
			_, err := e.store.Update(ctx, func(tx store.Tx) error { return PurgeRepository(tx, "app") })
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.createRepo("app", "")
			e.createRepo("other", "")
			e.putManifest("app", "kept", e.image("app", "shared", "kept only"))
			m := e.image("app", "shared", "gone only")
			gone := e.putManifest("app", Digest(m), m) // untagged
			e.putManifest("other", "v1", e.image("other", "gone only"))
			shared, goneOnly := Digest([]byte("shared")), Digest([]byte("gone only"))
			for _, d := range []string{shared, goneOnly, Digest([]byte("kept only"))} {
				expect(t, e.do("DELETE", "/v2/app/blobs/"+d, nil), http.StatusAccepted, "")
			}
			for _, d := range []string{shared, goneOnly} {
				if _, err := e.r.Blob(ctx, "app", d); err != nil {
					t.Fatalf("before: %s through an image: %v", d, err)
				}
			}

			if err := tc.del(e, gone); err != nil {
				t.Fatal(err)
			}
			if _, err := e.r.Blob(ctx, "app", goneOnly); !errors.Is(err, ErrBlobNotFound) {
				t.Errorf("a blob only the deleted image referenced: %v", err)
			}
			if _, err := e.r.Blob(ctx, "app", shared); tc.purge != errors.Is(err, ErrBlobNotFound) {
				t.Errorf("a blob another image references: %v", err)
			}
			if _, err := e.r.Blob(ctx, "other", goneOnly); err != nil {
				t.Errorf("the blob in another repository: %v", err)
			}
			e.store.View(ctx, func(tx store.ReadTx) error {
				kvs, err := tx.List(state.BlobRefsRepoPrefix("app"), "", 0)
				if err != nil {
					t.Fatal(err)
				}
				for _, kv := range kvs {
					if tc.purge || strings.HasSuffix(kv.Key, "\x00"+gone) {
						t.Errorf("left behind: %q", kv.Key)
					}
				}
				return nil
			})
		})
	}
}
