package throttle

import (
	"net/http"
	"strconv"
	"time"

	"github.com/tenancykit/tenancy/internal/request"
	"github.com/tenancykit/tenancy/tenant"
)

// MiddlewareOption configures [Limiter.Middleware].
type MiddlewareOption func(*middlewareConfig)

type middlewareConfig struct {
	parts             []part // By… options, in order
	cost              func(*http.Request) int
	legacy            bool
	concurrencyStatus int
	pkSecret          []byte
	bodyBuffer        int
	bodyTimeout       time.Duration
	refusalHandler    func(http.ResponseWriter, *http.Request, Refusal)
}

// WithCost sets what a request spends, for endpoints heavier than others.
// Default (also for nil) 1 for every request. A cost above the tenant's burst is spent as
// the burst, so that the request can succeed at all.
func WithCost(f func(*http.Request) int) MiddlewareOption {
	return func(c *middlewareConfig) { c.cost = f }
}

// WithLegacyHeaders also sends X-RateLimit-Limit, X-RateLimit-Remaining
// and X-RateLimit-Reset (Unix time), describing the tightest limit.
// Default off.
func WithLegacyHeaders() MiddlewareOption { return func(c *middlewareConfig) { c.legacy = true } }

// WithConcurrencyStatus sets the status of a request refused because its
// tenant has too many requests in flight: 429 (the default, also for 0) or
// 503.
func WithConcurrencyStatus(code int) MiddlewareOption {
	return func(c *middlewareConfig) { c.concurrencyStatus = code }
}

// WithPartitionKey adds the pk parameter to the RateLimit fields: a keyed
// hash of the tenant ID under secret (at least 16 bytes), never the ID.
// Default (also for nil): no pk.
func WithPartitionKey(secret []byte) MiddlewareOption {
	return func(c *middlewareConfig) { c.pkSecret = secret }
}

// Middleware returns middleware that admits or refuses each request by its
// tenant's limits (tenant.FromContext, so it goes after authz). Each tenant
// has one budget by default; [ByUser], [ByRoute], [ByHeader] and [ByKey]
// give each user, route, API key or key of the service's own a budget of
// its own under the same limits. Refusals are RFC 9457 problems: 429 with
// Retry-After for rate, quota (until the period resets) and concurrency,
// 503 when the store cannot decide and its policy is to fail closed. Every
// response the limits decide carries the RateLimit-Policy and RateLimit
// fields; a second limiter on the same request adds its items to them. A
// refusal is recorded with tenant.Reject for the access log and the meter
// outside.
//
// It belongs inside authz.Middleware (tenancy.New wires that order). Having
// no error to return, it panics with a "throttle: " message naming the
// fix when an option is out of range, or when the middleware is wrapped
// around a layer that belongs outside it.
func (l *Limiter) Middleware(opts ...MiddlewareOption) func(http.Handler) http.Handler {
	var c middlewareConfig
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if c.concurrencyStatus == 0 {
		c.concurrencyStatus = http.StatusTooManyRequests
	}
	if c.concurrencyStatus != http.StatusTooManyRequests && c.concurrencyStatus != http.StatusServiceUnavailable {
		panic("throttle: WithConcurrencyStatus takes 429 or 503")
	}
	if c.pkSecret != nil && len(c.pkSecret) < 16 {
		panic("throttle: WithPartitionKey needs a secret of at least 16 bytes")
	}
	if c.bodyTimeout < 0 {
		panic("throttle: WithBodyTimeout needs a positive duration")
	}
	if c.bodyBuffer == 0 {
		c.bodyBuffer = defaultBodyBuffer
	}
	if c.bodyTimeout == 0 {
		c.bodyTimeout = defaultBodyTimeout
	}
	return func(next http.Handler) http.Handler {
		return request.NewHandler(request.Throttle, next, func(w http.ResponseWriter, r *http.Request, st *request.State, next http.Handler) {
			l.serve(w, r, st, next, &c)
		})
	}
}

// charge is what a request is limited by: a budget of its tenant's or its
// client's.
type charge struct {
	key, tier, pk string
	limits        *inForce
}

