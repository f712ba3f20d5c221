// Package sigv4 verifies AWS Signature Version 4 on incoming requests, as the
// AWS JSON services (ECS, ECR, CloudWatch Logs, …) do, so that the AWS CLI and
// SDKs talk to Berth unchanged.
//
// Both forms of SigV4 are accepted: the Authorization header, and the
// presigned URL (X-Amz-Algorithm, X-Amz-Credential, X-Amz-Date, X-Amz-Expires,
// X-Amz-SignedHeaders, X-Amz-Signature, X-Amz-Security-Token in the query).
// The canonical request is rebuilt over exactly the headers the client listed
// as signed: botocore does not sign Content-Length, the Go SDK does, and
// neither signs User-Agent. See canonical.go for how each part is rebuilt.
//
// A refused request gets an *Error whose code, message and HTTP status are the
// ones AWS's JSON services answer with. The wording comes from AWS's own
// answers as recorded by clients and emulators: the IAM guide "Troubleshoot
// Signature Version 4 signing"; dynalite (a DynamoDB emulator that records
// real DynamoDB answers and their order of checks); scratchstack-aws-signature
// (a server-side verifier whose tests pin AWS's messages); and AWS SDK issue
// threads quoting ECS, DynamoDB and Cognito answers.
package sigv4

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// DefaultMaxSkew is the clock-skew window AWS allows: a header-form request
// signed more than 15 minutes before or after the server's clock is refused.
const DefaultMaxSkew = 15 * time.Minute

// Credentials is what the server knows about one access key.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
	// SessionToken is the token a temporary credential must present with each
	// request (X-Amz-Security-Token). It is empty for a long-term key, and a
	// request made with a long-term key must then present no token.
	SessionToken string
}

// Verifier checks the SigV4 signature of requests. Lookup is required; the
// zero values of the other fields select the defaults. A Verifier is safe for
// concurrent use and must not be copied after first use: it keeps a small
// cache of derived signing keys.
type Verifier struct {
	// Lookup returns the credentials of an access key ID, or false when the
	// key is unknown. It is called once per request.
	Lookup func(ctx context.Context, accessKeyID string) (Credentials, bool)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// MaxSkew is how far a request's signing time may lie from Now; zero (or
	// negative) means DefaultMaxSkew. For a presigned URL it bounds only how
	// far in the future X-Amz-Date may be; X-Amz-Expires bounds its life.
	MaxSkew time.Duration

	keys keyCache
}

// Result says who signed a verified request, and for what.
type Result struct {
	// AccessKeyID is the key the request was signed with.
	AccessKeyID string
	// Region and Service are the credential scope's. Verify does not judge
	// them: the caller refuses a region it does not serve and routes (or
	// refuses) by service.
	Region, Service string
	// SignedAt is the signing time (X-Amz-Date, or the Date header).
	SignedAt time.Time
	// Presigned is true for the query-string form.
	Presigned bool
}

// Verify checks r's signature. body is the request body, already read by the
// caller (Verify does not touch r.Body); it is hashed unless the client
// declared X-Amz-Content-Sha256: UNSIGNED-PAYLOAD. Every failure is an *Error.
//
// The checks run close to the order AWS runs them, so that a request with
// several faults mostly hears about the one AWS would report: form (unsigned,
// or both forms), syntax and missing parts, algorithm, date format, clock
// skew, Host signed, credential scope, access key, signature, and last the
// session token.
func (v *Verifier) Verify(ctx context.Context, r *http.Request, body []byte) (Result, error) {
	s, q, creds, err := v.identify(ctx, r)
	if err != nil {
		return Result{}, err
	}
	if err := v.checkSignature(r, q, body, &s, creds.SecretAccessKey); err != nil {
		return Result{}, err
	}
	if !tokenMatches(requestToken(r, q), creds.SessionToken) {
		return Result{}, errUnrecognized()
	}
	return Result{
		AccessKeyID: s.cred.AccessKeyID,
		Region:      s.cred.Region,
		Service:     s.cred.Service,
		SignedAt:    s.signedAt,
		Presigned:   s.presigned,
	}, nil
}

