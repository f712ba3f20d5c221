package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/state"
	"github.com/berthdev/berth/internal/store"
)

func blobLocation(name, digest string) string  { return "/v2/" + name + "/blobs/" + digest }
func uploadLocation(name, id string) string    { return "/v2/" + name + "/blobs/uploads/" + id }
func manifestLocation(name, ref string) string { return "/v2/" + name + "/manifests/" + ref }
func noContent(w http.ResponseWriter, code int) {
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(code)
}

// uploadRange is the Range header of an upload holding size bytes:
// "0-<last byte>", and "0-0" while it is empty (as distribution answers).
func uploadRange(size int64) string {
	if size > 0 {
		size--
	}
	return "0-" + strconv.FormatInt(size, 10)
}

// serveBlob answers GET, HEAD and DELETE of /v2/<name>/blobs/<digest>.
func (r *Registry) serveBlob(w http.ResponseWriter, req *http.Request, rt route) error {
	ctx := req.Context()
	switch req.Method {
	case http.MethodGet, http.MethodHead:
		if _, err := r.Blob(ctx, rt.name, rt.ref); err != nil {
			return err
		}
		f, err := os.Open(r.blobPath(rt.ref))
		if err != nil {
			if os.IsNotExist(err) {
				return errBlobNotFound(rt.name, rt.ref)
			}
			return err
		}
		defer f.Close()
		h := w.Header()
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Docker-Content-Digest", rt.ref)
		h.Set("Etag", `"`+rt.ref+`"`)
		h.Set("Cache-Control", "max-age=31536000")
		// ServeContent answers Range requests and HEAD, and copies an
		// *os.File with sendfile.
		http.ServeContent(w, req, "", time.Time{}, f)
		return nil
	case http.MethodDelete:
		if err := checkDigest(rt.ref); err != nil {
			return err
		}
		if _, err := r.store.Update(ctx, func(tx store.Tx) error {
			if err := r.requireRepo(tx, rt.name); err != nil {
				return err
			}
			key := state.LayerKey(rt.name, rt.ref)
			if _, ok, err := tx.Get(key); err != nil || !ok {
				if err == nil {
					err = errBlobNotFound(rt.name, rt.ref)
				}
				return err
			}
			return tx.Delete(key)
		}); err != nil {
			return err
		}
		noContent(w, http.StatusAccepted)
		return nil
	}
	return errUnsupportedMethod
}

// serveUploadStart answers POST /v2/<name>/blobs/uploads/: a
// cross-repository mount (?mount=&from=), a monolithic upload (?digest=),
// or the start of an upload session.
func (r *Registry) serveUploadStart(w http.ResponseWriter, req *http.Request, rt route) error {
	if req.Method != http.MethodPost {
		return errUnsupportedMethod
	}
	ctx := req.Context()
	q := req.URL.Query()
	if mount, from := q.Get("mount"), q.Get("from"); mount != "" && from != "" && validName(from) {
		size, err := r.Mount(ctx, rt.name, from, mount)
		if err == nil {
			r.log.Debug("mounted blob", "repo", rt.name, "from", from, "digest", mount, "size", size)
			w.Header().Set("Location", blobLocation(rt.name, mount))
			w.Header().Set("Docker-Content-Digest", mount)
			noContent(w, http.StatusCreated)
			return nil
		}
		if errors.Is(err, ErrRepositoryNotFound) {
			return err // the target repository itself does not exist
		}
		// Not mountable: fall back to an upload session, as the spec asks.
	}
	if digest := q.Get("digest"); digest != "" {
		if _, err := r.putBlob(ctx, rt.name, digest, req.Body); err != nil {
			return err
		}
		w.Header().Set("Location", blobLocation(rt.name, digest))
		w.Header().Set("Docker-Content-Digest", digest)
		noContent(w, http.StatusCreated)
		return nil
	}
	id, err := r.StartUpload(ctx, rt.name)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Location", uploadLocation(rt.name, id))
	h.Set("Docker-Upload-UUID", id)
	h.Set("Range", "0-0")
	noContent(w, http.StatusAccepted)
	return nil
}

// parseContentRange reads a chunk's Content-Range: "<start>-<end>" as the
// spec writes it, also with a "bytes " or "bytes=" prefix and a "/<total>"
// suffix as some clients send it.
func parseContentRange(s string) (start, end int64, ok bool) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "bytes")
	s = strings.TrimLeft(s, " =")
	s, _, _ = strings.Cut(s, "/")
	a, b, found := strings.Cut(s, "-")
	if !found {
		return 0, 0, false
	}
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || start < 0 || end < start {
		return 0, 0, false
	}
	return start, end, true
}

