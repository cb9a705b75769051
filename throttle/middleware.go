package throttle

import (
	"net/http"

	"github.com/tenancykit/tenancy/tenant"
)

// MiddlewareOption configures [Limiter.Middleware].
type MiddlewareOption func(*middlewareConfig)

type middlewareConfig struct {
	cost              func(*http.Request) int
	legacy            bool
	concurrencyStatus int
	pkSecret          []byte
}

// WithCost sets what a request spends, for endpoints heavier than others.
// Default 1 for every request. A cost above the tenant's burst is spent as
// the burst, so that the request can succeed at all.
func WithCost(f func(*http.Request) int) MiddlewareOption {
	return func(c *middlewareConfig) { c.cost = f }
}

// WithLegacyHeaders also sends X-RateLimit-Limit, X-RateLimit-Remaining
// and X-RateLimit-Reset (Unix time), describing the tightest limit.
// Default off.
func WithLegacyHeaders() MiddlewareOption { return func(c *middlewareConfig) { c.legacy = true } }

// WithConcurrencyStatus sets the status of a request refused because its
// tenant has too many requests in flight: 429 (default) or 503.
func WithConcurrencyStatus(code int) MiddlewareOption {
	return func(c *middlewareConfig) { c.concurrencyStatus = code }
}

// WithPartitionKey adds the pk parameter to the RateLimit fields: a keyed
// hash of the tenant ID under secret (at least 16 bytes), never the ID.
// Default: no pk.
func WithPartitionKey(secret []byte) MiddlewareOption {
	return func(c *middlewareConfig) { c.pkSecret = secret }
}

// Middleware returns middleware that admits or refuses each request by its
// tenant's limits (tenant.FromContext, so it goes after authz). Refusals are
// RFC 9457 problems: 429 with Retry-After for rate, quota (until the period
// resets) and concurrency, 503 when the store cannot decide and its policy
// is to fail closed. Every response carries the RateLimit-Policy and
// RateLimit fields. The decision is recorded in the request's
// tenant.Record.
//
// It panics when an option is out of range.
func (l *Limiter) Middleware(opts ...MiddlewareOption) func(http.Handler) http.Handler {
	c := middlewareConfig{concurrencyStatus: http.StatusTooManyRequests}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if c.concurrencyStatus != http.StatusTooManyRequests && c.concurrencyStatus != http.StatusServiceUnavailable {
		panic("throttle: WithConcurrencyStatus takes 429 or 503")
	}
	if c.pkSecret != nil && len(c.pkSecret) < 16 {
		panic("throttle: WithPartitionKey needs a secret of at least 16 bytes")
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			l.serve(w, r, next, &c)
		})
	}
}

func (l *Limiter) serve(w http.ResponseWriter, r *http.Request, next http.Handler, c *middlewareConfig) {
	ctx := r.Context()
	rec := tenant.RecordFromContext(ctx)
	var (
		key, tier, pk string
		lim           Limits
	)
	if t, ok := tenant.FromContext(ctx); ok && (l.claimed || t.Source.Verified()) {
		key, tier, lim = tenantKey(t.ID), t.Tier.Name(), l.LimitsFor(t)
		if c.pkSecret != nil {
			pk = partitionKey(c.pkSecret, t.ID)
		}
	} else if l.anon != nil {
		key, tier, lim = clientKey(l.clients.ClientIP(r)), "anonymous", *l.anon
	} else {
		l.count(ctx, "", false, ReasonNoTenant)
		tenant.Refuse(w, r, "throttle", tenant.ErrNoTenant)
		return
	}

	if lim.MaxConcurrent > 0 {
		e, ok := l.local.acquire(key, lim.MaxConcurrent, l.now())
		if !ok {
			l.count(ctx, tier, false, ReasonConcurrency)
			refuse(w, rec, ReasonConcurrency, tenant.Problem{
				Type:       tenant.ProblemType("concurrency-limited"),
				Title:      "Too many concurrent requests",
				Status:     c.concurrencyStatus,
				Detail:     "Too many of your requests are in progress; retry when one has finished.",
				RetryAfter: 1,
			})
			return
		}
		defer e.release()
	}

	cost := 1
	if c.cost != nil {
		cost = c.cost(r)
	}
	d, err := l.take(ctx, key, lim, cost, tier)
	if err == nil || d.Allowed {
		var policy []string
		if pk == "" {
			policy = l.policyValue(lim)
		}
		setHeaders(w.Header(), d, pk, policy, c.legacy, l.now())
	}
	switch {
	case d.Allowed:
		rec.Annotate("throttle", "allowed")
		next.ServeHTTP(w, r)
		rec.SetRoute(r.Pattern)
	case err != nil || d.Reason == ReasonStore:
		refuse(w, rec, ReasonStore, tenant.Problem{
			Type:       tenant.ProblemType("throttle-unavailable"),
			Title:      "Service unavailable",
			Status:     http.StatusServiceUnavailable,
			Detail:     "Request limits cannot be checked right now; retry shortly.",
			RetryAfter: 1,
		})
	case d.Reason == ReasonQuota:
		refuse(w, rec, ReasonQuota, tenant.Problem{
			Type:       tenant.ProblemType("quota-exceeded"),
			Title:      "Quota exceeded",
			Status:     http.StatusTooManyRequests,
			Detail:     "Your plan's request quota for this period is used up.",
			RetryAfter: int(seconds(d.RetryAfter, 1)),
		})
	default:
		refuse(w, rec, ReasonRate, tenant.Problem{
			Type:       tenant.ProblemType("rate-limited"),
			Title:      "Too many requests",
			Status:     http.StatusTooManyRequests,
			Detail:     "Your request rate is above your plan's limit; retry after the time given.",
			RetryAfter: int(seconds(d.RetryAfter, 1)),
		})
	}
}

func refuse(w http.ResponseWriter, rec *tenant.Record, reason Reason, p tenant.Problem) {
	rec.Reject(tenant.Rejection{By: "throttle", Reason: string(reason), Status: p.Status})
	tenant.WriteProblem(w, p)
}