// chargeOf finds what r is limited by; false when it has no tenant the
// throttle may charge and no anonymous limits apply.
func (l *Limiter) chargeOf(r *http.Request, st *request.State, c *middlewareConfig) (charge, bool) {
	var (
		b         charge
		principal string
	)
	t, ok := tenant.FromContext(r.Context())
	isTenant := ok && (l.claimed || t.Source.Verified())
	switch {
	case isTenant:
		principal = tenantKey(t.ID)
		b.tier, b.limits = t.Tier.String(), l.limitsOf(t.ID, t.Tier)
	case l.anon != nil:
		t = tenant.Tenant{} // what the By… parts get for a client address
		principal = clientKey(l.clients.ClientIP(r))
		b.tier, b.limits = "anonymous", l.anonLimits
	default:
		return charge{}, false
	}
	if len(c.parts) == 0 {
		b.key = budgetKey(l.name, principal, nil, nil, nil)
	} else {
		var (
			kinds  [4]byte
			values [4]string
			ok     [4]bool
		)
		ks, vs, oks := kinds[:0], values[:0], ok[:0]
		for _, p := range c.parts {
			v, has := p.value(r, t, st)
			ks, vs, oks = append(ks, p.kind), append(vs, v), append(oks, has)
		}
		b.key = budgetKey(l.name, principal, ks, vs, oks)
	}
	if c.pkSecret != nil && isTenant {
		b.pk = partitionKey(c.pkSecret, b.key)
	}
	return b, true
}

func (l *Limiter) serve(w http.ResponseWriter, r *http.Request, st *request.State, next http.Handler, c *middlewareConfig) {
	ctx := r.Context()
	b, ok := l.chargeOf(r, st, c)
	if !ok {
		if !st.Entered(request.Authz) && request.Built(request.Authz) {
			request.ReportOnce(noTenantReport{}, "throttle: a request reached the throttle without a tenant and authz.Middleware, built in this process, had not run for it: if the throttle is outside authz, every request is refused with 401. Wire them "+request.Order+", or build the stack with tenancy.New")
		}
		l.count(ctx, "", false, reasonNoTenant)
		tenant.Refuse(w, r, "throttle", tenant.ErrNoTenant)
		return
	}

	lim := &b.limits.lim
	f := fields{limits: b.limits, pk: b.pk, prefix: l.prefix, free: -1}
	buffered := lim.MaxConcurrent > 0 && c.bodyBuffer > 0 && hasBody(r)
	if buffered {
		// The slot is taken once the body is in (see body.go), unless
		// every slot is taken already: then the body is not worth reading.
		if l.local.busy(b.key, lim.MaxConcurrent, l.now()) {
			l.refuseConcurrency(w, r, st, &f, c, b.tier, l.now())
			return
		}
		track := l.inFlight.Enabled(ctx)
		if track {
			l.flight(ctx, b.tier, "body", 1)
		}
		body, err := readBody(w, r, c)
		if track {
			l.flight(ctx, b.tier, "body", -1)
		}
		if err != nil {
			l.count(ctx, b.tier, false, ReasonBodyTimeout)
			w.Header().Set("Connection", "close")
			c.refuse(w, r, ReasonBodyTimeout, http.StatusRequestTimeout, 0)
			return
		}
		r2 := *r // shallow: the caller's request is never changed
		r2.Body = body
		r = &r2
	}

	// One time for the whole decision: the request's, unless the clock
	// was injected or the body took a while to arrive.
	var now time.Time
	if l.systemClock && !buffered {
		now = st.Start()
	} else {
		now = l.now()
	}
	if lim.MaxConcurrent > 0 {
		e, free, ok := l.local.acquire(b.key, lim.MaxConcurrent, now)
		if !ok {
			l.refuseConcurrency(w, r, st, &f, c, b.tier, now)
			return
		}
		defer e.release()
		f.free = free
	}

	cost := 1
	if c.cost != nil {
		cost = c.cost(r)
	}
	d, err := l.take(ctx, b.key, lim, cost, b.tier, now)
	if err == nil && d.Reason != ReasonStore {
		f.decided, f.d = true, &d
		f.set(w.Header(), c.legacy, now, &st.RateLimit)
	}
	switch {
	case d.Allowed:
		if l.inFlight.Enabled(ctx) {
			l.flight(ctx, b.tier, "handler", 1)
			defer l.flight(ctx, b.tier, "handler", -1)
		}
		next.ServeHTTP(w, r)
	case err != nil || d.Reason == ReasonStore:
		// No fields: the limits decided nothing.
		c.refuse(w, r, ReasonStore, http.StatusServiceUnavailable, int(seconds(d.RetryAfter, 1)))
	case d.Reason == ReasonQuota:
		c.refuse(w, r, ReasonQuota, http.StatusTooManyRequests, int(seconds(d.RetryAfter, 1)))
	default:
		c.refuse(w, r, ReasonRate, http.StatusTooManyRequests, int(seconds(d.RetryAfter, 1)))
	}
}

