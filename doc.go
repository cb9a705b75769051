// Package tenancy makes a plain net/http service multi-tenant: it wires
// the module's middleware — the access log, metering, token verification,
// tenant resolution, per-tenant limits and tenant-scoped AWS credentials —
// around the service's router, in the one order in which each sees what it
// must ([Stack]). Handlers stay business code: they read the tenant with
// tenant.FromContext, log with slog.InfoContext, meter with meter.Add.
//
// Each part lives in its own package (tenant, authz, authz/awscreds,
// throttle, logging, meter) and can be used alone; this package only puts
// them together. Wired by hand, the parts check their order: one wrapped
// directly around a part that belongs outside it panics when the stack is
// built, and a wrong order that only shows when a request goes through is
// reported once through slog.Default, naming the fix.
//
// # Messages
//
// The same Stack wraps a queue or stream consumer's handler
// ([Stack.WrapMessages]): a trust mode ([WithMessageTrust]) establishes
// each message's tenant from a producer's signed stamp (package
// message/stamp), a queue bound to one tenant, the AWS sender or an
// attribute (package message), and the parts the Stack holds log, meter, limit (deferring a
// tenant over its budget) and fetch credentials per message, in the order
// they do for requests. Handlers are business code as HTTP handlers are.
//
// # OpenTelemetry
//
// Put otelhttp's handler outside the stack:
//
//	http.ListenAndServe(":8080", otelhttp.NewHandler(stack.Wrap(mux), "orders"))
//
// Its span is then named by the route ("GET /orders/{id}", for a request
// the stack refused too) and carries http.route, tenant.id and tenant.tier
// and, for a refusal, tenancy.rejected_by and tenancy.reject_reason (the
// access log's rejected_by and reject_reason); its request metrics get
// http.route and tenant.tier, never the tenant ID. The access line and
// the handler's log lines carry that span's trace and span IDs, and
// tenant.Transport continues the trace in the services it calls. The
// attribute names are tenant.IDKey, tenant.TierKey, tenant.RejectedByKey
// and tenant.RejectReasonKey, the same on the throttle's metrics, the
// meter's otelsink and the baggage.
//
// Inside the stack, around the router, otelhttp works too: the stack never
// puts a span of its own in the context, so otelhttp decides sampling from
// the request's traceparent, as when it is alone. Its span then lacks the
// tenant's attributes, and for a request that came without a traceparent
// the access line's trace ID is the log's own, not the span's.
package tenancy
