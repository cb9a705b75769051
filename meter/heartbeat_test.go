package meter_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tenancykit/tenancy/meter"
)

// heartbeats splits recs into heartbeats, by window start, and the rest.
func heartbeats(recs []meter.Record) (beats map[time.Time]float64, usage []meter.Record) {
	beats = map[time.Time]float64{}
	for _, rec := range recs {
		if rec.Meter == meter.HeartbeatMeter {
			beats[rec.WindowStart] += rec.Value
			continue
		}
		usage = append(usage, rec)
	}
	return beats, usage
}

// Each window the Recorder ran in has a heartbeat: the number of its
// records, 0 for none; the windows it did not run in (a process frozen,
// here a clock that jumps with no Flush) have none.
func TestHeartbeatPerWindowItRan(t *testing.T) {
	clk := newClock(start.Add(10 * time.Second))
	s := &sink{}
	r := newRecorder(t, clk, s, testMeters, meter.WithHeartbeat())
	ctx := context.Background()
	r.Add(tenantCtx(t, "acme"), "api.calls", 1)
	r.Add(tenantCtx(t, "globex"), "jobs.run", 1, "eu", "s")
	clk.Advance(time.Minute) // 12:01:10
	r.Flush(ctx)             // window 12:00 closes
	clk.Advance(time.Minute) // 12:02:10
	r.Flush(ctx)             // 12:01, which it ran in, closes without usage
	clk.Advance(3 * time.Minute)
	r.Add(tenantCtx(t, "acme"), "api.calls", 1) // 12:05:10, after a gap
	r.Flush(ctx)                                // 12:02 (seen), 12:03 and 12:04 (not) close
	if err := r.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	got := s.Records()
	beats, usage := heartbeats(got)
	want := map[time.Time]float64{
		start:                      2,
		start.Add(time.Minute):     0,
		start.Add(2 * time.Minute): 0,
		start.Add(5 * time.Minute): 1,
	}
	if diff := cmp.Diff(want, beats); diff != "" {
		t.Errorf("heartbeats by window (-want +got):\n%s", diff)
	}
	if len(usage) != 3 {
		t.Errorf("%d usage records, want 3", len(usage))
	}
	checkOncePerID(t, got)
	for _, rec := range got {
		if rec.Meter != meter.HeartbeatMeter {
			continue
		}
		wantRec := meter.Record{Meter: meter.HeartbeatMeter, Value: rec.Value, Unit: meter.UnitCount,
			WindowStart: rec.WindowStart, WindowEnd: rec.WindowStart.Add(time.Minute), Service: "orders", Instance: "i-1"}
		if diff := cmp.Diff(wantRec, rec, cmpopts.IgnoreFields(meter.Record{}, "ID")); diff != "" {
			t.Errorf("heartbeat (-want +got):\n%s", diff)
		}
	}
}

// Adds on the heartbeat meter are not taken for heartbeats.
func TestHeartbeatMeterIsReserved(t *testing.T) {
	s := &sink{}
	r := newRecorder(t, newClock(start), s, testMeters)
	r.Add(tenantCtx(t, "acme"), meter.HeartbeatMeter, 5)
	if err := r.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]float64{"acme|meter.undeclared": 5}, totals(s.Records())); diff != "" {
		t.Errorf("totals (-want +got):\n%s", diff)
	}
}

func TestTenantTotals(t *testing.T) {
	clk := newClock(start)
	r := newRecorder(t, clk, &sink{}, testMeters, meter.WithHeartbeat())
	ctx := context.Background()
	r.Add(tenantCtx(t, "acme"), "api.calls", 1)
	r.Add(tenantCtx(t, "acme"), "jobs.run", 2, "eu", "s")
	r.Add(tenantCtx(t, "acme"), "jobs.run", 3, "us", "m")
	r.Add(ctx, "api.calls", 4)
	clk.Advance(time.Minute)
	r.Add(tenantCtx(t, "acme"), "api.calls", 10) // open: not closed yet
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]float64{
		"acme": {"api.calls": 1, "jobs.run": 5},
		"":     {"api.calls": 4},
	}
	if diff := cmp.Diff(want, r.TenantTotals()); diff != "" {
		t.Errorf("TenantTotals (-want +got):\n%s", diff)
	}
	// A copy: changing it changes nothing.
	r.TenantTotals()["acme"]["api.calls"] = 1000
	if got := r.TenantTotals()["acme"]["api.calls"]; got != 1 {
		t.Errorf("TenantTotals after changing a copy: %v, want 1", got)
	}

	// Bounded: past 10,000 tenants, the rest is summed under Overflow.
	for i := range 10_005 {
		r.Add(tenantCtx(t, "tenant-"+strconv.Itoa(i)), "api.calls", 1)
	}
	if err := r.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	got := r.TenantTotals()
	if len(got) != 10_000+1 {
		t.Errorf("%d tenants, want 10,000 and Overflow", len(got))
	}
	var sum float64
	for _, m := range got {
		sum += m["api.calls"]
	}
	if sum != 1+4+10+10_005 {
		t.Errorf("api.calls sums to %v, want %v: nothing is lost to the bound", sum, 1+4+10+10_005)
	}
	if got[meter.Overflow]["api.calls"] == 0 {
		t.Error("nothing under Overflow")
	}
}
