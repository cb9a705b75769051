package meter_test

import (
	"context"
	"os"
	"time"

	"github.com/tenancykit/tenancy/meter"
	"github.com/tenancykit/tenancy/tenant"
)

func ExampleRecorder_FlushAll() {
	// A Lambda function: no delivery loop, and FlushAll before each
	// invocation returns, for the process may be frozen or ended after.
	now := time.Date(2026, time.March, 14, 12, 0, 30, 0, time.UTC)
	rec, err := meter.New("orders", meter.NewJSONLines(os.Stdout),
		meter.WithMeters(meter.Meter{Name: "orders.created", Unit: meter.UnitCount}),
		meter.WithInstance("lambda-1"),
		meter.WithClock(func() time.Time { return now }),
		meter.WithoutLoop())
	if err != nil {
		panic(err)
	}
	acme, err := tenant.New("acme", tenant.DefaultTiers.MustLookup("premium"))
	if err != nil {
		panic(err)
	}
	handle := func(ctx context.Context) error {
		meter.Add(meter.NewContext(tenant.NewContext(ctx, acme), rec), "orders.created", 1)
		return rec.FlushAll(ctx)
	}

	// Two invocations in one window: two records of it, under two IDs.
	for range 2 {
		if err := handle(context.Background()); err != nil {
			panic(err)
		}
		now = now.Add(10 * time.Second)
	}
	// Output:
	// {"id":"73cea0ee4af945cf53e17ae9886904b8","tenant_id":"acme","tier":"premium","meter":"orders.created","value":1,"unit":"Count","window_start":"2026-03-14T12:00:00Z","window_end":"2026-03-14T12:01:00Z","service":"orders","instance":"lambda-1"}
	// {"id":"1ae633671b11592cd30eb37e8c4ea8b0","tenant_id":"acme","tier":"premium","meter":"orders.created","value":1,"unit":"Count","window_start":"2026-03-14T12:00:00Z","window_end":"2026-03-14T12:01:00Z","service":"orders","instance":"lambda-1"}
}
