// Package propagate writes the W3C trace context and baggage of a context
// into a carrier: the headers of an outgoing request (tenant.Transport) or
// the attributes of an outgoing message (stamp.Signer). Both must say the
// same thing, so that one trace runs from an HTTP request through the
// services it calls and the messages it publishes.
package propagate

import (
	"context"
	"encoding/hex"

	"github.com/tenancykit/tenancy/internal/request"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
)

// BaggageKey is the baggage member set to the tenant ID: tenant.BaggageKey,
// which tenant's tests check it equals.
const BaggageKey = "tenant.id"

var propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// Inject writes ctx's trace context and baggage into c, with the baggage
// member tenant.id set to tenantID when it is not empty. A context without
// a span gets the trace IDs the access log (or the message log) gave its
// request, so that the lines of the receiving side join the same trace.
func Inject(ctx context.Context, tenantID string, c propagation.TextMapCarrier) {
	if tenantID != "" {
		if m, err := baggage.NewMemberRaw(BaggageKey, tenantID); err == nil {
			if b, err := baggage.FromContext(ctx).SetMember(m); err == nil {
				ctx = baggage.ContextWithBaggage(ctx, b)
			}
		}
	}
	propagator.Inject(ctx, c)
	if c.Get("traceparent") == "" {
		if info, ok := ctx.Value(request.RequestIDKey).(*request.Info); ok && info.HasTrace() {
			c.Set("traceparent", Traceparent(info.TraceID, info.SpanID, info.TraceFlags))
		}
	}
}

// Traceparent formats a W3C traceparent header value (version 00).
func Traceparent(tid [16]byte, sid [8]byte, flags byte) string {
	var b [55]byte
	copy(b[:3], "00-")
	hex.Encode(b[3:35], tid[:])
	b[35] = '-'
	hex.Encode(b[36:52], sid[:])
	b[52] = '-'
	hex.Encode(b[53:55], []byte{flags})
	return string(b[:])
}

// ExtractBaggage returns ctx with the baggage of c added, when ctx has
// none and c carries some.
func ExtractBaggage(ctx context.Context, c propagation.TextMapCarrier) context.Context {
	if baggage.FromContext(ctx).Len() > 0 || c.Get("baggage") == "" {
		return ctx
	}
	return propagation.Baggage{}.Extract(ctx, c)
}
