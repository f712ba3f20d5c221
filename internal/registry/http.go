package registry

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
)

// routeKind is what a /v2/ path names.
type routeKind int

const (
	routeUnknown     routeKind = iota
	routeBase                  // /v2/
	routeToken                 // /v2/token
	routeCatalog               // /v2/_catalog
	routeTags                  // /v2/<name>/tags/list
	routeManifest              // /v2/<name>/manifests/<reference>
	routeBlob                  // /v2/<name>/blobs/<digest>
	routeUploadStart           // /v2/<name>/blobs/uploads/
	routeUpload                // /v2/<name>/blobs/uploads/<id>
	routeReferrers             // /v2/<name>/referrers/<digest>
)

// String names the kind for metrics.
func (k routeKind) String() string {
	switch k {
	case routeBase:
		return "base"
	case routeToken:
		return "token"
	case routeCatalog:
		return "catalog"
	case routeTags:
		return "tags"
	case routeManifest:
		return "manifest"
	case routeBlob:
		return "blob"
	case routeUploadStart, routeUpload:
		return "upload"
	case routeReferrers:
		return "referrers"
	}
	return "unknown"
}

// route is a parsed /v2/ path: the repository name and the reference (tag,
// digest or upload id) the kind takes.
type route struct {
	kind routeKind
	name string
	ref  string
}

// maxNameLength is the longest repository name (ECR's limit).
const maxNameLength = 256

// parseRoute parses a /v2/ path. Repository names may hold slashes, so the
// path is read from the right: the last segments say what is addressed and
// everything before them is the name.
func parseRoute(path string) (route, error) {
	rest, ok := strings.CutPrefix(path, "/v2/")
	if !ok {
		if path == "/v2" {
			return route{kind: routeBase}, nil
		}
		return route{}, errNotFoundRoute
	}
	switch rest {
	case "":
		return route{kind: routeBase}, nil
	case "token":
		return route{kind: routeToken}, nil
	case "_catalog":
		return route{kind: routeCatalog}, nil
	}
	segs := strings.Split(rest, "/")
	n := len(segs)
	var rt route
	var nameSegs []string
	switch {
	case n >= 3 && segs[n-2] == "tags" && segs[n-1] == "list":
		rt, nameSegs = route{kind: routeTags}, segs[:n-2]
	case n >= 4 && segs[n-3] == "blobs" && segs[n-2] == "uploads":
		rt, nameSegs = route{kind: routeUpload, ref: segs[n-1]}, segs[:n-3]
		if rt.ref == "" {
			rt.kind = routeUploadStart
		}
	case n >= 3 && segs[n-2] == "blobs" && segs[n-1] == "uploads":
		rt, nameSegs = route{kind: routeUploadStart}, segs[:n-2]
	case n >= 3 && segs[n-2] == "manifests":
		rt, nameSegs = route{kind: routeManifest, ref: segs[n-1]}, segs[:n-2]
	case n >= 3 && segs[n-2] == "blobs":
		rt, nameSegs = route{kind: routeBlob, ref: segs[n-1]}, segs[:n-2]
	case n >= 3 && segs[n-2] == "referrers":
		rt, nameSegs = route{kind: routeReferrers, ref: segs[n-1]}, segs[:n-2]
	default:
		return route{}, errNotFoundRoute
	}
	rt.name = strings.Join(nameSegs, "/")
	if !validName(rt.name) {
		return rt, wireErr(http.StatusBadRequest, "NAME_INVALID", "invalid repository name")
	}
	if rt.kind != routeTags && rt.kind != routeUploadStart && rt.ref == "" {
		return rt, errNotFoundRoute
	}
	return rt, nil
}

// validName reports whether name is a repository name: slash-separated
// components of lowercase letters and digits, separated inside a component
// by one '.', one or two '_', or any number of '-' (the OCI rule), and at
// most maxNameLength long.
func validName(name string) bool {
	if name == "" || len(name) > maxNameLength {
		return false
	}
	for comp := range strings.SplitSeq(name, "/") {
		if !validComponent(comp) {
			return false
		}
	}
	return true
}

func validComponent(c string) bool {
	alnum := func(b byte) bool { return b >= 'a' && b <= 'z' || b >= '0' && b <= '9' }
	if c == "" || !alnum(c[0]) || !alnum(c[len(c)-1]) {
		return false
	}
	for i := 1; i < len(c); {
		if alnum(c[i]) {
			i++
			continue
		}
		j := i
		for j < len(c) && !alnum(c[j]) {
			j++
		}
		switch sep := c[i:j]; {
		case sep == "." || sep == "_" || sep == "__":
		case strings.Trim(sep, "-") == "":
		default:
			return false
		}
		i = j
	}
	return true
}

// wireError is an error that exists only on the wire (an unknown route, an
// unsupported method, a malformed header): already in the spec's terms.
type wireError struct {
	status  int
	code    string
	message string
}

func (e *wireError) Error() string { return e.message }

func wireErr(status int, code, message string) *wireError {
	return &wireError{status: status, code: code, message: message}
}

var (
	errNotFoundRoute     = wireErr(http.StatusNotFound, "UNSUPPORTED", "no such endpoint")
	errUnsupportedMethod = wireErr(http.StatusMethodNotAllowed, "UNSUPPORTED", "The operation is unsupported.")
)

