package logging_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/tenancykit/tenancy/logging"
)

// TestNilOptionValues: a nil option, and an option given nil or nothing,
// leave the defaults in place.
func TestNilOptionValues(t *testing.T) {
	h := logging.NewHandler(slog.NewJSONHandler(io.Discard, nil),
		nil, logging.WithLevels(nil), logging.WithRedactedKeys(), logging.WithAttrs())
	ctx := context.Background()
	if h.Enabled(ctx, slog.LevelDebug) || !h.Enabled(ctx, slog.LevelInfo) {
		t.Error("WithLevels(nil): the level is not INFO")
	}
}
