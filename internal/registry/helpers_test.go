package registry

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/awsmodel"
	"github.com/berthdev/berth/internal/awsmodel/ecrtypes"
	"github.com/berthdev/berth/internal/clocktest"
	"github.com/berthdev/berth/internal/state"
	"github.com/berthdev/berth/internal/store"
	"github.com/berthdev/berth/internal/store/bolt"
)

type clock = clocktest.Clock

// hookStore runs beforeUpdate (when set) at the start of every Update.
type hookStore struct {
	store.Store
	mu           sync.Mutex
	beforeUpdate func()
}

func (s *hookStore) Update(ctx context.Context, fn func(tx store.Tx) error) (int64, error) {
	s.mu.Lock()
	h := s.beforeUpdate
	s.mu.Unlock()
	if h != nil {
		h()
	}
	return s.Store.Update(ctx, fn)
}

func (s *hookStore) setBeforeUpdate(h func()) {
	s.mu.Lock()
	s.beforeUpdate = h
	s.mu.Unlock()
}

// countingStore counts what transactions read: point reads, and the
// rows List and ListReverse return (each row is a value read and, for an
// image, decoded), per prefix listed.
type countingStore struct {
	store.Store
	mu       sync.Mutex
	gets     int
	rows     int
	listedBy map[string]int // prefix -> List/ListReverse calls
}

// reads is the number of records read so far: point reads plus listed rows.
func (s *countingStore) reads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gets + s.rows
}

// lists is how many times prefix was listed.
func (s *countingStore) lists(prefix string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.listedBy[prefix]
}

func (s *countingStore) reset() {
	s.mu.Lock()
	s.gets, s.rows, s.listedBy = 0, 0, nil
	s.mu.Unlock()
}

func (s *countingStore) got() {
	s.mu.Lock()
	s.gets++
	s.mu.Unlock()
}

func (s *countingStore) listed(prefix string, n int) {
	s.mu.Lock()
	if s.listedBy == nil {
		s.listedBy = map[string]int{}
	}
	s.listedBy[prefix]++
	s.rows += n
	s.mu.Unlock()
}

func (s *countingStore) View(ctx context.Context, fn func(store.ReadTx) error) error {
	return s.Store.View(ctx, func(tx store.ReadTx) error { return fn(countingReadTx{tx, s}) })
}

func (s *countingStore) Update(ctx context.Context, fn func(store.Tx) error) (int64, error) {
	return s.Store.Update(ctx, func(tx store.Tx) error { return fn(countingTx{countingReadTx{tx, s}, tx}) })
}

type countingReadTx struct {
	store.ReadTx
	c *countingStore
}

func (tx countingReadTx) Get(key string) (store.KV, bool, error) {
	tx.c.got()
	return tx.ReadTx.Get(key)
}

func (tx countingReadTx) List(prefix, after string, limit int) ([]store.KV, error) {
	kvs, err := tx.ReadTx.List(prefix, after, limit)
	tx.c.listed(prefix, len(kvs))
	return kvs, err
}

func (tx countingReadTx) ListReverse(prefix, before string, limit int) ([]store.KV, error) {
	kvs, err := tx.ReadTx.ListReverse(prefix, before, limit)
	tx.c.listed(prefix, len(kvs))
	return kvs, err
}

func (tx countingReadTx) Count(prefix string) (int, error) {
	n, err := tx.ReadTx.Count(prefix)
	tx.c.listed(prefix, n)
	return n, err
}

// countingTx counts the reads of a write transaction; writes pass through.
type countingTx struct {
	countingReadTx
	w store.Tx
}

func (tx countingTx) Put(key string, value []byte) error    { return tx.w.Put(key, value) }
func (tx countingTx) Create(key string, value []byte) error { return tx.w.Create(key, value) }
func (tx countingTx) Delete(key string) error               { return tx.w.Delete(key) }

var testKey = []byte("0123456789abcdef0123456789abcdef")

// env is a Registry over a real bolt store, served by an httptest server.
type env struct {
	t     testing.TB
	r     *Registry
	store *hookStore
	clk   *clock
	dir   string
	srv   *httptest.Server
	token string
}

func newEnv(t testing.TB) *env {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "state.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &env{t: t, store: &hookStore{Store: st}, clk: clocktest.New(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)), dir: t.TempDir()}
	e.srv = httptest.NewUnstartedServer(nil)
	e.r = e.open()
	e.srv.Config.Handler = e.r
	e.srv.Start()
	t.Cleanup(e.srv.Close)
	e.token, _ = e.r.MintToken("arn:aws:iam::000000000000:root")
	return e
}

