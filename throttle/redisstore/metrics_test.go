package redisstore_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tenancykit/tenancy/internal/testservers"
	"github.com/tenancykit/tenancy/throttle"
	"github.com/tenancykit/tenancy/throttle/redisstore"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// collect returns the int64 points of every metric, as name{key=value}
// → value. A point without attributes is keyed by its name alone.
func collect(t *testing.T, r *sdkmetric.ManualReader) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			var points []metricdata.DataPoint[int64]
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				points = d.DataPoints
			case metricdata.Gauge[int64]:
				points = d.DataPoints
			default:
				t.Fatalf("metric %s: unexpected data %T", m.Name, m.Data)
			}
			for _, p := range points {
				name := m.Name
				if p.Attributes.Len() > 1 {
					t.Errorf("metric %s has attributes %v; want at most one, never a tenant", m.Name, p.Attributes.ToSlice())
				}
				for _, kv := range p.Attributes.ToSlice() {
					name += "{" + string(kv.Key) + "=" + kv.Value.String() + "}"
				}
				out[name] = p.Value
			}
		}
	}
	return out
}

// TestMetrics: the store reports how it decides, its state, its switches
// and failed calls, and the replicas; a tier that fails closed has its
// refusals counted, and the switch logged once, however many there are.
func TestMetrics(t *testing.T) {
	srv := testservers.Redis(t)
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { mp.Shutdown(context.Background()) })
	logs := &countingHandler{}
	s := newStore(t, newClient(t, srv.Addr), redisstore.WithMeterProvider(mp), redisstore.WithLogger(slog.New(logs)), redisstore.WithTimeout(300*time.Millisecond))
	clk := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	ctx := context.Background()
	closed := throttle.Limits{Rate: 100, Burst: 100, OnStoreFailure: throttle.FailClosed}
	open := throttle.Limits{Rate: 100, Burst: 100, OnStoreFailure: throttle.FailOpen}
	local := throttle.Limits{Rate: 100, Burst: 100}
	for range 5 {
		if _, err := s.Take(ctx, "acme", closed, 1, clk.now()); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]int64{
		"tenancy.throttle.store.decisions{mode=shared}": 5,
		"tenancy.throttle.store.state{state=shared}":    1,
		"tenancy.throttle.store.state{state=fallback}":  0,
		"tenancy.throttle.store.replicas":               1,
	}
	if diff := cmp.Diff(want, collect(t, reader)); diff != "" {
		t.Fatalf("with Redis up (-want +got):\n%s", diff)
	}

	// One slow call: a timeout, decided alone.
	if _, err := srv.Command("CLIENT", "PAUSE", "1000", "ALL"); err != nil {
		t.Fatal(err)
	}
	s.Take(ctx, "acme", closed, 1, clk.now())
	if _, err := srv.Command("CLIENT", "UNPAUSE"); err != nil {
		t.Fatal(err)
	}

	srv.Stop()
	const refusals = 10_000
	for i := range refusals {
		res, err := s.Take(ctx, "acme", closed, 1, clk.now())
		if err != nil || res.Allowed || res.Reason != throttle.ReasonStore {
			t.Fatalf("fail closed, request %d: %+v, %v", i, res, err)
		}
	}
	for range 3 {
		s.Take(ctx, "acme", open, 1, clk.now())
		s.Take(ctx, "acme", local, 1, clk.now())
	}
	want = map[string]int64{
		"tenancy.throttle.store.decisions{mode=shared}": 5,
		"tenancy.throttle.store.decisions{mode=closed}": 1 + refusals,
		"tenancy.throttle.store.decisions{mode=open}":   3,
		"tenancy.throttle.store.decisions{mode=local}":  3,
		// The store tries Redis for each decision until three in a row
		// have failed (the slow call was the first), then every retry
		// interval, which has not passed. go-redis dials a Redis that is
		// gone again and again until the deadline: a timeout too.
		"tenancy.throttle.store.errors{error=timeout}": 3,
		"tenancy.throttle.store.switches{to=fallback}": 1,
		"tenancy.throttle.store.state{state=shared}":   0,
		"tenancy.throttle.store.state{state=fallback}": 1,
		"tenancy.throttle.store.replicas":              1,
	}
	if diff := cmp.Diff(want, collect(t, reader)); diff != "" {
		t.Fatalf("with Redis gone (-want +got):\n%s", diff)
	}
	if n := logs.warns.Load(); n != 1 {
		t.Fatalf("%d warnings logged for %d refusals, want the switch logged once", n, refusals)
	}

	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	clk.add(redisstore.DefaultRetryInterval)
	if res, err := s.Take(ctx, "acme", closed, 1, clk.now()); err != nil || !res.Allowed {
		t.Fatalf("Redis back: %+v, %v", res, err)
	}
	got := collect(t, reader)
	for name, n := range map[string]int64{
		"tenancy.throttle.store.switches{to=shared}":    1,
		"tenancy.throttle.store.state{state=shared}":    1,
		"tenancy.throttle.store.state{state=fallback}":  0,
		"tenancy.throttle.store.decisions{mode=shared}": 6,
	} {
		if got[name] != n {
			t.Errorf("Redis back: %s = %d, want %d (all: %v)", name, got[name], n, got)
		}
	}
	if n := logs.infos.Load(); n != 1 {
		t.Errorf("%d recoveries logged, want 1", n)
	}
}
