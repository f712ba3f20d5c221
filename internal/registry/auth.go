package registry

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Tokens are opaque to clients: base64url(version | expiry (unix seconds,
// big endian) | principal | HMAC-SHA256 of what precedes it). They are
// stateless, so they survive a restart as long as the TokenKey does.
const (
	tokenVersion = 1
	tokenMACSize = sha256.Size
	// blobURLTTL is how long a BlobURL stays valid (ECR's
	// GetDownloadUrlForLayer URLs last about an hour).
	blobURLTTL = time.Hour
	// awsUser is the only user name `docker login` may use with a token.
	awsUser = "AWS"
	// Query parameters of a signed blob URL.
	paramExpires   = "X-Berth-Expires"
	paramSignature = "X-Berth-Signature"
)

// deriveKey derives a key for one purpose from the configured secret, so a
// token can never be replayed as a URL signature or the reverse.
func deriveKey(secret []byte, purpose string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// MintToken returns an authorization token for principal (the password
// `docker login --username AWS` takes) and when it expires (cfg.TokenTTL
// from now).
func (r *Registry) MintToken(principal string) (token string, expiresAt time.Time) {
	expiresAt = r.cfg.Now().Add(r.cfg.TokenTTL).Truncate(time.Second)
	b := make([]byte, 9, 9+len(principal)+tokenMACSize)
	b[0] = tokenVersion
	binary.BigEndian.PutUint64(b[1:9], uint64(expiresAt.Unix()))
	b = append(b, principal...)
	m := hmac.New(sha256.New, r.tokenKey)
	m.Write(b)
	b = m.Sum(b)
	return base64.RawURLEncoding.EncodeToString(b), expiresAt
}

// VerifyToken checks token's signature (in constant time) and expiry and
// returns the principal it was minted for, or ErrUnauthorized.
func (r *Registry) VerifyToken(token string) (principal string, err error) {
	_, principal, err = r.verifyToken(token)
	return principal, err
}

func (r *Registry) verifyToken(token string) (expiresAt time.Time, principal string, err error) {
	b, derr := base64.RawURLEncoding.DecodeString(token)
	if derr != nil || len(b) < 9+tokenMACSize || b[0] != tokenVersion {
		return time.Time{}, "", errorf(ErrUnauthorized, "The authorization token is malformed")
	}
	body, mac := b[:len(b)-tokenMACSize], b[len(b)-tokenMACSize:]
	m := hmac.New(sha256.New, r.tokenKey)
	m.Write(body)
	if subtle.ConstantTimeCompare(m.Sum(nil), mac) != 1 {
		return time.Time{}, "", errorf(ErrUnauthorized, "The authorization token is invalid")
	}
	exp := int64(binary.BigEndian.Uint64(body[1:9]))
	expiresAt = time.Unix(exp, 0)
	if !r.cfg.Now().Before(expiresAt) {
		return time.Time{}, "", errorf(ErrUnauthorized, "Your authorization token has expired. Reauthenticate and try again.")
	}
	return expiresAt, string(body[9:]), nil
}

// credentials returns the token a request carries, as Basic AWS:<token> or
// Bearer <token>; "" when it carries none.
func credentials(req *http.Request) (string, error) {
	h := req.Header.Get("Authorization")
	if h == "" {
		return "", nil
	}
	scheme, rest, _ := strings.Cut(h, " ")
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		return strings.TrimSpace(rest), nil
	case strings.EqualFold(scheme, "Basic"):
		user, pass, ok := req.BasicAuth()
		if !ok {
			return "", errorf(ErrUnauthorized, "The Basic credentials are malformed")
		}
		if user != awsUser {
			return "", errorf(ErrUnauthorized, "The user name must be AWS")
		}
		return pass, nil
	}
	return "", errorf(ErrUnauthorized, "Unsupported authorization scheme")
}

// authorize checks the request's credentials: a token in the Authorization
// header, or for a blob read a signed BlobURL.
func (r *Registry) authorize(req *http.Request, rt route) error {
	tok, err := credentials(req)
	if err != nil {
		return err
	}
	if tok != "" {
		_, err := r.VerifyToken(tok)
		return err
	}
	q := req.URL.Query()
	if rt.kind == routeBlob && (req.Method == http.MethodGet || req.Method == http.MethodHead) && q.Has(paramSignature) {
		return r.verifyBlobURL(rt.name, rt.ref, q)
	}
	return errorf(ErrUnauthorized, "authentication required")
}

// challenge is the WWW-Authenticate header of a 401 answer to req.
func (r *Registry) challenge(req *http.Request, rt route) string {
	scheme := "http"
	if req.TLS != nil {
		scheme = "https"
	}
	c := `Bearer realm="` + scheme + "://" + req.Host + `/v2/token",service="` + r.cfg.Host + `"`
	if rt.name != "" {
		c += `,scope="repository:` + rt.name + `:pull,push"`
	}
	return c
}

// tokenResponse is the Docker token endpoint's answer.
type tokenResponse struct {
	Token       string `json:"token"`
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
	IssuedAt    string `json:"issued_at"`
}

// serveToken is the token endpoint of the Bearer challenge: GET with Basic
// AWS:<token> (Docker), or POST with an OAuth2 password grant form
// (containerd). The token it returns is the one presented: Berth's tokens
// already are bearer tokens, and a new one would outlive the login.
func (r *Registry) serveToken(w http.ResponseWriter, req *http.Request) error {
	var tok string
	switch req.Method {
	case http.MethodGet:
		var err error
		if tok, err = credentials(req); err != nil {
			return err
		}
	case http.MethodPost:
		if err := req.ParseForm(); err != nil {
			return wireErr(http.StatusBadRequest, "UNSUPPORTED", "malformed token request")
		}
		if req.PostForm.Get("grant_type") != "password" {
			return errorf(ErrUnauthorized, "only the password grant is supported")
		}
		if req.PostForm.Get("username") != awsUser {
			return errorf(ErrUnauthorized, "The user name must be AWS")
		}
		tok = req.PostForm.Get("password")
	default:
		return errUnsupportedMethod
	}
	if tok == "" {
		return errorf(ErrUnauthorized, "authentication required")
	}
	exp, _, err := r.verifyToken(tok)
	if err != nil {
		return err
	}
	now := r.cfg.Now()
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(tokenResponse{
		Token: tok, AccessToken: tok,
		ExpiresIn: int64(exp.Sub(now) / time.Second), IssuedAt: now.UTC().Format(time.RFC3339),
	})
}

// BlobURL returns an absolute URL of blob digest in repo that authorizes a
// GET by its signed query parameters alone, for about an hour (for ECR's
// GetDownloadUrlForLayer).
func (r *Registry) BlobURL(repo, digest string) string {
	exp := strconv.FormatInt(r.cfg.Now().Add(blobURLTTL).Unix(), 10)
	q := url.Values{paramExpires: {exp}, paramSignature: {r.blobURLSignature(repo, digest, exp)}}
	return "http://" + r.cfg.Host + "/v2/" + repo + "/blobs/" + digest + "?" + q.Encode()
}

func (r *Registry) blobURLSignature(repo, digest, exp string) string {
	m := hmac.New(sha256.New, r.urlKey)
	m.Write([]byte(repo + "\x00" + digest + "\x00" + exp))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (r *Registry) verifyBlobURL(repo, digest string, q url.Values) error {
	exp := q.Get(paramExpires)
	want := r.blobURLSignature(repo, digest, exp)
	if subtle.ConstantTimeCompare([]byte(want), []byte(q.Get(paramSignature))) != 1 {
		return errorf(ErrUnauthorized, "The URL signature is invalid")
	}
	sec, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || !r.cfg.Now().Before(time.Unix(sec, 0)) {
		return errorf(ErrUnauthorized, "The URL has expired")
	}
	return nil
}
