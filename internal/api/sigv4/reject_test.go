package sigv4

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

const baseBody = `{"maxResults":10}`

// signedJSON is an ECS call signed by the Go SDK at signTime and received by
// the server.
func signedJSON(t *testing.T, creds aws.Credentials, signTime time.Time) (*http.Request, []byte) {
	t.Helper()
	req := jsonRequest(t, baseBody)
	signHeader(t, req, []byte(baseBody), creds, signTime)
	return overTheWire(t, req)
}

// withAuth replaces the received request's Authorization header.
func withAuth(r *http.Request, auth string) *http.Request {
	r.Header.Set("Authorization", auth)
	return r
}

// presignedGET is a presigned URL for GET / made at signTime, valid for
// expires ("" leaves X-Amz-Expires out), as received by the server.
func presignedGET(t *testing.T, signTime time.Time, expires string) (*http.Request, []byte) {
	t.Helper()
	u := "http://localhost:4566/"
	if expires != "" {
		u += "?X-Amz-Expires=" + expires
	}
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return overTheWire(t, presign(t, req, longTerm, signTime, payloadHash(nil)))
}

// editQuery rewrites the received request's query string.
func editQuery(r *http.Request, edit func(q url.Values)) *http.Request {
	q := r.URL.Query()
	edit(q)
	r.URL.RawQuery = q.Encode()
	return r
}

const mismatch = "The request signature we calculated does not match the signature you provided. " +
	"Check your AWS Secret Access Key and signing method. Consult the service documentation for details."

