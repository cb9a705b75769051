package meter_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/tenancykit/tenancy/meter"
	"github.com/tenancykit/tenancy/tenant"
)

func ExampleRecorder() {
	// A fixed clock and no delivery loop make the output deterministic; a
	// service leaves both out and calls Shutdown on SIGTERM.
	now := time.Date(2026, time.March, 14, 12, 0, 30, 0, time.UTC)
	rec, err := meter.New("orders", meter.NewJSONLines(os.Stdout),
		meter.WithMeters(meter.Meter{Name: "orders.created", Unit: meter.UnitCount}),
		meter.WithInstance("i-1"),
		meter.WithClock(func() time.Time { return now }),
		meter.WithoutLoop())
	if err != nil {
		panic(err)
	}

	acme, err := tenant.New("acme", tenant.DefaultTiers.MustLookup("premium"))
	if err != nil {
		panic(err)
	}
	ctx := meter.NewContext(tenant.NewContext(context.Background(), acme), rec)
	meter.Add(ctx, "orders.created", 1)
	meter.Add(ctx, "orders.created", 2)

	if err := rec.Shutdown(context.Background()); err != nil {
		panic(err)
	}
	// Output:
	// {"id":"d9b897b64338056227244750f496ffab","tenant_id":"acme","tier":"premium","meter":"orders.created","value":3,"unit":"Count","window_start":"2026-03-14T12:00:00Z","window_end":"2026-03-14T12:01:00Z","service":"orders","instance":"i-1"}
}

func ExampleEMF() {
	sink, err := meter.NewEMF(os.Stdout, "Tenancy/Orders")
	if err != nil {
		panic(err)
	}
	start := time.Date(2026, time.March, 14, 12, 0, 0, 0, time.UTC)
	err = sink.Write(context.Background(), []meter.Record{{
		ID: "5f1c0b8e2a9d4c3b8e7f6a5d4c3b2a19", TenantID: "acme", Tier: "premium",
		Meter: "orders.created", Value: 3, Unit: meter.UnitCount,
		WindowStart: start, WindowEnd: start.Add(time.Minute),
		Service: "orders", Instance: "i-1",
	}})
	if err != nil {
		fmt.Println(err)
	}
	// Output:
	// {"Meter":"orders.created","RecordId":"5f1c0b8e2a9d4c3b8e7f6a5d4c3b2a19","Service":"orders","TenantId":"acme","Tier":"premium","Unattributed":false,"Usage":3,"WindowEnd":1773489660000,"WindowStart":1773489600000,"_aws":{"CloudWatchMetrics":[{"Dimensions":[["Service","Tier","Meter"]],"Metrics":[{"Name":"Usage","Unit":"Count"}],"Namespace":"Tenancy/Orders"}],"Timestamp":1773489660000}}
}
