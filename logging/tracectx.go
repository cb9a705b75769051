package logging

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"net/http"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

var traceContext propagation.TraceContext

// ensureTraceContext gives ctx a span context when it has none: a child
// of the incoming traceparent, or a new trace. The IDs only correlate log
// lines; no span is recorded or exported.
func ensureTraceContext(ctx context.Context, h http.Header) context.Context {
	if trace.SpanContextFromContext(ctx).IsValid() {
		return ctx
	}
	cfg := trace.SpanContextConfig{SpanID: randomSpanID()}
	if h.Get("Traceparent") != "" {
		if parent := trace.SpanContextFromContext(traceContext.Extract(ctx, propagation.HeaderCarrier(h))); parent.IsValid() {
			cfg.TraceID, cfg.TraceFlags, cfg.TraceState = parent.TraceID(), parent.TraceFlags(), parent.TraceState()
		}
	}
	if !cfg.TraceID.IsValid() {
		binary.BigEndian.PutUint64(cfg.TraceID[:8], rand.Uint64())
		binary.BigEndian.PutUint64(cfg.TraceID[8:], rand.Uint64()|1) // never all zero
	}
	return trace.ContextWithSpanContext(ctx, trace.NewSpanContext(cfg))
}

func randomSpanID() trace.SpanID {
	var id trace.SpanID
	binary.BigEndian.PutUint64(id[:], rand.Uint64()|1)
	return id
}
