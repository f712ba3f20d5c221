package sigv4

import (
	"context"
	"testing"
)

// Run with:
//
//	go test -run '^$' -bench . -benchmem ./internal/api/sigv4
//
// BenchmarkVerify is the hot path: an ECS JSON call in the header form whose
// signing key is already cached. BenchmarkSignHTTPPeer signs the same request
// with the Go SDK's signer, the peer to read BenchmarkVerify against;
// BenchmarkVerifyKeyMiss derives the key on every call.

const benchBody = `{"cluster":"default","serviceName":"web","taskDefinition":"web:42","desiredCount":3}`

func BenchmarkVerify(b *testing.B) {
	req := jsonRequest(b, benchBody)
	signHeader(b, req, []byte(benchBody), longTerm, t0)
	r, body := overTheWire(b, req)
	v := newVerifier(t0)
	ctx := context.Background()
	if _, err := v.Verify(ctx, r, body); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := v.Verify(ctx, r, body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyKeyMiss(b *testing.B) {
	req := jsonRequest(b, benchBody)
	signHeader(b, req, []byte(benchBody), longTerm, t0)
	r, body := overTheWire(b, req)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := newVerifier(t0).Verify(ctx, r, body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSignHTTPPeer(b *testing.B) {
	req := jsonRequest(b, benchBody)
	hash := payloadHash([]byte(benchBody))
	signer := newSigner()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := signer.SignHTTP(ctx, longTerm, req, hash, testService, testRegion, t0); err != nil {
			b.Fatal(err)
		}
	}
}