// Precheck runs every check Verify makes before the signature itself (form,
// syntax, algorithm, date, clock skew, scope, a known access key) without
// the body, so that a server can refuse an unauthenticated request before
// reading a large body. A request that passes must still be verified.
func (v *Verifier) Precheck(ctx context.Context, r *http.Request) error {
	if _, _, _, err := v.identify(ctx, r); err != nil {
		return err
	}
	return nil
}

// identify parses the signature's claim from the header or query form and
// looks up its access key.
func (v *Verifier) identify(ctx context.Context, r *http.Request) (claim, url.Values, Credentials, *Error) {
	var q url.Values
	if r.URL.RawQuery != "" {
		// Pairs that do not parse are dropped, as the Go SDK's signer drops
		// them (it signs URL.Query()).
		q, _ = url.ParseQuery(r.URL.RawQuery)
	}
	auth := firstValue(r.Header, hAuthorization)
	_, presignedForm := q[qAlgorithm]
	switch {
	case auth != "" && presignedForm:
		return claim{}, nil, Credentials{}, errInvalid(msgBothForms)
	case auth == "" && !presignedForm:
		return claim{}, nil, Credentials{}, errMissingToken()
	}

	now, skew := v.now(), v.MaxSkew
	if skew <= 0 {
		skew = DefaultMaxSkew
	}
	var (
		s   claim
		err *Error
	)
	if presignedForm {
		s, err = queryClaim(q, now, skew)
	} else {
		s, err = headerClaim(r, auth, now, skew)
	}
	if err != nil {
		return claim{}, nil, Credentials{}, err
	}
	if v.Lookup == nil {
		return claim{}, nil, Credentials{}, errUnrecognized()
	}
	creds, ok := v.Lookup(ctx, s.cred.AccessKeyID)
	if !ok {
		return claim{}, nil, Credentials{}, errUnrecognized()
	}
	return s, q, creds, nil
}

// now reads the clock to the second. Signing times are whole seconds, so
// sub-second noise would only blur the window's edges and make the
// "Signature expired" message disagree with itself.
func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now().Truncate(time.Second)
	}
	return time.Now().Truncate(time.Second)
}

// claim is what a request says about its own signature, from either form.
type claim struct {
	cred          credential
	signedHeaders string
	signature     string // hex, as sent
	amzDate       string // the timestamp that goes into the string to sign
	signedAt      time.Time
	presigned     bool
}

// headerClaim reads and checks the Authorization-header form.
func headerClaim(r *http.Request, auth string, now time.Time, skew time.Duration) (claim, *Error) {
	a, err := parseAuthorization(auth)
	if err != nil {
		return claim{}, err
	}
	signedAt, amzDate, haveDate, dateErr := requestDate(r.Header)
	if missing := missingHeaderParts(a, haveDate, auth); missing != "" {
		return claim{}, errIncomplete("%s", missing)
	}
	if a.Algorithm != algorithm {
		return claim{}, errIncomplete("Unsupported AWS 'algorithm': '%s'.", a.Algorithm)
	}
	if dateErr != nil {
		return claim{}, dateErr
	}
	if err := checkWindow(signedAt, now, skew); err != nil {
		return claim{}, err
	}
	if !signsHost(a.SignedHeaders) {
		return claim{}, errInvalid(msgHostNotSigned)
	}
	cred, err := parseCredential(a.Credential)
	if err != nil {
		return claim{}, err
	}
	if err := checkScope(cred, amzDate); err != nil {
		return claim{}, err
	}
	return claim{cred: cred, signedHeaders: a.SignedHeaders, signature: a.Signature, amzDate: amzDate, signedAt: signedAt}, nil
}

