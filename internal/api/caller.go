package api

import "context"

// Caller is the authenticated principal of a request.
type Caller struct {
	// AccessKeyID is the key the request was signed with (empty in insecure mode).
	AccessKeyID string
	// ARN is the principal's ARN, e.g. arn:aws:iam::000000000000:root.
	ARN string
}

type callerKey struct{}

// WithCaller returns ctx carrying c.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom returns the caller of the request ctx belongs to, and false
// outside a request.
func CallerFrom(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}
