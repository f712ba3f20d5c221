package sigv4

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// The test clock, and the keys the test server knows.
var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

const (
	testRegion  = "us-east-1"
	testService = "ecs"

	longTermKey    = "AKIAIOSFODNN7EXAMPLE"
	longTermSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

	sessionKey    = "ASIAIOSFODNN7EXAMPLE"
	sessionSecret = "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY"
	sessionToken  = "FwoGZXIvYXdzEXAMPLE//////////wEaDEXAMPLETOKEN+/=="

	ecsTarget = "AmazonEC2ContainerServiceV20141113.ListClusters"
)

var testKeys = map[string]Credentials{
	longTermKey: {AccessKeyID: longTermKey, SecretAccessKey: longTermSecret},
	sessionKey:  {AccessKeyID: sessionKey, SecretAccessKey: sessionSecret, SessionToken: sessionToken},
}

func lookupIn(keys map[string]Credentials) func(context.Context, string) (Credentials, bool) {
	return func(_ context.Context, id string) (Credentials, bool) {
		c, ok := keys[id]
		return c, ok
	}
}

// newVerifier returns a verifier that knows testKeys and whose clock stands
// still at now.
func newVerifier(now time.Time) *Verifier {
	return &Verifier{Lookup: lookupIn(testKeys), Now: func() time.Time { return now }}
}

// awsCreds are the credentials a client signs with.
func awsCreds(id, secret, token string) aws.Credentials {
	return aws.Credentials{AccessKeyID: id, SecretAccessKey: secret, SessionToken: token}
}

var longTerm = awsCreds(longTermKey, longTermSecret, "")

func payloadHash(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

// jsonRequest is an ECS call as the Go SDK builds it: AWS JSON 1.1, POST /.
func jsonRequest(t testing.TB, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://localhost:4566/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", ecsTarget)
	req.Header.Set("Amz-Sdk-Invocation-Id", "7f5b6a4e-6a2e-4cde-9a57-0f8d0f0e1c11")
	req.Header.Set("Amz-Sdk-Request", "attempt=1; max=3")
	return req
}

// signHeader signs req in the Authorization-header form with the Go SDK's
// signer, as if at signTime.
func signHeader(t testing.TB, req *http.Request, body []byte, creds aws.Credentials, signTime time.Time) {
	t.Helper()
	err := v4.NewSigner().SignHTTP(context.Background(), creds, req, payloadHash(body), testService, testRegion, signTime)
	if err != nil {
		t.Fatal(err)
	}
}

// presign presigns req with the Go SDK's signer and returns the request a
// holder of the URL would send.
func presign(t testing.TB, req *http.Request, creds aws.Credentials, signTime time.Time, payload string) *http.Request {
	t.Helper()
	uri, headers, err := v4.NewSigner().PresignHTTP(context.Background(), creds, req, payload, testService, testRegion, signTime)
	if err != nil {
		t.Fatal(err)
	}
	out, err := http.NewRequest(req.Method, uri, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range headers {
		if !strings.EqualFold(k, "host") {
			out.Header[k] = vs
		}
	}
	return out
}

// overTheWire sends a client request through net/http's wire format and
// returns it as a server would see it, with its body read. This is what makes
// the tests honest about Host, Content-Length and path escaping.
func overTheWire(t testing.TB, req *http.Request) (*http.Request, []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := req.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return readRequest(t, buf.String())
}

// readRequest parses a raw HTTP/1.1 request as the server does.
func readRequest(t testing.TB, raw string) (*http.Request, []byte) {
	t.Helper()
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return r, body
}

// asError returns err as an *Error, failing the test if it is not one.
func asError(t testing.TB, err error) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *sigv4.Error", err, err)
	}
	return e
}

// authParam returns one parameter of the Authorization header.
func authParam(t testing.TB, r *http.Request, name string) string {
	t.Helper()
	a, err := parseAuthorization(r.Header.Get("Authorization"))
	if err != nil {
		t.Fatal(err)
	}
	switch name {
	case "Credential":
		return a.Credential
	case "SignedHeaders":
		return a.SignedHeaders
	case "Signature":
		return a.Signature
	}
	t.Fatalf("no parameter %q", name)
	return ""
}

func newSigner() *v4.Signer { return v4.NewSigner() }

// signWith signs req in the header form with an explicit payload hash.
func signWith(req *http.Request, creds aws.Credentials, payload string, signTime time.Time) error {
	return v4.NewSigner().SignHTTP(context.Background(), creds, req, payload, testService, testRegion, signTime)
}

func hexString(b []byte) string { return hex.EncodeToString(b) }
