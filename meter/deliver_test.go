package meter_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tenancykit/tenancy/meter"
)

// checkSameContent fails t when two batches carry different records under
// one ID: a record sent again must be the same record.
func checkSameContent(t testing.TB, batches [][]meter.Record) {
	t.Helper()
	byID := make(map[string]meter.Record)
	for _, b := range batches {
		for _, rec := range b {
			if prev, ok := byID[rec.ID]; ok {
				if diff := cmp.Diff(prev, rec); diff != "" {
					t.Errorf("record %s sent again with other content (-first +again):\n%s", rec.ID, diff)
				}
				continue
			}
			byID[rec.ID] = rec
		}
	}
}

func TestFailingSinkKeepsRecordsUntilItRecovers(t *testing.T) {
	clk := newClock(start)
	s := &sink{fail: func(call int, _ []meter.Record) error {
		if call <= 3 {
			return errDown
		}
		return nil
	}}
	r := newRecorder(t, clk, s, testMeters)
	ctx := context.Background()
	acme, globex := tenantCtx(t, "acme"), tenantCtx(t, "globex")

	r.Add(acme, "api.calls", 1)
	r.Add(globex, "api.calls", 2)
	clk.Advance(time.Minute)
	r.Add(acme, "api.calls", 4) // the next window, open
	steps := []struct {
		pending int
		retried int64
	}{{2, 1}, {3, 2}, {3, 3}}
	for i, step := range steps {
		err := r.Flush(ctx)
		if !errors.Is(err, errDown) {
			t.Fatalf("Flush %d = %v, want an error wrapping %v", i+1, err, errDown)
		}
		if i == 0 {
			// The second window closes while the sink is down.
			clk.Advance(time.Minute)
		}
		st := r.Stats()
		if st.Pending != step.pending || st.Retried != step.retried || st.Delivered != 0 {
			t.Errorf("after Flush %d: Stats = %+v, want Pending %d, Retried %d, Delivered 0", i+1, st, step.pending, step.retried)
		}
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatalf("Flush after the sink recovered: %v", err)
	}
	if st := r.Stats(); st.Pending != 0 || st.Delivered != 3 || st.Retried != 3 {
		t.Errorf("after recovery: Stats = %+v, want Pending 0, Delivered 3, Retried 3", st)
	}
	if err := r.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	got := s.Records()
	if diff := cmp.Diff(map[string]float64{"acme|api.calls": 5, "globex|api.calls": 2}, totals(got)); diff != "" {
		t.Errorf("totals (-want +got):\n%s", diff)
	}
	checkOncePerID(t, got)
	checkSameContent(t, s.Batches())
	if n := s.Calls(); n != 4 {
		t.Errorf("sink called %d times, want 4 (3 failures, then 1 batch)", n)
	}
}

func TestPartialDeliveryResendsOnlyTheFailed(t *testing.T) {
	clk := newClock(start)
	s := &sink{fail: func(call int, recs []meter.Record) error {
		if call > 1 {
			return nil
		}
		var failed []int
		for i, rec := range recs {
			if rec.TenantID == "t1" || rec.TenantID == "t4" {
				failed = append(failed, i)
			}
		}
		// Duplicate and out-of-range indexes are ignored.
		failed = append(failed, failed[0], len(recs), -1)
		return &meter.DeliveryError{Failed: failed, Err: errDown}
	}}
	r := newRecorder(t, clk, s, testMeters)
	ctx := context.Background()
	for i := range 6 {
		r.Add(tenantCtx(t, "t"+strconv.Itoa(i)), "api.calls", float64(i+1))
	}
	clk.Advance(time.Minute)

	err := r.Flush(ctx)
	var de *meter.DeliveryError
	if !errors.As(err, &de) || !errors.Is(err, errDown) {
		t.Fatalf("Flush = %v, want a *DeliveryError wrapping %v", err, errDown)
	}
	if st := r.Stats(); st.Delivered != 4 || st.Pending != 2 || st.Retried != 1 {
		t.Errorf("after the partial delivery: Stats = %+v, want Delivered 4, Pending 2, Retried 1", st)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatalf("second Flush: %v", err)
	}
	if err := r.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}

	batches := s.Batches()
	if len(batches) != 2 {
		t.Fatalf("%d batches, want 2", len(batches))
	}
	var resent []string
	for _, rec := range batches[1] {
		resent = append(resent, rec.TenantID)
	}
	slices.Sort(resent)
	if diff := cmp.Diff([]string{"t1", "t4"}, resent); diff != "" {
		t.Errorf("tenants sent again (-want +got):\n%s", diff)
	}
	got := s.Records()
	checkOncePerID(t, got)
	checkSameContent(t, batches)
	want := make(map[string]float64)
	for i := range 6 {
		want["t"+strconv.Itoa(i)+"|api.calls"] = float64(i + 1)
	}
	if diff := cmp.Diff(want, totals(got)); diff != "" {
		t.Errorf("totals (-want +got):\n%s", diff)
	}
}

