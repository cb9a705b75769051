package throttle

import (
	"context"
	"time"
)

// Store keeps the rate and quota state of every key (a tenant, or a client
// address for requests without one). The in-process [MemoryStore] is the
// default; throttle/redisstore shares state between replicas.
//
// Limits are passed on every call, so tier changes and per-tenant overrides
// apply to a key's next request without touching the store.
type Store interface {
	// Take spends cost units of key's budget under lim at now, if both the
	// rate and every quota allow it; otherwise it spends nothing.
	Take(ctx context.Context, key string, lim Limits, cost int, now time.Time) (Result, error)
}

// Result is a [Store]'s decision.
type Result struct {
	// Allowed reports whether the units were spent.
	Allowed bool
	// Reason says what refused them: ReasonRate or ReasonQuota, or
	// ReasonStore from a shared store that cannot reach its backend and
	// whose tier fails closed.
	Reason Reason
	// Remaining is how many units the rate limit would allow right now.
	Remaining int
	// RetryAfter is how long until the request could succeed, when refused.
	RetryAfter time.Duration
	// ResetAfter is how long until the rate limit is back to its full burst.
	ResetAfter time.Duration
	// Quotas reports each quota of the limits, in the order given.
	Quotas []QuotaState
}

// QuotaState is where a tenant stands against one quota.
type QuotaState struct {
	Period     Period
	Limit      int64
	Remaining  int64
	ResetAfter time.Duration
}

// Reason says why a request was refused.
type Reason string

// The reasons for a refusal. They are also the Reason of the
// tenant.Rejection the middleware records and the "reason" attribute of
// the metrics.
const (
	ReasonRate        Reason = "rate"
	ReasonQuota       Reason = "quota"
	ReasonConcurrency Reason = "concurrency"
	ReasonStore       Reason = "store_unavailable"
	// ReasonBodyTimeout: the request's body did not arrive in time to take
	// a concurrency slot (see [WithBodyTimeout]).
	ReasonBodyTimeout Reason = "body_timeout"
)

// reasonNoTenant is the "reason" attribute of the metrics for a request
// without a tenant; its tenant.Rejection is tenant.Refuse's.
const reasonNoTenant Reason = "no_tenant"
