package meter_test

import (
	"context"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tenancykit/tenancy/meter"
)

// As a Lambda function does: FlushAll at the end of each invocation. The
// open window's usage is delivered at once; what is added later in that
// window is delivered again only for itself, under another ID.
func TestFlushAllClosesTheOpenWindow(t *testing.T) {
	clk := newClock(start.Add(10 * time.Second))
	s := &sink{}
	r := newRecorder(t, clk, s, testMeters, meter.WithHeartbeat())
	ctx := context.Background()
	acme := tenantCtx(t, "acme")
	want := []float64{3, 4, 5}
	for i, v := range want {
		r.Add(acme, "api.calls", v)
		if i < 2 {
			if err := r.FlushAll(ctx); err != nil {
				t.Fatal(err)
			}
			beats, usage := heartbeats(s.Records())
			if len(usage) != i+1 || usage[i].Value != v {
				t.Fatalf("after FlushAll %d: delivered %+v, want the record of %v too", i+1, usage, v)
			}
			if beats[start] != float64(i+1) {
				t.Errorf("after FlushAll %d: heartbeats say %v records, want %d", i+1, beats[start], i+1)
			}
		}
		clk.Advance(10 * time.Second)
	}
	// The window ends: only the usage since the last FlushAll.
	clk.Advance(time.Minute)
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	got := s.Records()
	checkOncePerID(t, got)
	_, usage := heartbeats(got)
	var values []float64
	for _, rec := range usage {
		values = append(values, rec.Value)
		if !rec.WindowStart.Equal(start) {
			t.Errorf("record of %v in the window of %v, want noon's", rec.Value, rec.WindowStart)
		}
	}
	if diff := cmp.Diff(want, values); diff != "" {
		t.Errorf("records delivered, in order (-want +got):\n%s", diff)
	}
	// The first part keeps the ID a window closed at its end has.
	ref := &sink{}
	r0 := newRecorder(t, newClock(start.Add(10*time.Second)), ref, testMeters)
	r0.Add(acme, "api.calls", 3)
	if err := r0.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if id := ref.Records()[0].ID; usage[0].ID != id {
		t.Errorf("the first part's ID is %s, want %s, the window's", usage[0].ID, id)
	}
}

// A FlushAll, adds after it, a crash and a recovery by another instance:
// every part once.
func TestFlushAllThenCrash(t *testing.T) {
	spool := filepath.Join(t.TempDir(), "spool")
	clk := newClock(start.Add(10 * time.Second))
	s := &sink{}
	r1 := durableRecorder(t, clk, s, spool, "i-1")
	acme := tenantCtx(t, "acme")
	r1.Add(acme, "api.calls", 3)
	if err := r1.FlushAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	r1.Add(acme, "api.calls", 4)
	if err := r1.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	r1.Abandon()
	r2 := durableRecorder(t, newClock(start.Add(20*time.Second)), s, spool, "i-1")
	r2.Add(acme, "api.calls", 5)
	if err := r2.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := s.Records()
	checkOncePerID(t, got)
	if len(got) != 3 {
		t.Errorf("%d records, want 3", len(got))
	}
	if diff := cmp.Diff(map[string]float64{"acme|api.calls": 12}, totals(got)); diff != "" {
		t.Errorf("totals (-want +got):\n%s", diff)
	}
}

// FlushAll while adds land: each add is in exactly one record.
func TestFlushAllRacingAdds(t *testing.T) {
	const goroutines = 8
	clk := newClock(start)
	s := &sink{}
	r := newRecorder(t, clk, s, testMeters)
	ctxs := make([]context.Context, 4)
	for i := range ctxs {
		ctxs[i] = tenantCtx(t, "t"+strconv.Itoa(i))
	}
	var added atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				r.Add(ctxs[(g+i)%len(ctxs)], "api.calls", 1)
				added.Add(1)
			}
		})
	}
	for i := range 200 {
		for from := added.Load(); added.Load() < from+50; {
			runtime.Gosched()
		}
		if i%50 == 49 {
			clk.Advance(time.Minute)
		}
		if err := r.FlushAll(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if err := r.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := s.Records()
	checkOncePerID(t, got)
	var sum float64
	for _, rec := range got {
		sum += rec.Value
	}
	if sum != float64(added.Load()) {
		t.Errorf("delivered %v, want the %d adds", sum, added.Load())
	}
	checkWindows(t, got, meter.DefaultWindow)
}
