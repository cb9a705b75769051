package logging_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tenancykit/tenancy/logging"
)

// BenchmarkHandler compares a Handler, which finds the six context fields
// itself, with the JSON handler it wraps given the same fields by hand.
// The target is tenancy ≤ 1.2 × json-by-hand:
//
//	go test -run '^$' -bench Handler -count 8 ./logging/ > new.txt
//	go run golang.org/x/perf/cmd/benchstat@latest new.txt
func BenchmarkHandler(b *testing.B) {
	ctx := fullContext(b)
	json := slog.NewJSONHandler(io.Discard, nil)
	byHand := slog.New(json)
	tenancy := slog.New(logging.NewHandler(json))
	grouped := tenancy.WithGroup("order")
	ours := slog.New(logging.NewHandler(logging.NewJSONHandler(io.Discard, nil)))
	oursGrouped := ours.WithGroup("order")

	b.Run("json-by-hand", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			byHand.LogAttrs(ctx, slog.LevelInfo, "order created",
				slog.String(logging.KeyTenantID, "acme"),
				slog.String(logging.KeyTenantTier, "premium"),
				slog.String(logging.KeyUserID, "user-7"),
				slog.String(logging.KeyRequestID, "req-1"),
				slog.String(logging.KeyTraceID, testTraceID),
				slog.String(logging.KeySpanID, testSpanID),
				slog.Int("order", 42), slog.String("status", "created"))
		}
	})
	b.Run("tenancy", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			tenancy.LogAttrs(ctx, slog.LevelInfo, "order created", slog.Int("order", 42), slog.String("status", "created"))
		}
	})
	b.Run("tenancy-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ours.LogAttrs(ctx, slog.LevelInfo, "order created", slog.Int("order", 42), slog.String("status", "created"))
		}
	})
	b.Run("tenancy-json-with-group", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			oursGrouped.LogAttrs(ctx, slog.LevelInfo, "order created", slog.Int("order", 42), slog.String("status", "created"))
		}
	})
	b.Run("tenancy-with-group", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			grouped.LogAttrs(ctx, slog.LevelInfo, "order created", slog.Int("order", 42), slog.String("status", "created"))
		}
	})
	b.Run("tenancy-redaction-hit", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			tenancy.LogAttrs(ctx, slog.LevelInfo, "order created", slog.Int("order", 42), slog.String("password", "hunter2"))
		}
	})
	// Values of KindAny are walked: a slice without secrets, and a struct
	// rewritten as a group without its password.
	b.Run("tenancy-any-clean", func(b *testing.B) {
		items := []string{"book", "pen"}
		b.ReportAllocs()
		for b.Loop() {
			tenancy.LogAttrs(ctx, slog.LevelInfo, "order created", slog.Int("order", 42), slog.Any("items", items))
		}
	})
	b.Run("tenancy-struct-hit", func(b *testing.B) {
		l := login{User: "bob", Password: "hunter2", Attempts: 1}
		b.ReportAllocs()
		for b.Loop() {
			tenancy.LogAttrs(ctx, slog.LevelInfo, "order created", slog.Int("order", 42), slog.Any("login", l))
		}
	})
}

// BenchmarkJSONHandler writes the same record through slog's JSON
// handler and ours: strings, numbers, a float, a time and a duration, and
// an attribute of WithAttrs.
func BenchmarkJSONHandler(b *testing.B) {
	attrs := []slog.Attr{
		slog.String("method", "GET"), slog.String("route", "GET /orders/{id}"), slog.Int("status", 200),
		slog.Int64("bytes", 1234), slog.Float64("duration_ms", 1.234), slog.String("remote_ip", "192.0.2.1"),
		slog.Time("at", testTime), slog.Duration("took", 1500*time.Microsecond),
	}
	for _, bc := range []struct {
		name string
		h    slog.Handler
	}{
		{"slog", slog.NewJSONHandler(io.Discard, nil)},
		{"ours", logging.NewJSONHandler(io.Discard, nil)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := bc.h.WithAttrs([]slog.Attr{slog.String("service", "orders")})
			r := slog.NewRecord(time.Now(), slog.LevelInfo, "request", 0)
			r.AddAttrs(attrs...)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				h.Handle(ctx, r)
			}
		})
	}
}

// discardWriter is a ResponseWriter that keeps nothing but its header map.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}

// BenchmarkAccessLog measures the access log around a handler that does
// nothing, with an incoming request ID and with one to generate.
func BenchmarkAccessLog(b *testing.B) {
	for _, next := range []struct {
		name string
		h    slog.Handler
	}{
		{"slog-json", slog.NewJSONHandler(io.Discard, nil)},
		{"json", logging.NewJSONHandler(io.Discard, nil)},
	} {
		b.Run(next.name, func(b *testing.B) { benchmarkAccessLog(b, slog.New(logging.NewHandler(next.h))) })
	}
}

func benchmarkAccessLog(b *testing.B, logger *slog.Logger) {
	h := logging.AccessLog(logger, logging.WithAuditor(nil))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	for _, id := range []string{"req-1", ""} {
		name := "incoming-id"
		if id == "" {
			name = "generated-id"
		}
		b.Run(name, func(b *testing.B) {
			req := httptest.NewRequest("GET", "/orders", nil)
			if id != "" {
				req.Header.Set("X-Request-ID", id)
			}
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(w, req)
			}
		})
	}
}
