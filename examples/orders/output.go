package main

import (
	"bytes"
	"io"
	"log/slog"
	"sync"

	"github.com/tenancykit/tenancy/logging"
)

// lineOutput is stdout shared by the log and the EMF meter sink, which
// both write JSON lines to it: CloudWatch Logs (and any collector) needs
// every line whole. Write is for writers that hand over whole lines in
// each call, as slog.JSONHandler does (one Write per record); [lineOutput.lines]
// is for writers that may split a line across calls, as the EMF sink does
// through its bufio.Writer when a batch passes 4 KiB. It is safe for
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

// lines returns a writer that keeps what follows the last newline of each
// Write until a later Write completes it, and passes complete lines on.
func (o *lineOutput) lines() io.Writer { return &lineBuffer{out: o} }

// lineBuffer passes whole lines to out; see [lineOutput.lines].
type lineBuffer struct {
	out *lineOutput

	mu      sync.Mutex
	partial []byte
}

func (b *lineBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	i := bytes.LastIndexByte(p, '\n')
	if i < 0 {
		b.partial = append(b.partial, p...)
		return len(p), nil
	}
	var err error
	if len(b.partial) == 0 {
		_, err = b.out.Write(p[:i+1])
	} else {
		_, err = b.out.Write(append(b.partial, p[:i+1]...))
	}
	b.partial = append(b.partial[:0], p[i+1:]...)
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// newLogger returns the service's logger: JSON lines on out, with the
// tenant, request and trace fields of logging.Handler, at level and above,
// and with attrs (ECS metadata) on every line.
func newLogger(out io.Writer, level slog.Level, attrs ...slog.Attr) *slog.Logger {
	// The JSON handler passes everything; logging.Handler decides the
	// level, so that logging.Levels could lower it for one tenant.
	json := slog.NewJSONHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug})
	return slog.New(logging.NewHandler(json, logging.WithLevel(level), logging.WithAttrs(attrs...)))
}
