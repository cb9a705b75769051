//go:build !race

package logging_test

import (
	"io"
	"log/slog"
	"testing"

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
