package logging_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenancykit/tenancy/internal/syncbuf"
	"github.com/tenancykit/tenancy/logging"
	"github.com/tenancykit/tenancy/tenant"
	"go.opentelemetry.io/otel/trace"
)

// The trace and span of every test context, as W3C trace context shows them.
const (
	testTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	testSpanID  = "00f067aa0ba902b7"
)

// syncBuffer collects output written while the test reads it.
type syncBuffer = syncbuf.Buffer

// withoutTime is a ReplaceAttr that drops the time, so that lines compare
// exactly.
func withoutTime(groups []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey && len(groups) == 0 {
		return slog.Attr{}
	}
	return a
}

// jsonHandler returns a JSON handler at debug level without times.
func jsonHandler(w io.Writer) slog.Handler {
	return slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug, ReplaceAttr: withoutTime})
}

// newLogger returns a logger on logging.NewHandler over a JSON handler
// writing to the returned buffer.
func newLogger(opts ...logging.Option) (*slog.Logger, *syncBuffer) {
	buf := new(syncBuffer)
	return slog.New(logging.NewHandler(jsonHandler(buf), opts...)), buf
}

// decodeLines decodes every line of out as a JSON object.
func decodeLines(t testing.TB, out string) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for line := range strings.Lines(out) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %q is not a JSON object: %v", line, err)
		}
		recs = append(recs, m)
	}
	return recs
}

// decodeOne decodes out, which must hold exactly one JSON line.
func decodeOne(t testing.TB, out string) map[string]any {
	t.Helper()
	recs := decodeLines(t, out)
	if len(recs) != 1 {
		t.Fatalf("got %d lines, want 1:\n%s", len(recs), out)
	}
	return recs[0]
}

// topLevelKeys returns the keys of the JSON object line in order, with
// duplicates, which json.Unmarshal would hide.
func topLevelKeys(t testing.TB, line string) []string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("line %q does not start an object: %v", line, err)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
	}
	return keys
}

// mustTenant returns a valid tenant on a tier of tenant.DefaultTiers.
func mustTenant(t testing.TB, id, tier, subject string) tenant.Tenant {
	t.Helper()
	tn, err := tenant.New(id, tenant.DefaultTiers.MustLookup(tier))
	if err != nil {
		t.Fatalf("tenant.New(%q): %v", id, err)
	}
	tn.Subject = subject
	return tn
}

// spanContext is a valid, sampled span context with the test IDs.
func spanContext(t testing.TB) trace.SpanContext {
	t.Helper()
	tid, err := trace.TraceIDFromHex(testTraceID)
	if err != nil {
		t.Fatal(err)
	}
	sid, err := trace.SpanIDFromHex(testSpanID)
	if err != nil {
		t.Fatal(err)
	}
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled})
	if !sc.IsValid() {
		t.Fatal("span context is not valid")
	}
	return sc
}

// fullContext returns a context that knows every field: tenant acme
// (premium, user-7), request ID req-1 and the test span.
func fullContext(t testing.TB) context.Context {
	t.Helper()
	ctx := tenant.NewContext(context.Background(), mustTenant(t, "acme", "premium", "user-7"))
	ctx = logging.NewRequestIDContext(ctx, "req-1")
	return trace.ContextWithSpanContext(ctx, spanContext(t))
}

// fullFields are the fields fullContext adds, as decoded JSON.
var fullFields = map[string]any{
	logging.KeyTenantID:   "acme",
	logging.KeyTenantTier: "premium",
	logging.KeyUserID:     "user-7",
	logging.KeyRequestID:  "req-1",
	logging.KeyTraceID:    testTraceID,
	logging.KeySpanID:     testSpanID,
}

// with returns a copy of base with the pairs of kv (key, value, ...) added.
func with(base map[string]any, kv ...any) map[string]any {
	m := make(map[string]any, len(base)+len(kv)/2)
	for k, v := range base {
		m[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

// parseText parses one line of slog.TextHandler output into a map, with
// dotted keys as nested maps, the way slogtest expects.
func parseText(t testing.TB, line string) map[string]any {
	t.Helper()
	m := map[string]any{}
	s := strings.TrimSuffix(line, "\n")
	for s != "" {
		key, rest, err := textToken(s, '=')
		if err != nil || rest == "" || rest[0] != '=' {
			t.Fatalf("line %q: bad key at %q: %v", line, s, err)
		}
		val, rest, err := textToken(rest[1:], ' ')
		if err != nil {
			t.Fatalf("line %q: bad value at %q: %v", line, rest, err)
		}
		parts := strings.Split(key, ".")
		cur := m
		for _, p := range parts[:len(parts)-1] {
			next, ok := cur[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				cur[p] = next
			}
			cur = next
		}
		cur[parts[len(parts)-1]] = val
		s = strings.TrimPrefix(rest, " ")
	}
	return m
}

// textToken reads a key or value: quoted with strconv.Quote, or up to
// stop. TextHandler quotes every string holding a space, '=' or a quote.
func textToken(s string, stop byte) (tok, rest string, err error) {
	if strings.HasPrefix(s, `"`) {
		q, err := strconv.QuotedPrefix(s)
		if err != nil {
			return "", "", err
		}
		tok, err := strconv.Unquote(q)
		return tok, s[len(q):], err
	}
	if i := strings.IndexByte(s, stop); i >= 0 {
		return s[:i], s[i:], nil
	}
	return s, "", nil
}

// stepClock returns a clock that starts at start and moves by step on
// every call.
func stepClock(start time.Time, step time.Duration) func() time.Time {
	var mu sync.Mutex
	now := start.Add(-step)
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(step)
		return now
	}
}

// testTime is the time of records built by hand.
var testTime = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// containsAny returns the needles found in s.
func containsAny(s string, needles ...string) []string {
	var found []string
	for _, n := range needles {
		if strings.Contains(s, n) {
			found = append(found, n)
		}
	}
	return found
}
