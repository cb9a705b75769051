package logging

import (
	"context"

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
	var text string
	if info != nil {
		text = info.Text(tid, sid, hexIDs)
	} else {
		text = hexIDs(tid, sid)
	}
	return text[:n], text[n:]
}

// hexIDsLen is the length of the hex text of a trace and a span ID.
const hexIDsLen = 2*16 + 2*8

// hexIDs is the hex text of a trace ID and a span ID, in one string.
func hexIDs(tid [16]byte, sid [8]byte) string {
	var b [hexIDsLen]byte
	putHexIDs(&b, tid, sid)
	return string(b[:])
}

// putHexIDs writes the hex text of a trace ID and a span ID into b, two
// characters per byte from a table.
func putHexIDs(b *[hexIDsLen]byte, tid [16]byte, sid [8]byte) {
	for i, c := range tid {
		b[2*i], b[2*i+1] = hexPairs[c][0], hexPairs[c][1]
	}
	for i, c := range sid {
		b[32+2*i], b[32+2*i+1] = hexPairs[c][0], hexPairs[c][1]
	}
}

// hexPairs is the lower-case hex text of every byte.
var hexPairs = func() (t [256][2]byte) {
	const digits = "0123456789abcdef"
	for c := range t {
		t[c] = [2]byte{digits[c>>4], digits[c&15]}
	}
	return t
}()
