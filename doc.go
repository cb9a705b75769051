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
package tenancy
