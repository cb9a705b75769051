// Package meter records per-tenant consumption for billing: handlers call
// [Add] with a meter and a value, the tenant comes from the context, and a
// [Recorder] aggregates in memory per (tenant, meter, dimensions, window)
// and delivers one [Record] per aggregate when its window closes.
//
// Records carry a deterministic ID (a hash of service, instance, tenant,
// meter, dimensions and window), so a record delivered twice is
// deduplicated downstream. Usage with no tenant goes to an explicit
// unattributed bucket. A failing [Sink] keeps records pending, retried
// with backoff; a record it rejects for good (a [*DeliveryError] naming
// it in Rejected), or one older than [WithMaxRecordAge], goes to the
// dead-letter file ([WithDeadLetter]) and holds up no other.
//
// # What is lost, and when
//
// Usage is aggregated in memory until its window closes, then delivered.
// What a process that does not end cleanly loses depends on the options:
//
//   - Without a spool: every record not delivered yet, and the open
//     windows. At most [WithMaxPending] records wait in memory for a
//     failing sink; past it the oldest are dropped, counted in
//     [Stats].Dropped and logged.
//   - With a spool ([WithSpool]): records the sink did not take are
//     written to it (and synced) as soon as a delivery fails, and
//     [Recorder.Shutdown] writes every undelivered record to it before it
//     tries the sink, so an exit at any moment after that (a second
//     SIGTERM, a deadline) loses nothing; the next start delivers them. A
//     kill -9 still loses the open windows, and the closed ones being
//     delivered at that moment.
//   - With a checkpoint too ([WithCheckpoint]): a kill -9, an
//     out-of-memory kill or a panic loses at most the usage added in the
//     last checkpoint interval before it, plus the time one checkpoint
//     takes to write: with the default interval, nothing added more than
//     about half a second before. The next start with the same spool
//     delivers the rest once, with the IDs the dead process would have
//     given it.
//
// A power loss loses the same as a kill -9 as far as the disk honours
// fsync: files and their directory are synced before a write counts as
// done. On a full disk (or any write error) the bounds above do not hold:
// the error is logged, records stay in memory (up to [WithMaxPending]),
// and a crash before writes succeed again loses what is not in the spool
// already; what is in the spool is never lost. Records leave the spool
// only once delivered, so a crash can send one twice, with its ID:
// consumers deduplicate by ID.
//
// Sinks here need no dependency: [JSONLines] and the CloudWatch Embedded
// Metric Format ([EMF]). meter/otelsink and meter/kinesissink hold the
// ones that do.
//
//	rec, err := meter.New("orders", sink,
//		meter.WithMeters(meter.HTTPMeters()...),
//		meter.WithMeters(meter.Meter{Name: "orders.created", Unit: meter.UnitCount}),
//		meter.WithSpool("/var/lib/orders/meter.spool"),
//		meter.WithCheckpoint(0)) // every 500ms
//	...
//	handler = meter.Middleware(rec)(handler)
//	// in a handler:
//	meter.Add(r.Context(), "orders.created", 1)
//	// on SIGTERM, after the server drained:
//	rec.Shutdown(ctx)
package meter
