package meter

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
)

// JSONLines is a [Sink] that writes one JSON record per line to a writer:
// for a file a collector ships, or stdout. It is safe for concurrent use.
type JSONLines struct {
	mu   sync.Mutex
	w    io.Writer
	sync func() error
}

// NewJSONLines returns a sink writing to w.
func NewJSONLines(w io.Writer) *JSONLines { return &JSONLines{w: w} }

// OpenJSONLines returns a sink appending to the file at path, created if
// needed, and synced to disk after every write. Close it when done.
func OpenJSONLines(path string) (*JSONLines, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("meter: %w", err)
	}
	return &JSONLines{w: f, sync: f.Sync}, nil
}

// Write implements [Sink]: the batch is written whole or reported failed.
func (s *JSONLines) Write(_ context.Context, records []Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := writeLines(s.w, records, func(r *Record) any { return r }); err != nil {
		return fmt.Errorf("meter: JSON lines: %w", err)
	}
	if s.sync != nil {
		if err := s.sync(); err != nil {
			return fmt.Errorf("meter: JSON lines: %w", err)
		}
	}
	return nil
}

// Close closes the file of a sink from OpenJSONLines.
func (s *JSONLines) Close() error {
	if c, ok := s.w.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// writeLines writes the JSON of each record's value on a line of its own,
// one Write per line: a writer shared with other line-oriented output (slog
// on stdout) never sees half of one.
func writeLines(w io.Writer, records []Record, value func(*Record) any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for i := range records {
		buf.Reset()
		if err := enc.Encode(value(&records[i])); err != nil {
			return err
		}
		if _, err := w.Write(buf.Bytes()); err != nil {
			return err
		}
	}
	return nil
}
