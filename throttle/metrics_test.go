package throttle_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/tenancykit/tenancy/internal/metrictest"
	"github.com/tenancykit/tenancy/tenant"
	"github.com/tenancykit/tenancy/throttle"
)

// inFlight reads tenancy.throttle.in_flight: the value of each series, by
// its attributes written as "tier/phase" (and "/limiter" when named).
func inFlight(t *testing.T, reader *sdkmetric.ManualReader) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "tenancy.throttle.in_flight" {
				continue
			}
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok || sum.IsMonotonic {
				t.Fatalf("%s is a %T (monotonic %v), want an up-down Sum[int64]", m.Name, m.Data, ok && sum.IsMonotonic)
			}
			for _, dp := range sum.DataPoints {
				var parts []string
				for _, k := range []attribute.Key{tenant.TierKey, "phase", "limiter"} {
					if v, ok := dp.Attributes.Value(k); ok {
						parts = append(parts, v.AsString())
					}
				}
				if len(parts) != dp.Attributes.Len() {
					t.Errorf("unexpected attributes %v", dp.Attributes.ToSlice())
				}
				got[strings.Join(parts, "/")] = dp.Value
			}
		}
	}
	return got
}

// TestInFlightMetric: the requests a limiter admitted whose handlers run,
// and those whose bodies it reads before they may take a slot, by tier,
// never by tenant; back to zero when they are done.
func TestInFlightMetric(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { mp.Shutdown(context.Background()) })
	limits := tierLimits()
	limits["premium"] = throttle.Limits{Rate: 500, Burst: 1000, MaxConcurrent: 8}
	l := newLimiter(t, newClock(start), limits, throttle.WithMeterProvider(mp))
	inside, hold := make(chan struct{}), make(chan struct{})
	h := l.Middleware()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		inside <- struct{}{}
		<-hold
	}))
	var wg sync.WaitGroup
	run := func(tn tenant.Tenant, r *http.Request) {
		wg.Go(func() { serve(h, &tn, r) })
	}
	acme := mustTenant(t, "acme-corp-123", tiers.MustLookup("premium"))
	globex := mustTenant(t, "globex-456", tiers.MustLookup("premium"))
	initech := mustTenant(t, "initech-789", tiers.MustLookup("basic"))
	run(acme, get("/"))
	run(globex, get("/"))
	run(initech, get("/"))
	for range 3 {
		<-inside
	}
	// One more premium request, whose body has not come yet.
	bodyR, bodyW := io.Pipe()
	run(acme, httptest.NewRequest(http.MethodPost, "/", bodyR))
	bodyW.Write([]byte("{")) // the read ahead has begun

	if diff := cmp.Diff(map[string]int64{"premium/handler": 2, "basic/handler": 1, "premium/body": 1}, inFlight(t, reader)); diff != "" {
		t.Errorf("in flight (-want +got):\n%s", diff)
	}
	bodyW.Write([]byte("}"))
	bodyW.Close()
	<-inside
	if diff := cmp.Diff(map[string]int64{"premium/handler": 3, "basic/handler": 1, "premium/body": 0}, inFlight(t, reader)); diff != "" {
		t.Errorf("in flight, the body in (-want +got):\n%s", diff)
	}
	close(hold)
	wg.Wait()
	if diff := cmp.Diff(map[string]int64{"premium/handler": 0, "basic/handler": 0, "premium/body": 0}, inFlight(t, reader)); diff != "" {
		t.Errorf("in flight, all done (-want +got):\n%s", diff)
	}

	// A named limiter says its name.
	named := newLimiter(t, newClock(start), nil, throttle.WithMeterProvider(mp), throttle.WithName("export"))
	var seen map[string]int64
	named.Middleware()(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		seen = inFlight(t, reader)
	})).ServeHTTP(httptest.NewRecorder(), get("/").WithContext(tenant.NewContext(context.Background(), initech)))
	if seen["basic/handler/export"] != 1 {
		t.Errorf("in flight for a named limiter: %v, want basic/handler/export at 1", seen)
	}
	namedDecisions := int(metrictest.Sum(t, reader, "tenancy.throttle.decisions", "limiter", "export"))
	if namedDecisions != 1 {
		t.Errorf("decisions of the limiter named export: %d, want 1", namedDecisions)
	}
}
