package logging

import (
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"

	"github.com/tenancykit/tenancy/internal/request"
)

// setTraceIDs gives a request (or a message) without a span the trace IDs
// its lines will carry (see newTraceIDs), and records their text.
func setTraceIDs(info *request.Info, traceparent string) {
	newTraceIDs(info, traceparent)
	info.SetTraceText(hexIDs(info.TraceID, info.SpanID))
}

// newTraceIDs gives a request (or a message) without a span the trace IDs
// its lines will carry: the trace of its W3C traceparent header (or
// attribute), or a new one, and a span ID of its own. They go into the
// request's state, never into its context as a span: a tracer inside
// (otelhttp) makes its own sampling decision from the headers, as if the
// access log were not there. Their text is the caller's to record.
func newTraceIDs(info *request.Info, traceparent string) {
	if !parseTraceparent(traceparent, info) {
		binary.BigEndian.PutUint64(info.TraceID[:8], rand.Uint64())
		binary.BigEndian.PutUint64(info.TraceID[8:], rand.Uint64()|1) // never all zero
		info.TraceFlags = 0
	}
	binary.BigEndian.PutUint64(info.SpanID[:], rand.Uint64()|1)
}

// parseTraceparent reads a traceparent header value (W3C Trace Context,
// level 1) into info's trace ID and flags, and reports whether it was
// valid.
func parseTraceparent(v string, info *request.Info) bool {
	// version "-" trace-id "-" parent-id "-" flags; a later version may
	// add fields after a further "-".
	if len(v) < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-' || (len(v) > 55 && (v[:2] == "00" || v[55] != '-')) {
		return false
	}
	var version, flags [1]byte
	var tid [16]byte
	var pid [8]byte
	if !decodeHex(version[:], v[:2]) || version[0] == 0xff ||
		!decodeHex(tid[:], v[3:35]) || tid == [16]byte{} ||
		!decodeHex(pid[:], v[36:52]) || pid == [8]byte{} ||
		!decodeHex(flags[:], v[53:55]) {
		return false
	}
	info.TraceID, info.TraceFlags = tid, flags[0]
	return true
}

// decodeHex decodes lower-case hex s into dst, which it fills exactly.
func decodeHex(dst []byte, s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false // W3C: lower case only
		}
	}
	n, err := hex.Decode(dst, []byte(s))
	return err == nil && n == len(dst)
}
