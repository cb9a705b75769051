package throttle_test

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tenancykit/tenancy/internal/request/requesttest"
	"github.com/tenancykit/tenancy/tenant"
	"github.com/tenancykit/tenancy/throttle"
)

// start is the simulated time most tests begin at: noon UTC, so that no
// hour, day or month boundary is near unless a test puts one there.
var start = time.Date(2026, time.March, 14, 12, 0, 0, 0, time.UTC)

// clock is a manual time source for throttle.WithClock, safe for
// concurrent use.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock {
	c := new(clock)
	c.Set(t)
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Set(t time.Time)         { c.ns.Store(t.UnixNano()) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

var tiers = tenant.DefaultTiers // basic < standard < premium < platinum

// Limits of the default tiers in most tests.
var (
	basic    = throttle.Limits{Rate: 5, Burst: 10}
	standard = throttle.Limits{Rate: 50, Burst: 100}
	premium  = throttle.Limits{Rate: 500, Burst: 1000}
	platinum = throttle.Limits{Rate: 5000, Burst: 10000}
)

func tierLimits() map[string]throttle.Limits {
	return map[string]throttle.Limits{"basic": basic, "standard": standard, "premium": premium, "platinum": platinum}
}

// newLimiter returns a Limiter over the default tiers with the time of clk.
func newLimiter(t testing.TB, clk *clock, limits map[string]throttle.Limits, opts ...throttle.Option) *throttle.Limiter {
	t.Helper()
	if limits == nil {
		limits = tierLimits()
	}
	l, err := throttle.New(tiers, limits, append([]throttle.Option{throttle.WithClock(clk.Now)}, opts...)...)
	if err != nil {
		t.Fatalf("throttle.New: %v", err)
	}
	return l
}

// soloLimiter returns a Limiter with a single tier "solo" limited by lim,
// and a tenant on it.
func soloLimiter(t testing.TB, clk *clock, lim throttle.Limits, opts ...throttle.Option) (*throttle.Limiter, tenant.Tenant) {
	t.Helper()
	ts := tenant.MustTiers("solo")
	l, err := throttle.New(ts, map[string]throttle.Limits{"solo": lim}, append([]throttle.Option{throttle.WithClock(clk.Now)}, opts...)...)
	if err != nil {
		t.Fatalf("throttle.New: %v", err)
	}
	return l, mustTenant(t, "tenant-solo", ts.MustLookup("solo"))
}

// newMemoryStore returns a MemoryStore with opts, failing the test on an
// error.
func newMemoryStore(t testing.TB, opts ...throttle.MemoryOption) *throttle.MemoryStore {
	t.Helper()
	s, err := throttle.NewMemoryStore(opts...)
	if err != nil {
		t.Fatalf("throttle.NewMemoryStore: %v", err)
	}
	return s
}

func mustTenant(t testing.TB, id string, tier tenant.Tier) tenant.Tenant {
	t.Helper()
	tn, err := tenant.New(id, tier)
	if err != nil {
		t.Fatalf("tenant.New(%q): %v", id, err)
	}
	return tn
}

// interval is the time one unit takes to come back at rate, in whole
// nanoseconds, as the bucket computes it.
func interval(rate float64) time.Duration {
	return time.Duration(max(1, math.Round(float64(time.Second)/rate)))
}

// serve sends r through h as a service would: the stack creates the
// request's state, an inner layer puts tn (when not nil) in the context,
// as authz would. It returns the response and what the state recorded.
func serve(h http.Handler, tn *tenant.Tenant, r *http.Request) (*httptest.ResponseRecorder, *requesttest.Record) {
	var rec *requesttest.Record
	withTenant := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tn != nil {
			r = r.WithContext(tenant.NewContext(r.Context(), *tn))
		}
		h.ServeHTTP(w, r)
	})
	outer := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w, r, rec = requesttest.Start(w, r)
		withTenant.ServeHTTP(w, r)
	})
	w := httptest.NewRecorder()
	outer.ServeHTTP(w, r)
	return w, rec
}

// okHandler is the handler behind the middleware in most tests.
var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusOK)
})

func get(target string) *http.Request {
	return httptest.NewRequestWithContext(context.Background(), http.MethodGet, target, nil)
}
