package registry

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/errdefs"
	"github.com/berthdev/berth/internal/state"
	"github.com/berthdev/berth/internal/store"
)

// GCResult reports what one garbage collection removed.
type GCResult struct {
	// BlobsDeleted is the number of blob files deleted, BytesFreed their
	// total size.
	BlobsDeleted int
	BytesFreed   int64
	// LinksDropped is the number of layer links dropped: older than the
	// grace period and referenced by no image of their repository.
	LinksDropped int
	// UploadsDeleted is the number of abandoned uploads deleted (records
	// and files), and of upload files no record named.
	UploadsDeleted int
}

// uploadTTL is how long an upload may stay idle (no part received) before
// GC deletes it: a day, or the grace period if that is longer.
func (r *Registry) uploadTTL() time.Duration { return max(24*time.Hour, r.cfg.GCGrace) }

// GC collects garbage, mark and sweep:
//
//   - an upload idle for uploadTTL is deleted, and so is an upload file
//     older than GCGrace that no record names;
//   - a layer link older than GCGrace that no image of its repository
//     references is dropped;
//   - a blob file older than GCGrace is deleted when no image (its manifest
//     or the blobs it references) and no remaining layer link in any
//     repository names it.
//
// Ages are by the registry's clock: every file is stamped with it when
// written. Files younger than GCGrace are never deleted, which covers a
// crash between a rename and the record naming the file, and a push that
// uploads its layers before its manifest.
func (r *Registry) GC(ctx context.Context) (GCResult, error) {
	var res GCResult
	if err := r.collectUploads(ctx, &res); err != nil {
		return res, err
	}
	// Candidates are listed without the lock; a file placed or replaced
	// after this is either not a candidate or is re-checked below.
	cands, err := r.oldBlobs()
	if err != nil {
		return res, err
	}
	if r.testHookGCListed != nil {
		r.testHookGCListed()
	}

	r.gcMu.Lock()
	defer r.gcMu.Unlock()
	// With gcMu held no path can add a reference, so this snapshot holds
	// until the sweep ends; deletions that happen meanwhile only leave a
	// blob for the next run.
	marked, stale, err := r.mark(ctx)
	if err != nil {
		return res, err
	}
	if len(stale) > 0 {
		cutoff := r.cfg.Now().Add(-r.cfg.GCGrace)
		if _, err := r.store.Update(ctx, func(tx store.Tx) error {
			res.LinksDropped = 0
			for _, key := range stale {
				l, ok, err := state.Get[state.Layer](tx, key)
				if err != nil {
					return err
				}
				if !ok || !l.LinkedAt.Before(cutoff) {
					continue
				}
				if err := tx.Delete(key); err != nil {
					return err
				}
				res.LinksDropped++
			}
			return nil
		}); err != nil {
			return res, err
		}
	}
	for _, digest := range cands {
		if marked[digest] {
			continue
		}
		path := r.blobPath(digest)
		fi, err := os.Stat(path)
		if err != nil || r.fileAge(fi) < r.cfg.GCGrace {
			continue
		}
		if err := os.Remove(path); err != nil {
			if !os.IsNotExist(err) {
				r.log.Warn("deleting a blob failed", "digest", digest, "err", err)
			}
			continue
		}
		res.BlobsDeleted++
		res.BytesFreed += fi.Size()
	}
	r.metrics.collected(res)
	if res != (GCResult{}) {
		r.log.Info("garbage collected", "blobs_deleted", res.BlobsDeleted, "bytes_freed", res.BytesFreed,
			"links_dropped", res.LinksDropped, "uploads_deleted", res.UploadsDeleted)
	}
	return res, nil
}

// oldBlobs lists the digests of the blob files older than GCGrace.
func (r *Registry) oldBlobs() ([]string, error) {
	var out []string
	dirs, err := os.ReadDir(r.blobsDir())
	if err != nil {
		return nil, err
	}
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		files, err := os.ReadDir(filepath.Join(r.blobsDir(), d.Name()))
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			digest := "sha256:" + f.Name()
			if !validDigest(digest) || !strings.HasPrefix(f.Name(), d.Name()) {
				continue
			}
			fi, err := f.Info()
			if err != nil {
				continue // removed meanwhile
			}
			if r.fileAge(fi) >= r.cfg.GCGrace {
				out = append(out, digest)
			}
		}
	}
	return out, nil
}

// imageRefs is the part of an Image record that says what it references.
type imageRefs struct {
	Digest string   `json:"digest"`
	Blobs  []string `json:"blobs"`
}

