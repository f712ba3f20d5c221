package registry

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"sync"

	"github.com/berthdev/berth/internal/awsmodel"
	"github.com/berthdev/berth/internal/errdefs"
	"github.com/berthdev/berth/internal/state"
	"github.com/berthdev/berth/internal/store"
)

// upload is the in-memory state of an upload in progress: the sha256 of
// the bytes received so far, so completing it does not re-read the file.
// After a restart it is rebuilt by hashing the file once.
type upload struct {
	mu   sync.Mutex
	id   string
	repo string
	// h is nil until the upload has been loaded from its record and file.
	h    hash.Hash
	size int64
	// gone is set once the upload is completed or cancelled, for callers
	// that were waiting on mu.
	gone bool
}

// newUploadID returns a random UUID (version 4), the form ECR's upload ids
// take.
func newUploadID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// validUploadID reports whether id has the form newUploadID makes, so it
// is safe as a file name.
func validUploadID(id string) bool {
	if len(id) != 36 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return false
			}
		case (c < '0' || c > '9') && (c < 'a' || c > 'f'):
			return false
		}
	}
	return true
}

func errUploadNotFound(id string) error {
	return errorf(ErrUploadNotFound, "The upload with id '%s' does not exist", id)
}

// StartUpload begins a blob upload into repo and returns its id.
func (r *Registry) StartUpload(ctx context.Context, repo string) (string, error) {
	id := newUploadID()
	rec := state.Upload{ID: id, Repository: repo, StartedAt: awsmodel.Time{Time: r.cfg.Now()}}
	if _, err := r.store.Update(ctx, func(tx store.Tx) error {
		if err := r.requireRepo(tx, repo); err != nil {
			return err
		}
		return state.Create(tx, state.UploadKey(id), rec)
	}); err != nil {
		return "", err
	}
	// The record comes first: a crash before the file exists leaves an
	// upload whose file is treated as empty; the reverse would leave a file
	// nothing names until GC.
	f, err := os.OpenFile(r.uploadPath(id), os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return "", fmt.Errorf("upload %s: %w", id, err)
	}
	f.Close()
	now := r.cfg.Now()
	os.Chtimes(r.uploadPath(id), now, now) // GC ages idle uploads by it
	u := &upload{id: id, repo: repo, h: sha256.New()}
	r.uploadsMu.Lock()
	r.uploads[id] = u
	r.uploadsMu.Unlock()
	return id, nil
}

// lockUpload returns the upload id of repo, loaded and locked; the caller
// unlocks u.mu.
func (r *Registry) lockUpload(ctx context.Context, repo, id string) (*upload, error) {
	if !validUploadID(id) {
		return nil, errUploadNotFound(id)
	}
	r.uploadsMu.Lock()
	u := r.uploads[id]
	if u == nil {
		u = &upload{id: id}
		r.uploads[id] = u
	}
	r.uploadsMu.Unlock()
	u.mu.Lock()
	if u.gone {
		u.mu.Unlock()
		return nil, errUploadNotFound(id)
	}
	if u.h == nil {
		if err := r.loadUpload(ctx, u); err != nil {
			if errors.Is(err, ErrUploadNotFound) {
				u.gone = true
				r.forgetUpload(u)
			}
			u.mu.Unlock()
			return nil, err
		}
	}
	if u.repo != repo {
		u.mu.Unlock()
		return nil, errUploadNotFound(id)
	}
	return u, nil
}

// loadUpload reads u's record and rebuilds its hash from its file (after a
// restart, or the first time this process sees the upload).
func (r *Registry) loadUpload(ctx context.Context, u *upload) error {
	var rec *state.Upload
	if err := r.store.View(ctx, func(tx store.ReadTx) error {
		var ok bool
		var err error
		rec, ok, err = state.Get[state.Upload](tx, state.UploadKey(u.id))
		if err == nil && !ok {
			err = errUploadNotFound(u.id)
		}
		return err
	}); err != nil {
		return err
	}
	h := sha256.New()
	var size int64
	f, err := os.Open(r.uploadPath(u.id))
	switch {
	case os.IsNotExist(err):
	case err != nil:
		return fmt.Errorf("upload %s: %w", u.id, err)
	default:
		size, err = copyHashed(io.Discard, h, f)
		f.Close()
		if err != nil {
			return fmt.Errorf("upload %s: %w", u.id, err)
		}
	}
	u.repo, u.h, u.size = rec.Repository, h, size
	return nil
}

// forgetUpload drops u from the in-memory table.
func (r *Registry) forgetUpload(u *upload) {
	r.uploadsMu.Lock()
	if r.uploads[u.id] == u {
		delete(r.uploads, u.id)
	}
	r.uploadsMu.Unlock()
}