// open opens a Registry over the env's store and directory (again, for a
// restart).
func (e *env) open() *Registry {
	e.t.Helper()
	r, err := Open(Config{
		Store: e.store, Dir: e.dir, Host: e.srv.Listener.Addr().String(),
		TokenKey: testKey, Now: e.clk.Now,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// openOver opens a second Registry over st (wrapping the env's store)
// and the env's directory.
func (e *env) openOver(st store.Store) *Registry {
	e.t.Helper()
	r, err := Open(Config{Store: st, Dir: e.dir, Host: "h", TokenKey: testKey, Now: e.clk.Now})
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

func (e *env) createRepo(name string, mut ecrtypes.ImageTagMutability, filters ...string) {
	e.t.Helper()
	rec := state.Repository{}
	rec.RepositoryName = name
	rec.CreatedAt = awsmodel.NewTime(e.clk.Now())
	rec.ImageTagMutability = mut
	for _, f := range filters {
		rec.ImageTagMutabilityExclusionFilters = append(rec.ImageTagMutabilityExclusionFilters,
			ecrtypes.ImageTagMutabilityExclusionFilter{FilterType: ecrtypes.ImageTagMutabilityExclusionFilterTypeWildcard, Filter: f})
	}
	if _, err := e.store.Update(context.Background(), func(tx store.Tx) error {
		return state.Put(tx, state.RepositoryKey(name), rec)
	}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) basic() string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte("AWS:"+e.token))
}

// do sends a request with the env's credentials unless headers set
// Authorization (to "" for none). headers alternate name, value.
func (e *env) do(method, path string, body io.Reader, headers ...string) *http.Response {
	e.t.Helper()
	if !strings.HasPrefix(path, "http") {
		path = e.srv.URL + path
	}
	req, err := http.NewRequest(method, path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", e.basic())
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
			continue
		}
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// expect checks the response status (and error code, when code is set),
// and returns the body.
func expect(t testing.TB, resp *http.Response, status int, code string) []byte {
	t.Helper()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("%s %s: status %d, want %d; body %s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, status, b)
	}
	if code != "" {
		var eb wireErrorBody
		if err := json.Unmarshal(b, &eb); err != nil || len(eb.Errors) != 1 || eb.Errors[0].Code != code {
			t.Fatalf("%s %s: body %s, want error code %s", resp.Request.Method, resp.Request.URL.Path, b, code)
		}
	}
	return b
}

func errorMessage(t *testing.T, b []byte) string {
	t.Helper()
	var eb wireErrorBody
	if err := json.Unmarshal(b, &eb); err != nil || len(eb.Errors) == 0 {
		t.Fatalf("not an error body: %s", b)
	}
	return eb.Errors[0].Message
}

// pushBlob uploads b monolithically into repo and returns its digest.
func (e *env) pushBlob(repo string, b []byte) string {
	e.t.Helper()
	d := Digest(b)
	expect(e.t, e.do("POST", "/v2/"+repo+"/blobs/uploads/?digest="+d, bytes.NewReader(b)), http.StatusCreated, "")
	return d
}

// image builds an image manifest over a config and layers pushed to repo.
func (e *env) image(repo string, layers ...string) []byte {
	e.t.Helper()
	cfg := e.pushBlob(repo, []byte(`{"architecture":"amd64","os":"linux","n":"`+strings.Join(layers, ",")+`"}`))
	m := manifestDoc{SchemaVersion: 2, MediaType: MediaTypeOCIManifest, Config: &descriptor{MediaType: mediaTypeOCIConfig, Digest: cfg, Size: 10}}
	for _, l := range layers {
		d := e.pushBlob(repo, []byte(l))
		m.Layers = append(m.Layers, descriptor{MediaType: "application/vnd.oci.image.layer.v1.tar+gzip", Digest: d, Size: int64(len(l))})
	}
	b, err := json.Marshal(m)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

// putManifest PUTs manifest at reference and returns its digest.
func (e *env) putManifest(repo, ref string, manifest []byte) string {
	e.t.Helper()
	resp := e.do("PUT", "/v2/"+repo+"/manifests/"+ref, bytes.NewReader(manifest), "Content-Type", mediaTypeFromDoc(manifest))
	expect(e.t, resp, http.StatusCreated, "")
	return resp.Header.Get("Docker-Content-Digest")
}

func mediaTypeFromDoc(b []byte) string {
	var m manifestDoc
	json.Unmarshal(b, &m)
	return m.MediaType
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
