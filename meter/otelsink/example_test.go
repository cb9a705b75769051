package otelsink_test

import (
	"context"
	"fmt"
	"log"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/tenancykit/tenancy/meter"
	"github.com/tenancykit/tenancy/meter/otelsink"
	"github.com/tenancykit/tenancy/tenant"
)

// A Recorder delivers into the OpenTelemetry SDK; a real service gives the
// provider a periodic reader and an exporter instead of the manual reader.
func Example() {
	ctx := context.Background()
	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))

	sink, err := otelsink.New(provider)
	if err != nil {
		log.Fatal(err)
	}
	rec, err := meter.New("orders", sink,
		meter.WithMeters(meter.Meter{Name: "orders.created", Unit: meter.UnitCount}),
		meter.WithoutLoop())
	if err != nil {
		log.Fatal(err)
	}

	acme := tenant.NewContext(ctx, tenant.Tenant{ID: "acme", Tier: tenant.DefaultTiers.MustLookup("premium")})
	rec.Add(acme, "orders.created", 1)
	rec.Add(acme, "orders.created", 1)

	// The Recorder first, then the provider.
	shutdownCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rec.Shutdown(shutdownCtx); err != nil {
		log.Fatal(err)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		log.Fatal(err)
	}
	m := rm.ScopeMetrics[0].Metrics[0]
	dp := m.Data.(metricdata.Sum[float64]).DataPoints[0]
	tenantID, _ := dp.Attributes.Value(otelsink.TenantIDKey)
	tier, _ := dp.Attributes.Value(otelsink.TierKey)
	fmt.Println(m.Name, m.Unit, dp.Value, tenantID.AsString(), tier.AsString())
	if err := provider.Shutdown(ctx); err != nil {
		log.Fatal(err)
	}
	// Output:
	// tenancy.usage.orders.created {count} 2 acme premium
}