// TestVerifyRejects checks each way a request is refused: the AWS code, HTTP
// status and message, word for word.
func TestVerifyRejects(t *testing.T) {
	tests := []struct {
		name string
		// build returns the request as received, its body, and the exact
		// message expected (the Authorization header may be part of it).
		build     func(t *testing.T) (r *http.Request, body []byte, msg string)
		now       time.Time // zero means t0
		code      string
		status    int
		forbidden []string // must not appear in the message
	}{
		{
			name: "unsigned",
			build: func(t *testing.T) (*http.Request, []byte, string) {
				r, b := overTheWire(t, jsonRequest(t, baseBody))
				return r, b, "Missing Authentication Token"
			},
			code: CodeMissingAuthenticationToken, status: 403,
		},
		{
			name: "wrong secret",
			build: func(t *testing.T) (*http.Request, []byte, string) {
				r, b := signedJSON(t, awsCreds(longTermKey, "not-the-secret", ""), t0)
				return r, b, mismatch
			},
			code: CodeInvalidSignature, status: 400,
		},
		{
			name: "unknown access key",
			build: func(t *testing.T) (*http.Request, []byte, string) {
				r, b := signedJSON(t, awsCreds("AKIAUNKNOWNKEY000000", longTermSecret, ""), t0)
				return r, b, "The security token included in the request is invalid."
			},
			code: CodeUnrecognizedClient, status: 400,
		},
		{
			name: "stale date",
			build: func(t *testing.T) (*http.Request, []byte, string) {
				r, b := signedJSON(t, longTerm, t0.Add(-15*time.Minute-time.Second))
				return r, b, "Signature expired: 20260101T114459Z is now earlier than 20260101T114500Z (20260101T120000Z - 15 min.)"
			},
			code: CodeInvalidSignature, status: 400,
		},
		{
			name: "future date",
			build: func(t *testing.T) (*http.Request, []byte, string) {
				r, b := signedJSON(t, longTerm, t0.Add(15*time.Minute+time.Second))
				return r, b, "Signature not yet current: 20260101T121501Z is still later than 20260101T121500Z (20260101T120000Z + 15 min.)"
			},
			code: CodeInvalidSignature, status: 400,
		},
		{
			name: "credential scope date is not the X-Amz-Date date",
			build: func(t *testing.T) (*http.Request, []byte, string) {
				r, b := signedJSON(t, longTerm, t0)
				auth := strings.Replace(r.Header.Get("Authorization"), "/20260101/", "/20251231/", 1)
				return withAuth(r, auth), b, "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date " +
					"from HTTP: '20251231' != '20260101', from '20260101T120000Z'."
			},
			code: CodeInvalidSignature, status: 400,
		},
		{
			name: "missing SignedHeaders",
			build: func(t *testing.T) (*http.Request, []byte, string) {
				r, b := signedJSON(t, longTerm, t0)
				auth := "AWS4-HMAC-SHA256 Credential=" + authParam(t, r, "Credential") + ", Signature=" + authParam(t, r, "Signature")
				return withAuth(r, auth), b, "Authorization header requires 'SignedHeaders' parameter. Authorization=" + auth
			},
			code: CodeIncompleteSignature, status: 400,
		},
		{
			name: "missing Signature",
			build: func(t *testing.T) (*http.Request, []byte, string) {
				r, b := signedJSON(t, longTerm, t0)
				auth := "AWS4-HMAC-SHA256 Credential=" + authParam(t, r, "Credential") + ", SignedHeaders=" + authParam(t, r, "SignedHeaders")
				return withAuth(r, auth), b, "Authorization header requires 'Signature' parameter. Authorization=" + auth
			},
			code: CodeIncompleteSignature, status: 400,
		},
		{
			name: "missing Credential",
			build: func(t *testing.T) (*http.Request, []byte, string) {
				r, b := signedJSON(t, longTerm, t0)
				auth := "AWS4-HMAC-SHA256 SignedHeaders=" + authParam(t, r, "SignedHeaders") + ", Signature=" + authParam(t, r, "Signature")
				return withAuth(r, auth), b, "Authorization header requires 'Credential' parameter. Authorization=" + auth
			},
			code: CodeIncompleteSignature, status: 400,
		},
		{
			name: "missing every part and the date",
			build: func(t *testing.T) (*http.Request, []byte, string) {
				r, b := signedJSON(t, longTerm, t0)
				r.Header.Del("X-Amz-Date")
				return withAuth(r, "AWS4-HMAC-SHA256"), b,
					"Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. " +
						"Authorization header requires 'SignedHeaders' parameter. Authorization header requires existence of " +
						"either a 'X-Amz-Date' or a 'Date' header. Authorization=AWS4-HMAC-SHA256"
			},
			code: CodeIncompleteSignature, status: 400,
		},
		{
			name: "missing X-Amz-Date",
			build: func(t *testing.T) (*http.Request, []byte, string) {
				r, b := signedJSON(t, longTerm, t0)
				r.Header.Del("X-Amz-Date")
				return r, b, "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. " +
					"Authorization=" + r.Header.Get("Authorization")
			},
			code: CodeIncompleteSignature, status: 400,
		},
		{
			name: "a SigV2 header",
			build: func(t *testing.T) (*http.Request, []byte, string) {
				r, b := signedJSON(t, longTerm, t0)
				return withAuth(r, "AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg="), b,
					"Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. " +
						"Authorization header requires 'SignedHeaders' parameter. " +
						"Authorization=AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg="
			},
			code: CodeIncompleteSignature, status: 400,
		},
		{
			name: "unsupported algorithm",
			build: func(t *testing.T) (*http.Request, []byte, string) {
				r, b := signedJSON(t, longTerm, t0)
				auth := strings.Replace(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256", 1)
				return withAuth(r, auth), b, "Unsupported AWS 'algorithm': 'AWS4-ECDSA-P256-SHA256'."
			},
			code: CodeIncompleteSignature, status: 400,
		},
		{
			name: "a parameter without an equal sign",
			build: func(t *testing.T) (*http.Request, []byte, string) {
				r, b := signedJSON(t, longTerm, t0)
				auth := strings.Replace(r.Header.Get("Authorization"), "Credential=", "Credential= ", 1)
				return withAuth(r, auth), b, "'" + longTermKey + "/20260101/us-east-1/ecs/aws4_request' not a valid " +
					"key=value pair (missing equal-sign) in Authorization header: '" + auth + "'"
			},
			code: CodeIncompleteSignature, status: 400,
		},
		{
			name: "X-Amz-Date not in ISO 8601 basic format",
			build: func(t *testing.T) (*http.Request, []byte, string) {
				r, b := signedJSON(t, longTerm, t0)
				r.Header.Set("X-Amz-Date", "2026-01-01T12:00:00Z")
				return r, b, "Date must be in ISO-8601 'basic format'. Got '2026-01-01T12:00:00Z'. See http://en.wikipedia.org/wiki/ISO_8601"
			},
			code: CodeIncompleteSignature, status: 400,
		},
		{
			name: "Host not signed",
			build: func(t *testing.T) (*http.Request, []byte, string) {
				r, b := signedJSON(t, longTerm, t0)
				auth := strings.Replace(r.Header.Get("Authorization"), "host;", "", 1)
				return withAuth(r, auth), b, "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
			},
			code: CodeInvalidSignature, status: 400,
		},
		{
			name: "credential with four elements",
			build: func(t *testing.T) (*http.Request, []byte, string) {
				r, b := signedJSON(t, longTerm, t0)
				auth := strings.Replace(r.Header.Get("Authorization"), "/ecs/aws4_request", "/aws4_request", 1)
				return withAuth(r, auth), b, "Credential must have exactly 5 slash-delimited elements, e.g. " +
					"keyid/date/region/service/term, got '" + longTermKey + "/20260101/us-east-1/aws4_request'"
			},
			code: CodeIncompleteSignature, status: 400,
		},
		{
			name: "credential with a wrong terminator",
			build: func(t *testing.T) (*http.Request, []byte, string) {
				r, b := signedJSON(t, longTerm, t0)
				auth := strings.Replace(r.Header.Get("Authorization"), "aws4_request", "aws5_request", 1)
				return withAuth(r, auth), b, "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'."
			},
			code: CodeInvalidSignature, status: 400,
		},
		{
			name: "tampered body",
			build: func(t *testing.T) (*http.Request, []byte, string) {
				r, _ := signedJSON(t, longTerm, t0)
				return r, []byte(`{"maxResults":99}`), mismatch
			},
			code: CodeInvalidSignature, status: 400,
		},
		{
			name: "tampered signed header",
			build: func(t *testing.T) (*http.Request, []byte, string) {
				r, b := signedJSON(t, longTerm, t0)
				r.Header.Set("X-Amz-Target", "AmazonEC2ContainerServiceV20141113.DeleteCluster")
				return r, b, mismatch
			},
			code: CodeInvalidSignature, status: 400,
		},
		{
			name: "tampered path",
			build: func(t *testing.T) (*http.Request, []byte, string) {
				r, b := signedJSON(t, longTerm, t0)
				r.URL.Path = "/other"
				return r, b, mismatch
			},
			code: CodeInvalidSignature, status: 400,
		},
		{
			name: "signature that is not hex",
			build: func(t *testing.T) (*http.Request, []byte, string) {
				r, b := signedJSON(t, longTerm, t0)
				sig := authParam(t, r, "Signature")
				return withAuth(r, strings.Replace(r.Header.Get("Authorization"), sig, "zz"+sig[2:], 1)), b, mismatch
			},
			code: CodeInvalidSignature, status: 400,
		},
		{
			name: "declared payload hash that is not the body's",
			build: func(t *testing.T) (*http.Request, []byte, string) {
				req := jsonRequest(t, baseBody)
				req.Header.Set("X-Amz-Content-Sha256", payloadHash([]byte(baseBody)))
				signHeader(t, req, []byte(baseBody), longTerm, t0)
				r, _ := overTheWire(t, req)
				return r, []byte(`{"maxResults":99}`), "The provided 'x-amz-content-sha256' header does not match what was computed."
			},
			code: CodeInvalidSignature, status: 400,
		},
		{
			name: "streaming payload",
			build: func(t *testing.T) (*http.Request, []byte, string) {
				req := jsonRequest(t, baseBody)
				req.Header.Set("X-Amz-Content-Sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
				if err := signWith(req, longTerm, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", t0); err != nil {
					t.Fatal(err)
				}
				r, b := overTheWire(t, req)
				return r, b, msgPayloadHashFormat
			},
			code: CodeInvalidSignature, status: 400,
		},
		{
			name: "session token required but absent",
			build: func(t *testing.T) (*http.Request, []byte, string) {
				r, b := signedJSON(t, awsCreds(sessionKey, sessionSecret, ""), t0)
				return r, b, "The security token included in the request is invalid."
			},
			code: CodeUnrecognizedClient, status: 400,
		},
		{
			name: "session token mismatched",
			build: func(t *testing.T) (*http.Request, []byte, string) {
				r, b := signedJSON(t, awsCreds(sessionKey, sessionSecret, sessionToken+"x"), t0)
				return r, b, "The security token included in the request is invalid."
			},
			code: CodeUnrecognizedClient, status: 400,
		},
		{
			name: "session token with a long-term key",
			build: func(t *testing.T) (*http.Request, []byte, string) {
				r, b := signedJSON(t, awsCreds(longTermKey, longTermSecret, sessionToken), t0)
				return r, b, "The security token included in the request is invalid."
			},
			code: CodeUnrecognizedClient, status: 400,
		},
		{
			name: "both the header and the query form",
			build: func(t *testing.T) (*http.Request, []byte, string) {
				r, b := presignedGET(t, t0, "60")
				r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=x")
				return r, b, "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header."
			},
			code: CodeInvalidSignature, status: 400,
		},
		{
			name: "expired presigned URL",
			build: func(t *testing.T) (*http.Request, []byte, string) {
				r, b := presignedGET(t, t0, "300")
				return r, b, "Request has expired."
			},
			now:  t0.Add(301 * time.Second),
			code: CodeInvalidSignature, status: 400,
		},
		{
			name: "presigned URL not yet current",
			build: func(t *testing.T) (*http.Request, []byte, string) {
				r, b := presignedGET(t, t0.Add(16*time.Minute), "300")
				return r, b, "Signature not yet current: 20260101T121600Z is still later than 20260101T121500Z (20260101T120000Z + 15 min.)"
			},
			code: CodeInvalidSignature, status: 400,
		},
		{
			name: "presigned URL without X-Amz-Expires, past the skew",
			build: func(t *testing.T) (*http.Request, []byte, string) {
				r, b := presignedGET(t, t0.Add(-16*time.Minute), "")
				return r, b, "Signature expired: 20260101T114400Z is now earlier than 20260101T114500Z (20260101T120000Z - 15 min.)"
			},
			code: CodeInvalidSignature, status: 400,
		},
		{
			name: "X-Amz-Expires over a week",
			build: func(t *testing.T) (*http.Request, []byte, string) {
				r, b := presignedGET(t, t0, "604801")
				return r, b, "X-Amz-Expires must be less than a week (in seconds) that is 604800"
			},
			code: CodeIncompleteSignature, status: 400,
		},
		{
			name: "X-Amz-Expires not a number",
			build: func(t *testing.T) (*http.Request, []byte, string) {
				r, b := presignedGET(t, t0, "soon")
				return r, b, "X-Amz-Expires should be a number"
			},
			code: CodeIncompleteSignature, status: 400,
		},
		{
			name: "X-Amz-Expires negative",
			build: func(t *testing.T) (*http.Request, []byte, string) {
				r, b := presignedGET(t, t0, "-1")
				return r, b, "X-Amz-Expires must be non-negative"
			},
			code: CodeIncompleteSignature, status: 400,
		},
		{
			name: "presigned URL missing its signature and credential",
			build: func(t *testing.T) (*http.Request, []byte, string) {
				r, b := presignedGET(t, t0, "60")
				r = editQuery(r, func(q url.Values) { q.Del("X-Amz-Signature"); q.Del("X-Amz-Credential") })
				return r, b, "AWS query-string parameters must include 'X-Amz-Credential'. " +
					"AWS query-string parameters must include 'X-Amz-Signature'. Re-examine the query-string parameters."
			},
			code: CodeIncompleteSignature, status: 400,
		},
		{
			name: "presigned URL with a tampered parameter",
			build: func(t *testing.T) (*http.Request, []byte, string) {
				r, b := presignedGET(t, t0, "60")
				r = editQuery(r, func(q url.Values) { q.Set("X-Amz-Expires", "3600") })
				return r, b, mismatch
			},
			code: CodeInvalidSignature, status: 400,
		},
		{
			name: "presigned URL with a wrong session token",
			build: func(t *testing.T) (*http.Request, []byte, string) {
				req, _ := http.NewRequest(http.MethodGet, "http://localhost:4566/?X-Amz-Expires=60", nil)
				r, b := overTheWire(t, presign(t, req, awsCreds(sessionKey, sessionSecret, "stolen"), t0, payloadHash(nil)))
				return r, b, "The security token included in the request is invalid."
			},
			code: CodeUnrecognizedClient, status: 400,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, body, msg := tt.build(t)
			now := tt.now
			if now.IsZero() {
				now = t0
			}
			_, err := newVerifier(now).Verify(context.Background(), r, body)
			if err == nil {
				t.Fatal("Verify accepted the request")
			}
			e := asError(t, err)
			if e.Code != tt.code || e.HTTPStatus != tt.status {
				t.Errorf("got %s (%d), want %s (%d)", e.Code, e.HTTPStatus, tt.code, tt.status)
			}
			if e.Message != msg {
				t.Errorf("message:\n got %q\nwant %q", e.Message, msg)
			}
			for _, secret := range []string{longTermSecret, sessionSecret, sessionToken} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q reveals a secret", err)
				}
			}
		})
	}
}

