package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/awsmodel"
	"github.com/berthdev/berth/internal/awsmodel/ecrtypes"
	"github.com/berthdev/berth/internal/errdefs"
	"github.com/berthdev/berth/internal/state"
	"github.com/berthdev/berth/internal/store"
)

// pullRecordInterval is how often an image's LastPulledAt is updated (ECR
// records pulls at most hourly).
const pullRecordInterval = time.Hour

// validTag reports whether tag matches [A-Za-z0-9_][A-Za-z0-9._-]{0,127}.
func validTag(tag string) bool {
	if len(tag) == 0 || len(tag) > 128 || tag[0] == '.' || tag[0] == '-' {
		return false
	}
	for i := 0; i < len(tag); i++ {
		c := tag[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// isDigestRef reports whether reference is meant as a digest rather than a
// tag (tags cannot contain ':').
func isDigestRef(reference string) bool { return strings.Contains(reference, ":") }

func (r *Registry) errImageNotFound(repo, digest, tag string) error {
	q := func(s string) string {
		if s == "" {
			return "null"
		}
		return "'" + s + "'"
	}
	return &Error{
		Message: fmt.Sprintf("The image with imageId {imageDigest:%s, imageTag:%s} does not exist within the repository with name '%s' in the registry with id '%s'",
			q(digest), q(tag), repo, r.cfg.Account),
		Digest: digest, class: ErrImageNotFound,
	}
}

func errTagImmutable(repo, tag string) error {
	return errorf(ErrTagImmutable, "The image tag '%s' already exists in the '%s' repository and cannot be overwritten because the repository is immutable.", tag, repo)
}

// tagImmutable reports whether rec's tag mutability setting forbids moving
// tag.
func tagImmutable(rec *state.Repository, tag string) bool {
	excluded := false
	for _, f := range rec.ImageTagMutabilityExclusionFilters {
		if (f.FilterType == "" || f.FilterType == ecrtypes.ImageTagMutabilityExclusionFilterTypeWildcard) && wildcardMatch(f.Filter, tag) {
			excluded = true
			break
		}
	}
	switch rec.ImageTagMutability {
	case ecrtypes.ImageTagMutabilityImmutable:
		return true
	case ecrtypes.ImageTagMutabilityImmutableWithExclusion:
		return !excluded
	case ecrtypes.ImageTagMutabilityMutableWithExclusion:
		return excluded
	}
	return false
}

// wildcardMatch matches s against pattern, in which '*' stands for any
// run of characters and every other character for itself.
func wildcardMatch(pattern, s string) bool {
	// Greedy matching with backtracking to the last '*': linear in practice.
	p, i, star, mark := 0, 0, -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case p < len(pattern) && pattern[p] == s[i]:
			p++
			i++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// PutManifest stores manifest in repo as an image and points reference at
// it. reference is a tag, the manifest's digest, or "" (untagged);
// mediaType "" means the manifest's own mediaType field. It fails with
// ErrRepositoryNotFound, ErrManifestInvalid (not a schema 2 / OCI manifest
// or index, or larger than MaxManifestSize), ErrManifestBlobUnknown (a
// config or layer not readable in repo, or an index child that is not an
// image of repo), ErrDigestMismatch (a digest reference that is not the
// manifest's), ErrTagInvalid, or ErrTagImmutable (the repository's tag
// mutability forbids moving the tag). Pushing an image again adds the tag
// and keeps the rest of its record.
func (r *Registry) PutManifest(ctx context.Context, repo, reference, mediaType string, manifest []byte) (*state.Image, error) {
	if len(manifest) > MaxManifestSize {
		return nil, errorf(ErrManifestInvalid, "the manifest is %d bytes; the limit is %d", len(manifest), MaxManifestSize)
	}
	// A parse error is reported after the repository's existence.
	pm, perr := parseManifest(mediaType, manifest)
	digest := Digest(manifest)
	tag := ""
	switch {
	case reference == "":
	case isDigestRef(reference):
		if err := checkDigest(reference); err != nil {
			return nil, err
		}
		if reference != digest {
			return nil, errDigestMismatch(digest, reference)
		}
	case !validTag(reference):
		return nil, errorf(ErrTagInvalid, "Invalid parameter at 'imageTag' failed to satisfy constraint: 'must match [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}'")
	default:
		tag = reference
	}

	r.gcMu.RLock()
	defer r.gcMu.RUnlock()
	// Check first, so a rejected manifest writes no file; the transaction
	// checks again.
	if err := r.store.View(ctx, func(tx store.ReadTx) error {
		if perr != nil {
			if err := r.requireRepo(tx, repo); err != nil {
				return err
			}
			return perr
		}
		_, err := r.checkPut(tx, repo, tag, digest, pm)
		return err
	}); err != nil {
		return nil, err
	}
	if _, err := os.Stat(r.blobPath(digest)); err != nil {
		// An existing blob file is complete (files are renamed into place
		// only after they are synced), and holding gcMu keeps it.
		if _, err := r.ingest(bytes.NewReader(manifest), digest, 0); err != nil {
			return nil, err
		}
	}
	now := awsmodel.Time{Time: r.cfg.Now()}
	var img *state.Image
	if _, err := r.store.Update(ctx, func(tx store.Tx) error {
		img = nil
		size, err := r.checkPut(tx, repo, tag, digest, pm)
		if err != nil {
			return err
		}
		key := state.ImageKey(repo, digest)
		old, ok, err := state.Get[state.Image](tx, key)
		if err != nil {
			return err
		}
		img = &state.Image{
			Repository: repo, Digest: digest, MediaType: pm.mediaType, ArtifactType: pm.artifactType,
			ManifestSize: int64(len(manifest)), Size: size, Blobs: pm.blobs, Manifests: pm.children,
			Subject: pm.subject, Annotations: pm.annotations, PushedAt: now,
		}
		if ok {
			img.Tags, img.PushedAt, img.LastPulledAt = old.Tags, old.PushedAt, old.LastPulledAt
		}
		if tag != "" {
			if err := moveTag(tx, repo, tag, digest); err != nil {
				return err
			}
			if _, found := slices.BinarySearch(img.Tags, tag); !found {
				img.Tags = append(img.Tags, tag)
				slices.Sort(img.Tags)
			}
		}
		if err := state.Put(tx, key, img); err != nil {
			return err
		}
		if err := state.PutBlobRefs(tx, img); err != nil {
			return err
		}
		if pm.subject != "" {
			return tx.Put(state.ReferrerKey(repo, pm.subject, digest), nil)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	r.log.Info("pushed manifest", "repo", repo, "tag", tag, "digest", digest, "media_type", pm.mediaType)
	return img, nil
}

// checkPut checks what PutManifest needs of the store and returns the
// image's size (the sum of its layers', or of its children's for an index).
func (r *Registry) checkPut(tx store.ReadTx, repo, tag, digest string, pm *parsedManifest) (int64, error) {
	kv, ok, err := tx.Get(state.RepositoryKey(repo))
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, r.errRepoNotFound(repo)
	}
	rec, err := state.Decode[state.Repository](kv)
	if err != nil {
		return 0, err
	}
	if tag != "" {
		cur, ok, err := tx.Get(state.ImageTagKey(repo, tag))
		if err != nil {
			return 0, err
		}
		if ok && string(cur.Value) != digest && tagImmutable(rec, tag) {
			return 0, errTagImmutable(repo, tag)
		}
	}
	b, err := r.unreadable(tx, repo, pm.blobs)
	if err != nil {
		return 0, err
	}
	if b != "" {
		return 0, &Error{Message: fmt.Sprintf("The manifest references blob %s, which does not exist in the repository with name '%s'", b, repo), Digest: b, class: ErrManifestBlobUnknown}
	}
	size := pm.layerSize
	for _, c := range pm.children {
		child, ok, err := state.Get[state.Image](tx, state.ImageKey(repo, c))
		if err != nil {
			return 0, err
		}
		if !ok {
			return 0, &Error{Message: fmt.Sprintf("The index references manifest %s, which does not exist in the repository with name '%s'", c, repo), Digest: c, class: ErrManifestBlobUnknown}
		}
		size += child.Size
	}
	return size, nil
}

// moveTag points tag at digest, removing it from the image it named before.
func moveTag(tx store.Tx, repo, tag, digest string) error {
	key := state.ImageTagKey(repo, tag)
	cur, ok, err := tx.Get(key)
	if err != nil {
		return err
	}
	if ok && string(cur.Value) == digest {
		return nil
	}
	if ok {
		if err := removeTagFrom(tx, repo, string(cur.Value), tag); err != nil {
			return err
		}
	}
	return tx.Put(key, []byte(digest))
}

// removeTagFrom removes tag from the Tags of image digest, if it exists,
// and returns nothing else; the tag key is the caller's.
func removeTagFrom(tx store.Tx, repo, digest, tag string) error {
	key := state.ImageKey(repo, digest)
	img, ok, err := state.Get[state.Image](tx, key)
	if err != nil || !ok {
		return err
	}
	img.Tags = slices.DeleteFunc(img.Tags, func(t string) bool { return t == tag })
	return state.Put(tx, key, img)
}

// Manifest returns the image reference (a tag or a digest) names in repo
// and its manifest bytes. A pull is recorded in LastPulledAt at most once
// an hour. It fails with ErrRepositoryNotFound or ErrImageNotFound.
func (r *Registry) Manifest(ctx context.Context, repo, reference string) (*state.Image, []byte, error) {
	return r.manifest(ctx, repo, reference, true)
}

func (r *Registry) manifest(ctx context.Context, repo, reference string, recordPull bool) (*state.Image, []byte, error) {
	var img *state.Image
	if err := r.store.View(ctx, func(tx store.ReadTx) error {
		var err error
		img, err = r.resolve(tx, repo, reference)
		return err
	}); err != nil {
		return nil, nil, err
	}
	if r.testHookManifestResolved != nil {
		r.testHookManifestResolved()
	}
	b, err := os.ReadFile(r.blobPath(img.Digest))
	if os.IsNotExist(err) {
		// The image may have been deleted, and its file collected, since
		// its record was read: that is a miss, not a server error.
		err = r.manifestGone(ctx, repo, reference, img.Digest, err)
	}
	if err != nil {
		return nil, nil, err
	}
	now := r.cfg.Now()
	if recordPull && (img.LastPulledAt == nil || now.Sub(img.LastPulledAt.Time) >= pullRecordInterval) {
		pulled := awsmodel.NewTime(now)
		img.LastPulledAt = pulled
		if _, err := r.store.Update(ctx, func(tx store.Tx) error {
			key := state.ImageKey(repo, img.Digest)
			cur, ok, err := state.Get[state.Image](tx, key)
			if err != nil || !ok {
				return err
			}
			if cur.LastPulledAt != nil && now.Sub(cur.LastPulledAt.Time) < pullRecordInterval {
				return nil
			}
			cur.LastPulledAt = pulled
			return state.Put(tx, key, cur)
		}); err != nil {
			r.log.Warn("recording a pull failed", "repo", repo, "digest", img.Digest, "err", err)
		}
	}
	return img, b, nil
}

// manifestGone is the error for the manifest file of image digest of repo
// (which reference named) found missing (readErr): ErrImageNotFound if the
// image is gone, else readErr, since a stored image must have its file.
func (r *Registry) manifestGone(ctx context.Context, repo, reference, digest string, readErr error) error {
	err := r.store.View(ctx, func(tx store.ReadTx) error {
		_, ok, err := tx.Get(state.ImageKey(repo, digest))
		if err == nil && !ok {
			// Named as resolve names a miss.
			if isDigestRef(reference) {
				err = r.errImageNotFound(repo, digest, "")
			} else {
				err = r.errImageNotFound(repo, "", reference)
			}
		}
		return err
	})
	if err != nil {
		return err
	}
	return fmt.Errorf("manifest %s of repository %q: %w", digest, repo, readErr)
}

// resolve reads the image reference names in repo.
func (r *Registry) resolve(tx store.ReadTx, repo, reference string) (*state.Image, error) {
	if err := r.requireRepo(tx, repo); err != nil {
		return nil, err
	}
	digest, tag := reference, ""
	if !isDigestRef(reference) {
		digest, tag = "", reference
		if !validTag(tag) {
			return nil, r.errImageNotFound(repo, "", tag)
		}
		kv, ok, err := tx.Get(state.ImageTagKey(repo, tag))
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, r.errImageNotFound(repo, "", tag)
		}
		digest = string(kv.Value)
	} else if err := checkDigest(digest); err != nil {
		return nil, err
	}
	img, ok, err := state.Get[state.Image](tx, state.ImageKey(repo, digest))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, r.errImageNotFound(repo, digest, tag)
	}
	return img, nil
}

// DeleteImage deletes image digest of repo with its tags and its referrers
// index entry. Its blobs stay until GC finds them unreferenced. It fails
// with ErrRepositoryNotFound or ErrImageNotFound.
func (r *Registry) DeleteImage(ctx context.Context, repo, digest string) error {
	if err := checkDigest(digest); err != nil {
		return err
	}
	_, err := r.store.Update(ctx, func(tx store.Tx) error {
		if err := r.requireRepo(tx, repo); err != nil {
			return err
		}
		img, ok, err := state.Get[state.Image](tx, state.ImageKey(repo, digest))
		if err != nil {
			return err
		}
		if !ok {
			return r.errImageNotFound(repo, digest, "")
		}
		return deleteImage(tx, img)
	})
	if err == nil {
		r.log.Info("deleted image", "repo", repo, "digest", digest)
	}
	return err
}

// ExpireImages deletes, in one transaction, the images of repo that choose
// picks (by digest) given the repository record and every image of repo as
// that transaction reads them, and returns the images it deleted. A caller
// that evaluated a policy on an earlier snapshot evaluates it again in
// choose, so that a push, tag move or policy change that landed meanwhile
// is taken into account: nothing is deleted that is not expired when it
// goes. choose may run more than once (the store may retry the
// transaction) and must have no side effects. It fails with
// ErrRepositoryNotFound.
func (r *Registry) ExpireImages(ctx context.Context, repo string, choose func(rec *state.Repository, images []*state.Image) []string) ([]*state.Image, error) {
	var deleted []*state.Image
	if _, err := r.store.Update(ctx, func(tx store.Tx) error {
		deleted = nil
		rec, ok, err := state.Get[state.Repository](tx, state.RepositoryKey(repo))
		if err != nil {
			return err
		}
		if !ok {
			return r.errRepoNotFound(repo)
		}
		kvs, err := tx.List(state.ImagesRepoPrefix(repo), "", 0)
		if err != nil {
			return err
		}
		images := make([]*state.Image, 0, len(kvs))
		byDigest := make(map[string]*state.Image, len(kvs))
		for _, kv := range kvs {
			img, err := state.Decode[state.Image](kv)
			if err != nil {
				return err
			}
			images = append(images, img)
			byDigest[img.Digest] = img
		}
		for _, d := range choose(rec, images) {
			img := byDigest[d]
			if img == nil {
				continue
			}
			delete(byDigest, d)
			if err := deleteImage(tx, img); err != nil {
				return err
			}
			deleted = append(deleted, img)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	for _, img := range deleted {
		r.log.Info("deleted image", "repo", repo, "digest", img.Digest)
	}
	return deleted, nil
}

// DeleteUntagged deletes image digest of repo if no tag names it, and
// reports whether it did: what ECR does when an image loses its last tag,
// decided in the transaction that deletes, so that a tag pushed since the
// caller removed the last one keeps the image. It fails with
// ErrRepositoryNotFound or ErrImageNotFound.
func (r *Registry) DeleteUntagged(ctx context.Context, repo, digest string) (bool, error) {
	if err := checkDigest(digest); err != nil {
		return false, err
	}
	deleted := false
	if _, err := r.store.Update(ctx, func(tx store.Tx) error {
		deleted = false
		if err := r.requireRepo(tx, repo); err != nil {
			return err
		}
		img, ok, err := state.Get[state.Image](tx, state.ImageKey(repo, digest))
		if err != nil {
			return err
		}
		if !ok {
			return r.errImageNotFound(repo, digest, "")
		}
		if len(img.Tags) > 0 {
			return nil
		}
		deleted = true
		return deleteImage(tx, img)
	}); err != nil {
		return false, err
	}
	if deleted {
		r.log.Info("deleted image", "repo", repo, "digest", digest)
	}
	return deleted, nil
}

func deleteImage(tx store.Tx, img *state.Image) error {
	for _, t := range img.Tags {
		key := state.ImageTagKey(img.Repository, t)
		cur, ok, err := tx.Get(key)
		if err != nil {
			return err
		}
		if ok && string(cur.Value) == img.Digest {
			if err := tx.Delete(key); err != nil {
				return err
			}
		}
	}
	if img.Subject != "" {
		if err := deleteIfExists(tx, state.ReferrerKey(img.Repository, img.Subject, img.Digest)); err != nil {
			return err
		}
	}
	if err := state.DeleteBlobRefs(tx, img); err != nil {
		return err
	}
	return tx.Delete(state.ImageKey(img.Repository, img.Digest))
}

func deleteIfExists(tx store.Tx, key string) error {
	if err := tx.Delete(key); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		return err
	}
	return nil
}

// Untag removes tag from repo and returns the image it named, as it is
// after (the image stays, possibly untagged). It fails with
// ErrRepositoryNotFound or ErrImageNotFound.
func (r *Registry) Untag(ctx context.Context, repo, tag string) (*state.Image, error) {
	var img *state.Image
	_, err := r.store.Update(ctx, func(tx store.Tx) error {
		var err error
		img, err = r.resolve(tx, repo, tag)
		if err != nil {
			return err
		}
		if isDigestRef(tag) {
			return r.errImageNotFound(repo, "", tag)
		}
		img.Tags = slices.DeleteFunc(img.Tags, func(t string) bool { return t == tag })
		if err := state.Put(tx, state.ImageKey(repo, img.Digest), img); err != nil {
			return err
		}
		return tx.Delete(state.ImageTagKey(repo, tag))
	})
	if err != nil {
		return nil, err
	}
	return img, nil
}

// PurgeRepository deletes, inside tx, every image, tag, layer link,
// referrers and blob-refs index entry and upload record of repo: what
// DeleteRepository with force removes besides the Repository record itself
// (the caller's). Blob files stay until GC finds them unreferenced.
func PurgeRepository(tx store.Tx, repo string) error {
	for _, prefix := range []string{
		state.ImagesRepoPrefix(repo), state.ImageTagsRepoPrefix(repo),
		state.LayersRepoPrefix(repo), state.ReferrersRepoPrefix(repo),
		state.BlobRefsRepoPrefix(repo),
	} {
		kvs, err := tx.List(prefix, "", 0)
		if err != nil {
			return err
		}
		for _, kv := range kvs {
			if err := tx.Delete(kv.Key); err != nil {
				return err
			}
		}
	}
	ups, err := tx.List(state.UploadsPrefix, "", 0)
	if err != nil {
		return err
	}
	for _, kv := range ups {
		u, err := state.Decode[state.Upload](kv)
		if err != nil {
			return err
		}
		if u.Repository == repo {
			if err := tx.Delete(kv.Key); err != nil {
				return err
			}
		}
	}
	return nil
}
