package logging

import (
	"context"
	"encoding/hex"

	"github.com/tenancykit/tenancy/internal/request"
	"go.opentelemetry.io/otel/trace"
)

// NewRequestIDContext returns a copy of ctx carrying the request ID id. The
// access log middleware does this for every request; code that handles
// work from a queue can too, so that its lines are tied together.
func NewRequestIDContext(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, request.RequestIDKey, &request.Info{ID: id})
}

// RequestIDFromContext returns the request ID in ctx, if any.
func RequestIDFromContext(ctx context.Context) (string, bool) {
	info := infoFrom(ctx)
	if info == nil {
		return "", false
	}
	return info.ID, true
}

func infoFrom(ctx context.Context) *request.Info {
	info, _ := ctx.Value(request.RequestIDKey).(*request.Info)
	return info
}

// spanIDs returns the hex trace and span IDs, remembered in info (which
// may be nil) for the next line of the same span.
func spanIDs(info *request.Info, tid trace.TraceID, sid trace.SpanID) (traceID, spanID string) {
	const n = 2 * len(tid)
	if info != nil {
		if c := info.Last.Load(); c != nil && c.TraceID == tid && c.SpanID == sid {
			return c.Text[:n], c.Text[n:]
		}
	}
	var b [2*len(tid) + 2*len(sid)]byte
	hex.Encode(b[:n], tid[:])
	hex.Encode(b[n:], sid[:])
	text := string(b[:]) // one allocation for both IDs
	if info != nil {
		info.Last.Store(&request.SpanText{TraceID: tid, SpanID: sid, Text: text})
	}
	return text[:n], text[n:]
}
