package registry

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// The files under Config.Dir:
//
//	blobs/sha256/<first 2 hex>/<hex>   blob and manifest bytes, shared by every repository
//	uploads/<upload id>                the bytes of an upload in progress
//	tmp/<random>                       a write not yet verified and renamed; Open empties it

func (r *Registry) blobsDir() string   { return filepath.Join(r.cfg.Dir, "blobs", "sha256") }
func (r *Registry) uploadsDir() string { return filepath.Join(r.cfg.Dir, "uploads") }
func (r *Registry) tmpDir() string     { return filepath.Join(r.cfg.Dir, "tmp") }

// blobPath is where the blob with the (valid) digest is stored.
func (r *Registry) blobPath(digest string) string {
	hex := digest[len("sha256:"):]
	return filepath.Join(r.blobsDir(), hex[:2], hex)
}

func (r *Registry) uploadPath(id string) string { return filepath.Join(r.uploadsDir(), id) }

// copyBufSize is the buffer every body is streamed through: large enough
// that a 200 MB layer costs a few hundred write and hash calls.
const copyBufSize = 1 << 20

var copyBufs = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

// copyHashed copies src to dst, hashing what it writes into h.
func copyHashed(dst io.Writer, h hash.Hash, src io.Reader) (int64, error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	var n int64
	for {
		nr, rerr := src.Read(buf)
		if nr > 0 {
			nw, werr := dst.Write(buf[:nr])
			h.Write(buf[:nw])
			n += int64(nw)
			if werr != nil {
				return n, werr
			}
			if nw != nr {
				return n, io.ErrShortWrite
			}
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}

// validDigest reports whether d is "sha256:" and 64 lowercase hex digits,
// the only digests the registry stores.
func validDigest(d string) bool {
	hx, ok := strings.CutPrefix(d, "sha256:")
	if !ok || len(hx) != 64 {
		return false
	}
	for i := 0; i < len(hx); i++ {
		c := hx[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func checkDigest(d string) error {
	if !validDigest(d) {
		return errorf(ErrDigestInvalid, "invalid digest %q: only sha256:<64 lowercase hex digits> is supported", d)
	}
	return nil
}

func digestOf(h hash.Hash) string { return "sha256:" + hex.EncodeToString(h.Sum(nil)) }

// Digest returns the sha256 digest of b in the "sha256:<hex>" form.
func Digest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// placeBlob makes the file at path (fully written, its content's digest
// verified) the blob digest: fsync it, stamp it with the registry's clock
// (GC ages files by it), rename it into place and fsync the directory. The
// caller holds gcMu for reading until the record that names the blob has
// committed. Replacing an existing blob is harmless: same digest, same bytes.
func (r *Registry) placeBlob(f *os.File, path, digest string) error {
	if err := f.Sync(); err != nil {
		return fmt.Errorf("syncing blob %s: %w", digest, err)
	}
	now := r.cfg.Now()
	if err := os.Chtimes(path, now, now); err != nil {
		return fmt.Errorf("stamping blob %s: %w", digest, err)
	}
	dst := r.blobPath(digest)
	dir := filepath.Dir(dst)
	if _, err := os.Stat(dir); os.IsNotExist(err) {
		if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
			return fmt.Errorf("blob directory: %w", err)
		}
		if err := syncDir(r.blobsDir()); err != nil {
			return err
		}
	}
	if err := os.Rename(path, dst); err != nil {
		return fmt.Errorf("placing blob %s: %w", digest, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing directory: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}

// writeTemp streams body into a new temporary file, hashing it. It returns
// the open file (positioned at its end), its digest and size; the caller
// removes the file unless it places it. max > 0 caps the size.
func (r *Registry) writeTemp(body io.Reader, max int64) (f *os.File, digest string, size int64, err error) {
	f, err = os.CreateTemp(r.tmpDir(), "blob-")
	if err != nil {
		return nil, "", 0, fmt.Errorf("temporary file: %w", err)
	}
	h := sha256.New()
	src := body
	if max > 0 {
		src = io.LimitReader(body, max+1)
	}
	size, err = copyHashed(f, h, src)
	if err == nil && max > 0 && size > max {
		err = errorf(ErrManifestInvalid, "the blob exceeds the size limit of %d bytes", max)
	}
	if err != nil {
		discard(f)
		return nil, "", 0, err
	}
	return f, digestOf(h), size, nil
}

// discard closes and removes a temporary file.
func discard(f *os.File) {
	f.Close()
	os.Remove(f.Name())
}

// ingest stores body as a blob that must have digest want, and returns its
// size. The caller holds gcMu for reading until the record naming the blob
// commits.
func (r *Registry) ingest(body io.Reader, want string, max int64) (int64, error) {
	f, got, size, err := r.writeTemp(body, max)
	if err != nil {
		return 0, err
	}
	placed := false
	defer func() {
		f.Close()
		if !placed {
			os.Remove(f.Name())
		}
	}()
	if got != want {
		return 0, errDigestMismatch(got, want)
	}
	if err := r.placeBlob(f, f.Name(), want); err != nil {
		return 0, err
	}
	placed = true
	return size, nil
}

func errDigestMismatch(got, want string) error {
	return &Error{Message: fmt.Sprintf("the content's digest is %s, not %s", got, want), Digest: want, class: ErrDigestMismatch}
}

// blobFileSize is the size of the stored blob, or ErrBlobNotFound.
func (r *Registry) blobFileSize(digest string) (int64, error) {
	fi, err := os.Stat(r.blobPath(digest))
	if os.IsNotExist(err) {
		return 0, &Error{Message: fmt.Sprintf("blob %s is not stored", digest), Digest: digest, class: ErrBlobNotFound}
	}
	if err != nil {
		return 0, fmt.Errorf("blob %s: %w", digest, err)
	}
	return fi.Size(), nil
}

// fileAge is how long ago (by the registry's clock) a file was last
// written.
func (r *Registry) fileAge(fi os.FileInfo) time.Duration { return r.cfg.Now().Sub(fi.ModTime()) }
