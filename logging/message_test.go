package logging_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tenancykit/tenancy/logging"
	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/tenant"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/trace"
)

// asTenant is a trust mode for the tests: every message runs as acme.
func asTenant(next message.Handler) message.Handler {
	return message.BoundQueue("acme", tenant.DefaultTiers.MustLookup("premium"))(next)
}

// TestMessageLogLines: one line per message with its outcome, on any
// slog handler, tagged with the tenant, the message ID and the producer's
// trace, as are the handler's own lines.
func TestMessageLogLines(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    error
		level  string
		fields map[string]any
	}{
		{"acked", nil, "INFO", map[string]any{"outcome": "acked"}},
		{"deferred", message.Defer(1500 * time.Millisecond), "INFO", map[string]any{"outcome": "deferred", "retry_after_ms": 1500.0}},
		{"rejected", message.Reject("unreadable"), "WARN", map[string]any{"outcome": "rejected", "rejected_by": "handler", "reject_reason": "unreadable"}},
		{"failed", errors.New("database down"), "ERROR", map[string]any{"outcome": "failed", "error": "database down"}},
	} {
		for _, ours := range []bool{true, false} {
			name := tc.name + "/plain slog handler"
			buf := new(syncBuffer)
			logger := slog.New(jsonHandler(buf))
			if ours {
				name = tc.name + "/logging.Handler"
				logger = slog.New(logging.NewHandler(jsonHandler(buf)))
			}
			t.Run(name, func(t *testing.T) {
				h := logging.MessageLog(logger)(asTenant(message.HandlerFunc(func(ctx context.Context, m *message.Message) error {
					if ours {
						logger.InfoContext(ctx, "working")
					}
					return tc.err
				})))
				m := &message.Message{ID: "1700000000-0", Source: "orders", Deliveries: 2, Attributes: map[string]string{
					"traceparent": "00-" + testTraceID + "-" + testSpanID + "-01",
				}}
				if err := h.HandleMessage(context.Background(), m); err != tc.err {
					t.Fatalf("HandleMessage = %v, want the handler's %v", err, tc.err)
				}
				lines := decodeLines(t, buf.String())
				line := lines[len(lines)-1]
				if line["span_id"] == testSpanID || line["span_id"] == nil {
					t.Errorf("span_id %v: want one of the message's own", line["span_id"])
				}
				want := map[string]any{
					"level": "INFO", "msg": "message", "message_source": "orders", "deliveries": 2.0,
					"duration_ms": line["duration_ms"], "span_id": line["span_id"],
					"tenant_id": "acme", "tenant_tier": "premium", "request_id": "1700000000-0", "trace_id": testTraceID,
				}
				want["level"] = tc.level
				for k, v := range tc.fields {
					want[k] = v
				}
				if diff := cmp.Diff(want, line); diff != "" {
					t.Errorf("message line (-want +got):\n%s", diff)
				}
				if ours {
					work := lines[0]
					if work["msg"] != "working" || work["request_id"] != "1700000000-0" || work["trace_id"] != testTraceID || work["span_id"] != line["span_id"] {
						t.Errorf("handler line %v: want the message's request_id, trace and span", work)
					}
				}
			})
		}
	}
}

// TestMessageLogSpanAndBaggage: a context that holds a span keeps it (a
// tracer's consumer span), and the message's baggage becomes the
// context's.
func TestMessageLogSpanAndBaggage(t *testing.T) {
	logger, buf := newLogger()
	var bag baggage.Baggage
	h := logging.MessageLog(logger)(asTenant(message.HandlerFunc(func(ctx context.Context, m *message.Message) error {
		bag = baggage.FromContext(ctx)
		return nil
	})))
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled})
	ctx := trace.ContextWithSpanContext(context.Background(), sc)
	m := &message.Message{ID: "1", Attributes: map[string]string{
		"traceparent": "00-" + testTraceID + "-" + testSpanID + "-01",
		"baggage":     "tenant.id=acme,region=eu",
	}}
	if err := h.HandleMessage(ctx, m); err != nil {
		t.Fatal(err)
	}
	line := decodeLines(t, buf.String())[0]
	if line["trace_id"] != sc.TraceID().String() || line["span_id"] != sc.SpanID().String() {
		t.Errorf("line %v: want the context's span", line)
	}
	if bag.Member("region").Value() != "eu" {
		t.Errorf("baggage %v, want the message's", bag)
	}
}

// TestMessageLogPanic: a handler that panics is logged as failed, and the
// panic goes on.
func TestMessageLogPanic(t *testing.T) {
	logger, buf := newLogger()
	h := logging.MessageLog(logger)(asTenant(message.HandlerFunc(func(context.Context, *message.Message) error { panic("bug") })))
	func() {
		defer func() {
			if p := recover(); p != "bug" {
				t.Errorf("recovered %v", p)
			}
		}()
		h.HandleMessage(context.Background(), &message.Message{ID: "1"})
	}()
	line := decodeLines(t, buf.String())[0]
	if line["outcome"] != "failed" || line["level"] != "ERROR" || line["tenant_id"] != "acme" {
		t.Errorf("line %v", line)
	}
}