// TestVerifyRevealsNoComputedSignature checks that a refused signature's
// error names neither the secret nor the signature the server computed.
func TestVerifyRevealsNoComputedSignature(t *testing.T) {
	good, _ := signedJSON(t, longTerm, t0)
	computed := authParam(t, good, "Signature")
	r, b := signedJSON(t, awsCreds(longTermKey, "not-the-secret", ""), t0)
	_, err := newVerifier(t0).Verify(context.Background(), r, b)
	if err == nil {
		t.Fatal("Verify accepted a wrong signature")
	}
	for _, s := range []string{computed, longTermSecret, "not-the-secret"} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error %q contains %q", err, s)
		}
	}
}

// TestVerifyWithoutLookup refuses every key when no Lookup is set.
func TestVerifyWithoutLookup(t *testing.T) {
	r, b := signedJSON(t, longTerm, t0)
	_, err := (&Verifier{Now: func() time.Time { return t0 }}).Verify(context.Background(), r, b)
	if e := asError(t, err); e.Code != CodeUnrecognizedClient {
		t.Fatalf("code = %s, want %s", e.Code, CodeUnrecognizedClient)
	}
}

// TestVerifyCustomSkew narrows the window and shows it in the message.
func TestVerifyCustomSkew(t *testing.T) {
	r, b := signedJSON(t, longTerm, t0.Add(-6*time.Minute))
	v := newVerifier(t0)
	v.MaxSkew = 5 * time.Minute
	_, err := v.Verify(context.Background(), r, b)
	want := "Signature expired: 20260101T115400Z is now earlier than 20260101T115500Z (20260101T120000Z - 5 min.)"
	if e := asError(t, err); e.Message != want {
		t.Fatalf("message = %q, want %q", e.Message, want)
	}
}
