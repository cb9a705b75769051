package tenancylambda

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
)

// lambdaTraceKey is the context key under which aws-lambda-go's runtime
// loop puts the invocation's X-Ray trace header (its
// Lambda-Runtime-Trace-Id): the plain string "x-amzn-trace-id", not a key
// of a type of its own, so that any package can read it.
const lambdaTraceKey = "x-amzn-trace-id"

// traceparent returns the W3C traceparent of an X-Ray trace header: the
// request's (API Gateway's X-Amzn-Trace-Id), else the invocation's from
// ctx. A malformed header counts as none.
func traceparent(ctx context.Context, header string) (string, bool) {
	if tp, ok := xrayToTraceparent(header); ok {
		return tp, true
	}
	if v, ok := ctx.Value(lambdaTraceKey).(string); ok {
		return xrayToTraceparent(v)
	}
	return "", false
}

// xrayToTraceparent converts an X-Ray trace header,
//
//	Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1
//
// to a W3C traceparent with the same trace ID, parent and sampling
// decision:
//
//	00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01
//
// Fields other than Root, Parent and Sampled (Lineage, Self) are ignored.
// A header without Parent (API Gateway sends one when it does not trace)
// gets a random parent ID, for traceparent has no form without one. It
// reports false for a header without a valid Root, or with a field given
// twice, a Parent that is not 16 hexadecimal digits (not all zero) or a
// Sampled other than 0, 1 or "?".
func xrayToTraceparent(h string) (string, bool) {
	var root, parent, sampled string
	var seen [3]bool
	for field := range strings.SplitSeq(h, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(field), "=")
		i := -1
		switch k {
		case "Root":
			i, root = 0, v
		case "Parent":
			i, parent = 1, v
		case "Sampled":
			i, sampled = 2, v
		}
		if i >= 0 {
			if seen[i] {
				return "", false
			}
			seen[i] = true
		}
	}
	// Root: version 1, 8 hex digits of epoch seconds, 24 of random.
	if len(root) != 35 || root[:2] != "1-" || root[10] != '-' {
		return "", false
	}
	traceID := strings.ToLower(root[2:10] + root[11:])
	if !isHexID(traceID) {
		return "", false
	}
	if !seen[1] {
		var b [8]byte
		for b == [8]byte{} {
			rand.Read(b[:])
		}
		parent = hex.EncodeToString(b[:])
	}
	parent = strings.ToLower(parent)
	if len(parent) != 16 || !isHexID(parent) {
		return "", false
	}
	flags := "00"
	switch {
	case sampled == "1":
		flags = "01"
	case sampled == "0", sampled == "?", !seen[2]:
	default:
		return "", false
	}
	return "00-" + traceID + "-" + parent + "-" + flags, true
}

// isHexID reports whether s is lower-case hexadecimal and not all zero.
func isHexID(s string) bool {
	zero := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
		zero = zero && c == '0'
	}
	return !zero && s != ""
}
