// Package throttle limits what each tenant may spend, by the limits of its
// tier, so that one tenant's flood cannot take another's capacity.
//
// A [Limiter] holds [Limits] per tier name and, optionally, per tenant ID
// (overrides). Each tenant has a budget of its own (a bucket, quota
// counters, a count of requests in flight): the key is always the tenant,
// never its tier, so two basic tenants each get the full basic burst. A
// tenant whose tier is unknown gets the lowest tier's limits.
//
// # What a budget covers
//
// By default one budget per tenant. The middleware's [ByUser], [ByRoute],
// [ByHeader] (an API key) and [ByKey] (a function of the request) split it
// into one budget per user, route, key or value of the service's own, each
// under the tenant's limits; they add up (ByUser with ByRoute: per user and
// route). A budget never spans two tenants.
//
// A limiter for one route, beside the service's (a stricter one for an
// export), is named with [WithName]: limiters with different names never
// share a budget, even in one store; limiters with the same name do, as
// replicas should. Its RateLimit items are named after it ("export.rate").
// Unnamed limiters keep the store keys of earlier releases (the tenant ID),
// so a shared store's budgets survive an upgrade, and two unnamed limiters
// on one store share their budgets.
//
// # Limits
//
// Rate and Burst are enforced with the generic cell rate algorithm (GCRA):
// the state of a tenant is one time, the theoretical arrival time of its
// next request, so a decision is a little integer arithmetic under one
// lock. The time one unit takes to come back is 1s/Rate rounded to whole
// nanoseconds; over any span T a tenant that asks without pause is
// admitted exactly Burst + floor(T/interval) times, however many goroutines
// ask at once, and a request refused with RetryAfter d is admitted at
// exactly now+d. Asking without pause means at least once every
// Burst-1 intervals: the bucket keeps the units a client was late for, up
// to the burst. A burst of 1 keeps none, so each unit a client does not
// ask for at the instant it is due is lost: at 100/s, a client whose
// requests arrive 0.75 ms late on average gets one per 10.75 ms (930 in
// 10 s, not 1,001). That is the meaning of a burst of 1 — never two
// requests closer than the interval — so tiers whose clients pace
// themselves at the rate, and so arrive a little late, need a burst of 2
// or more. Unlike golang.org/x/time/rate, whose Limiter can be
// credited twice for the same time when callers read the clock out of
// order (golang/go#65508), the state only moves forward: a late caller can
// be refused, never over-admitted.
//
// Quotas cap the total per calendar period in UTC: the hour, the day
// (from midnight UTC) and the month (from the first, 00:00 UTC). A request
// is admitted only when the rate and every quota allow it, and then it
// spends from all of them; a refused request spends nothing. MaxConcurrent
// caps the requests of one budget in flight at once in this process.
//
// Limits can change while the service runs: [Limiter.SetTierLimits],
// [Limiter.SetOverride] and [Limiter.DeleteOverride] take effect from each
// tenant's next request, and so does a new tier in the tenant's token.
// Mistakes in limits are reported by [New] or the setter, naming the tier
// and the field, never at a request.
//
// # Stores
//
// Rate and quota state lives in a [Store]. The default [MemoryStore] keeps
// it in process, in a sharded map bounded without a background goroutine:
// tenants idle past a TTL whose state is back to empty are forgotten as
// time passes (the store's own decisions sweep it, a shard at a time), and
// the number of tenants is capped over the whole store, a tenant evicted
// in debt keeping its debt. A tenant costs about 100 bytes (170 with
// quotas); a decision reads two cache lines of the store, so that past the
// CPU caches its cost is two reads from memory, whatever the number of
// tenants (BenchmarkDecision). Replicas that must share one budget use
// throttle/redisstore. Concurrency is always counted
// in process.
//
// A store that fails with an error is reported once when the errors start
// and once when it answers again ([WithLogger]); the requests refused with
// 503 meanwhile are counted in tenancy.throttle.decisions, never logged
// one by one. A store with failure policies of its own (redisstore's
// [FailLocal], [FailOpen], [FailClosed]) decides without an error and
// reports its own switches.
//
// # Responses
//
// [Limiter.Middleware] reads the tenant with tenant.FromContext, so it goes
// after authz. Every response the limits decide (admitted, or refused for
// the rate, a quota or concurrency) carries the RateLimit-Policy and
// RateLimit fields of the IETF draft draft-ietf-httpapi-ratelimit-headers,
// one member for the rate (named "rate"), one per quota (named after its
// period) and one for the concurrency cap (named "concurrency", in the
// draft's "concurrent-requests" unit):
//
//	RateLimit-Policy: "rate";q=10;w=2, "day";q=1000;w=86400, "concurrency";q=4;qu="concurrent-requests"
//	RateLimit: "rate";r=9;t=1, "day";r=999;t=43200, "concurrency";r=3
//
// The draft's windows are whole seconds, so the "rate" member states the
// sustained rate exactly as q units per w seconds: over the longest such
// window whose q can be spent at once (q ≤ Burst), or, when the burst
// refills faster, the shortest one: 5/s with a burst of 10 is q=10;w=2,
// 3/s with a burst of 10 is q=9;w=3, 2000/s with a burst of 200 is
// q=2000;w=1, 0.3/s with a burst of 1 is q=3;w=10. What can be spent now
// is r. On a refusal for the rate, t is the Retry-After, so that the two
// agree; a refusal for concurrency has only the "concurrency" member (the
// rate was not asked), and a 503 because the store could not decide has
// no fields at all.
//
// They never carry the tenant ID; [WithPartitionKey] adds an opaque pk, a
// keyed hash of it. [WithLegacyHeaders] adds X-RateLimit-Limit, -Remaining
// and -Reset.
//
// A refusal is an RFC 9457 problem (application/problem+json) with
// Retry-After in whole seconds, rounded up:
//
//   - 429 rate-limited: the rate is spent; Retry-After is when a unit is back.
//   - 429 quota-exceeded: a quota is spent; Retry-After is when its UTC
//     period ends.
//   - 429 concurrency-limited (or 503 with [WithConcurrencyStatus]): too
//     many of the tenant's requests are in flight.
//   - 408 body-timeout: the request's body did not arrive in time to take
//     a concurrency slot (below).
//   - 401 tenant-required: no tenant in the context, or only one the
//     request claimed (tenant.SourceClaimed: a subdomain or path that
//     anyone can name, so never a reason to spend that tenant's budget;
//     [WithClaimedTenants] opts in), unless [WithAnonymousLimits] limits
//     such requests by client address.
//   - 503 throttle-unavailable: the store could not decide.
//
// [WithRefusalHandler] answers them the service's own way instead (the
// refusal is recorded and the headers set first); [WriteRefusal] is the
// default answer.
//
// A refusal is recorded with tenant.Reject, for the access log and the
// meter outside: By "throttle", Reason "rate", "quota", "concurrency",
// "body_timeout", "tenant_required" or "store_unavailable", and Status.
//
// # Metrics
//
// The limiter reports to the OpenTelemetry MeterProvider of
// [WithMeterProvider] (the global one by default), under the scope
// github.com/tenancykit/tenancy/throttle, by tier and never by tenant:
//
//   - tenancy.throttle.decisions, a counter of requests ({request}) with
//     the attributes tenant.tier ("anonymous" for requests limited by address,
//     "unknown" for one without a tenant), decision ("allowed" or
//     "denied") and reason ("none", a refusal's reason, or "no_tenant").
//   - tenancy.throttle.in_flight, an up-down counter of requests
//     ({request}) with the attributes tenant.tier and phase: "handler" while the
//     handler of a request the limiter admitted runs, "body" while the
//     limiter reads a body before the request may take a concurrency slot
//     (a high count of these is clients sending slowly).
//
// A limiter with a name ([WithName]) adds the attribute limiter, its name.
//
// # Slow clients
//
// A request holds a concurrency slot while its handler runs, not while its
// client sends the body: for a tier with MaxConcurrent, the middleware
// reads the first 64 KiB of a body ([WithBodyBuffer]) before it takes a
// slot, within 10 s ([WithBodyTimeout], and never past the server's
// ReadTimeout), and the handler reads those bytes from memory. A body that
// does not arrive in time is refused with 408 and spends nothing, so two
// clients trickling their bodies no longer lock a tenant capped at two out
// for the server's read timeout. The rest of a larger body is read by the
// handler with the slot held, at the same pace: each further 64 KiB within
// 10 s, or the handler's read fails with a timeout. A slot is thus held
// while a body arrives for at most the timeout per 64 KiB beyond the
// first. Deadlines need a server that supports them
// (http.ResponseController); elsewhere the body is still read first,
// without one.
//
// # Wiring
//
//	limiter, err := throttle.New(tenant.DefaultTiers, map[string]throttle.Limits{
//		"basic":    {Rate: 5, Burst: 10, Quotas: []throttle.Quota{{Limit: 10_000, Period: throttle.Day}}},
//		"standard": {Rate: 50, Burst: 100},
//		"premium":  {Rate: 500, Burst: 1000, MaxConcurrent: 64},
//		"platinum": {Rate: 5000, Burst: 10000},
//	})
//	if err != nil {
//		log.Fatal(err)
//	}
//	handler := authz.Middleware(verifier)(limiter.Middleware()(mux))
//
// Work that does not arrive over HTTP asks [Limiter.Allow] and
// [Limiter.Acquire] directly.
package throttle