// refuseConcurrency answers a request refused because every slot of its
// budget is taken.
func (l *Limiter) refuseConcurrency(w http.ResponseWriter, r *http.Request, st *request.State, f *fields, c *middlewareConfig, tier string, now time.Time) {
	l.count(r.Context(), tier, false, ReasonConcurrency)
	// The rate and quotas were not asked: the fields say only that no
	// slot is free.
	f.free = 0
	f.set(w.Header(), c.legacy, now, &st.RateLimit)
	c.refuse(w, r, ReasonConcurrency, c.concurrencyStatus, 1)
}

// hasBody reports whether r comes with a body to read.
func hasBody(r *http.Request) bool {
	return r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0
}

// noTenantReport keys the report of a throttle that seems to sit outside
// authz.
type noTenantReport struct{}

// refusals are the problems the throttle answers with, by reason.
var refusals = map[Reason]struct{ slug, title, detail string }{
	ReasonConcurrency: {"concurrency-limited", "Too many concurrent requests", "Too many of your requests are in progress; retry when one has finished."},
	ReasonBodyTimeout: {"body-timeout", "Request body too slow", "The request body did not arrive in time; send it faster, or in smaller requests."},
	ReasonStore:       {"throttle-unavailable", "Service unavailable", "Request limits cannot be checked right now; retry shortly."},
	ReasonQuota:       {"quota-exceeded", "Quota exceeded", "Your plan's request quota for this period is used up."},
	ReasonRate:        {"rate-limited", "Too many requests", "Your request rate is above your plan's limit; retry after the time given."},
}

// refuse answers a refused request with the problem of reason, and records
// the refusal for the access log and the meter.
// Refusal is a request the throttle refused, as [WithRefusalHandler]
// gets it.
type Refusal struct {
	Reason Reason
	// Status is 429, 503 (the store cannot decide, or
	// WithConcurrencyStatus(503)) or 408 (a body too slow).
	Status int
	// RetryAfter is in whole seconds, rounded up; 0 when there is none.
	RetryAfter int
}

// WithRefusalHandler replaces how a refused request is answered. The
// refusal is recorded for the access log and the meter, and the
// RateLimit fields (and Retry-After, when there is one) are set, before h
// runs; h writes the status and body. Default, also for nil:
// [WriteRefusal].
func WithRefusalHandler(h func(w http.ResponseWriter, r *http.Request, ref Refusal)) MiddlewareOption {
	return func(c *middlewareConfig) { c.refusalHandler = h }
}

// WriteRefusal answers a refused request with the throttle's RFC 9457
// problem, as the middleware does by default.
func WriteRefusal(w http.ResponseWriter, r *http.Request, ref Refusal) {
	p, ok := refusals[ref.Reason]
	if !ok {
		p = refusals[ReasonRate]
	}
	tenant.WriteProblem(w, tenant.Problem{
		Type:       tenant.ProblemType(p.slug),
		Title:      p.title,
		Status:     ref.Status,
		Detail:     p.detail,
		RetryAfter: ref.RetryAfter,
	})
}

// refuse records the refusal and answers it.
func (c *middlewareConfig) refuse(w http.ResponseWriter, r *http.Request, reason Reason, status, retryAfter int) {
	tenant.Reject(r.Context(), tenant.Rejection{By: "throttle", Reason: string(reason), Status: status})
	ref := Refusal{Reason: reason, Status: status, RetryAfter: retryAfter}
	if c.refusalHandler == nil {
		WriteRefusal(w, r, ref)
		return
	}
	if retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	}
	c.refusalHandler(w, r, ref)
}
