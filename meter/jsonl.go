package meter

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
)

// JSONLines is a [Sink] that writes one JSON record per line to a writer:
// for a file a collector ships, or stdout. It is safe for concurrent use.
//
// Lines are whole, even when the disk fills up in the middle of one. On a
// writer that can be truncated (an *os.File of a regular file), a line cut
// short is truncated away before Write returns, so the file holds only
// whole lines; it must then be written by this sink alone. On any other
// writer (a pipe, a terminal), the cut line stays, and the next Write
// starts a fresh line: readers must skip a line that is not valid JSON.
// Records whose lines were written whole are delivered; the others are
// reported in a [*DeliveryError] and written again later, with the same
// IDs.
type JSONLines struct {
	mu sync.Mutex
	lw lineWriter
}

// NewJSONLines returns a sink writing to w.
func NewJSONLines(w io.Writer) *JSONLines { return &JSONLines{lw: lineWriter{w: w}} }

// OpenJSONLines returns a sink appending to the file at path, created if
// needed, and synced to disk after every write. Close it when done.
func OpenJSONLines(path string) (*JSONLines, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("meter: %w", err)
	}
	return &JSONLines{lw: lineWriter{w: f, sync: f.Sync}}, nil
}

// Write implements [Sink]: each record is one line, written whole or not
// at all. When some lines were written and then one failed, the error is a
// [*DeliveryError] naming the records not written; a record JSON cannot
// encode (a NaN value) is rejected in it.
func (s *JSONLines) Write(_ context.Context, records []Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.lw.write(records, func(r *Record) any { return r }); err != nil {
		return fmt.Errorf("meter: JSON lines: %w", err)
	}
	return nil
}

// Close closes the file of a sink from OpenJSONLines.
func (s *JSONLines) Close() error {
	if c, ok := s.lw.w.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// truncater is a writer whose output can be cut back: an *os.File. Seek
// fails on a file that is not a regular one (a pipe, a terminal), which is
// then treated as a plain writer.
type truncater interface {
	io.Seeker
	Truncate(size int64) error
}

// lineWriter writes records as lines, one Write per line: a writer shared
// with other line-oriented output (slog on stdout) never sees half of one
// from it, and a line cut short by a failing writer is either truncated
// away or ended by the next Write. Its user serializes the calls.
type lineWriter struct {
	w    io.Writer
	sync func() error // nil: nothing to sync
	// cut is set when the output may end with part of a line: the next
	// write starts with a newline.
	cut bool
}

// write writes each record's value as a JSON line. It returns nil when
// every line was written (and synced); a plain error when none was and
// all may be later; else a [*DeliveryError] naming the records from the
// first line that failed, and rejecting those whose value JSON cannot
// encode (a NaN), which no retry cures.
func (l *lineWriter) write(records []Record, value func(*Record) any) error {
	if len(records) == 0 {
		return nil
	}
	if l.cut {
		if n, err := l.w.Write([]byte{'\n'}); n != 1 || err != nil {
			return fmt.Errorf("ending a line cut short: %w", orShortWrite(err))
		}
		l.cut = false
	}
	var (
		buf      bytes.Buffer
		enc      = json.NewEncoder(&buf)
		next     int // the first record not written or rejected
		lines    int // written
		rejected []RejectedRecord
		errs     []error
		err      error // of the write that failed
	)
	for ; next < len(records); next++ {
		buf.Reset()
		if eerr := enc.Encode(value(&records[next])); eerr != nil {
			rejected = append(rejected, RejectedRecord{Index: next, Reason: "not encodable as JSON: " + eerr.Error()})
			errs = append(errs, fmt.Errorf("record %s: %w", records[next].ID, eerr))
			continue
		}
		var n int
		if n, err = l.w.Write(buf.Bytes()); err != nil || n != buf.Len() {
			err = orShortWrite(err)
			if n > 0 {
				if terr := l.unwrite(n, buf.Len()); terr != nil {
					err = errors.Join(err, terr)
				}
			}
			break
		}
		lines++
	}
	failed := next // records from here on are to be sent again
	if lines > 0 && l.sync != nil {
		if serr := l.sync(); serr != nil {
			// Nothing is known to be on disk: every record is written
			// again, those already in the file as duplicates by ID.
			err, failed = errors.Join(err, fmt.Errorf("sync: %w", serr)), 0
		}
	}
	if err == nil && len(rejected) == 0 {
		return nil
	}
	errs = append(errs, err)
	de := &DeliveryError{Rejected: rejected, Err: errors.Join(errs...)}
	if err != nil {
		for i := failed; i < len(records); i++ {
			if !slices.ContainsFunc(rejected, func(r RejectedRecord) bool { return r.Index == i }) {
				de.Failed = append(de.Failed, i)
			}
		}
	}
	if len(de.Failed) == len(records) {
		return de.Err
	}
	return de
}

// unwrite takes back the n bytes a failed Write of a line of size bytes
// put out: it truncates them away when the writer allows it, else marks
// the output as ending with a cut line. It returns why truncating failed.
func (l *lineWriter) unwrite(n, size int) error {
	t, ok := l.w.(truncater)
	if !ok {
		l.cut = n < size
		return nil
	}
	// After a Write the offset is the end of what it wrote, also in a
	// file opened with O_APPEND.
	end, err := t.Seek(0, io.SeekCurrent)
	if err != nil {
		// Not a regular file: a plain writer.
		l.cut = n < size
		return nil
	}
	start := end - int64(n)
	if err = t.Truncate(start); err == nil {
		_, err = t.Seek(start, io.SeekStart)
	}
	if err != nil {
		l.cut = true
		return fmt.Errorf("truncating a line cut short: %w", err)
	}
	return nil
}

func orShortWrite(err error) error {
	if err == nil {
		return io.ErrShortWrite
	}
	return err
}
