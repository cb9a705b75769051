package throttle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tenancykit/tenancy/internal/clientip"
	"github.com/tenancykit/tenancy/tenant"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Limiter decides, per tenant, whether a request may proceed: the bucket
// key is always the tenant, never its tier, so one tenant's burst cannot
// spend another's budget. It is safe for concurrent use; limits can be
// changed while it runs and apply from each tenant's next request.
type Limiter struct {
	tiers   *tenant.Tiers
	policy  atomic.Pointer[policy]
	mu      sync.Mutex // serialises policy updates
	store   Store
	local   *MemoryStore // concurrency slots, and the store by default
	now     func() time.Time
	anon    *Limits
	claimed bool // WithClaimedTenants
	clients clientip.Resolver
	name    string // WithName
	prefix  string // of its header items: the name and a dot, or ""

	decisions metric.Int64Counter
	inFlight  metric.Int64UpDownCounter
	flightSet sync.Map // inFlightKey → metric.AddOption, made once

	// A store that returns errors is reported once when it starts and
	// once when it stops, never per request.
	logger      *slog.Logger // nil: slog.Default() at the time
	storeDown   atomic.Bool
	downSince   atomic.Int64 // unix nanoseconds
	refusedDown atomic.Int64

	policyMu     sync.Mutex
	policyValues atomic.Pointer[map[policyKey]*policyEntry]

	// systemClock: now is time.Now, so the middleware may decide at the
	// request's time (request.State.Start) instead of reading it again.
	systemClock bool
	anonLimits  *inForce // anon, in force; nil without WithAnonymousLimits
}

// policy is an immutable snapshot of the limits in force.
type policy struct {
	// byRank holds the limits of each tier of the limiter's Tiers at the
	// tier's rank, so that a request finds its tier's by an index.
	byRank    []*inForce
	fallback  *inForce // for tenants whose tier is unknown: the lowest tier's
	overrides map[string]*inForce
}

// inForce is one set of limits in force, with what the middleware works
// out from them once instead of on every request: the header values.
// It is never changed.
type inForce struct {
	lim     Limits
	tier    tenant.Tier // the tier they are for, in byRank
	headers *policyEntry
}

// inForce returns lim, cloned, ready for the policy.
func (l *Limiter) inForce(lim Limits, tier tenant.Tier) *inForce {
	lim = cloneLimits(lim)
	return &inForce{lim: lim, tier: tier, headers: l.policyFor(lim)}
}

// tierLimits returns the limits of tier t: its own, or the fallback's
// for a tier the limiter does not know.
func (p *policy) tierLimits(t tenant.Tier) *inForce {
	if r := t.Rank(); r < len(p.byRank) {
		if e := p.byRank[r]; e != nil && e.tier == t {
			return e
		}
	}
	return p.fallback
}

// limitsOf returns the limits in force for the tenant id on tier (see
// LimitsFor).
func (l *Limiter) limitsOf(id string, tier tenant.Tier) *inForce {
	p := l.policy.Load()
	if e, ok := p.overrides[id]; ok {
		return e
	}
	return p.tierLimits(tier)
}

// Option configures a [Limiter].
type Option func(*config)

type config struct {
	store          Store
	local          *MemoryStore
	now            func() time.Time
	overrides      map[string]Limits
	anon           *Limits
	trustedProxies []netip.Prefix
	meterProvider  metric.MeterProvider
	claimed        bool
	logger         *slog.Logger
	name           string
}

// WithStore keeps rate and quota state in s, such as a redisstore shared by
// every replica. Default (also for nil): an in-process [MemoryStore] with
// default options. Concurrency caps are always counted in process.
func WithStore(s Store) Option { return func(c *config) { c.store = s } }

// WithMemoryStore sets the in-process store used for concurrency caps, and
// for rates and quotas unless [WithStore] says otherwise. Default (also for
// nil): a [MemoryStore] with default options.
func WithMemoryStore(s *MemoryStore) Option { return func(c *config) { c.local = s } }

// WithClock sets the time source. Default (also for nil) time.Now.
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// WithOverrides gives tenants limits of their own, by tenant ID, that beat
// their tier's. Default none; see also [Limiter.SetOverride].
func WithOverrides(o map[string]Limits) Option {
	return func(c *config) { c.overrides = o }
}

// WithAnonymousLimits limits requests that carry no tenant by client
// address, with lim. Forwarding headers are believed only from
// trustedProxies. Default: a request without a tenant is refused with 401.
func WithAnonymousLimits(lim Limits, trustedProxies ...netip.Prefix) Option {
	return func(c *config) { c.anon, c.trustedProxies = &lim, trustedProxies }
}

