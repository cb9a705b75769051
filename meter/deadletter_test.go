package meter_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/tenancykit/tenancy/meter"
)

// deadLetterLine is a line of the dead-letter file, as WithDeadLetter
// documents it.
type deadLetterLine struct {
	V      int          `json:"v"`
	Reason string       `json:"reason"`
	At     time.Time    `json:"at"`
	Record meter.Record `json:"record"`
}

func readDeadLetters(t testing.TB, path string) []deadLetterLine {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []deadLetterLine
	for line := range bytes.Lines(data) {
		var l deadLetterLine
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&l); err != nil {
			t.Fatalf("dead-letter line %q: %v", line, err)
		}
		out = append(out, l)
	}
	return out
}

// rejecting is a sink that rejects for good the records of the tenants in
// reject, fails (to be tried again) those in fail, and takes the others.
func rejecting(reject, fail []string) *sink {
	return &sink{fail: func(_ int, recs []meter.Record) error {
		de := &meter.DeliveryError{Err: errors.New("some refused")}
		for i, rec := range recs {
			switch {
			case slices.Contains(reject, rec.TenantID):
				de.Rejected = append(de.Rejected, meter.RejectedRecord{Index: i, Reason: "larger than a record can be"})
			case slices.Contains(fail, rec.TenantID):
				de.Failed = append(de.Failed, i)
			}
		}
		if len(de.Rejected)+len(de.Failed) == 0 {
			return nil
		}
		return de
	}}
}

// A record the sink rejects for good goes to the dead-letter file, is not
// sent again and holds up no other: the round goes on past its batch.
func TestRejectedRecordsGoToTheDeadLetterFile(t *testing.T) {
	for _, spool := range []bool{false, true} {
		t.Run("spool "+strconv.FormatBool(spool), func(t *testing.T) {
			dir := t.TempDir()
			dead := filepath.Join(dir, "dead.jsonl")
			s := rejecting([]string{"t1"}, nil)
			clk := newClock(start)
			opts := []meter.Option{testMeters, meter.WithDeadLetter(dead), meter.WithBatchSize(2)}
			if spool {
				opts = append(opts, meter.WithSpool(filepath.Join(dir, "spool")), meter.WithCheckpoint(time.Second))
			}
			r := newRecorder(t, clk, s, opts...)
			for w := range 3 {
				for i := range 6 {
					r.Add(tenantCtx(t, "t"+strconv.Itoa(i)), "api.calls", float64(w+1))
				}
				clk.Advance(time.Minute)
				if err := r.Flush(context.Background()); err != nil {
					t.Fatalf("window %d: Flush = %v, want nil: a rejected record fails nothing", w, err)
				}
				if st := r.Stats(); st.Pending != 0 || st.DeadLettered != int64(w+1) {
					t.Errorf("window %d: Stats = %+v, want nothing pending, %d dead-lettered", w, st, w+1)
				}
			}
			if err := r.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			want := map[string]float64{}
			for i := range 6 {
				if i != 1 {
					want["t"+strconv.Itoa(i)+"|api.calls"] = 6
				}
			}
			if diff := cmp.Diff(want, totals(s.Records())); diff != "" {
				t.Errorf("delivered (-want +got):\n%s", diff)
			}
			sent := 0
			for _, b := range s.Batches() {
				for _, rec := range b {
					if rec.TenantID == "t1" {
						sent++
					}
				}
			}
			if sent != 3 {
				t.Errorf("t1's records were given to the sink %d times, want 3: once each", sent)
			}
			lines := readDeadLetters(t, dead)
			if len(lines) != 3 {
				t.Fatalf("%d dead letters, want t1's 3", len(lines))
			}
			for _, l := range lines {
				if l.V != 1 || l.Record.TenantID != "t1" || l.Reason != "rejected by the sink: larger than a record can be" || l.At.IsZero() {
					t.Errorf("dead letter %+v, want version 1, t1's record, the sink's reason and a time", l)
				}
			}
		})
	}
}

