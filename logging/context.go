package logging

import (
	"context"
)

type requestIDKey struct{}

// NewRequestIDContext returns a copy of ctx carrying the request ID id. The
// access log middleware calls it; code that handles work from a queue can
// too, so that its lines are tied together.
func NewRequestIDContext(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestIDFromContext returns the request ID in ctx, if any.
func RequestIDFromContext(ctx context.Context) (string, bool) {
	id, ok := ctx.Value(requestIDKey{}).(string)
	return id, ok
}
