package controller

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/berthdev/berth/internal/awsmodel"
	"github.com/berthdev/berth/internal/errdefs"
	"github.com/berthdev/berth/internal/registry/lifecycle"
	"github.com/berthdev/berth/internal/state"
	"github.com/berthdev/berth/internal/store"
)

// DefaultLifecycleInterval is how often every lifecycle policy is applied
// regardless of changes.
const DefaultLifecycleInterval = time.Minute

// evaluatedEvery bounds how often a quiet repository's lastEvaluatedAt is
// written: a pass that expires nothing and follows no policy change records
// itself at most this often, so the periodic pass does not rewrite every
// repository every minute.
const evaluatedEvery = time.Hour

// ImageExpirer deletes, in one store transaction, the images of a
// repository that choose picks given the repository and its images as that
// transaction reads them: the registry.
type ImageExpirer interface {
	ExpireImages(ctx context.Context, repo string, choose func(rec *state.Repository, images []*state.Image) []string) ([]*state.Image, error)
}

// Lifecycle applies ECR lifecycle policies: it evaluates each repository
// that has one (package registry/lifecycle) and deletes the images it
// expires through the registry. A repository is evaluated when its policy
// is put, when an image is pushed or tagged in it, and every Interval.
type Lifecycle struct {
	Store  store.Store
	Images ImageExpirer
	// Interval is how often every policy is applied; default
	// DefaultLifecycleInterval.
	Interval time.Duration
	Now      func() time.Time
	Logger   *slog.Logger

	log  *slog.Logger
	wake chan struct{}
	mu   sync.Mutex
	// dirty are the repositories to evaluate next.
	dirty map[string]bool
	// seen is, per repository, the policy version (text and time put) last
	// evaluated, so the controller's own writes of lastEvaluatedAt do not
	// wake it.
	seen map[string]string
}

func (l *Lifecycle) defaults() {
	if l.Interval <= 0 {
		l.Interval = DefaultLifecycleInterval
	}
	if l.Now == nil {
		l.Now = time.Now
	}
	l.log = slog.New(slog.DiscardHandler)
	if l.Logger != nil {
		l.log = l.Logger
	}
	l.log = l.log.With("component", "ecr_lifecycle")
	l.wake = make(chan struct{}, 1)
	l.dirty = map[string]bool{}
	l.seen = map[string]string{}
}

