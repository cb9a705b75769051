package authz

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tenancykit/tenancy/tenant"
)

// Tier lookups: how long an answer is kept, and how many tenants' answers.
const (
	DefaultTierLookupTTL  = time.Minute
	DefaultTierLookupSize = 10_000
)

// WithTierLookup finds the tier of a tenant in the service's own records
// (its tenant store), for identity providers whose tokens carry none: it
// decides the tier of every token without a tier claim, and with
// [WithTierLookupAlways] of every token. lookup returns a tier name of
// the verifier's tiers. Its answers are kept per tenant for
// [DefaultTierLookupTTL] (see WithTierLookupCache), so a tier change
// reaches requests within that time; concurrent requests of a tenant
// whose answer is not kept wait for one call. An error wrapping
// ErrTenantClaim (a tenant the store does not know) refuses the token
// with 401; any other error, or a name that is not a tier, refuses the
// request with [ErrTierUnavailable], answered 503 with Retry-After, and
// is asked again at the next request.
func WithTierLookup(lookup func(ctx context.Context, tenantID string) (tier string, err error)) Option {
	return func(c *config) { c.tierLookup = lookup }
}

// WithTierLookupAlways makes the tier lookup decide the tier of every
// token, whatever its tier claim says.
func WithTierLookupAlways() Option { return func(c *config) { c.tierLookupAlways = true } }

// WithTierLookupCache sets how long a tier lookup's answer is kept and for
// how many tenants at most. Default [DefaultTierLookupTTL] and
// [DefaultTierLookupSize], also for zeros; a negative ttl keeps nothing.
func WithTierLookupCache(ttl time.Duration, size int) Option {
	return func(c *config) { c.tierTTL, c.tierCacheSize = ttl, size }
}

// tierCache keeps the answers of a tier lookup, per tenant, for a while.
type tierCache struct {
	lookup func(ctx context.Context, tenantID string) (string, error)
	tiers  *tenant.Tiers
	ttl    time.Duration
	size   int
	now    func() time.Time

	mu       sync.Mutex
	entries  map[string]tierEntry
	inflight map[string]*tierCall
}

type tierEntry struct {
	tier    tenant.Tier
	expires time.Time
}

// tierCall is a lookup in progress that other requests of the tenant
// wait for.
type tierCall struct {
	done chan struct{}
	tier tenant.Tier
	err  error
}

func newTierCache(c *config) *tierCache {
	if c.tierLookup == nil {
		return nil
	}
	ttl, size := c.tierTTL, c.tierCacheSize
	if ttl == 0 {
		ttl = DefaultTierLookupTTL
	}
	if size == 0 {
		size = DefaultTierLookupSize
	}
	return &tierCache{
		lookup: c.tierLookup, tiers: c.tiers, ttl: ttl, size: size, now: c.now,
		entries: map[string]tierEntry{}, inflight: map[string]*tierCall{},
	}
}

// tierOf returns tenantID's tier: kept, or looked up.
func (tc *tierCache) tierOf(ctx context.Context, tenantID string) (tenant.Tier, error) {
	now := tc.now()
	tc.mu.Lock()
	if e, ok := tc.entries[tenantID]; ok && now.Before(e.expires) {
		tc.mu.Unlock()
		return e.tier, nil
	}
	if call, ok := tc.inflight[tenantID]; ok {
		tc.mu.Unlock()
		select {
		case <-call.done:
			return call.tier, call.err
		case <-ctx.Done():
			return tenant.Tier{}, fmt.Errorf("%w: %w", ErrTierUnavailable, ctx.Err())
		}
	}
	call := &tierCall{done: make(chan struct{})}
	tc.inflight[tenantID] = call
	tc.mu.Unlock()

	// The lookup outlives a client that hangs up: the tenant's other
	// requests wait for it.
	call.tier, call.err = tc.call(context.WithoutCancel(ctx), tenantID)
	tc.mu.Lock()
	delete(tc.inflight, tenantID)
	if call.err == nil && tc.ttl > 0 {
		if len(tc.entries) >= tc.size {
			tc.evict(now)
		}
		tc.entries[tenantID] = tierEntry{tier: call.tier, expires: now.Add(tc.ttl)}
	}
	tc.mu.Unlock()
	close(call.done)
	return call.tier, call.err
}

// call asks the lookup and checks its answer.
func (tc *tierCache) call(ctx context.Context, tenantID string) (tenant.Tier, error) {
	name, err := tc.lookup(ctx, tenantID)
	switch {
	case errors.Is(err, ErrTenantClaim):
		return tenant.Tier{}, err
	case err != nil:
		return tenant.Tier{}, fmt.Errorf("%w: %w", ErrTierUnavailable, err)
	}
	tier, ok := tc.tiers.Lookup(name)
	if !ok {
		return tenant.Tier{}, fmt.Errorf("%w: the tier lookup answered %q, which is none of the verifier's tiers", ErrTierUnavailable, name)
	}
	return tier, nil
}

// evict makes room: the expired answers, or when none has, about a tenth
// of them, whichever the map gives first.
func (tc *tierCache) evict(now time.Time) {
	for id, e := range tc.entries {
		if !now.Before(e.expires) {
			delete(tc.entries, id)
		}
	}
	for id := range tc.entries {
		if len(tc.entries) < tc.size-tc.size/10 {
			break
		}
		delete(tc.entries, id)
	}
}

// withLookedUpTier returns t with the tier of the lookup when it decides
// t's tier: a copy when the tier differs, t itself otherwise.
func (v *Verifier) withLookedUpTier(ctx context.Context, t *tenant.Tenant, fromToken bool) (*tenant.Tenant, error) {
	if v.tierLookup == nil || fromToken && !v.tierLookupAlways {
		return t, nil
	}
	tier, err := v.tierLookup.tierOf(ctx, t.ID)
	if err != nil {
		return nil, err
	}
	if tier == t.Tier {
		return t, nil
	}
	t2 := *t
	t2.Tier = tier
	return &t2, nil
}
