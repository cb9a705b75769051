package logging_test

import (
	"net/http"
	"testing"

	"github.com/tenancykit/tenancy/logging"
	"github.com/tenancykit/tenancy/tenant"
	"go.opentelemetry.io/otel/trace"
)

// TestOTelNames: with WithOTelNames the context's fields are named as on
// spans and metrics, and the trace IDs are attributes only when no span
// in the context gives them to the log bridge.
func TestOTelNames(t *testing.T) {
	logger, buf := newLogger(logging.WithOTelNames())
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0x4b, 0xf9, 1}, SpanID: trace.SpanID{0x00, 0xf0, 1}, TraceFlags: trace.FlagsSampled,
	})
	h := logging.AccessLog(logger)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tn, _ := tenant.New("acme", tenant.DefaultTiers.MustLookup("premium"))
		tn.Subject = "alice"
		ctx := tenant.NewContext(r.Context(), tn)
		logger.InfoContext(ctx, "no span")
		logger.InfoContext(trace.ContextWithSpanContext(ctx, sc), "in a span")
	}))
	serve(h, newRequest("GET", "/", "req-1"))
	lines := decodeLines(t, buf.String())
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3", len(lines))
	}
	for i, l := range lines[:2] {
		if l["tenant.id"] != "acme" || l["tenant.tier"] != "premium" || l["user.id"] != "alice" || l["request_id"] != "req-1" {
			t.Errorf("line %d: %v, want tenant.id, tenant.tier, user.id and request_id", i, l)
		}
		if l["tenant_id"] != nil || l["user_id"] != nil {
			t.Errorf("line %d keeps a snake_case name: %v", i, l)
		}
	}
	if tid, _ := lines[0]["trace_id"].(string); len(tid) != 32 {
		t.Errorf("without a span: trace_id %v, want the access log's", lines[0]["trace_id"])
	}
	if lines[1]["trace_id"] != nil || lines[1]["span_id"] != nil {
		t.Errorf("in a span: %v, want no trace_id or span_id attribute", lines[1])
	}
}