// queryClaim reads and checks the presigned form. A URL is good from
// X-Amz-Date (less the clock skew) until X-Amz-Date + X-Amz-Expires; one
// without X-Amz-Expires is held to the header form's window.
func queryClaim(q url.Values, now time.Time, skew time.Duration) (claim, *Error) {
	p, err := parsePresigned(q)
	if err != nil {
		return claim{}, err
	}
	switch {
	case !p.HasExpires:
		if err := checkWindow(p.SignedAt, now, skew); err != nil {
			return claim{}, err
		}
	case p.SignedAt.After(now.Add(skew)):
		return claim{}, errNotYetCurrent(p.SignedAt, now, skew)
	case now.After(p.SignedAt.Add(p.Expires)):
		return claim{}, errInvalid(msgPresignExpired)
	}
	if !signsHost(p.SignedHeaders) {
		return claim{}, errInvalid(msgHostNotSigned)
	}
	if err := checkScope(p.Credential, p.AmzDate); err != nil {
		return claim{}, err
	}
	return claim{cred: p.Credential, signedHeaders: p.SignedHeaders, signature: p.Signature,
		amzDate: p.AmzDate, signedAt: p.SignedAt, presigned: true}, nil
}

func checkWindow(signedAt, now time.Time, skew time.Duration) *Error {
	if signedAt.Before(now.Add(-skew)) {
		return errExpired(signedAt, now, skew)
	}
	if signedAt.After(now.Add(skew)) {
		return errNotYetCurrent(signedAt, now, skew)
	}
	return nil
}

// unsignedPayload is the payload hash of a client that chose not to sign the
// body. It is only read.
var unsignedPayload = []byte("UNSIGNED-PAYLOAD")

// scratch holds the buffers of one verification, pooled so that the hot path
// does not allocate them.
type scratch struct {
	canon   []byte
	sts     []byte
	payload [2 * sha256.Size]byte
	mac     [sha256.Size]byte
}

var scratchPool = sync.Pool{New: func() any {
	return &scratch{canon: make([]byte, 0, 1024), sts: make([]byte, 0, 256)}
}}

// maxPooledCanon caps the buffer a pooled scratch may keep, so that one
// request with huge signed headers does not pin its buffer for good.
const maxPooledCanon = 64 << 10

func putScratch(sc *scratch) {
	if cap(sc.canon) <= maxPooledCanon {
		scratchPool.Put(sc)
	}
}

// checkSignature recomputes the signature and compares it, in constant time,
// with the one the client sent.
//
// Where the two reference clients canonicalize differently (dot segments or
// "//" in the path, tabs inside a signed header value) it tries each form; a
// presigned URL that does not state its payload hash is tried with the body's
// hash and with UNSIGNED-PAYLOAD. Each try is a full HMAC under the client's
// own key, so trying more than one form lets no one forge anything: it only
// lets a correctly signed request through whichever convention signed it.
// Almost every request matches on the first try.
func (v *Verifier) checkSignature(r *http.Request, q url.Values, body []byte, s *claim, secret string) *Error {
	var want [sha256.Size]byte
	if !decodeHex(want[:], s.signature) {
		return errInvalid(msgSignatureMismatch)
	}
	sc := scratchPool.Get().(*scratch)
	defer putScratch(sc)

	payloads, nPayloads, err := payloadHashes(r, q, body, s.presigned, &sc.payload)
	if err != nil {
		return err
	}
	sig := v.keys.signerFor(secret, s.cred.Date, s.cred.Region, s.cred.Service)

	path := r.URL.EscapedPath()
	paths := [2]string{path, normalizePath(path)}
	nPaths := 1
	if paths[1] != path {
		nPaths = 2
	}
	query := ""
	if q != nil {
		query = canonicalQuery(q, s.presigned)
	}
	for _, p := range paths[:nPaths] {
		for _, mode := range [...]wsMode{wsSpaces, wsAll} {
			canon := append(sc.canon[:0], r.Method...)
			canon = append(canon, '\n')
			canon = appendCanonicalURI(canon, p)
			canon = append(canon, '\n')
			canon = append(canon, query...)
			canon = append(canon, '\n')
			canon, otherSpace := appendCanonicalHeaders(canon, r, len(body), s.signedHeaders, mode)
			canon = append(canon, '\n')
			canon = append(canon, s.signedHeaders...)
			canon = append(canon, '\n')
			prefix := len(canon)
			for _, ph := range payloads[:nPayloads] {
				canon = append(canon[:prefix], ph...)
				sc.sts = appendStringToSign(sc.sts[:0], s, canon)
				sig.sign(&sc.mac, sc.sts)
				if hmac.Equal(sc.mac[:], want[:]) {
					sc.canon = canon
					return nil
				}
			}
			sc.canon = canon
			if !otherSpace {
				break // wsAll would build the same canonical request
			}
		}
	}
	return errInvalid(msgSignatureMismatch)
}