// WithClaimedTenants makes the middleware spend the budget of a tenant
// that only the request named ([tenant.SourceClaimed]: a subdomain, a
// path), for public routes limited per tenant. Anyone can then spend any
// tenant's budget by naming it. Default: such a request is treated as one
// without a tenant (limited by [WithAnonymousLimits], or refused with 401),
// so that an anonymous flood aimed at a victim's subdomain never drains
// the victim's budget.
func WithClaimedTenants() Option { return func(c *config) { c.claimed = true } }

// WithName names the limiter's budgets: limiters with different names
// never share a budget, even in one store (one limiter for the whole
// service and another, stricter, for an export route); limiters with the
// same name do, which is what the replicas of a service want. The name is
// part of every store key and prefixes the names of its RateLimit items
// ("export.rate"). It is 1 to 64 lower-case letters, digits, '-', '_' and
// '.'. Default (also for ""): no name, and store keys that are the tenant
// IDs themselves, as in earlier releases, so that budgets kept in a shared
// store survive an upgrade; two unnamed limiters on one store share their
// budgets.
func WithName(name string) Option { return func(c *config) { c.name = name } }

// WithLogger sets where the limiter reports a store that fails with an
// error: once when the errors start, with the first one, and once when the
// store answers again, with how many requests were refused meanwhile.
// Requests refused in between are counted in tenancy.throttle.decisions
// (reason "store_unavailable"), never logged one by one. A store that
// decides by its failure policy instead (throttle/redisstore) reports its
// own switches. Default (also for nil) slog.Default() at the time.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithMeterProvider sets where the limiter's metrics are reported (see
// the package documentation). Default (also for nil) the global
// otel.GetMeterProvider().
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) { c.meterProvider = mp }
}

// New returns a Limiter with limits by tier name. Every tier of tiers needs
// limits; a tenant whose tier is unknown gets the lowest tier's. Mistakes
// are reported naming the tier and field: "throttle: tier \"basic\": Burst
// must be at least 1, got 0".
//
// Limits are configuration, written and read as text (a file through
// [DecodeLimits], an environment variable), so they are keyed by the tier's
// name, matched case-insensitively against tiers here, once; a request's
// tier is the tenant.Tier of its tenant.
func New(tiers *tenant.Tiers, limits map[string]Limits, opts ...Option) (*Limiter, error) {
	if tiers == nil {
		return nil, errors.New("throttle: New needs the service's tenant.Tiers")
	}
	var c config
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	systemClock := c.now == nil
	if systemClock {
		c.now = time.Now
	}
	if c.local == nil {
		// Without options a MemoryStore cannot fail.
		c.local, _ = NewMemoryStore()
	}
	if c.store == nil {
		c.store = c.local
	}
	if c.name != "" && !validName(c.name) {
		return nil, fmt.Errorf("throttle: WithName: %q is not a name: use 1 to 64 lower-case letters, digits, '-', '_' and '.'", c.name)
	}
	if c.anon != nil {
		if err := c.anon.Validate(); err != nil {
			return nil, fmt.Errorf("throttle: WithAnonymousLimits: %w", err)
		}
	}
	mp := c.meterProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	decisions, err := mp.Meter("github.com/tenancykit/tenancy/throttle").Int64Counter(
		"tenancy.throttle.decisions",
		metric.WithDescription("Requests allowed or refused by the throttle, by tier and reason."),
		metric.WithUnit("{request}"),
	)
	if err != nil {
		return nil, fmt.Errorf("throttle: metric: %w", err)
	}
	inFlight, err := mp.Meter("github.com/tenancykit/tenancy/throttle").Int64UpDownCounter(
		"tenancy.throttle.in_flight",
		metric.WithDescription("Requests the throttle admitted whose handler is running (phase \"handler\"), and requests whose body it is reading before they may take a concurrency slot (phase \"body\"), by tier."),
		metric.WithUnit("{request}"),
	)
	if err != nil {
		return nil, fmt.Errorf("throttle: metric: %w", err)
	}
	l := &Limiter{
		tiers:     tiers,
		store:     c.store,
		local:     c.local,
		now:       c.now,
		anon:      c.anon,
		claimed:   c.claimed,
		clients:   clientip.New(c.trustedProxies),
		decisions: decisions,
		inFlight:  inFlight,
		logger:    c.logger,
		name:      c.name,
	}
	l.systemClock = systemClock
	if c.name != "" {
		l.prefix = c.name + "."
	}
	p, err := l.newPolicy(limits, c.overrides)
	if err != nil {
		return nil, err
	}
	l.policy.Store(p)
	if l.anon != nil {
		l.anonLimits = l.inForce(*l.anon, tenant.Tier{})
	}
	return l, nil
}

