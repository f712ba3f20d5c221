package sigv4

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// trickyQuery has what trips canonical query strings up: a space, a literal
// '+', non-ASCII names and values, a repeated key whose values sort against
// their order, empty values, a key without '=', and characters that must be
// escaped.
func trickyQuery() string {
	q := url.Values{
		"b":      {"hello world"},
		"a":      {"1+2", "0", ""},
		"ü":      {"ñ/é"},
		"empty":  {""},
		"tilde~": {"x*y(z)'!"},
		"Action": {"DescribeLoadBalancers"},
	}
	return q.Encode() + "&flag"
}

// trickyPath needs escaping: a space, UTF-8, an escaped slash inside a
// segment, '+', ';', '=' and '~'.
const trickyPath = "/a%20b/%C3%BC/c%2Fd/x+y;v=1/~z"

// TestVerifyAccepts signs requests with the AWS SDK for Go v2 and checks that
// they verify as the server receives them.
func TestVerifyAccepts(t *testing.T) {
	tests := []struct {
		name string
		// build returns the request as the server receives it, and its body.
		build func(t *testing.T) (*http.Request, []byte)
		now   time.Time // the server's clock; zero means t0
		want  Result
	}{
		{
			name: "JSON 1.1 POST signed by the Go SDK (content-length signed)",
			build: func(t *testing.T) (*http.Request, []byte) {
				body := `{"maxResults":10}`
				req := jsonRequest(t, body)
				signHeader(t, req, []byte(body), longTerm, t0)
				if got := authParam(t, req, "SignedHeaders"); !strings.Contains(got, "content-length") {
					t.Fatalf("SignedHeaders = %q, want content-length signed", got)
				}
				return overTheWire(t, req)
			},
			want: Result{AccessKeyID: longTermKey, Region: testRegion, Service: testService, SignedAt: t0},
		},
		{
			name: "request handed over in process: Content-Length only in r.ContentLength",
			build: func(t *testing.T) (*http.Request, []byte) {
				body := `{"maxResults":10}`
				req := jsonRequest(t, body)
				signHeader(t, req, []byte(body), longTerm, t0)
				if req.Header.Get("Content-Length") != "" {
					t.Fatal("the client request carries a Content-Length header")
				}
				return req, []byte(body)
			},
			want: Result{AccessKeyID: longTermKey, Region: testRegion, Service: testService, SignedAt: t0},
		},
		{
			name: "botocore style: content-length not signed, content-type and x-amz-target signed",
			build: func(t *testing.T) (*http.Request, []byte) {
				body := []byte(`{"cluster":"default"}`)
				// botocore signs before the body's length is set; reproduce
				// that by signing a body-less request with the body's hash.
				req, _ := http.NewRequest(http.MethodPost, "http://localhost:4566/", nil)
				req.Header.Set("Content-Type", "application/x-amz-json-1.1")
				req.Header.Set("X-Amz-Target", ecsTarget)
				signHeader(t, req, body, longTerm, t0)
				if got, want := authParam(t, req, "SignedHeaders"), "content-type;host;x-amz-date;x-amz-target"; got != want {
					t.Fatalf("SignedHeaders = %q, want %q", got, want)
				}
				req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
				return overTheWire(t, req)
			},
			want: Result{AccessKeyID: longTermKey, Region: testRegion, Service: testService, SignedAt: t0},
		},
		{
			name: "GET with a tricky query string",
			build: func(t *testing.T) (*http.Request, []byte) {
				req, _ := http.NewRequest(http.MethodGet, "http://localhost:4566/?"+trickyQuery(), nil)
				signHeader(t, req, nil, longTerm, t0)
				return overTheWire(t, req)
			},
			want: Result{AccessKeyID: longTermKey, Region: testRegion, Service: testService, SignedAt: t0},
		},
		{
			name: "GET with a path that needs escaping",
			build: func(t *testing.T) (*http.Request, []byte) {
				req, _ := http.NewRequest(http.MethodGet, "http://localhost:4566"+trickyPath+"?x=1", nil)
				signHeader(t, req, nil, longTerm, t0)
				r, body := overTheWire(t, req)
				if r.URL.EscapedPath() != trickyPath {
					t.Fatalf("path on the wire = %q, want %q", r.URL.EscapedPath(), trickyPath)
				}
				return r, body
			},
			want: Result{AccessKeyID: longTermKey, Region: testRegion, Service: testService, SignedAt: t0},
		},
		{
			name: "presigned GET with a tricky query and path",
			build: func(t *testing.T) (*http.Request, []byte) {
				req, _ := http.NewRequest(http.MethodGet, "http://localhost:4566"+trickyPath+"?"+trickyQuery()+"&X-Amz-Expires=300", nil)
				return overTheWire(t, presign(t, req, longTerm, t0, payloadHash(nil)))
			},
			now:  t0.Add(299 * time.Second),
			want: Result{AccessKeyID: longTermKey, Region: testRegion, Service: testService, SignedAt: t0, Presigned: true},
		},
		{
			name: "presigned POST with its JSON body",
			build: func(t *testing.T) (*http.Request, []byte) {
				body := `{"maxResults":10}`
				req, _ := http.NewRequest(http.MethodPost, "http://localhost:4566/?X-Amz-Expires=60", nil)
				req.Header.Set("Content-Type", "application/x-amz-json-1.1")
				out := presign(t, req, longTerm, t0, payloadHash([]byte(body)))
				out.Body, out.ContentLength = io.NopCloser(strings.NewReader(body)), int64(len(body))
				return overTheWire(t, out)
			},
			want: Result{AccessKeyID: longTermKey, Region: testRegion, Service: testService, SignedAt: t0, Presigned: true},
		},
		{
			name: "presigned with UNSIGNED-PAYLOAD, S3 style",
			build: func(t *testing.T) (*http.Request, []byte) {
				req, _ := http.NewRequest(http.MethodGet, "http://localhost:4566/obj?X-Amz-Expires=60", nil)
				return overTheWire(t, presign(t, req, longTerm, t0, "UNSIGNED-PAYLOAD"))
			},
			want: Result{AccessKeyID: longTermKey, Region: testRegion, Service: testService, SignedAt: t0, Presigned: true},
		},
		{
			name: "presigned without X-Amz-Expires, within the clock skew",
			build: func(t *testing.T) (*http.Request, []byte) {
				req, _ := http.NewRequest(http.MethodGet, "http://localhost:4566/", nil)
				return overTheWire(t, presign(t, req, longTerm, t0, payloadHash(nil)))
			},
			now:  t0.Add(14 * time.Minute),
			want: Result{AccessKeyID: longTermKey, Region: testRegion, Service: testService, SignedAt: t0, Presigned: true},
		},
		{
			name: "an unsigned extra header is ignored",
			build: func(t *testing.T) (*http.Request, []byte) {
				body := `{}`
				req := jsonRequest(t, body)
				signHeader(t, req, []byte(body), longTerm, t0)
				req.Header.Set("X-Forwarded-For", "10.0.0.1")
				req.Header.Set("X-Amzn-Trace-Id", "Root=1-67891233-abcdef012345678912345678")
				return overTheWire(t, req)
			},
			want: Result{AccessKeyID: longTermKey, Region: testRegion, Service: testService, SignedAt: t0},
		},
		{
			name: "temporary credentials with their session token",
			build: func(t *testing.T) (*http.Request, []byte) {
				body := `{}`
				req := jsonRequest(t, body)
				signHeader(t, req, []byte(body), awsCreds(sessionKey, sessionSecret, sessionToken), t0)
				return overTheWire(t, req)
			},
			want: Result{AccessKeyID: sessionKey, Region: testRegion, Service: testService, SignedAt: t0},
		},
		{
			name: "presigned with a session token",
			build: func(t *testing.T) (*http.Request, []byte) {
				req, _ := http.NewRequest(http.MethodGet, "http://localhost:4566/?X-Amz-Expires=900", nil)
				return overTheWire(t, presign(t, req, awsCreds(sessionKey, sessionSecret, sessionToken), t0, payloadHash(nil)))
			},
			want: Result{AccessKeyID: sessionKey, Region: testRegion, Service: testService, SignedAt: t0, Presigned: true},
		},
		{
			name: "X-Amz-Content-Sha256 declared and signed",
			build: func(t *testing.T) (*http.Request, []byte) {
				body := `{"a":1}`
				req := jsonRequest(t, body)
				req.Header.Set("X-Amz-Content-Sha256", payloadHash([]byte(body)))
				signHeader(t, req, []byte(body), longTerm, t0)
				return overTheWire(t, req)
			},
			want: Result{AccessKeyID: longTermKey, Region: testRegion, Service: testService, SignedAt: t0},
		},
		{
			name: "X-Amz-Content-Sha256: UNSIGNED-PAYLOAD",
			build: func(t *testing.T) (*http.Request, []byte) {
				req := jsonRequest(t, `{"a":1}`)
				req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
				if err := signWith(req, longTerm, "UNSIGNED-PAYLOAD", t0); err != nil {
					t.Fatal(err)
				}
				return overTheWire(t, req)
			},
			want: Result{AccessKeyID: longTermKey, Region: testRegion, Service: testService, SignedAt: t0},
		},
		{
			name: "signed 15 minutes ago, at the edge of the window",
			build: func(t *testing.T) (*http.Request, []byte) {
				req := jsonRequest(t, `{}`)
				signHeader(t, req, []byte(`{}`), longTerm, t0.Add(-15*time.Minute))
				return overTheWire(t, req)
			},
			want: Result{AccessKeyID: longTermKey, Region: testRegion, Service: testService, SignedAt: t0.Add(-15 * time.Minute)},
		},
		{
			name: "signed 15 minutes ahead, at the other edge",
			build: func(t *testing.T) (*http.Request, []byte) {
				req := jsonRequest(t, `{}`)
				signHeader(t, req, []byte(`{}`), longTerm, t0.Add(15*time.Minute))
				return overTheWire(t, req)
			},
			now:  t0.Add(999 * time.Millisecond), // sub-second clock noise does not count
			want: Result{AccessKeyID: longTermKey, Region: testRegion, Service: testService, SignedAt: t0.Add(15 * time.Minute)},
		},
		{
			name: "scope region and service are passed through unjudged",
			build: func(t *testing.T) (*http.Request, []byte) {
				req := jsonRequest(t, `{}`)
				err := newSigner().SignHTTP(context.Background(), longTerm, req, payloadHash([]byte(`{}`)), "elasticloadbalancing", "eu-west-3", t0)
				if err != nil {
					t.Fatal(err)
				}
				return overTheWire(t, req)
			},
			want: Result{AccessKeyID: longTermKey, Region: "eu-west-3", Service: "elasticloadbalancing", SignedAt: t0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, body := tt.build(t)
			now := tt.now
			if now.IsZero() {
				now = t0
			}
			got, err := newVerifier(now).Verify(context.Background(), r, body)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !got.SignedAt.Equal(tt.want.SignedAt) {
				t.Errorf("SignedAt = %v, want %v", got.SignedAt, tt.want.SignedAt)
			}
			got.SignedAt, tt.want.SignedAt = time.Time{}, time.Time{}
			if got != tt.want {
				t.Errorf("Result = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestVerifyCachesDerivedKeys checks that repeated requests reuse one derived
// key and that the cache stays bounded.
func TestVerifyCachesDerivedKeys(t *testing.T) {
	v := newVerifier(t0)
	for i := 0; i < 3; i++ {
		req := jsonRequest(t, `{}`)
		signHeader(t, req, []byte(`{}`), longTerm, t0)
		r, body := overTheWire(t, req)
		if _, err := v.Verify(context.Background(), r, body); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(v.keys.m); n != 1 {
		t.Fatalf("cache holds %d keys after three requests of one scope, want 1", n)
	}
	for i := 0; i < 2*keyCacheSize; i++ {
		v.keys.signerFor(longTermSecret, "20260101", testRegion, "svc"+string(rune('a'+i%26))+string(rune('a'+i/26)))
	}
	if n := len(v.keys.m); n > keyCacheSize {
		t.Fatalf("cache holds %d keys, bound is %d", n, keyCacheSize)
	}
}

// TestDeriveKeyKnownAnswer checks the key chain against the example in AWS's
// documentation ("Examples of how to derive a signing key for Signature
// Version 4").
func TestDeriveKeyKnownAnswer(t *testing.T) {
	key := deriveKey("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215", "us-east-1", "iam")
	const want = "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
	if got := hexString(key[:]); got != want {
		t.Fatalf("kSigning = %s, want %s", got, want)
	}
}

// TestVerifyConcurrent shares one Verifier, and so its key cache and pooled
// HMACs, between goroutines; run it with -race.
func TestVerifyConcurrent(t *testing.T) {
	v := newVerifier(t0)
	type signed struct {
		r    *http.Request
		body []byte
	}
	var reqs []signed
	for _, c := range []struct {
		creds   aws.Credentials
		service string
	}{
		{longTerm, "ecs"}, {longTerm, "logs"}, {awsCreds(sessionKey, sessionSecret, sessionToken), "ecs"},
	} {
		body := `{"n":1}`
		req := jsonRequest(t, body)
		if err := newSigner().SignHTTP(context.Background(), c.creds, req, payloadHash([]byte(body)), c.service, testRegion, t0); err != nil {
			t.Fatal(err)
		}
		r, b := overTheWire(t, req)
		reqs = append(reqs, signed{r, b})
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				s := reqs[(g+i)%len(reqs)]
				if _, err := v.Verify(context.Background(), s.r, s.body); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