// A record the sink keeps failing (not rejecting) holds up no other: each
// round delivers the rest, and it goes to the back of the queue.
func TestAFailingRecordHoldsUpNoOther(t *testing.T) {
	for _, spool := range []bool{false, true} {
		t.Run("spool "+strconv.FormatBool(spool), func(t *testing.T) {
			s := rejecting(nil, []string{"t1"})
			clk := newClock(start)
			opts := []meter.Option{testMeters, meter.WithBatchSize(2)}
			if spool {
				opts = append(opts, meter.WithSpool(filepath.Join(t.TempDir(), "spool")))
			}
			r := newRecorder(t, clk, s, opts...)
			delivered := 0
			for w := range 4 {
				for i := range 6 {
					r.Add(tenantCtx(t, "t"+strconv.Itoa(i)), "api.calls", 1)
				}
				clk.Advance(time.Minute)
				// Rounds end at a batch with a failure: a few Flushes, as
				// the retries after the backoff, deliver the rest.
				for range 4 {
					r.Flush(context.Background())
				}
				delivered = len(s.Records())
				if want := 5 * (w + 1); delivered != want {
					t.Errorf("window %d: %d records delivered, want the %d of the other tenants", w, delivered, want)
				}
				if st := r.Stats(); st.Pending != w+1 {
					t.Errorf("window %d: Stats = %+v, want t1's %d records pending", w, st, w+1)
				}
			}
			s.mu.Lock()
			s.fail = nil
			s.mu.Unlock()
			if err := r.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			got := s.Records()
			checkOncePerID(t, got)
			if len(got) != 24 {
				t.Errorf("%d records in all, want 24", len(got))
			}
		})
	}
}

func TestRejectedWithoutADeadLetterFileIsLogged(t *testing.T) {
	logs := &logCapture{}
	s := rejecting([]string{"acme"}, nil)
	r := newRecorder(t, newClock(start), s, testMeters, meter.WithLogger(slog.New(logs)))
	r.Add(tenantCtx(t, "acme"), "api.calls", 42)
	r.Add(tenantCtx(t, "globex"), "api.calls", 1)
	if err := r.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := r.Stats(); st.DeadLettered != 1 || st.Delivered != 1 {
		t.Errorf("Stats = %+v, want 1 dead-lettered, 1 delivered", st)
	}
	found := false
	for _, l := range logs.lines() {
		if l["level"] == "ERROR" && l["tenant_id"] == "acme" && l["value"] == "42" && l["id"] != "" &&
			strings.Contains(l["reason"], "larger than a record can be") {
			found = true
		}
	}
	if !found {
		t.Errorf("no error line with the record and the reason; logged %v", logs.lines())
	}
}

