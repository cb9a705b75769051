//go:build !race

package logging_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tenancykit/tenancy/logging"
)

// TestHandlerPlainRecordAllocs holds redaction to its promise of costing
// nothing on the common path: a record of plain strings and numbers, none
// of them secret, allocates no more through a Handler than through the
// JSON handler given the context fields by hand.
func TestHandlerPlainRecordAllocs(t *testing.T) {
	ctx := fullContext(t)
	json := slog.NewJSONHandler(io.Discard, nil)
	byHand := slog.New(json)
	tenancy := slog.New(logging.NewHandler(json))
	want := testing.AllocsPerRun(100, func() {
		byHand.LogAttrs(ctx, slog.LevelInfo, "order created",
			slog.String(logging.KeyTenantID, "acme"),
			slog.String(logging.KeyTenantTier, "premium"),
			slog.String(logging.KeyUserID, "user-7"),
			slog.String(logging.KeyRequestID, "req-1"),
			slog.String(logging.KeyTraceID, testTraceID),
			slog.String(logging.KeySpanID, testSpanID),
			slog.Int("order", 42), slog.String("status", "created"), slog.String("Session-Id", "s-1"))
	})
	got := testing.AllocsPerRun(100, func() {
		tenancy.LogAttrs(ctx, slog.LevelInfo, "order created",
			slog.Int("order", 42), slog.String("status", "created"), slog.String("Session-Id", "s-1"))
	})
	if got > want {
		t.Errorf("a plain record allocates %v times through a Handler, %v by hand", got, want)
	}
}

// TestJSONHandlerAllocs holds the JSON handler to its purpose: a record of
// strings and numbers is written without allocating, by itself and under
// a Handler, and an access line allocates less than through slog's JSON
// handler, which needs a Record with its attributes beyond five in a
// slice of their own.
func TestJSONHandlerAllocs(t *testing.T) {
	ctx := fullContext(t)
	json := logging.NewJSONHandler(io.Discard, nil).WithAttrs([]slog.Attr{slog.String("service", "orders")})
	r := slog.NewRecord(testTime, slog.LevelInfo, "order created", 0)
	r.AddAttrs(slog.Int("order", 42), slog.String("status", "created"), slog.Float64("total", 12.5),
		slog.Bool("paid", true), slog.Duration("took", time.Millisecond), slog.Time("at", testTime))
	if n := testing.AllocsPerRun(100, func() { json.Handle(ctx, r) }); n != 0 {
		t.Errorf("a plain record allocates %v times through the JSONHandler, want 0", n)
	}
	logger := slog.New(logging.NewHandler(json))
	if n := testing.AllocsPerRun(100, func() {
		logger.LogAttrs(ctx, slog.LevelInfo, "order created", slog.Int("order", 42), slog.String("status", "created"))
	}); n != 0 {
		t.Errorf("a plain record allocates %v times through a Handler over the JSONHandler, want 0", n)
	}

	accessAllocs := func(h slog.Handler) float64 {
		access := logging.AccessLog(slog.New(logging.NewHandler(h)), logging.WithAuditor(nil))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNoContent)
		}))
		req := httptest.NewRequest("GET", "/orders", nil)
		req.Header.Set("X-Request-ID", "req-1")
		w := httptest.NewRecorder()
		return testing.AllocsPerRun(100, func() { access.ServeHTTP(w, req) })
	}
	ours, theirs := accessAllocs(logging.NewJSONHandler(io.Discard, nil)), accessAllocs(slog.NewJSONHandler(io.Discard, nil))
	if ours >= theirs {
		t.Errorf("an access line allocates %v times through the JSONHandler, %v through slog's", ours, theirs)
	}
}

// TestAccessLogGeneratedIDAllocs: a request ID the access log makes shares
// its allocation with the text of the request's trace IDs, so that a
// request without one allocates no more than a request with one, and the
// line and the handler's lines reuse the text instead of encoding it.
func TestAccessLogGeneratedIDAllocs(t *testing.T) {
	logger := slog.New(logging.NewHandler(logging.NewJSONHandler(io.Discard, nil)))
	access := logging.AccessLog(logger, logging.WithAuditor(nil))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		logger.InfoContext(r.Context(), "inside")
		w.WriteHeader(http.StatusNoContent)
	}))
	allocs := func(id string) float64 {
		req := httptest.NewRequest("GET", "/orders", nil)
		if id != "" {
			req.Header.Set("X-Request-ID", id)
		}
		w := httptest.NewRecorder()
		return testing.AllocsPerRun(100, func() {
			clear(w.Header())
			access.ServeHTTP(w, req)
		})
	}
	given, generated := allocs("req-1"), allocs("")
	if generated != given {
		t.Errorf("a request with a generated ID allocates %v times, one with its own ID %v: want the same", generated, given)
	}
}
