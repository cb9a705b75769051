package otelsink_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/tenancykit/tenancy/meter"
	"github.com/tenancykit/tenancy/meter/otelsink"
	"github.com/tenancykit/tenancy/tenant"
)

// newProvider returns an SDK provider with a manual reader, shut down at
// the test's end.
func newProvider(t *testing.T) (*sdkmetric.MeterProvider, *sdkmetric.ManualReader) {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = provider.Shutdown(context.Background()) })
	return provider, reader
}

func newSink(t *testing.T, provider *sdkmetric.MeterProvider, opts ...otelsink.Option) *otelsink.Sink {
	t.Helper()
	s, err := otelsink.New(provider, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// collect returns the sink's metrics, by name.
func collect(t *testing.T, reader *sdkmetric.ManualReader) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(t.Context(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != otelsink.ScopeName {
			t.Errorf("metrics of scope %q", sm.Scope.Name)
			continue
		}
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

var window = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func record(tenantID, tier, meterName string, value float64, dims map[string]string) meter.Record {
	return meter.Record{
		ID: fmt.Sprintf("%s/%s/%v", tenantID, meterName, value), TenantID: tenantID, Unattributed: tenantID == "",
		Tier: tier, Meter: meterName, Value: value, Unit: meter.UnitCount,
		WindowStart: window, WindowEnd: window.Add(time.Minute), Service: "orders", Dimensions: dims,
	}
}

func point(value float64, kvs ...attribute.KeyValue) metricdata.DataPoint[float64] {
	return metricdata.DataPoint[float64]{Attributes: attribute.NewSet(kvs...), Value: value}
}

func sum(points ...metricdata.DataPoint[float64]) metricdata.Sum[float64] {
	return metricdata.Sum[float64]{Temporality: metricdata.CumulativeTemporality, IsMonotonic: true, DataPoints: points}
}

func TestNew(t *testing.T) {
	provider, _ := newProvider(t)
	if _, err := otelsink.New(nil); err == nil || !strings.HasPrefix(err.Error(), "otelsink: ") {
		t.Errorf("New(nil) = %v, want an otelsink: error", err)
	}
	if _, err := otelsink.New(provider, otelsink.WithMaxTenants(-1)); err == nil {
		t.Error("New(WithMaxTenants(-1)) = nil error")
	}
	if _, err := otelsink.New(provider, nil, otelsink.WithMaxTenants(0), otelsink.WithInstrumentName(nil)); err != nil {
		t.Errorf("New with zero options: %v", err)
	}
}

func TestWriteValuesAndAttributes(t *testing.T) {
	provider, reader := newProvider(t)
	s := newSink(t, provider)
	storage := record("acme", "premium", "storage.bytes", 4096, nil)
	storage.Unit = meter.UnitBytes
	recs := []meter.Record{
		record("acme", "premium", "api.calls", 3, map[string]string{"route": "GET /orders"}),
		record("acme", "premium", "api.calls", 2, map[string]string{"route": "GET /orders"}), // a later window
		record("acme", "premium", "api.calls", 1, map[string]string{"route": "POST /orders"}),
		record("beta", "basic", "api.calls", 7, map[string]string{"route": "GET /orders"}),
		record("", "", "api.calls", 5, map[string]string{"route": "GET /health"}),
		// A dimension named like an attribute of the sink is hidden by it.
		record("beta", "basic", "api.calls", 1, map[string]string{"route": "GET /orders", "tenant.id": "acme", "tenant.tier": "platinum"}),
		storage,
	}
	if err := s.Write(t.Context(), recs); err != nil {
		t.Fatal(err)
	}
	got := collect(t, reader)
	if len(got) != 2 {
		t.Errorf("%d metrics, want 2: %v", len(got), got)
	}
	route := func(r string) attribute.KeyValue { return attribute.String("route", r) }
	svc := otelsink.ServiceKey.String("orders")
	want := metricdata.Metrics{
		Name:        "tenancy.usage.api.calls",
		Description: "Usage of api.calls per tenant, from github.com/tenancykit/tenancy/meter.",
		Unit:        "{count}",
		Data: sum(
			point(5, otelsink.TenantIDKey.String("acme"), otelsink.TierKey.String("premium"), svc, route("GET /orders")),
			point(1, otelsink.TenantIDKey.String("acme"), otelsink.TierKey.String("premium"), svc, route("POST /orders")),
			point(8, otelsink.TenantIDKey.String("beta"), otelsink.TierKey.String("basic"), svc, route("GET /orders")),
			point(5, otelsink.TenantIDKey.String("unattributed"), otelsink.TierKey.String("unknown"), svc, route("GET /health")),
		),
	}
	metricdatatest.AssertEqual(t, want, got["tenancy.usage.api.calls"], metricdatatest.IgnoreTimestamp())
	want = metricdata.Metrics{
		Name:        "tenancy.usage.storage.bytes",
		Description: "Usage of storage.bytes per tenant, from github.com/tenancykit/tenancy/meter.",
		Unit:        "By",
		Data:        sum(point(4096, otelsink.TenantIDKey.String("acme"), otelsink.TierKey.String("premium"), svc)),
	}
	metricdatatest.AssertEqual(t, want, got["tenancy.usage.storage.bytes"], metricdatatest.IgnoreTimestamp())
}

func TestTenantOverflow(t *testing.T) {
	provider, reader := newProvider(t)
	s := newSink(t, provider, otelsink.WithMaxTenants(2))
	write := func(recs ...meter.Record) {
		t.Helper()
		if err := s.Write(t.Context(), recs); err != nil {
			t.Fatal(err)
		}
	}
	// Unattributed usage takes no place among the tenants.
	write(record("", "", "api.calls", 100, nil), record("a", "basic", "api.calls", 1, nil), record("b", "premium", "api.calls", 2, nil))
	write(record("c", "basic", "api.calls", 4, nil), record("d", "premium", "api.calls", 8, nil), record("e", "premium", "api.calls", 16, nil))
	// The first two keep their place.
	write(record("a", "basic", "api.calls", 32, nil), record("c", "basic", "api.calls", 64, nil))

	tier := otelsink.TierKey.String
	svc := otelsink.ServiceKey.String("orders")
	want := sum(
		point(100, otelsink.TenantIDKey.String("unattributed"), tier("unknown"), svc),
		point(33, otelsink.TenantIDKey.String("a"), tier("basic"), svc),
		point(2, otelsink.TenantIDKey.String("b"), tier("premium"), svc),
		// The tier stays on overflowing tenants: its values are few.
		point(68, otelsink.TenantIDKey.String(otelsink.Overflow), tier("basic"), svc),
		point(24, otelsink.TenantIDKey.String(otelsink.Overflow), tier("premium"), svc),
	)
	metricdatatest.AssertAggregationsEqual(t, want, collect(t, reader)["tenancy.usage.api.calls"].Data, metricdatatest.IgnoreTimestamp())
}

func TestUnits(t *testing.T) {
	tests := []struct{ unit, want string }{
		{meter.UnitCount, "{count}"},
		{"", "{count}"},
		{meter.UnitBytes, "By"},
		{meter.UnitMilliseconds, "ms"},
		{meter.UnitSeconds, "s"},
		{meter.UnitNone, "1"},
		{"Microseconds", "us"},
		{"Kilobytes", "kBy"},
		{"Percent", "%"},
		{"Bytes/Second", "By/s"},
		{"Count/Second", "{count}/s"},
		{"{request}", "{request}"}, // not CloudWatch's: kept as it is
	}
	provider, reader := newProvider(t)
	s := newSink(t, provider)
	for i, tt := range tests {
		r := record("acme", "basic", fmt.Sprintf("m%d", i), 1, nil)
		r.Unit = tt.unit
		if err := s.Write(t.Context(), []meter.Record{r}); err != nil {
			t.Fatal(err)
		}
		if got := otelsink.Unit(tt.unit); got != tt.want {
			t.Errorf("Unit(%q) = %q, want %q", tt.unit, got, tt.want)
		}
	}
	got := collect(t, reader)
	for i, tt := range tests {
		if m := got[fmt.Sprintf("tenancy.usage.m%d", i)]; m.Unit != tt.want {
			t.Errorf("counter of unit %q has unit %q, want %q", tt.unit, m.Unit, tt.want)
		}
	}
}

func TestInstrumentName(t *testing.T) {
	tests := []struct{ meter, want string }{
		{meter.MeterRequests, "tenancy.usage.http.requests"},
		{"orders/created_v2-x", "tenancy.usage.orders/created_v2-x"},
		{"orders created!", "tenancy.usage.orders_created_"},
		{"café", "tenancy.usage.caf__"},
		{strings.Repeat("x", 300), "tenancy.usage." + strings.Repeat("x", 255-len("tenancy.usage."))},
	}
	for _, tt := range tests {
		if got := otelsink.InstrumentName(tt.meter); got != tt.want {
			t.Errorf("InstrumentName(%q) = %q, want %q", tt.meter, got, tt.want)
		}
	}
}

func TestWithInstrumentName(t *testing.T) {
	var (
		mu      sync.Mutex
		handled []error
	)
	prev := otel.GetErrorHandler()
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		mu.Lock()
		defer mu.Unlock()
		handled = append(handled, err)
	}))
	t.Cleanup(func() { otel.SetErrorHandler(prev) })

	provider, reader := newProvider(t)
	s := newSink(t, provider, otelsink.WithInstrumentName(func(m string) string { return m }))
	recs := []meter.Record{record("acme", "basic", "orders.created", 1, nil), record("acme", "basic", "9 lives", 2, nil)}
	if err := s.Write(t.Context(), recs); err != nil {
		t.Fatalf("Write = %v; an invalid name is reported to the error handler only", err)
	}
	got := collect(t, reader)
	if _, ok := got["orders.created"]; !ok {
		t.Errorf("no counter orders.created in %v", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(handled) != 1 || !errors.Is(handled[0], sdkmetric.ErrInstrumentName) || !strings.Contains(handled[0].Error(), "9 lives") {
		t.Errorf("error handler got %v, want one ErrInstrumentName naming the meter", handled)
	}
}

func TestWriteAfterProviderShutdown(t *testing.T) {
	provider, reader := newProvider(t)
	s := newSink(t, provider)
	recs := []meter.Record{record("acme", "basic", "api.calls", 1, nil)}
	if err := s.Write(t.Context(), recs); err != nil {
		t.Fatal(err)
	}
	if got := collect(t, reader); len(got) != 1 {
		t.Fatalf("%d metrics before shutdown, want 1", len(got))
	}
	if err := provider.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(t.Context(), recs); !errors.Is(err, otelsink.ErrProviderClosed) {
		t.Errorf("Write after Shutdown = %v, want ErrProviderClosed", err)
	}

	// A provider that discards from the start was chosen to: no error.
	s, err := otelsink.New(noop.NewMeterProvider())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(t.Context(), recs); err != nil {
		t.Errorf("Write to a no-op provider = %v, want nil", err)
	}
}

func TestConcurrentWrites(t *testing.T) {
	provider, reader := newProvider(t)
	s := newSink(t, provider, otelsink.WithMaxTenants(5))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				r := record(fmt.Sprintf("t%d", (g+i)%10), "basic", fmt.Sprintf("m%d", i%3), 1, nil)
				if err := s.Write(context.Background(), []meter.Record{r}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	total, tenants := 0.0, map[string]bool{}
	for _, m := range collect(t, reader) {
		for _, dp := range m.Data.(metricdata.Sum[float64]).DataPoints {
			total += dp.Value
			id, _ := dp.Attributes.Value(otelsink.TenantIDKey)
			tenants[id.AsString()] = true
		}
	}
	if total != 800 {
		t.Errorf("total %v, want 800", total)
	}
	if len(tenants) != 6 || !tenants[otelsink.Overflow] {
		t.Errorf("tenant.id values %v, want 5 tenants and the overflow", tenants)
	}
}

// TestRecorder runs a Recorder into the sink, as a service does.
func TestRecorder(t *testing.T) {
	provider, reader := newProvider(t)
	rec, err := meter.New("orders", newSink(t, provider),
		meter.WithMeters(meter.HTTPMeters()...),
		meter.WithoutLoop(), meter.WithInstance("task-1"), meter.WithClock(func() time.Time { return window }))
	if err != nil {
		t.Fatal(err)
	}
	premium := tenant.DefaultTiers.MustLookup("premium")
	ctx := tenant.NewContext(t.Context(), tenant.Tenant{ID: "acme", Tier: premium})
	rec.Add(ctx, meter.MeterRequests, 1, "GET /orders")
	rec.Add(ctx, meter.MeterRequests, 1, "GET /orders")
	rec.Add(ctx, meter.MeterDuration, 12.5, "GET /orders")
	rec.Add(t.Context(), meter.MeterRequests, 1, "GET /health")
	if err := rec.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	got := collect(t, reader)
	route := func(r string) attribute.KeyValue { return attribute.String("route", r) }
	svc := otelsink.ServiceKey.String("orders")
	metricdatatest.AssertAggregationsEqual(t, sum(
		point(2, otelsink.TenantIDKey.String("acme"), otelsink.TierKey.String("premium"), svc, route("GET /orders")),
		point(1, otelsink.TenantIDKey.String("unattributed"), otelsink.TierKey.String("unknown"), svc, route("GET /health")),
	), got["tenancy.usage.http.requests"].Data, metricdatatest.IgnoreTimestamp())
	if m := got["tenancy.usage.http.duration"]; m.Unit != "ms" {
		t.Errorf("http.duration unit %q, want ms", m.Unit)
	}
	metricdatatest.AssertAggregationsEqual(t, histogram(
		histPoint(msBounds, []float64{12.5}, otelsink.TenantIDKey.String("acme"), otelsink.TierKey.String("premium"), svc, route("GET /orders")),
	), got["tenancy.usage.http.duration"].Data, metricdatatest.IgnoreTimestamp())
}

// msBounds are the bucket boundaries the package documents for a
// histogram in milliseconds: 5 ms to 1 h.
var msBounds = []float64{0, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 900000, 3600000}

func scaled(bounds []float64, by float64) []float64 {
	out := make([]float64, len(bounds))
	for i, b := range bounds {
		out[i] = b * by
	}
	return out
}

func histogram(points ...metricdata.HistogramDataPoint[float64]) metricdata.Histogram[float64] {
	return metricdata.Histogram[float64]{Temporality: metricdata.CumulativeTemporality, DataPoints: points}
}

// histPoint is the data point of values recorded in a histogram of bounds.
func histPoint(bounds, values []float64, kvs ...attribute.KeyValue) metricdata.HistogramDataPoint[float64] {
	p := metricdata.HistogramDataPoint[float64]{
		Attributes:   attribute.NewSet(kvs...),
		Bounds:       bounds,
		BucketCounts: make([]uint64, len(bounds)+1),
		Count:        uint64(len(values)),
		Min:          metricdata.NewExtrema(slices.Min(values)),
		Max:          metricdata.NewExtrema(slices.Max(values)),
	}
	for _, v := range values {
		p.Sum += v
		// A bucket holds the values up to its bound, that bound included.
		i, _ := slices.BinarySearch(bounds, v)
		p.BucketCounts[i]++
	}
	return p
}

// Meters of time are histograms, in their unit, with the tenant cap; other
// meters stay counters.
func TestTimeMetersAreHistograms(t *testing.T) {
	provider, reader := newProvider(t)
	s := newSink(t, provider, otelsink.WithMaxTenants(2))
	ms := func(tenantID string, v float64) meter.Record {
		r := record(tenantID, "basic", meter.MeterDuration, v, map[string]string{"route": "GET /orders"})
		r.Unit = meter.UnitMilliseconds
		return r
	}
	jobs := record("acme", "basic", "jobs.time", 1.5, nil)
	jobs.Unit = meter.UnitSeconds
	gc := record("acme", "basic", "gc.pause", 800, nil)
	gc.Unit = "Microseconds"
	recs := []meter.Record{
		ms("acme", 12.5), ms("acme", 40), ms("beta", 7), ms("", 2),
		// A third tenant is past the cap.
		ms("gamma", 300), ms("delta", 4000000),
		jobs, gc,
		record("acme", "basic", "api.calls", 3, nil),
	}
	if err := s.Write(t.Context(), recs); err != nil {
		t.Fatal(err)
	}
	got := collect(t, reader)

	tenantID, basic := otelsink.TenantIDKey.String, otelsink.TierKey.String("basic")
	svc := otelsink.ServiceKey.String("orders")
	route := attribute.String("route", "GET /orders")
	want := []metricdata.Metrics{{
		Name:        "tenancy.usage.http.duration",
		Description: "Usage of http.duration per tenant and window, from github.com/tenancykit/tenancy/meter.",
		Unit:        "ms",
		Data: histogram(
			histPoint(msBounds, []float64{12.5, 40}, tenantID("acme"), basic, svc, route),
			histPoint(msBounds, []float64{7}, tenantID("beta"), basic, svc, route),
			histPoint(msBounds, []float64{2}, tenantID(otelsink.Unattributed), basic, svc, route),
			histPoint(msBounds, []float64{300, 4000000}, tenantID(otelsink.Overflow), basic, svc, route),
		),
	}, {
		Name:        "tenancy.usage.jobs.time",
		Description: "Usage of jobs.time per tenant and window, from github.com/tenancykit/tenancy/meter.",
		Unit:        "s",
		Data:        histogram(histPoint(scaled(msBounds, 1e-3), []float64{1.5}, tenantID("acme"), basic, svc)),
	}, {
		Name:        "tenancy.usage.gc.pause",
		Description: "Usage of gc.pause per tenant and window, from github.com/tenancykit/tenancy/meter.",
		Unit:        "us",
		Data:        histogram(histPoint(scaled(msBounds, 1e3), []float64{800}, tenantID("acme"), basic, svc)),
	}, {
		Name:        "tenancy.usage.api.calls",
		Description: "Usage of api.calls per tenant, from github.com/tenancykit/tenancy/meter.",
		Unit:        "{count}",
		Data:        sum(point(3, tenantID("acme"), basic, svc)),
	}}
	if len(got) != len(want) {
		t.Errorf("%d metrics, want %d", len(got), len(want))
	}
	for _, w := range want {
		metricdatatest.AssertEqual(t, w, got[w.Name], metricdatatest.IgnoreTimestamp())
	}
}

// refusingProvider makes no counter named refuse, as a provider of one's
// own may; it discards everything else.
type refusingProvider struct {
	noop.MeterProvider
	refuse string
}

func (p refusingProvider) Meter(string, ...metric.MeterOption) metric.Meter {
	return refusingMeter{refuse: p.refuse}
}

type refusingMeter struct {
	noop.Meter
	refuse string
}

func (m refusingMeter) Float64Counter(name string, opts ...metric.Float64CounterOption) (metric.Float64Counter, error) {
	if name == m.refuse {
		return nil, errors.New("not a name of ours")
	}
	return m.Meter.Float64Counter(name, opts...)
}

// A record whose meter gets no instrument is rejected for the dead-letter
// file: the provider would refuse it at every retry.
func TestWriteRejectsWhatTheProviderRefuses(t *testing.T) {
	var (
		mu      sync.Mutex
		handled []error
	)
	prev := otel.GetErrorHandler()
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		mu.Lock()
		defer mu.Unlock()
		handled = append(handled, err)
	}))
	t.Cleanup(func() { otel.SetErrorHandler(prev) })

	s, err := otelsink.New(refusingProvider{refuse: "tenancy.usage.odd"})
	if err != nil {
		t.Fatal(err)
	}
	recs := []meter.Record{
		record("acme", "basic", "api.calls", 1, nil),
		record("acme", "basic", "odd", 1, nil),
		record("beta", "basic", "api.calls", 1, nil),
	}
	err = s.Write(t.Context(), recs)
	var de *meter.DeliveryError
	if !errors.As(err, &de) {
		t.Fatalf("Write = %v, want a DeliveryError", err)
	}
	if len(de.Failed) != 0 || len(de.Rejected) != 1 || de.Rejected[0].Index != 1 ||
		!strings.Contains(de.Rejected[0].Reason, `meter "odd"`) {
		t.Errorf("Failed %v, Rejected %+v; want record 1 rejected, naming its meter", de.Failed, de.Rejected)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(handled) != 1 {
		t.Errorf("error handler got %v, want the refusal once", handled)
	}
}