// Records older than WithMaxRecordAge when they would be delivered go to
// the dead-letter file as "too old"; the others are delivered.
func TestMaxRecordAge(t *testing.T) {
	for _, spool := range []bool{false, true} {
		t.Run("spool "+strconv.FormatBool(spool), func(t *testing.T) {
			dir := t.TempDir()
			dead := filepath.Join(dir, "dead.jsonl")
			s := &sink{fail: func(int, []meter.Record) error { return errDown }}
			clk := newClock(start)
			opts := []meter.Option{testMeters, meter.WithDeadLetter(dead), meter.WithMaxRecordAge(6 * time.Hour)}
			if spool {
				opts = append(opts, meter.WithSpool(filepath.Join(dir, "spool")))
			}
			r := newRecorder(t, clk, s, opts...)
			r.Add(tenantCtx(t, "acme"), "api.calls", 1) // the window ending at 12:01
			clk.Advance(time.Minute)
			r.Flush(context.Background())
			clk.Advance(6 * time.Hour) // 18:01: acme's window ended 6 hours ago, to the nanosecond
			r.Flush(context.Background())
			if st := r.Stats(); st.DeadLettered != 0 || st.Pending != 1 {
				t.Fatalf("Stats = %+v: dead-lettered at exactly the maximum age", st)
			}
			r.Add(tenantCtx(t, "globex"), "api.calls", 2)
			clk.Advance(time.Minute) // 18:02: globex's window ended just now
			s.mu.Lock()
			s.fail = nil
			s.mu.Unlock()
			if err := r.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(map[string]float64{"globex|api.calls": 2}, totals(s.Records())); diff != "" {
				t.Errorf("delivered (-want +got):\n%s", diff)
			}
			lines := readDeadLetters(t, dead)
			if len(lines) != 1 || lines[0].Reason != "too old" || lines[0].Record.TenantID != "acme" || !lines[0].At.Equal(clk.Now()) {
				t.Errorf("dead letters %+v, want acme's record, too old, at %v", lines, clk.Now())
			}
			if st := r.Stats(); st.Pending != 0 || st.DeadLettered != 1 {
				t.Errorf("Stats = %+v, want nothing pending, 1 dead-lettered", st)
			}
			if err := r.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Without a spool, the oldest records past WithMaxPending go to the
// dead-letter file instead of being dropped.
func TestPendingFullGoesToTheDeadLetterFile(t *testing.T) {
	dead := filepath.Join(t.TempDir(), "dead.jsonl")
	s := &sink{fail: func(int, []meter.Record) error { return errDown }}
	clk := newClock(start)
	r := newRecorder(t, clk, s, testMeters, meter.WithMaxPending(2), meter.WithDeadLetter(dead))
	for i := range 5 {
		r.Add(tenantCtx(t, "t"+strconv.Itoa(i)), "api.calls", 1)
	}
	clk.Advance(time.Minute)
	r.Flush(context.Background())
	if st := r.Stats(); st.Pending != 2 || st.DeadLettered != 3 || st.Dropped != 0 {
		t.Errorf("Stats = %+v, want 2 pending, 3 dead-lettered, none dropped", st)
	}
	lines := readDeadLetters(t, dead)
	if len(lines) != 3 || lines[0].Reason != "pending full" {
		t.Errorf("dead letters %+v, want 3, pending full", lines)
	}
	s.mu.Lock()
	s.fail = nil
	s.mu.Unlock()
	if err := r.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// A dimension value longer than MaxDimensionValueLen is cut at a
// character boundary, and counted.
func TestLongDimensionValuesAreCut(t *testing.T) {
	s := &sink{}
	r := newRecorder(t, newClock(start), s, testMeters)
	long := strings.Repeat("a", meter.MaxDimensionValueLen-1) + "é" + "tail" // é straddles the limit
	other := strings.Repeat("a", meter.MaxDimensionValueLen-1) + "é" + "other"
	r.Add(tenantCtx(t, "acme"), "jobs.run", 1, long, "s")
	r.Add(tenantCtx(t, "acme"), "jobs.run", 2, other, "s")
	r.Add(tenantCtx(t, "acme"), "jobs.run", 4, "eu", strings.Repeat("z", 10_000))
	if err := r.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		"acme|jobs.run|region=" + strings.Repeat("a", meter.MaxDimensionValueLen-1) + "|size=s": 3,
		"acme|jobs.run|region=eu|size=" + strings.Repeat("z", meter.MaxDimensionValueLen):       4,
	}
	if diff := cmp.Diff(want, totals(s.Records())); diff != "" {
		t.Errorf("totals (-want +got):\n%.500s", diff)
	}
	for _, rec := range s.Records() {
		for k, v := range rec.Dimensions {
			if len(v) > meter.MaxDimensionValueLen || !utf8.ValidString(v) {
				t.Errorf("dimension %s is %d bytes (valid UTF-8: %v)", k, len(v), utf8.ValidString(v))
			}
		}
	}
	if st := r.Stats(); st.Truncated != 3 {
		t.Errorf("Stats = %+v, want 3 values cut", st)
	}
}
