// Package otelsink delivers metering records as OpenTelemetry metrics: a
// [meter.Sink] that records into a metric.MeterProvider, for dashboards and
// alerts on per-tenant usage in whatever backend the service already
// exports its metrics to.
//
// Each meter gets one instrument, made at its first record and named by
// [InstrumentName]: [InstrumentPrefix] and the meter's name, such as
// "tenancy.usage.orders.created" (or as [WithInstrumentName] says). Its unit
// is the meter's, in UCUM ([Unit]): "{count}", "By", "ms", "s". A meter of
// time (milliseconds, seconds, microseconds), such as meter.MeterDuration,
// gets a Float64Histogram, in which each record is one measurement; any
// other meter, a Float64Counter, to which each record adds its value. A
// record is a tenant's total in one window, so the histogram's sum is the
// tenant's time, its count the windows, and its buckets the spread of the
// time per window (5 ms to 1 h, as advice a View may replace), not the
// latency of single requests. Each measurement has the attributes
//
//   - tenant.id: the tenant, "unattributed" for usage without one, and
//     "__overflow__" ([Overflow]) for every tenant after the first
//     [WithMaxTenants] (1000 by default) the sink has seen, so that the
//     number of time series stays bounded however many tenants there are;
//   - tenant.tier: the tenant's tier, "unknown" when the record has none;
//   - service: the service that metered the usage;
//   - the record's dimensions, such as route (the meter package already
//     bounds their values).
//
// OpenTelemetry gives a measurement no time of its own: a record's usage is
// counted in the collection interval in which its window was delivered, not
// in the window itself, and the record ID is not exported. That suits
// dashboards and alerts; a billing pipeline that needs exact windows and
// deduplication reads meter.JSONLines or meter/kinesissink instead. The
// SDK also bounds the attribute sets of an instrument (2000 by default,
// sdkmetric.WithCardinalityLimit); past it, measurements go to a set marked
// otel.metric.overflow=true.
//
// Write fails only once the SDK's MeterProvider has been shut down, so that
// the [meter.Recorder] keeps (and spools) the records instead of losing
// them: shut the Recorder down before the MeterProvider. Pass the SDK's
// provider itself for this; the global one (otel.GetMeterProvider) hides
// the shutdown of the provider behind it.
//
//	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
//	sink, err := otelsink.New(provider)
//	...
//	rec, err := meter.New("orders", sink, meter.WithMeters(meter.HTTPMeters()...))
//	...
//	rec.Shutdown(ctx)
//	provider.Shutdown(ctx)
package otelsink
