package main

import (
	"io"
	"log/slog"
	"sync"

	"github.com/tenancykit/tenancy/logging"
)

// lineOutput is stdout shared by the log and the EMF meter sink, which
// both hand over one whole JSON line per Write (slog.JSONHandler per
// record, meter's sinks per record): CloudWatch Logs (and any collector)
// needs every line whole, so Writes are serialised. It is safe for
// concurrent use.
type lineOutput struct {
	mu sync.Mutex
	w  io.Writer
}

func newLineOutput(w io.Writer) *lineOutput { return &lineOutput{w: w} }

// Write writes p, which must end with a whole line, in one piece.
func (o *lineOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.w.Write(p)
}

// newLogger returns the service's logger: JSON lines on out, with the
// tenant, request and trace fields of logging.Handler, at level and above,
// and with attrs (ECS metadata) on every line.
func newLogger(out io.Writer, level slog.Level, attrs ...slog.Attr) *slog.Logger {
	// The JSON handler passes everything; logging.Handler decides the
	// level, so that logging.Levels could lower it for one tenant.
	json := slog.NewJSONHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug})
	return slog.New(logging.NewHandler(json, logging.WithLevels(logging.NewLevels(level)), logging.WithAttrs(attrs...)))
}
