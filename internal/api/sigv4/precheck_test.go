package sigv4

import (
	"context"
	"testing"
	"time"
)

// TestPrecheck: the header-only checks pass a well-formed signature by a
// known key (whatever the body), and refuse an unknown key, a stale date
// and an unsigned request with Verify's own errors.
func TestPrecheck(t *testing.T) {
	v := newVerifier(t0)
	req, _ := signedJSON(t, longTerm, t0)
	if err := v.Precheck(context.Background(), req); err != nil {
		t.Fatalf("a request signed by a known key: %v", err)
	}
	unknown, _ := signedJSON(t, awsCreds("AKIAUNKNOWNKEY000000", "secret", ""), t0)
	stale, _ := signedJSON(t, longTerm, t0.Add(-time.Hour))
	unsigned, _ := signedJSON(t, longTerm, t0)
	unsigned.Header.Del("Authorization")
	for name, want := range map[string]struct {
		got  error
		code string
	}{
		"unknown key": {v.Precheck(context.Background(), unknown), "UnrecognizedClientException"},
		"stale date":  {v.Precheck(context.Background(), stale), "InvalidSignatureException"},
		"unsigned":    {v.Precheck(context.Background(), unsigned), "MissingAuthenticationTokenException"},
	} {
		if want.got == nil || asError(t, want.got).Code != want.code {
			t.Errorf("%s: %v, want %s", name, want.got, want.code)
		}
	}
}