// appendStringToSign appends the SigV4 string to sign for canon.
func appendStringToSign(dst []byte, s *claim, canon []byte) []byte {
	sum := sha256.Sum256(canon)
	dst = append(dst, algorithm+"\n"...)
	dst = append(dst, s.amzDate...)
	dst = append(dst, '\n')
	dst = append(dst, s.cred.Date...)
	dst = append(dst, '/')
	dst = append(dst, s.cred.Region...)
	dst = append(dst, '/')
	dst = append(dst, s.cred.Service...)
	dst = append(dst, "/"+terminator+"\n"...)
	return hex.AppendEncode(dst, sum[:])
}

// payloadHashes returns the payload hash(es) to try, written into buf where
// computed. A declared X-Amz-Content-Sha256 is used as declared once the body
// is checked against it: a signature covers the declared hash, not the body,
// so a hash that does not match the body must be refused here.
func payloadHashes(r *http.Request, q url.Values, body []byte, presigned bool, buf *[2 * sha256.Size]byte) (hashes [2][]byte, n int, err *Error) {
	declared := firstValue(r.Header, hContentSHA256)
	if declared == "" && presigned {
		declared = q.Get(qContentSHA256)
	}
	if declared == string(unsignedPayload) {
		return [2][]byte{unsignedPayload}, 1, nil
	}
	sum := sha256.Sum256(body)
	hex.Encode(buf[:], sum[:])
	switch {
	case declared == "" && presigned:
		// A presigned URL carries no body hash; the SDKs presign with the
		// empty body's hash, S3-style clients with UNSIGNED-PAYLOAD.
		return [2][]byte{buf[:], unsignedPayload}, 2, nil
	case declared == "":
		return [2][]byte{buf[:]}, 1, nil
	}
	var got [sha256.Size]byte
	if !decodeHex(got[:], declared) {
		return hashes, 0, errInvalid(msgPayloadHashFormat)
	}
	if got != sum {
		return hashes, 0, errInvalid(msgPayloadHash)
	}
	copy(buf[:], declared) // the client may have written upper-case hex
	return [2][]byte{buf[:]}, 1, nil
}

// decodeHex decodes the hex string s into dst, which it must exactly fill.
func decodeHex(dst []byte, s string) bool {
	if len(s) != 2*len(dst) {
		return false
	}
	for i := range dst {
		hi, ok1 := fromHex(s[2*i])
		lo, ok2 := fromHex(s[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

func fromHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// requestToken is the session token the request presents: the
// X-Amz-Security-Token header, or else the query parameter of that name.
func requestToken(r *http.Request, q url.Values) string {
	if t := firstValue(r.Header, hSecurityToken); t != "" {
		return t
	}
	return q.Get(qSecurityToken)
}

// tokenMatches reports whether the presented token is the one the key
// requires: none for a long-term key, exactly its own for a temporary one.
func tokenMatches(presented, required string) bool {
	if required == "" {
		return presented == ""
	}
	return subtle.ConstantTimeCompare([]byte(presented), []byte(required)) == 1
}