// UploadPart appends body to the upload id of repo. offset must equal the
// upload's current size (else ErrRangeInvalid); a negative offset appends
// at the end. It returns the upload's new total size. If reading body
// fails midway, the upload is left as it was before the call.
func (r *Registry) UploadPart(ctx context.Context, repo, id string, offset int64, body io.Reader) (int64, error) {
	u, err := r.lockUpload(ctx, repo, id)
	if err != nil {
		return 0, err
	}
	defer u.mu.Unlock()
	if offset >= 0 && offset != u.size {
		return u.size, errorf(ErrRangeInvalid, "The part starts at byte %d but the upload '%s' holds %d bytes", offset, id, u.size)
	}
	// Save the hash so a failed part can be rolled back: the file is
	// truncated back and the hash restored, and a retry of the same part
	// is then in order.
	saved, err := u.h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return u.size, fmt.Errorf("upload %s: %w", id, err)
	}
	f, err := os.OpenFile(r.uploadPath(id), os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return u.size, fmt.Errorf("upload %s: %w", id, err)
	}
	defer f.Close()
	n, err := copyHashed(io.NewOffsetWriter(f, u.size), u.h, body)
	if err != nil {
		terr := f.Truncate(u.size)
		uerr := u.h.(encoding.BinaryUnmarshaler).UnmarshalBinary(saved)
		if terr != nil || uerr != nil {
			// Rebuild from the file on the next access.
			u.h = nil
			r.forgetUpload(u)
			u.gone = true
		}
		return u.size, fmt.Errorf("upload %s: receiving a part: %w", id, err)
	}
	u.size += n
	now := r.cfg.Now()
	os.Chtimes(r.uploadPath(id), now, now) // GC ages idle uploads by it
	r.metrics.pushed(n)
	return u.size, nil
}

// UploadSize is the number of bytes the upload id of repo holds.
func (r *Registry) UploadSize(ctx context.Context, repo, id string) (int64, error) {
	u, err := r.lockUpload(ctx, repo, id)
	if err != nil {
		return 0, err
	}
	defer u.mu.Unlock()
	return u.size, nil
}

// CompleteUpload ends the upload id of repo: its bytes must have digest
// (else ErrDigestMismatch, and the upload is discarded, as distribution
// does); they become the blob digest, linked into repo. It returns the
// blob's size.
func (r *Registry) CompleteUpload(ctx context.Context, repo, id, digest string) (int64, error) {
	if err := checkDigest(digest); err != nil {
		return 0, err
	}
	u, err := r.lockUpload(ctx, repo, id)
	if err != nil {
		return 0, err
	}
	defer u.mu.Unlock()
	if got := digestOf(u.h); got != digest {
		if err := r.dropUpload(ctx, u); err != nil {
			r.log.Warn("discarding upload failed", "repo", repo, "upload_id", id, "err", err)
		}
		return 0, errDigestMismatch(got, digest)
	}
	r.gcMu.RLock()
	defer r.gcMu.RUnlock()
	path := r.uploadPath(id)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDONLY, 0o644)
	if err != nil {
		return 0, fmt.Errorf("upload %s: %w", id, err)
	}
	err = r.placeBlob(f, path, digest)
	f.Close()
	if err != nil {
		return 0, err
	}
	size := u.size
	if _, err := r.store.Update(ctx, func(tx store.Tx) error {
		if err := r.requireRepo(tx, repo); err != nil {
			return err
		}
		if err := tx.Delete(state.UploadKey(id)); err != nil {
			if errors.Is(err, errdefs.ErrNotFound) {
				return errUploadNotFound(id)
			}
			return err
		}
		return r.putLink(tx, repo, digest, size)
	}); err != nil {
		// The file is now an unreferenced blob (GC removes it) and the
		// upload is over either way.
		u.gone = true
		r.forgetUpload(u)
		return 0, err
	}
	u.gone = true
	r.forgetUpload(u)
	r.log.Debug("blob uploaded", "repo", repo, "digest", digest, "size", size)
	return size, nil
}

// putLink links blob digest into repo, (re)starting its grace period.
func (r *Registry) putLink(tx store.Tx, repo, digest string, size int64) error {
	return state.Put(tx, state.LayerKey(repo, digest), state.Layer{
		Digest: digest, Size: size, LinkedAt: awsmodel.Time{Time: r.cfg.Now()},
	})
}

// CancelUpload discards the upload id of repo.
func (r *Registry) CancelUpload(ctx context.Context, repo, id string) error {
	u, err := r.lockUpload(ctx, repo, id)
	if err != nil {
		return err
	}
	defer u.mu.Unlock()
	return r.dropUpload(ctx, u)
}

// dropUpload deletes the locked upload u: record, file, memory.
func (r *Registry) dropUpload(ctx context.Context, u *upload) error {
	if _, err := r.store.Update(ctx, func(tx store.Tx) error {
		err := tx.Delete(state.UploadKey(u.id))
		if errors.Is(err, errdefs.ErrNotFound) {
			return nil
		}
		return err
	}); err != nil {
		return err
	}
	u.gone = true
	r.forgetUpload(u)
	if err := os.Remove(r.uploadPath(u.id)); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("upload %s: %w", u.id, err)
	}
	return nil
}