// appendChunk writes the request body to the upload at the offset its
// Content-Range names, or at the end when it has none (a streamed PATCH).
func (r *Registry) appendChunk(w http.ResponseWriter, req *http.Request, rt route) (int64, error) {
	offset := int64(-1)
	if cr := req.Header.Get("Content-Range"); cr != "" {
		start, end, ok := parseContentRange(cr)
		if !ok || req.ContentLength >= 0 && end-start+1 != req.ContentLength {
			size, err := r.UploadSize(req.Context(), rt.name, rt.ref)
			if err != nil {
				return 0, err
			}
			w.Header().Set("Range", uploadRange(size))
			w.Header().Set("Location", uploadLocation(rt.name, rt.ref))
			return 0, errorf(ErrRangeInvalid, "invalid Content-Range %q", cr)
		}
		offset = start
	}
	size, err := r.UploadPart(req.Context(), rt.name, rt.ref, offset, req.Body)
	if errors.Is(err, ErrRangeInvalid) {
		w.Header().Set("Range", uploadRange(size))
		w.Header().Set("Location", uploadLocation(rt.name, rt.ref))
	}
	return size, err
}

// serveUpload answers PATCH, PUT, GET and DELETE of an upload session.
func (r *Registry) serveUpload(w http.ResponseWriter, req *http.Request, rt route) error {
	ctx := req.Context()
	h := w.Header()
	switch req.Method {
	case http.MethodPatch:
		size, err := r.appendChunk(w, req, rt)
		if err != nil {
			return err
		}
		h.Set("Location", uploadLocation(rt.name, rt.ref))
		h.Set("Range", uploadRange(size))
		h.Set("Docker-Upload-UUID", rt.ref)
		noContent(w, http.StatusAccepted)
		return nil
	case http.MethodPut:
		digest := req.URL.Query().Get("digest")
		if err := checkDigest(digest); err != nil {
			return err
		}
		if req.ContentLength != 0 {
			if _, err := r.appendChunk(w, req, rt); err != nil {
				return err
			}
		}
		if _, err := r.CompleteUpload(ctx, rt.name, rt.ref, digest); err != nil {
			return err
		}
		h.Del("Range")
		h.Set("Location", blobLocation(rt.name, digest))
		h.Set("Docker-Content-Digest", digest)
		noContent(w, http.StatusCreated)
		return nil
	case http.MethodGet:
		size, err := r.UploadSize(ctx, rt.name, rt.ref)
		if err != nil {
			return err
		}
		h.Set("Location", uploadLocation(rt.name, rt.ref))
		h.Set("Range", uploadRange(size))
		h.Set("Docker-Upload-UUID", rt.ref)
		noContent(w, http.StatusNoContent)
		return nil
	case http.MethodDelete:
		if err := r.CancelUpload(ctx, rt.name, rt.ref); err != nil {
			return err
		}
		noContent(w, http.StatusNoContent)
		return nil
	}
	return errUnsupportedMethod
}

// serveManifest answers GET, HEAD, PUT and DELETE of
// /v2/<name>/manifests/<reference>.
func (r *Registry) serveManifest(w http.ResponseWriter, req *http.Request, rt route) error {
	ctx := req.Context()
	h := w.Header()
	switch req.Method {
	case http.MethodGet, http.MethodHead:
		// Every image has one stored manifest; it is returned whatever the
		// Accept header lists (no schema 1 conversion), with its own
		// Content-Type, as ECR does.
		img, b, err := r.manifest(ctx, rt.name, rt.ref, req.Method == http.MethodGet)
		if err != nil {
			return err
		}
		h.Set("Content-Type", img.MediaType)
		h.Set("Docker-Content-Digest", img.Digest)
		h.Set("Etag", `"`+img.Digest+`"`)
		h.Set("Content-Length", strconv.Itoa(len(b)))
		w.WriteHeader(http.StatusOK)
		if req.Method == http.MethodGet {
			w.Write(b)
		}
		return nil
	case http.MethodPut:
		b, err := io.ReadAll(io.LimitReader(req.Body, MaxManifestSize+1))
		if err != nil {
			return fmt.Errorf("reading manifest: %w", err)
		}
		if len(b) > MaxManifestSize {
			return wireErr(http.StatusRequestEntityTooLarge, "SIZE_INVALID", fmt.Sprintf("the manifest exceeds the size limit of %d bytes", MaxManifestSize))
		}
		img, err := r.PutManifest(ctx, rt.name, rt.ref, req.Header.Get("Content-Type"), b)
		if err != nil {
			return err
		}
		h.Set("Location", manifestLocation(rt.name, img.Digest))
		h.Set("Docker-Content-Digest", img.Digest)
		if img.Subject != "" {
			h.Set("OCI-Subject", img.Subject)
		}
		noContent(w, http.StatusCreated)
		return nil
	case http.MethodDelete:
		var err error
		if isDigestRef(rt.ref) {
			err = r.DeleteImage(ctx, rt.name, rt.ref)
		} else {
			_, err = r.Untag(ctx, rt.name, rt.ref)
		}
		if err != nil {
			return err
		}
		noContent(w, http.StatusAccepted)
		return nil
	}
	return errUnsupportedMethod
}

// page reads the n and last query parameters of a paginated list; n = -1
// means no limit.
func page(q url.Values) (n int, last string, err error) {
	n = -1
	if s := q.Get("n"); s != "" {
		v, perr := strconv.Atoi(s)
		if perr != nil || v < 0 {
			return 0, "", wireErr(http.StatusBadRequest, "PAGINATION_NUMBER_INVALID", "invalid number of results requested")
		}
		n = v
	}
	return n, q.Get("last"), nil
}