func (l *Limiter) newPolicy(limits map[string]Limits, overrides map[string]Limits) (*policy, error) {
	tiers := l.tiers
	p := &policy{overrides: make(map[string]*inForce, len(overrides))}
	byTier := make(map[tenant.Tier]Limits)
	names := make([]string, 0, len(limits))
	for name := range limits {
		names = append(names, name)
	}
	sort.Strings(names)
	prev := make(map[tenant.Tier]string, len(names))
	for _, name := range names {
		t, err := tiers.Parse(name)
		if err != nil {
			return nil, fmt.Errorf("throttle: limits for tier %q: %w", name, err)
		}
		if err := limits[name].Validate(); err != nil {
			return nil, fmt.Errorf("throttle: tier %q: %w", name, err)
		}
		// Tier names match case-insensitively: "Basic" and "basic" are
		// one tier, and silently keeping either would be a guess.
		if _, dup := byTier[t]; dup {
			return nil, fmt.Errorf("throttle: limits for tier %q are given twice (as %q and %q)", t.String(), prev[t], name)
		}
		prev[t] = name
		byTier[t] = limits[name]
	}
	var missing []string
	for _, t := range tiers.All() {
		if _, ok := byTier[t]; !ok {
			missing = append(missing, t.String())
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("throttle: no limits for tier %s: every tier needs limits", strings.Join(missing, ", "))
	}
	for id, lim := range overrides {
		if err := tenant.ValidateID(id); err != nil {
			return nil, fmt.Errorf("throttle: override: %w", err)
		}
		if err := lim.Validate(); err != nil {
			return nil, fmt.Errorf("throttle: override for tenant %q: %w", id, err)
		}
		p.overrides[id] = l.inForce(lim, tenant.Tier{})
	}
	for t, lim := range byTier {
		p.setTier(l.inForce(lim, t))
	}
	p.fallback = p.byRank[tiers.Lowest().Rank()]
	return p, nil
}

// setTier puts e in byRank, replacing the slice (a policy is never
// changed once published).
func (p *policy) setTier(e *inForce) {
	r := e.tier.Rank()
	byRank := make([]*inForce, max(len(p.byRank), r+1))
	copy(byRank, p.byRank)
	byRank[r] = e
	p.byRank = byRank
}

func cloneLimits(l Limits) Limits {
	l.Quotas = append([]Quota(nil), l.Quotas...)
	return l
}

// SetTierLimits replaces the limits of the tier named tierName, as the
// limits given to [New] name it.
func (l *Limiter) SetTierLimits(tierName string, lim Limits) error {
	t, err := l.tiers.Parse(tierName)
	if err != nil {
		return fmt.Errorf("throttle: SetTierLimits: %w", err)
	}
	if err := lim.Validate(); err != nil {
		return fmt.Errorf("throttle: tier %q: %w", tierName, err)
	}
	e := l.inForce(lim, t)
	l.update(func(p *policy) {
		p.setTier(e)
		p.fallback = p.byRank[l.tiers.Lowest().Rank()]
	})
	return nil
}

// SetOverride gives one tenant limits of its own.
func (l *Limiter) SetOverride(tenantID string, lim Limits) error {
	if err := tenant.ValidateID(tenantID); err != nil {
		return fmt.Errorf("throttle: SetOverride: %w", err)
	}
	if err := lim.Validate(); err != nil {
		return fmt.Errorf("throttle: override for tenant %q: %w", tenantID, err)
	}
	e := l.inForce(lim, tenant.Tier{})
	l.update(func(p *policy) {
		p.overrides = maps.Clone(p.overrides)
		p.overrides[tenantID] = e
	})
	return nil
}

// DeleteOverride puts a tenant back on its tier's limits.
func (l *Limiter) DeleteOverride(tenantID string) {
	l.update(func(p *policy) {
		p.overrides = maps.Clone(p.overrides)
		delete(p.overrides, tenantID)
	})
}

func (l *Limiter) update(f func(*policy)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := *l.policy.Load()
	f(&p)
	l.policy.Store(&p)
}

// LimitsFor returns the limits in force for t: its override, else its
// tier's, else the lowest tier's.
func (l *Limiter) LimitsFor(t tenant.Tenant) Limits { return l.limitsOf(t.ID, t.Tier).lim }

// Decision is the outcome of [Limiter.Allow].
type Decision struct {
	Result
	// Limits are the limits the decision was made under.
	Limits Limits
	// Cost is what the request spent (or would have).
	Cost int
}

// Allow spends cost units of t's budget now, if its limits allow. It is
// the decision the middleware makes, for work that does not arrive over
// HTTP (queue consumers, batch jobs). Concurrency caps are not involved:
// see [Limiter.Acquire].
func (l *Limiter) Allow(ctx context.Context, t tenant.Tenant, cost int) (Decision, error) {
	lim := l.LimitsFor(t)
	return l.take(ctx, budgetKey(l.name, tenantKey(t.ID), nil, nil, nil), &lim, cost, t.Tier.String(), l.now())
}

func (l *Limiter) take(ctx context.Context, key string, lim *Limits, cost int, tier string, now time.Time) (Decision, error) {
	// A cost above the burst, or above a quota, could never be paid.
	cost = min(max(cost, 1), lim.Burst)
	for _, q := range lim.Quotas {
		cost = int(min(int64(cost), q.Limit))
	}
	res, err := l.store.Take(ctx, key, *lim, cost, now)
	d := Decision{Result: res, Limits: *lim, Cost: cost}
	if err != nil {
		d.Allowed, d.Reason = false, ReasonStore
		if ctx.Err() == nil || !errors.Is(err, ctx.Err()) {
			l.storeFailed(err, now)
		}
	} else if l.storeDown.Load() {
		l.storeBack(now)
	}
	l.count(ctx, tier, d.Allowed, d.Reason)
	return d, err
}

// Acquire takes one of t's in-flight slots when its limits cap
// concurrency. It returns a release function to call when the work ends
// (calling it again does nothing),
// or false when every slot is taken. With no cap it always succeeds.
func (l *Limiter) Acquire(t tenant.Tenant) (release func(), ok bool) {
	lim := l.LimitsFor(t)
	if lim.MaxConcurrent == 0 {
		return func() {}, true
	}
	e, _, ok := l.local.acquire(budgetKey(l.name, tenantKey(t.ID), nil, nil, nil), lim.MaxConcurrent, l.now())
	if !ok {
		return nil, false
	}
	// Calling release twice must not free two slots.
	var once sync.Once
	return func() { once.Do(e.release) }, true
}

// storeFailed counts a request the store could not decide, and reports
// the first of a run.
func (l *Limiter) storeFailed(err error, now time.Time) {
	l.refusedDown.Add(1)
	if l.storeDown.CompareAndSwap(false, true) {
		l.downSince.Store(now.UnixNano())
		l.log().Warn("throttle: the store failed; until it answers, each request it cannot decide is refused with 503 and counted in tenancy.throttle.decisions, not logged",
			"error", err.Error())
	}
}

// storeBack reports that the store answers again.
func (l *Limiter) storeBack(now time.Time) {
	if l.storeDown.CompareAndSwap(true, false) {
		refused := l.refusedDown.Swap(0)
		l.log().Info("throttle: the store answers again",
			"refused", refused, "down_for", now.Sub(time.Unix(0, l.downSince.Load())).String())
	}
}

func (l *Limiter) log() *slog.Logger {
	if l.logger != nil {
		return l.logger
	}
	return slog.Default()
}

func (l *Limiter) count(ctx context.Context, tier string, allowed bool, reason Reason) {
	if !l.decisions.Enabled(ctx) {
		return
	}
	decision := "allowed"
	if !allowed {
		decision = "denied"
	}
	if tier == "" {
		tier = "unknown"
	}
	if reason == "" {
		reason = "none"
	}
	attrs := []attribute.KeyValue{
		tenant.TierKey.String(tier),
		attribute.String("decision", decision),
		attribute.String("reason", string(reason)),
	}
	if l.name != "" {
		attrs = append(attrs, attribute.String("limiter", l.name))
	}
	l.decisions.Add(ctx, 1, metric.WithAttributes(attrs...))
}

// inFlightKey names a series of tenancy.throttle.in_flight.
type inFlightKey struct{ tier, phase string }

// flight adds n to the in-flight requests of tier in phase; the
// attributes of each series are made once.
func (l *Limiter) flight(ctx context.Context, tier, phase string, n int64) {
	if tier == "" {
		tier = "unknown"
	}
	k := inFlightKey{tier, phase}
	opt, ok := l.flightSet.Load(k)
	if !ok {
		attrs := []attribute.KeyValue{tenant.TierKey.String(tier), attribute.String("phase", phase)}
		if l.name != "" {
			attrs = append(attrs, attribute.String("limiter", l.name))
		}
		opt, _ = l.flightSet.LoadOrStore(k, metric.WithAttributeSet(attribute.NewSet(attrs...)))
	}
	l.inFlight.Add(ctx, n, opt.(metric.AddOption))
}