// Run applies policies until ctx ends. It returns only once its watch of
// the store has ended too, so that a caller that closes the store after
// Run returns never has it read by this controller.
func (l *Lifecycle) Run(ctx context.Context) error {
	l.defaults()
	var watch sync.WaitGroup
	defer watch.Wait()
	watch.Go(func() { l.watchLoop(ctx) })
	t := time.NewTicker(l.Interval)
	defer t.Stop()
	for {
		l.mu.Lock()
		repos := l.dirty
		l.dirty = map[string]bool{}
		l.mu.Unlock()
		for repo := range repos {
			if _, err := l.Apply(ctx, repo); err != nil && ctx.Err() == nil {
				l.log.Warn("applying a lifecycle policy failed", "repository", repo, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			l.markAll(ctx)
		case <-l.wake:
		}
	}
}

func (l *Lifecycle) mark(repo string) {
	l.mu.Lock()
	l.dirty[repo] = true
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// markAll queues every repository that has a lifecycle policy.
func (l *Lifecycle) markAll(ctx context.Context) {
	repos, err := l.withPolicy(ctx)
	if err != nil {
		if ctx.Err() == nil {
			l.log.Warn("listing repositories failed", "err", err)
		}
		return
	}
	for _, r := range repos {
		l.mark(r)
	}
}

// withPolicy lists the repositories that have a lifecycle policy.
func (l *Lifecycle) withPolicy(ctx context.Context) ([]string, error) {
	var out []string
	err := l.Store.View(ctx, func(tx store.ReadTx) error {
		kvs, err := tx.List(state.RepositoriesPrefix, "", 0)
		if err != nil {
			return err
		}
		for _, kv := range kvs {
			rec, err := state.Decode[state.Repository](kv)
			if err != nil {
				return err
			}
			if rec.LifecyclePolicy != "" {
				out = append(out, rec.RepositoryName)
			}
		}
		return nil
	})
	return out, err
}

// watchLoop turns store changes into work: a repository record whose
// policy changed, and images pushed or tagged.
func (l *Lifecycle) watchLoop(ctx context.Context) {
	for ctx.Err() == nil {
		ch, err := l.Store.Watch(ctx, "/ecr/", l.Store.Revision()+1)
		if err == nil {
			l.markAll(ctx) // anything that changed before the watch began
			err = l.consume(ch)
		}
		if ctx.Err() == nil {
			l.log.Warn("lifecycle watch restarted", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

func (l *Lifecycle) consume(ch <-chan store.WatchResponse) error {
	for resp := range ch {
		if resp.Err != nil {
			return resp.Err
		}
		for _, ev := range resp.Events {
			key := ev.KV.Key
			switch {
			case strings.HasPrefix(key, state.RepositoriesPrefix):
				name := strings.TrimPrefix(key, state.RepositoriesPrefix)
				if ev.Type == store.EventDelete {
					l.mu.Lock()
					delete(l.seen, name)
					l.mu.Unlock()
					continue
				}
				rec, err := state.Decode[state.Repository](ev.KV)
				if err != nil || rec.LifecyclePolicy == "" {
					continue
				}
				l.mu.Lock()
				changed := l.seen[name] != version(rec)
				l.mu.Unlock()
				if changed {
					l.mark(name)
				}
			case ev.Type != store.EventPut:
			case strings.HasPrefix(key, state.ImagesPrefix), strings.HasPrefix(key, state.ImageTagsPrefix):
				rest := strings.TrimPrefix(strings.TrimPrefix(key, state.ImagesPrefix), state.ImageTagsPrefix)
				if repo, _, ok := strings.Cut(rest, "\x00"); ok {
					l.mark(repo)
				}
			}
		}
	}
	return nil
}

// version identifies the policy a repository record holds.
func version(rec *state.Repository) string {
	v := rec.LifecyclePolicy
	if rec.LifecyclePolicyUpdatedAt != nil {
		v += "\x00" + rec.LifecyclePolicyUpdatedAt.UTC().Format(time.RFC3339Nano)
	}
	return v
}

// Pass applies every repository's lifecycle policy once and returns how
// many images it expired.
func (l *Lifecycle) Pass(ctx context.Context) (int, error) {
	if l.log == nil {
		l.defaults()
	}
	repos, err := l.withPolicy(ctx)
	if err != nil {
		return 0, err
	}
	total := 0
	for _, r := range repos {
		n, err := l.Apply(ctx, r)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// Apply evaluates the lifecycle policy of repository repo (if it has one)
// and deletes the images it expires; it returns how many it deleted.
func (l *Lifecycle) Apply(ctx context.Context, repo string) (int, error) {
	if l.log == nil {
		l.defaults()
	}
	var rec *state.Repository
	var images []*state.Image
	err := l.Store.View(ctx, func(tx store.ReadTx) error {
		var ok bool
		var err error
		rec, ok, err = state.Get[state.Repository](tx, state.RepositoryKey(repo))
		if err != nil || !ok || rec.LifecyclePolicy == "" {
			rec = nil
			return err
		}
		kvs, err := tx.List(state.ImagesRepoPrefix(repo), "", 0)
		if err != nil {
			return err
		}
		images = images[:0]
		for _, kv := range kvs {
			img, err := state.Decode[state.Image](kv)
			if err != nil {
				return err
			}
			images = append(images, img)
		}
		return nil
	})
	if err != nil || rec == nil {
		return 0, err
	}
	v := version(rec)
	l.mu.Lock()
	policyChanged := l.seen[repo] != v
	l.seen[repo] = v
	l.mu.Unlock()
	policy, err := lifecycle.Parse(rec.LifecyclePolicy)
	if err != nil {
		// PutLifecyclePolicy validates; a stored policy this Berth cannot
		// read came from elsewhere (an older or newer version).
		if policyChanged {
			l.log.Warn("lifecycle policy is not valid; not applying it", "repository", repo, "err", err)
		}
		return 0, nil
	}
	now := l.Now()
	expired := 0
	if len(policy.Evaluate(lifecycleImages(images), now)) > 0 {
		// The snapshot above only says there is work. The images are
		// evaluated again in the transaction that deletes them: an image
		// tagged, pushed again or referenced by an index since the snapshot
		// may no longer be expired, and a deletion meanwhile may have
		// lowered a count below a rule's countNumber.
		rules := map[string]lifecycle.Rule{}
		deleted, err := l.Images.ExpireImages(ctx, repo, func(cur *state.Repository, imgs []*state.Image) []string {
			clear(rules)
			if version(cur) != v {
				return nil // the policy changed: the pass its change wakes applies it
			}
			var out []string
			for _, e := range policy.Evaluate(lifecycleImages(imgs), now) {
				rules[e.Digest] = e.Rule
				out = append(out, e.Digest)
			}
			return out
		})
		if errors.Is(err, errdefs.ErrNotFound) {
			return 0, nil // the repository is gone
		}
		if err != nil {
			return 0, err
		}
		for _, img := range deleted {
			l.log.Info("image expired", "repository", repo, "digest", img.Digest, "tags", img.Tags, "rule_priority", rules[img.Digest].Priority)
		}
		expired = len(deleted)
	}
	if policyChanged || expired > 0 || rec.LifecycleEvaluatedAt == nil || now.Sub(rec.LifecycleEvaluatedAt.Time) >= evaluatedEvery {
		if err := l.recordEvaluation(ctx, repo, v, now); err != nil {
			return expired, err
		}
	}
	return expired, nil
}

// lifecycleImages is what policy evaluation needs of images.
func lifecycleImages(imgs []*state.Image) []lifecycle.Image {
	out := make([]lifecycle.Image, 0, len(imgs))
	for _, img := range imgs {
		out = append(out, lifecycle.Image{Digest: img.Digest, Tags: img.Tags, PushedAt: img.PushedAt.Time, Manifests: img.Manifests})
	}
	return out
}

// recordEvaluation sets the repository's lastEvaluatedAt, if it still holds
// the policy version v.
func (l *Lifecycle) recordEvaluation(ctx context.Context, repo, v string, now time.Time) error {
	_, err := l.Store.Update(ctx, func(tx store.Tx) error {
		rec, ok, err := state.Get[state.Repository](tx, state.RepositoryKey(repo))
		if err != nil || !ok || version(rec) != v {
			return err
		}
		rec.LifecycleEvaluatedAt = awsmodel.NewTime(now)
		return state.Put(tx, state.RepositoryKey(repo), rec)
	})
	return err
}