// listPage lists the keys under prefix after last, at most n (n < 0: all),
// and returns their names (the key without prefix) and whether more
// follow.
func listPage(tx store.ReadTx, prefix, last string, n int) (names []string, more bool, err error) {
	names = []string{}
	if n == 0 {
		return names, false, nil
	}
	after := ""
	if last != "" {
		after = prefix + last
	}
	limit := 0
	if n > 0 {
		limit = n + 1
	}
	kvs, err := tx.List(prefix, after, limit)
	if err != nil {
		return nil, false, err
	}
	if n > 0 && len(kvs) > n {
		kvs, more = kvs[:n], true
	}
	for _, kv := range kvs {
		names = append(names, kv.Key[len(prefix):])
	}
	return names, more, nil
}

func writeJSON(w http.ResponseWriter, contentType string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(b)
	return err
}

// nextLink sets the Link header of a page that has a next one, in the
// form the distribution spec writes: </v2/<name>/tags/list?n=<n>&last=<last>>; rel="next".
func nextLink(w http.ResponseWriter, path string, n int, last string) {
	w.Header().Set("Link", "<"+path+"?n="+strconv.Itoa(n)+"&last="+url.QueryEscape(last)+`>; rel="next"`)
}

// serveTags answers GET /v2/<name>/tags/list.
func (r *Registry) serveTags(w http.ResponseWriter, req *http.Request, rt route) error {
	if req.Method != http.MethodGet {
		return errUnsupportedMethod
	}
	n, last, err := page(req.URL.Query())
	if err != nil {
		return err
	}
	var tags []string
	var more bool
	if err := r.store.View(req.Context(), func(tx store.ReadTx) error {
		if err := r.requireRepo(tx, rt.name); err != nil {
			return err
		}
		tags, more, err = listPage(tx, state.ImageTagsRepoPrefix(rt.name), last, n)
		return err
	}); err != nil {
		return err
	}
	if more {
		nextLink(w, "/v2/"+rt.name+"/tags/list", n, tags[len(tags)-1])
	}
	return writeJSON(w, "application/json", struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}{rt.name, tags})
}

// serveCatalog answers GET /v2/_catalog.
func (r *Registry) serveCatalog(w http.ResponseWriter, req *http.Request) error {
	if req.Method != http.MethodGet {
		return errUnsupportedMethod
	}
	n, last, err := page(req.URL.Query())
	if err != nil {
		return err
	}
	var repos []string
	var more bool
	if err := r.store.View(req.Context(), func(tx store.ReadTx) error {
		repos, more, err = listPage(tx, state.RepositoriesPrefix, last, n)
		return err
	}); err != nil {
		return err
	}
	if more {
		nextLink(w, "/v2/_catalog", n, repos[len(repos)-1])
	}
	return writeJSON(w, "application/json", struct {
		Repositories []string `json:"repositories"`
	}{repos})
}

// referrersIndex is the OCI image index the referrers API answers.
type referrersIndex struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Manifests     []descriptor `json:"manifests"`
}

// artifactTypeOf is an image's artifactType as the referrers API reports
// it: its own, or else its config's media type.
func artifactTypeOf(img *state.Image) string {
	switch {
	case img.ArtifactType != "":
		return img.ArtifactType
	case img.MediaType == MediaTypeDockerManifest:
		return mediaTypeDockerConfig
	case img.MediaType == MediaTypeOCIManifest:
		return mediaTypeOCIConfig
	}
	return ""
}

// serveReferrers answers GET /v2/<name>/referrers/<digest>[?artifactType=].
func (r *Registry) serveReferrers(w http.ResponseWriter, req *http.Request, rt route) error {
	if req.Method != http.MethodGet {
		return errUnsupportedMethod
	}
	if err := checkDigest(rt.ref); err != nil {
		return err
	}
	filter := req.URL.Query().Get("artifactType")
	idx := referrersIndex{SchemaVersion: 2, MediaType: MediaTypeOCIIndex, Manifests: []descriptor{}}
	if err := r.store.View(req.Context(), func(tx store.ReadTx) error {
		if err := r.requireRepo(tx, rt.name); err != nil {
			return err
		}
		idx.Manifests = idx.Manifests[:0]
		prefix := state.ReferrersSubjectPrefix(rt.name, rt.ref)
		kvs, err := tx.List(prefix, "", 0)
		if err != nil {
			return err
		}
		for _, kv := range kvs {
			img, ok, err := state.Get[state.Image](tx, state.ImageKey(rt.name, kv.Key[len(prefix):]))
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			at := artifactTypeOf(img)
			if filter != "" && at != filter {
				continue
			}
			idx.Manifests = append(idx.Manifests, descriptor{
				MediaType: img.MediaType, Digest: img.Digest, Size: img.ManifestSize,
				ArtifactType: at, Annotations: img.Annotations,
			})
		}
		return nil
	}); err != nil {
		return err
	}
	if filter != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	return writeJSON(w, MediaTypeOCIIndex, idx)
}
