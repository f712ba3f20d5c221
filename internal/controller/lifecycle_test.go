package controller_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/berthdev/berth/internal/awsmodel"
	"github.com/berthdev/berth/internal/awsmodel/ecrtypes"
	"github.com/berthdev/berth/internal/clocktest"
	"github.com/berthdev/berth/internal/controller"
	"github.com/berthdev/berth/internal/registry"
	"github.com/berthdev/berth/internal/state"
	"github.com/berthdev/berth/internal/store"
	"github.com/berthdev/berth/internal/store/bolt"
)

type testClock = clocktest.Clock

// registryEnv is a real registry over a bolt store, with one repository.
type registryEnv struct {
	t   *testing.T
	st  store.Store
	reg *registry.Registry
	clk *testClock
	dir string
}

func newRegistryEnv(t *testing.T, repo string) *registryEnv {
	t.Helper()
	dir := t.TempDir()
	st, err := bolt.Open(filepath.Join(dir, "s.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clk := clocktest.New(time.Date(2030, 3, 1, 0, 0, 0, 0, time.UTC))
	reg, err := registry.Open(registry.Config{Store: st, Dir: filepath.Join(dir, "reg"), Host: "127.0.0.1:4566", TokenKey: bytes.Repeat([]byte("k"), 32), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	e := &registryEnv{t: t, st: st, reg: reg, clk: clk, dir: filepath.Join(dir, "reg")}
	e.update(func(tx store.Tx) error {
		return state.Create(tx, state.RepositoryKey(repo), &state.Repository{Repository: ecrtypes.Repository{RepositoryName: repo, ImageTagMutability: ecrtypes.ImageTagMutabilityMutable}})
	})
	return e
}

func (e *registryEnv) update(fn func(tx store.Tx) error) {
	e.t.Helper()
	if _, err := e.st.Update(context.Background(), fn); err != nil {
		e.t.Fatal(err)
	}
}

// setPolicy puts a lifecycle policy on repo, as PutLifecyclePolicy does.
func (e *registryEnv) setPolicy(repo, text string) {
	e.update(func(tx store.Tx) error {
		rec, _, err := state.Get[state.Repository](tx, state.RepositoryKey(repo))
		if err != nil {
			return err
		}
		rec.LifecyclePolicy, rec.LifecyclePolicyUpdatedAt = text, awsmodel.NewTime(e.clk.Now())
		return state.Put(tx, state.RepositoryKey(repo), rec)
	})
}

func (e *registryEnv) blob(repo string, data []byte) string {
	e.t.Helper()
	ctx := context.Background()
	id, err := e.reg.StartUpload(ctx, repo)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.reg.UploadPart(ctx, repo, id, 0, bytes.NewReader(data)); err != nil {
		e.t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	d := "sha256:" + hex.EncodeToString(sum[:])
	if _, err := e.reg.CompleteUpload(ctx, repo, id, d); err != nil {
		e.t.Fatal(err)
	}
	return d
}

// push pushes a one-layer image with tag ("" for none), then moves the
// clock a day on; it returns the image's digest.
func (e *registryEnv) push(repo, tag, content string) string {
	e.t.Helper()
	config := []byte(`{"os":"linux","comment":"` + content + `"}`)
	layer := []byte("layer " + content)
	m, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": registry.MediaTypeDockerManifest,
		"config": map[string]any{"mediaType": "application/vnd.docker.container.image.v1+json", "size": len(config), "digest": e.blob(repo, config)},
		"layers": []map[string]any{{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": len(layer), "digest": e.blob(repo, layer)}},
	})
	img, err := e.reg.PutManifest(context.Background(), repo, tag, "", m)
	if err != nil {
		e.t.Fatal(err)
	}
	e.clk.Advance(24 * time.Hour)
	return img.Digest
}

// left lists the digests of repo's images.
func (e *registryEnv) left(repo string) []string {
	e.t.Helper()
	var out []string
	err := e.st.View(context.Background(), func(tx store.ReadTx) error {
		kvs, err := tx.List(state.ImagesRepoPrefix(repo), "", 0)
		for _, kv := range kvs {
			img, err := state.Decode[state.Image](kv)
			if err != nil {
				return err
			}
			out = append(out, img.Digest)
		}
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func (e *registryEnv) repo(name string) *state.Repository {
	e.t.Helper()
	var rec *state.Repository
	err := e.st.View(context.Background(), func(tx store.ReadTx) error {
		var err error
		rec, _, err = state.Get[state.Repository](tx, state.RepositoryKey(name))
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return rec
}

func sorted(s ...string) []string { slices.Sort(s); return s }

func TestLifecycleApply(t *testing.T) {
	e := newRegistryEnv(t, "app")
	u1 := e.push("app", "", "u1")
	u2 := e.push("app", "", "u2")
	u3 := e.push("app", "", "u3")
	old := e.push("app", "release-1", "r1")
	recent := e.push("app", "release-2", "r2")
	l := &controller.Lifecycle{Store: e.st, Images: e.reg, Now: e.clk.Now}

	// No policy: nothing happens.
	if n, err := l.Apply(context.Background(), "app"); err != nil || n != 0 {
		t.Fatalf("without a policy: %d, %v", n, err)
	}
	e.setPolicy("app", `{"rules":[
		{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}},
		{"rulePriority":2,"selection":{"tagStatus":"tagged","tagPatternList":["release-*"],"countType":"sinceImagePushed","countUnit":"days","countNumber":1},"action":{"type":"expire"}}]}`)
	// The clock is a day after the last push: release-2 is exactly one day
	// old (not more), release-1 two days.
	n, err := l.Apply(context.Background(), "app")
	if err != nil || n != 3 {
		t.Fatalf("expired %d, %v; want 3", n, err)
	}
	if got, want := e.left("app"), sorted(u3, recent); !slices.Equal(got, want) {
		t.Fatalf("left %v, want %v (u1 %s u2 %s old %s)", got, want, u1, u2, old)
	}
	if rec := e.repo("app"); rec.LifecycleEvaluatedAt == nil || !rec.LifecycleEvaluatedAt.Time.Equal(e.clk.Now()) {
		t.Fatalf("lastEvaluatedAt = %v", rec.LifecycleEvaluatedAt)
	}
	// A day later release-2 goes too; Pass covers every repository.
	e.clk.Advance(time.Hour)
	if n, err := l.Pass(context.Background()); err != nil || n != 1 {
		t.Fatalf("second pass expired %d, %v", n, err)
	}
	if got := e.left("app"); !slices.Equal(got, []string{u3}) {
		t.Fatalf("left %v", got)
	}
}

func TestLifecycleKeepsIndexChildren(t *testing.T) {
	e := newRegistryEnv(t, "app")
	child := e.push("app", "", "child")
	loose := e.push("app", "", "loose")
	idx, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": registry.MediaTypeOCIIndex,
		"manifests": []map[string]any{{"mediaType": registry.MediaTypeDockerManifest, "size": 1, "digest": child}},
	})
	index, err := e.reg.PutManifest(context.Background(), "app", "multi", "", idx)
	if err != nil {
		t.Fatal(err)
	}
	e.push("app", "", "newest")
	e.setPolicy("app", `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`)
	l := &controller.Lifecycle{Store: e.st, Images: e.reg, Now: e.clk.Now}
	if n, err := l.Apply(context.Background(), "app"); err != nil || n != 1 {
		t.Fatalf("expired %d, %v", n, err)
	}
	for _, d := range e.left("app") {
		if d == loose {
			t.Fatalf("the loose untagged image was kept")
		}
	}
	if got := e.left("app"); !slices.Contains(got, child) || !slices.Contains(got, index.Digest) {
		t.Fatalf("left %v: the index or its child went", got)
	}
}

// TestLifecycleRun checks that the loop reacts to a policy being put and to
// pushes, without waiting for its interval.
func TestLifecycleRun(t *testing.T) {
	e := newRegistryEnv(t, "app")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	l := &controller.Lifecycle{Store: e.st, Images: e.reg, Now: e.clk.Now, Interval: time.Hour}
	go func() { done <- l.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	e.push("app", "v-a", "a")
	b := e.push("app", "v-b", "b")
	e.setPolicy("app", `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"tagged","tagPrefixList":["v-"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`)
	waitFor("the policy to expire the older image", func() bool { return slices.Equal(e.left("app"), []string{b}) })
	c := e.push("app", "v-c", "c")
	waitFor("a push to expire the previous image", func() bool { return slices.Equal(e.left("app"), []string{c}) })
	waitFor("lastEvaluatedAt", func() bool { return e.repo("app").LifecycleEvaluatedAt != nil })
}

// slowWatchStore stands for a store whose Watch is still in progress when
// the controller's context ends: Watch returns only once released. Only
// what the lifecycle controller calls is provided.
type slowWatchStore struct {
	store.Store
	release chan struct{}
}

func (s *slowWatchStore) Revision() int64 { return 0 }

func (s *slowWatchStore) View(context.Context, func(store.ReadTx) error) error { return nil }

func (s *slowWatchStore) Watch(ctx context.Context, _ string, _ int64) (<-chan store.WatchResponse, error) {
	<-ctx.Done()
	<-s.release
	return nil, ctx.Err()
}

// TestLifecycleRunWaitsForWatch: Run returns only once its watch of the
// store has ended, so the caller may close the store after it.
func TestLifecycleRunWaitsForWatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &slowWatchStore{release: make(chan struct{})}
		l := &controller.Lifecycle{Store: st, Interval: time.Hour}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- l.Run(ctx) }()
		synctest.Wait()
		cancel()
		synctest.Wait() // everything that can move on has
		select {
		case <-done:
			t.Error("Run returned while its watch goroutine was still in the store")
			close(st.release) // so the bubble can end
			return
		default:
		}
		close(st.release)
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
}

// firstUpdateHook runs before, once, at the start of the first Update.
type firstUpdateHook struct {
	store.Store
	mu     sync.Mutex
	before func()
}

func (s *firstUpdateHook) Update(ctx context.Context, fn func(store.Tx) error) (int64, error) {
	s.mu.Lock()
	h := s.before
	s.before = nil
	s.mu.Unlock()
	if h != nil {
		h()
	}
	return s.Store.Update(ctx, fn)
}

// TestLifecycleConcurrentPush: an image the policy expired when it was
// evaluated is tagged by a push before the deletion commits. The rule
// (untagged images) no longer selects it, so it must stay, with its new
// tag.
func TestLifecycleConcurrentPush(t *testing.T) {
	e := newRegistryEnv(t, "app")
	ctx := context.Background()
	u := e.push("app", "", "u")
	e.clk.Advance(time.Hour) // more than a day old
	_, manifest, err := e.reg.Manifest(ctx, "app", u)
	if err != nil {
		t.Fatal(err)
	}
	e.setPolicy("app", `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":1},"action":{"type":"expire"}}]}`)

	hooked := &firstUpdateHook{Store: e.st}
	reg, err := registry.Open(registry.Config{Store: hooked, Dir: e.dir, Host: "127.0.0.1:4566", TokenKey: bytes.Repeat([]byte("k"), 32), Now: e.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	hooked.before = func() { // the push lands between evaluation and deletion
		if _, err := e.reg.PutManifest(ctx, "app", "keep", "", manifest); err != nil {
			t.Error(err)
		}
	}
	l := &controller.Lifecycle{Store: e.st, Images: reg, Now: e.clk.Now}
	n, err := l.Apply(ctx, "app")
	if err != nil || n != 0 {
		t.Fatalf("expired %d, %v; want 0", n, err)
	}
	img, _, err := e.reg.Manifest(ctx, "app", "keep")
	if err != nil || img.Digest != u {
		t.Fatalf("the image tagged meanwhile: %+v, %v", img, err)
	}
}
