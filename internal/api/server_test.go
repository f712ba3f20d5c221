package api

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/berthdev/berth/internal/api/sigv4"
	"github.com/berthdev/berth/internal/awsmodel"
)

// TestServiceBodyLimit checks that a service's own MaxBodyBytes replaces the
// front door's cap for requests that name it, and only for those.
func TestServiceBodyLimit(t *testing.T) {
	echo := func(_ context.Context, _ string, body []byte) (any, error) {
		return map[string]int{"n": len(body)}, nil
	}
	srv, err := New(Config{
		Region: "us-east-1", Account: "000000000000", Insecure: true,
		MaxBodyBytes: 1 << 10,
		Services: []*JSONService{
			{TargetPrefix: "Small_1", SigningName: "small", Dispatch: echo},
			{TargetPrefix: "Big_1", SigningName: "big", Dispatch: echo, MaxBodyBytes: 4 << 10},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	body := func(n int) string { return `{"x":"` + strings.Repeat("a", n) + `"}` }
	cases := []struct {
		target string
		size   int
		status int
	}{
		{"Small_1.Op", 900, http.StatusOK},
		{"Small_1.Op", 2 << 10, http.StatusRequestEntityTooLarge},
		{"Big_1.Op", 2 << 10, http.StatusOK},
		{"Big_1.Op", 5 << 10, http.StatusRequestEntityTooLarge},
		{"Unknown_1.Op", 2 << 10, http.StatusRequestEntityTooLarge},
	}
	for _, c := range cases {
		for _, chunked := range []bool{false, true} {
			req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body(c.size)))
			if chunked {
				req.ContentLength = -1 // the cap must hold without a Content-Length too
			}
			req.Header.Set("X-Amz-Target", c.target)
			req.Header.Set("Content-Type", "application/x-amz-json-1.1")
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, req)
			if rec.Code != c.status {
				t.Errorf("%s with %d bytes (chunked %v): status %d, want %d: %s", c.target, c.size, chunked, rec.Code, c.status, rec.Body)
			}
		}
	}
}

// prechecker refuses every request on its headers.
type prechecker struct{}

func (p prechecker) Verify(context.Context, *http.Request, []byte) (sigv4.Result, error) {
	return sigv4.Result{}, errors.New("not reached")
}

func (p prechecker) Precheck(context.Context, *http.Request) error {
	return awsmodel.NewAPIError("UnrecognizedClientException", http.StatusForbidden, "The security token included in the request is invalid.")
}

// countingReader records that it was read.
type countingReader struct {
	r    *strings.Reader
	read *bool
}

func (c countingReader) Read(p []byte) (int, error) { *c.read = true; return c.r.Read(p) }

// TestLargeBodiesArePrechecked: a request to a service with a large body
// cap is refused on its headers, before any of its body is read; others go
// through the ordinary path.
func TestLargeBodiesArePrechecked(t *testing.T) {
	echo := func(_ context.Context, _ string, body []byte) (any, error) {
		return map[string]int{"n": len(body)}, nil
	}
	srv, err := New(Config{
		Region: "us-east-1", Account: "000000000000", Auth: prechecker{},
		Services: []*JSONService{{TargetPrefix: "Big_1", SigningName: "big", Dispatch: echo, MaxBodyBytes: 8 << 20}},
	})
	if err != nil {
		t.Fatal(err)
	}
	read := false
	req := httptest.NewRequest(http.MethodPost, "/", countingReader{strings.NewReader(`{"x":"` + strings.Repeat("a", 4<<20) + `"}`), &read})
	req.Header.Set("X-Amz-Target", "Big_1.Op")
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden || rec.Header().Get("X-Amzn-ErrorType") != "UnrecognizedClientException" || read {
		t.Fatalf("status %d, error %q, body read %v", rec.Code, rec.Header().Get("X-Amzn-ErrorType"), read)
	}
}
