package meter_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
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