// wireErrorBody is the distribution-spec error document.
type wireErrorBody struct {
	Errors []wireErrorEntry `json:"errors"`
}

type wireErrorEntry struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  any    `json:"detail,omitempty"`
}

// toWire maps an error to its HTTP status, distribution-spec code, message
// and detail. It is the only place registry errors meet the wire.
func toWire(err error) (status int, entry wireErrorEntry) {
	var we *wireError
	if errors.As(err, &we) {
		return we.status, wireErrorEntry{Code: we.code, Message: we.message}
	}
	entry.Message = err.Error()
	var re *Error
	if errors.As(err, &re) {
		entry.Message = re.Message
		if re.Digest != "" {
			entry.Detail = map[string]string{"digest": re.Digest}
		}
	}
	switch {
	case errors.Is(err, ErrUnauthorized):
		return http.StatusUnauthorized, wireErrorEntry{Code: "UNAUTHORIZED", Message: entry.Message}
	case errors.Is(err, ErrRepositoryNotFound):
		entry.Code, status = "NAME_UNKNOWN", http.StatusNotFound
	case errors.Is(err, ErrImageNotFound):
		// ECR's /v2/ wording; the ECR API's message names the image.
		entry.Code, entry.Message, status = "MANIFEST_UNKNOWN", "Requested image not found", http.StatusNotFound
	case errors.Is(err, ErrBlobNotFound):
		entry.Code, status = "BLOB_UNKNOWN", http.StatusNotFound
	case errors.Is(err, ErrUploadNotFound):
		entry.Code, status = "BLOB_UPLOAD_UNKNOWN", http.StatusNotFound
	case errors.Is(err, ErrDigestMismatch), errors.Is(err, ErrDigestInvalid):
		entry.Code, status = "DIGEST_INVALID", http.StatusBadRequest
	case errors.Is(err, ErrManifestBlobUnknown):
		entry.Code, status = "MANIFEST_BLOB_UNKNOWN", http.StatusBadRequest
	case errors.Is(err, ErrManifestInvalid):
		entry.Code, status = "MANIFEST_INVALID", http.StatusBadRequest
	case errors.Is(err, ErrTagInvalid), errors.Is(err, ErrTagImmutable):
		entry.Code, status = "TAG_INVALID", http.StatusBadRequest
	case errors.Is(err, ErrRangeInvalid):
		entry.Code, status = "BLOB_UPLOAD_INVALID", http.StatusRequestedRangeNotSatisfiable
	default:
		return http.StatusInternalServerError, wireErrorEntry{Code: "UNKNOWN", Message: "internal error"}
	}
	return status, entry
}

// writeError answers req with err in the spec's JSON shape.
func (r *Registry) writeError(w http.ResponseWriter, req *http.Request, rt route, err error) {
	status, entry := toWire(err)
	switch {
	case status == http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", r.challenge(req, rt))
	case status >= 500:
		r.log.Error("registry request failed", "method", req.Method, "path", req.URL.Path, "err", err)
	}
	h := w.Header()
	h.Del("Content-Length")
	h.Del("Docker-Content-Digest")
	h.Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if req.Method != http.MethodHead {
		json.NewEncoder(w).Encode(wireErrorBody{Errors: []wireErrorEntry{entry}})
	}
}

// ServeHTTP serves the OCI Distribution API under /v2/. Every request must
// carry a token (Basic AWS:<token> or Bearer <token>), except the token
// endpoint itself and blob reads through a signed BlobURL.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	rw := &responseWriter{ResponseWriter: w}
	rw.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	rt, err := parseRoute(req.URL.Path)
	// Authenticate before saying anything about the path, even a bad one.
	if rt.kind != routeToken {
		if aerr := r.authorize(req, rt); aerr != nil {
			err = aerr
		}
	}
	if err == nil {
		err = r.serve(rw, req, rt)
	}
	if err != nil && !rw.wrote {
		r.writeError(rw, req, rt, err)
	}
	if rw.status == 0 {
		rw.status = http.StatusOK
	}
	r.metrics.request(rt.kind, req.Method, rw.status, rw.bytes)
}

func (r *Registry) serve(w http.ResponseWriter, req *http.Request, rt route) error {
	switch rt.kind {
	case routeBase:
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			return errUnsupportedMethod
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "2")
		w.WriteHeader(http.StatusOK)
		if req.Method == http.MethodGet {
			io.WriteString(w, "{}")
		}
		return nil
	case routeToken:
		return r.serveToken(w, req)
	case routeCatalog:
		return r.serveCatalog(w, req)
	case routeTags:
		return r.serveTags(w, req, rt)
	case routeManifest:
		return r.serveManifest(w, req, rt)
	case routeBlob:
		return r.serveBlob(w, req, rt)
	case routeUploadStart:
		return r.serveUploadStart(w, req, rt)
	case routeUpload:
		return r.serveUpload(w, req, rt)
	case routeReferrers:
		return r.serveReferrers(w, req, rt)
	}
	return errNotFoundRoute
}

// responseWriter records the status and the body bytes written, and keeps
// io.ReaderFrom so blob bodies still go out with sendfile.
type responseWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
	wrote  bool
}

func (w *responseWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *responseWriter) ReadFrom(src io.Reader) (int64, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	var n int64
	var err error
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(struct{ io.Writer }{w.ResponseWriter}, src)
	}
	w.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
