// Package meter records per-tenant consumption for billing: handlers call
// [Add] with a meter and a value, the tenant comes from the context, and a
// [Recorder] aggregates in memory per (tenant, meter, dimensions, window)
// and delivers one [Record] per aggregate when its window closes.
//
// Records carry a deterministic ID (a hash of service, instance, tenant,
// meter, dimensions and window), so a record delivered twice is
// deduplicated downstream. Usage with no tenant goes to an explicit
// unattributed bucket. A failing [Sink] keeps records pending, retried
// with backoff: with a spool file ([WithSpool]) they are written to it as
// soon as a delivery fails, and [Recorder.Shutdown] writes every
// undelivered record to it before it tries the sink, so what it cannot
// deliver before its deadline is delivered at the next start. Records
// leave the spool only once delivered, so a crash can send one twice
// (with its ID). Without a spool, at most [WithMaxPending] records wait in
// memory, and the oldest past it are dropped and counted.
//
// Sinks here need no dependency: [JSONLines] and the CloudWatch Embedded
// Metric Format ([EMF]). meter/otelsink and meter/kinesissink hold the
// ones that do.
//
//	rec, err := meter.New("orders", sink,
//		meter.WithMeters(meter.HTTPMeters()...),
//		meter.WithMeters(meter.Meter{Name: "orders.created", Unit: meter.UnitCount}),
//		meter.WithSpool("/var/lib/orders/meter.spool"))
//	...
//	handler = meter.Middleware(rec)(handler)
//	// in a handler:
//	meter.Add(r.Context(), "orders.created", 1)
//	// on SIGTERM, after the server drained:
//	rec.Shutdown(ctx)
package meter
