package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
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
