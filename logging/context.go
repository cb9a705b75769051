package logging

import (
	"context"
	"encoding/hex"
	"sync/atomic"

	"go.opentelemetry.io/otel/trace"
)

type requestIDKey struct{}

// requestState is a request's entry in its context: the request ID, and
// the text of the trace and span IDs last logged, which the lines of one
// span share instead of each encoding them again.
type requestState struct {
	id   string
	span atomic.Pointer[spanText]
}

// spanText is the hex text of a trace and span ID pair; immutable.
type spanText struct {
	traceID trace.TraceID
	spanID  trace.SpanID
	text    string // the trace ID, then the span ID
}

// NewRequestIDContext returns a copy of ctx carrying the request ID id. The
// access log middleware calls it; code that handles work from a queue can
// too, so that its lines are tied together.
func NewRequestIDContext(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, &requestState{id: id})
}

// RequestIDFromContext returns the request ID in ctx, if any.
func RequestIDFromContext(ctx context.Context) (string, bool) {
	st, ok := ctx.Value(requestIDKey{}).(*requestState)
	if !ok {
		return "", false
	}
	return st.id, true
}

// spanIDs returns the hex trace and span IDs of sc, remembered in st (which
// may be nil) for the next line of the same span.
func spanIDs(st *requestState, sc trace.SpanContext) (traceID, spanID string) {
	tid, sid := sc.TraceID(), sc.SpanID()
	const n = 2 * len(tid)
	if st != nil {
		if c := st.span.Load(); c != nil && c.traceID == tid && c.spanID == sid {
			return c.text[:n], c.text[n:]
		}
	}
	var b [2*len(tid) + 2*len(sid)]byte
	hex.Encode(b[:n], tid[:])
	hex.Encode(b[n:], sid[:])
	text := string(b[:]) // one allocation for both IDs
	if st != nil {
		st.span.Store(&spanText{traceID: tid, spanID: sid, text: text})
	}
	return text[:n], text[n:]
}