// TestMessageLogWithoutID: a message without an ID gets a request ID of
// its own, and one without a traceparent a trace of its own; with
// WithoutTraceContext, none.
func TestMessageLogWithoutID(t *testing.T) {
	logger, buf := newLogger()
	h := asTenant(message.HandlerFunc(func(context.Context, *message.Message) error { return nil }))
	logging.MessageLog(logger)(h).HandleMessage(context.Background(), &message.Message{})
	logging.MessageLog(logger, logging.WithoutTraceContext())(h).HandleMessage(context.Background(), &message.Message{})
	lines := decodeLines(t, buf.String())
	if id, _ := lines[0]["request_id"].(string); len(id) != 26 || lines[0]["trace_id"] == nil {
		t.Errorf("line %v: want a request ID and a trace", lines[0])
	}
	if lines[1]["trace_id"] != nil {
		t.Errorf("line %v: want no trace", lines[1])
	}
}

// TestMessageLogContextBaggageWins: a context that holds baggage keeps it,
// whether the handler reads it from its own goroutine or from several.
func TestMessageLogContextBaggageWins(t *testing.T) {
	logger, _ := newLogger()
	own, err := baggage.Parse("region=us")
	if err != nil {
		t.Fatal(err)
	}
	regions := make(chan string, 3)
	h := logging.MessageLog(logger)(asTenant(message.HandlerFunc(func(ctx context.Context, m *message.Message) error {
		done := make(chan struct{})
		for range 2 {
			go func() {
				regions <- baggage.FromContext(ctx).Member("region").Value()
				done <- struct{}{}
			}()
		}
		regions <- baggage.FromContext(ctx).Member("region").Value()
		<-done
		<-done
		return nil
	})))
	m := &message.Message{ID: "1", Attributes: map[string]string{"baggage": "region=eu"}}
	if err := h.HandleMessage(baggage.ContextWithBaggage(context.Background(), own), m); err != nil {
		t.Fatal(err)
	}
	close(regions)
	for r := range regions {
		if r != "us" {
			t.Errorf("region %q, want the context's own us", r)
		}
	}
}

// TestMessageLogHandlers: a message line is the same through a Handler
// over slog's JSON handler, over logging's JSONHandler, and with static
// attributes (the lines an access log writes straight to the handler
// inside); and a value that looks like a token, in the source, a reject
// reason or a failure's error, or a message key named to be redacted, is
// redacted on each.
func TestMessageLogHandlers(t *testing.T) {
	const tok = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
	type handlerCase struct {
		name string
		new  func(buf *syncBuffer) slog.Handler
	}
	handlers := []handlerCase{
		{"slog JSON", func(buf *syncBuffer) slog.Handler { return logging.NewHandler(jsonHandler(buf)) }},
		{"logging JSON", func(buf *syncBuffer) slog.Handler { return logging.NewHandler(logging.NewJSONHandler(buf, nil)) }},
		{"with attrs", func(buf *syncBuffer) slog.Handler {
			return logging.NewHandler(jsonHandler(buf), logging.WithAttrs(slog.String("service", "fulfillment")))
		}},
		{"source redacted by key", func(buf *syncBuffer) slog.Handler {
			return logging.NewHandler(jsonHandler(buf), logging.WithRedactedKeys(logging.KeyMessageSource))
		}},
	}
	for _, tc := range []struct {
		name   string
		source string
		err    error
		want   map[string]any // fields of the line
	}{
		{"acked", "orders", nil, map[string]any{"message_source": "orders", "outcome": "acked"}},
		{"token as source", tok, nil, map[string]any{"message_source": logging.Redacted, "outcome": "acked"}},
		{"token as reason", "orders", message.Reject(tok), map[string]any{"message_source": "orders", "outcome": "rejected", "rejected_by": "handler", "reject_reason": logging.Redacted}},
		{"token in error", "orders", errors.New("call with " + tok + " failed"), map[string]any{"message_source": "orders", "outcome": "failed", "error": logging.Redacted}},
	} {
		for _, hc := range handlers {
			t.Run(tc.name+"/"+hc.name, func(t *testing.T) {
				buf := new(syncBuffer)
				logger := slog.New(hc.new(buf))
				h := logging.MessageLog(logger)(asTenant(message.HandlerFunc(func(context.Context, *message.Message) error { return tc.err })))
				m := &message.Message{ID: "1700000000-0", Source: tc.source, Attributes: map[string]string{
					"traceparent": "00-" + testTraceID + "-" + testSpanID + "-01",
				}}
				h.HandleMessage(context.Background(), m)
				lines := decodeLines(t, buf.String())
				if len(lines) != 1 {
					t.Fatalf("%d lines, want 1", len(lines))
				}
				line := lines[0]
				want := map[string]any{
					"msg": "message", "tenant_id": "acme", "tenant_tier": "premium", "request_id": "1700000000-0", "trace_id": testTraceID,
					"level": line["level"], "duration_ms": line["duration_ms"], "span_id": line["span_id"],
				}
				if ts, ok := line["time"]; ok { // logging's JSONHandler writes it
					want["time"] = ts
				}
				for k, v := range tc.want {
					want[k] = v
				}
				if hc.name == "with attrs" {
					want["service"] = "fulfillment"
				}
				if hc.name == "source redacted by key" {
					want["message_source"] = logging.Redacted
				}
				if diff := cmp.Diff(want, line); diff != "" {
					t.Errorf("message line (-want +got):\n%s", diff)
				}
			})
		}
	}
}