func TestBatchesStopAtTheFirstFailure(t *testing.T) {
	clk := newClock(start)
	s := &sink{fail: func(call int, _ []meter.Record) error {
		if call == 2 {
			return errDown
		}
		return nil
	}}
	r := newRecorder(t, clk, s, testMeters, meter.WithBatchSize(2))
	ctx := context.Background()
	for i := range 5 {
		r.Add(tenantCtx(t, "t"+strconv.Itoa(i)), "api.calls", 1)
	}
	clk.Advance(time.Minute)
	if err := r.Flush(ctx); !errors.Is(err, errDown) {
		t.Fatalf("Flush = %v, want %v", err, errDown)
	}
	if st := r.Stats(); st.Delivered != 2 || st.Pending != 3 {
		t.Errorf("Stats = %+v, want Delivered 2 (the first batch), Pending 3", st)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatalf("second Flush: %v", err)
	}
	if err := r.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	var sizes []int
	for _, b := range s.Batches() {
		sizes = append(sizes, len(b))
	}
	if diff := cmp.Diff([]int{2, 2, 2, 1}, sizes); diff != "" {
		t.Errorf("batch sizes (-want +got):\n%s", diff)
	}
	got := s.Records()
	if len(got) != 5 {
		t.Errorf("%d records delivered, want 5", len(got))
	}
	checkOncePerID(t, got)
	checkSameContent(t, s.Batches())
}

func TestBackoffDoublesFromMinToMax(t *testing.T) {
	clk := newClock(start)
	down := true
	s := &sink{fail: func(int, []meter.Record) error {
		if down {
			return errDown
		}
		return nil
	}}
	r := newRecorder(t, clk, s, testMeters, meter.WithBackoff(time.Second, 8*time.Second))
	ctx := context.Background()
	r.Add(tenantCtx(t, "acme"), "api.calls", 1)
	clk.Advance(time.Minute)
	for _, want := range []time.Duration{1, 2, 4, 8, 8, 8} {
		want *= time.Second
		if err := r.Flush(ctx); err == nil {
			t.Fatal("Flush succeeded with the sink down")
		}
		backoff, at := r.Backoff()
		if backoff != want || !at.Equal(clk.Now().Add(want)) {
			t.Errorf("backoff %v, retry at %v; want %v, at %v", backoff, at, want, clk.Now().Add(want))
		}
		clk.Advance(time.Second)
	}
	s.mu.Lock()
	down = false
	s.mu.Unlock()
	if err := r.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	if backoff, _ := r.Backoff(); backoff != 0 {
		t.Errorf("backoff after a delivery = %v, want 0", backoff)
	}
	// And it starts again from the minimum.
	s.mu.Lock()
	down = true
	s.mu.Unlock()
	r.Add(tenantCtx(t, "acme"), "api.calls", 1)
	clk.Advance(time.Minute)
	r.Flush(ctx)
	if backoff, _ := r.Backoff(); backoff != time.Second {
		t.Errorf("backoff after a new failure = %v, want 1s", backoff)
	}
	s.mu.Lock()
	down = false
	s.mu.Unlock()
	if err := r.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

func TestLoopDeliversAndRetries(t *testing.T) {
	// The one test on the real clock: a 1s window, so the loop delivers
	// within about a second; the test only waits on a channel, bounded.
	delivered := make(chan []meter.Record, 1)
	s := &sink{fail: func(call int, recs []meter.Record) error {
		if call <= 2 {
			return errDown
		}
		delivered <- slices.Clone(recs)
		return nil
	}}
	logs := &logCapture{}
	r, err := meter.New("orders", s, testMeters, meter.WithWindow(time.Second),
		meter.WithBackoff(10*time.Millisecond, 20*time.Millisecond), meter.WithLogger(slog.New(logs)))
	if err != nil {
		t.Fatal(err)
	}
	r.Add(tenantCtx(t, "acme"), "api.calls", 3)
	select {
	case recs := <-delivered:
		if len(recs) != 1 || recs[0].TenantID != "acme" || recs[0].Value != 3 {
			t.Errorf("delivered %+v, want one record of 3 for acme", recs)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the loop delivered nothing in 10s")
	}
	if err := r.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if st := r.Stats(); st.Delivered != 1 || st.Retried != 2 || st.Pending != 0 {
		t.Errorf("Stats = %+v, want Delivered 1, Retried 2, Pending 0", st)
	}
	warnings := 0
	for _, l := range logs.lines() {
		if l["level"] == "WARN" && strings.Contains(l["msg"], "delivery failed") {
			warnings++
		}
	}
	if warnings != 2 {
		t.Errorf("%d delivery warnings logged, want 2", warnings)
	}
}