// mark returns the digests that must stay stored, and the keys of the
// layer links to drop. It reads the Image records themselves rather than
// the blob-refs index (state.BlobRefKey): GC runs rarely and off the
// request path, and deciding what to delete from the records, which are
// the source of truth, keeps a blob from being lost to an index entry that
// should have been there.
func (r *Registry) mark(ctx context.Context) (marked map[string]bool, stale []string, err error) {
	cutoff := r.cfg.Now().Add(-r.cfg.GCGrace)
	marked = make(map[string]bool)
	err = r.store.View(ctx, func(tx store.ReadTx) error {
		marked, stale = make(map[string]bool), nil
		// byRepo holds, per repository, what its images reference.
		byRepo := make(map[string]map[string]bool)
		imgs, err := tx.List(state.ImagesPrefix, "", 0)
		if err != nil {
			return err
		}
		for _, kv := range imgs {
			img, err := state.Decode[imageRefs](kv)
			if err != nil {
				return err
			}
			repo, _ := splitRepoKey(kv.Key, state.ImagesPrefix)
			refs := byRepo[repo]
			if refs == nil {
				refs = make(map[string]bool)
				byRepo[repo] = refs
			}
			marked[img.Digest] = true
			for _, b := range img.Blobs {
				marked[b] = true
				refs[b] = true
			}
		}
		links, err := tx.List(state.LayersPrefix, "", 0)
		if err != nil {
			return err
		}
		for _, kv := range links {
			l, err := state.Decode[state.Layer](kv)
			if err != nil {
				return err
			}
			repo, digest := splitRepoKey(kv.Key, state.LayersPrefix)
			if l.LinkedAt.Before(cutoff) && !byRepo[repo][digest] {
				stale = append(stale, kv.Key)
				continue
			}
			marked[digest] = true
		}
		return nil
	})
	return marked, stale, err
}

// splitRepoKey splits a "<prefix><repo>\x00<digest>" key.
func splitRepoKey(key, prefix string) (repo, digest string) {
	rest := key[len(prefix):]
	i := strings.LastIndexByte(rest, 0)
	if i < 0 {
		return rest, ""
	}
	return rest[:i], rest[i+1:]
}

// uploadActive reports whether upload id, started at started, has had
// activity (its start, or a part received, which stamps its file) within
// uploadTTL of now.
func (r *Registry) uploadActive(id string, started, now time.Time) bool {
	last := started
	if fi, err := os.Stat(r.uploadPath(id)); err == nil && fi.ModTime().After(last) {
		last = fi.ModTime()
	}
	return now.Sub(last) < r.uploadTTL()
}

// collectUploads deletes abandoned uploads and orphaned upload files.
func (r *Registry) collectUploads(ctx context.Context, res *GCResult) error {
	now := r.cfg.Now()
	var recs []*state.Upload
	if err := r.store.View(ctx, func(tx store.ReadTx) error {
		recs = nil
		kvs, err := tx.List(state.UploadsPrefix, "", 0)
		if err != nil {
			return err
		}
		for _, kv := range kvs {
			u, err := state.Decode[state.Upload](kv)
			if err != nil {
				return err
			}
			recs = append(recs, u)
		}
		return nil
	}); err != nil {
		return err
	}
	known := make(map[string]bool, len(recs))
	for _, rec := range recs {
		known[rec.ID] = true
		if r.uploadActive(rec.ID, rec.StartedAt.Time, now) {
			continue
		}
		if r.testHookUploadIdle != nil {
			r.testHookUploadIdle(rec.ID)
		}
		u, err := r.lockUpload(ctx, rec.Repository, rec.ID)
		if errors.Is(err, errdefs.ErrNotFound) {
			continue // completed or cancelled meanwhile
		}
		if err != nil {
			return err
		}
		// A part may have arrived between the look above and the lock;
		// holding the lock, no other can.
		if r.uploadActive(rec.ID, rec.StartedAt.Time, r.cfg.Now()) {
			u.mu.Unlock()
			continue
		}
		err = r.dropUpload(ctx, u)
		u.mu.Unlock()
		if err != nil {
			return err
		}
		res.UploadsDeleted++
	}
	files, err := os.ReadDir(r.uploadsDir())
	if err != nil {
		return err
	}
	for _, f := range files {
		if known[f.Name()] {
			continue
		}
		fi, err := f.Info()
		if err != nil || r.fileAge(fi) < r.cfg.GCGrace {
			continue
		}
		// The record is written before the file, so an old file without
		// one belongs to an upload that is over.
		if err := os.Remove(filepath.Join(r.uploadsDir(), f.Name())); err == nil {
			res.UploadsDeleted++
		}
	}
	return nil
}