// Mount links blob digest, readable in repository from, into repo (a
// cross-repository mount) and returns its size. It fails with
// ErrBlobNotFound when the blob is not readable in from.
func (r *Registry) Mount(ctx context.Context, repo, from, digest string) (int64, error) {
	if err := checkDigest(digest); err != nil {
		return 0, err
	}
	r.gcMu.RLock()
	defer r.gcMu.RUnlock()
	size, err := r.blobFileSize(digest)
	if err != nil {
		return 0, err
	}
	if _, err := r.store.Update(ctx, func(tx store.Tx) error {
		if err := r.requireRepo(tx, repo); err != nil {
			return err
		}
		ok, err := r.readable(tx, from, digest)
		if err != nil {
			return err
		}
		if !ok {
			return errBlobNotFound(from, digest)
		}
		return r.putLink(tx, repo, digest, size)
	}); err != nil {
		return 0, err
	}
	return size, nil
}

// putBlob stores body, which must have digest, as a blob linked into repo
// in one step (a monolithic upload), and returns its size.
func (r *Registry) putBlob(ctx context.Context, repo, digest string, body io.Reader) (int64, error) {
	if err := checkDigest(digest); err != nil {
		return 0, err
	}
	if err := r.store.View(ctx, func(tx store.ReadTx) error { return r.requireRepo(tx, repo) }); err != nil {
		return 0, err
	}
	r.gcMu.RLock()
	defer r.gcMu.RUnlock()
	size, err := r.ingest(body, digest, 0)
	if err != nil {
		return 0, err
	}
	r.metrics.pushed(size)
	if _, err := r.store.Update(ctx, func(tx store.Tx) error {
		if err := r.requireRepo(tx, repo); err != nil {
			return err
		}
		return r.putLink(tx, repo, digest, size)
	}); err != nil {
		return 0, err
	}
	return size, nil
}

func errBlobNotFound(repo, digest string) error {
	return &Error{Message: fmt.Sprintf("The layer with digest '%s' does not exist in the repository with name '%s'", digest, repo), Digest: digest, class: ErrBlobNotFound}
}

// Blob returns the size of blob digest if it is readable in repo: linked
// there, or the manifest or a blob of one of its images. Otherwise it
// fails with ErrBlobNotFound (or ErrRepositoryNotFound).
func (r *Registry) Blob(ctx context.Context, repo, digest string) (int64, error) {
	if err := checkDigest(digest); err != nil {
		return 0, err
	}
	if err := r.store.View(ctx, func(tx store.ReadTx) error {
		if err := r.requireRepo(tx, repo); err != nil {
			return err
		}
		ok, err := r.readable(tx, repo, digest)
		if err == nil && !ok {
			err = errBlobNotFound(repo, digest)
		}
		return err
	}); err != nil {
		return 0, err
	}
	size, err := r.blobFileSize(digest)
	if errors.Is(err, ErrBlobNotFound) {
		return 0, errBlobNotFound(repo, digest)
	}
	return size, err
}

// requireRepo fails with ErrRepositoryNotFound unless repo exists.
func (r *Registry) requireRepo(tx store.ReadTx, repo string) error {
	_, ok, err := tx.Get(state.RepositoryKey(repo))
	if err != nil {
		return err
	}
	if !ok {
		return r.errRepoNotFound(repo)
	}
	return nil
}

// readable reports whether blob digest may be read through repo: it is
// linked there, is the manifest of one of its images, or a blob one of its
// images references (which a DELETE of the link does not hide).
func (r *Registry) readable(tx store.ReadTx, repo, digest string) (bool, error) {
	missing, err := r.unreadable(tx, repo, []string{digest})
	return missing == "" && err == nil, err
}

// unreadable returns the first of digests that is not readable in repo, or
// "" when all are. Each distinct digest costs at most three point reads
// (its link, an image with its digest, one blob-refs index entry), however
// many images the repository holds: `docker push` HEADs every layer it is
// about to push, and PutManifest checks inside its write transaction a
// manifest that may list the same layer thousands of times.
func (r *Registry) unreadable(tx store.ReadTx, repo string, digests []string) (string, error) {
	seen := make(map[string]bool, len(digests))
	for _, digest := range digests {
		if seen[digest] {
			continue
		}
		seen[digest] = true
		ok, err := r.readableOne(tx, repo, digest)
		if err != nil {
			return "", err
		}
		if !ok {
			return digest, nil
		}
	}
	return "", nil
}

// readableOne is readable for one digest, without the wrapping.
func (r *Registry) readableOne(tx store.ReadTx, repo, digest string) (bool, error) {
	for _, key := range []string{state.LayerKey(repo, digest), state.ImageKey(repo, digest)} {
		_, ok, err := tx.Get(key)
		if err != nil || ok {
			return ok, err
		}
	}
	return state.BlobReferenced(tx, repo, digest)
}
