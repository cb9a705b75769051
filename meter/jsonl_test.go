package meter_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tenancykit/tenancy/meter"
)

// sampleRecords returns n records of distinct tenants.
func sampleRecords(n int, firstTenant int) []meter.Record {
	out := make([]meter.Record, n)
	for i := range out {
		out[i] = meter.Record{
			ID:       strings.Repeat(string(rune('a'+firstTenant+i)), 32),
			TenantID: "t" + string(rune('0'+firstTenant+i)), Tier: "basic",
			Meter: "jobs.run", Value: float64(i) + 0.5, Unit: meter.UnitSeconds,
			WindowStart: start, WindowEnd: start.Add(time.Minute),
			Service: "orders", Instance: "i-1",
			Dimensions: map[string]string{"region": "eu"},
		}
	}
	return out
}

func TestJSONLinesToAWriter(t *testing.T) {
	var buf bytes.Buffer
	s := meter.NewJSONLines(&buf)
	recs := sampleRecords(3, 0)
	if err := s.Write(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3:\n%s", len(lines), buf.String())
	}
	var got []meter.Record
	for i, line := range lines {
		var rec meter.Record
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		got = append(got, rec)
	}
	if diff := cmp.Diff(recs, got); diff != "" {
		t.Errorf("records (-written +read):\n%s", diff)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close of a writer sink: %v", err)
	}
}

func TestJSONLinesAppendsToAFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "usage.jsonl")
	ctx := context.Background()
	var want []meter.Record
	for open := range 2 {
		s, err := meter.OpenJSONLines(path)
		if err != nil {
			t.Fatal(err)
		}
		for w := range 2 {
			recs := sampleRecords(2, open*4+w*2)
			if err := s.Write(ctx, recs); err != nil {
				t.Fatal(err)
			}
			want = append(want, recs...)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff(want, readLines(t, path)); diff != "" {
		t.Errorf("file (-written +read):\n%s", diff)
	}
}

type brokenWriter struct{}

func (brokenWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestJSONLinesErrors(t *testing.T) {
	err := meter.NewJSONLines(brokenWriter{}).Write(context.Background(), sampleRecords(1, 0))
	if err == nil || !strings.HasPrefix(err.Error(), "meter: JSON lines:") {
		t.Errorf("Write to a broken writer = %v, want a meter: JSON lines error", err)
	}
	if _, err := meter.OpenJSONLines(filepath.Join(t.TempDir(), "missing", "usage.jsonl")); err == nil {
		t.Error("OpenJSONLines in a missing directory succeeded")
	}
}

// lineWriter fails the test if a Write call does not hold whole lines.
type lineWriter struct {
	t     *testing.T
	lines int
}

func (w *lineWriter) Write(p []byte) (int, error) {
	if len(p) == 0 || p[len(p)-1] != '\n' || bytes.Count(p, []byte("\n")) != 1 {
		w.t.Errorf("a Write of %d bytes is not exactly one line", len(p))
	}
	w.lines++
	return len(p), nil
}

// A writer shared with slog must get one whole line per Write, however
// big the batch.
func TestSinksWriteWholeLines(t *testing.T) {
	recs := make([]meter.Record, 200)
	for i := range recs {
		recs[i] = meter.Record{ID: strconv.Itoa(i), TenantID: strings.Repeat("t", 100), Meter: "api.calls", Value: 1, Unit: "Count", Service: "orders"}
	}
	lw := &lineWriter{t: t}
	if err := meter.NewJSONLines(lw).Write(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	emf, err := meter.NewEMF(lw, "Test")
	if err != nil {
		t.Fatal(err)
	}
	if err := emf.Write(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	if lw.lines != 400 {
		t.Fatalf("%d writes, want one per record", lw.lines)
	}
}

var jsonLinesSink = lineSink{
	onWriter: func(_ *testing.T, w io.Writer) meter.Sink { return meter.NewJSONLines(w) },
	onFile: func(t *testing.T, path string) (meter.Sink, func() error) {
		s, err := meter.OpenJSONLines(path)
		if err != nil {
			t.Fatal(err)
		}
		return s, s.Close
	},
	decode: func(line []byte) (rec meter.Record, err error) {
		err = json.Unmarshal(line, &rec)
		return rec, err
	},
}

// The file a collector ships holds whole lines only, however full the disk
// gets, and every record once it has room again.
func TestJSONLinesOnAFullDisk(t *testing.T) {
	testFullDisk(t, jsonLinesSink)
}

// brokenTruncate is a diskFile whose Truncate fails.
type brokenTruncate struct{ *diskFile }

func (brokenTruncate) Truncate(int64) error { return syscall.EIO }

// A line cut short by a full disk is truncated away where the writer
// allows it, and ended by the next Write where it does not; the records
// written before it are delivered, the others reported.
func TestLineCutShort(t *testing.T) {
	sinks := []struct {
		name string
		new  func(io.Writer) meter.Sink
	}{
		{"JSONLines", func(w io.Writer) meter.Sink { return meter.NewJSONLines(w) }},
		{"EMF", func(w io.Writer) meter.Sink {
			s, err := meter.NewEMF(w, "Test")
			if err != nil {
				t.Fatal(err)
			}
			return s
		}},
	}
	writers := []struct {
		name     string
		wrap     func(*diskFile) io.Writer
		truncate bool // whether the cut line is taken back
	}{
		{"file", func(f *diskFile) io.Writer { return f }, true},
		{"pipe", func(f *diskFile) io.Writer { return pipe{f} }, false},
		{"file failing to truncate", func(f *diskFile) io.Writer { return brokenTruncate{f} }, false},
	}
	for _, s := range sinks {
		for _, w := range writers {
			t.Run(s.name+" to a "+w.name, func(t *testing.T) {
				ctx := context.Background()
				recs := sampleRecords(5, 0)
				var room bytes.Buffer
				if err := s.new(&room).Write(ctx, recs); err != nil {
					t.Fatal(err)
				}
				lines := slices.Collect(bytes.Lines(room.Bytes()))
				half := lines[2][:len(lines[2])/2]
				d := &disk{free: len(lines[0]) + len(lines[1]) + len(half)}
				f := &diskFile{disk: d}
				sink := s.new(w.wrap(f))
				join := func(parts ...[]byte) string { return string(bytes.Join(parts, nil)) }

				err := sink.Write(ctx, recs)
				var de *meter.DeliveryError
				if !errors.As(err, &de) || !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("Write = %v, want a DeliveryError wrapping ENOSPC", err)
				}
				if diff := cmp.Diff([]int{2, 3, 4}, de.Failed); diff != "" {
					t.Errorf("Failed (-want +got):\n%s", diff)
				}
				want := join(lines[0], lines[1])
				if !w.truncate {
					want = join(lines[0], lines[1], half)
				}
				if diff := cmp.Diff(want, string(f.Bytes())); diff != "" {
					t.Errorf("after the cut (-want +got):\n%s", diff)
				}

				// Still full: nothing written, and the whole batch failed.
				err = sink.Write(ctx, recs[2:])
				if !errors.Is(err, syscall.ENOSPC) || errors.As(err, &de) {
					t.Errorf("Write on a full disk = %v, want ENOSPC and no DeliveryError", err)
				}
				if diff := cmp.Diff(want, string(f.Bytes())); diff != "" {
					t.Errorf("after a failed retry (-want +got):\n%s", diff)
				}

				d.Free(1 << 20)
				if err := sink.Write(ctx, recs[2:]); err != nil {
					t.Fatalf("Write with room again: %v", err)
				}
				want = join(lines...)
				if !w.truncate {
					want = join(lines[0], lines[1], half, []byte("\n"), lines[2], lines[3], lines[4])
				}
				if diff := cmp.Diff(want, string(f.Bytes())); diff != "" {
					t.Errorf("after the retry (-want +got):\n%s", diff)
				}
			})
		}
	}
}

// A record JSON cannot encode (a NaN, which a Recorder never makes but a
// hand-made record may hold) is rejected for the dead-letter file, and the
// others are written.
func TestSinksRejectWhatJSONCannotEncode(t *testing.T) {
	sinks := []struct {
		name string
		new  func(io.Writer) meter.Sink
	}{
		{"JSONLines", func(w io.Writer) meter.Sink { return meter.NewJSONLines(w) }},
		{"EMF", func(w io.Writer) meter.Sink {
			s, err := meter.NewEMF(w, "Test")
			if err != nil {
				t.Fatal(err)
			}
			return s
		}},
	}
	for _, s := range sinks {
		t.Run(s.name, func(t *testing.T) {
			recs := sampleRecords(5, 0)
			recs[1].Value, recs[3].Value = math.NaN(), math.Inf(1)
			var buf bytes.Buffer
			err := s.new(&buf).Write(context.Background(), recs)
			var de *meter.DeliveryError
			if !errors.As(err, &de) {
				t.Fatalf("Write = %v, want a DeliveryError", err)
			}
			if len(de.Failed) != 0 || len(de.Rejected) != 2 || de.Rejected[0].Index != 1 || de.Rejected[1].Index != 3 ||
				!strings.Contains(de.Rejected[0].Reason, "not encodable as JSON") {
				t.Errorf("Failed %v, Rejected %+v; want records 1 and 3 rejected, none failed", de.Failed, de.Rejected)
			}
			if n := bytes.Count(buf.Bytes(), []byte("\n")); n != 3 {
				t.Errorf("%d lines, want the 3 others:\n%s", n, buf.Bytes())
			}
			for line := range bytes.Lines(buf.Bytes()) {
				if !json.Valid(line) {
					t.Errorf("invalid line %q", line)
				}
			}

			// Only such records: rejected still, not failed.
			err = s.new(&buf).Write(context.Background(), recs[1:2])
			if !errors.As(err, &de) || len(de.Rejected) != 1 || len(de.Failed) != 0 {
				t.Errorf("Write(a NaN) = %v, want a DeliveryError rejecting it", err)
			}
		})
	}
}
