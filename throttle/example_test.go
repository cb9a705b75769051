package throttle_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/tenancykit/tenancy/tenant"
	"github.com/tenancykit/tenancy/throttle"
)

func ExampleNew() {
	tiers := tenant.MustTiers("free", "pro")
	limiter, err := throttle.New(tiers, map[string]throttle.Limits{
		"free": {Rate: 1, Burst: 5, Quotas: []throttle.Quota{{Limit: 1000, Period: throttle.Day}}},
		"pro":  {Rate: 100, Burst: 200, MaxConcurrent: 20},
	}, throttle.WithOverrides(map[string]throttle.Limits{
		"big-customer": {Rate: 1000, Burst: 2000},
	}))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, t := range []tenant.Tenant{
		{ID: "acme", Tier: tiers.MustLookup("pro")},
		{ID: "big-customer", Tier: tiers.MustLookup("pro")},
		{ID: "newcomer"}, // unknown tier: the lowest tier's limits
	} {
		lim := limiter.LimitsFor(t)
		fmt.Printf("%s: %v/s, burst %d, %d quotas\n", t.ID, lim.Rate, lim.Burst, len(lim.Quotas))
	}

	// Mistakes are found at start-up, naming the tier and the field.
	_, err = throttle.New(tiers, map[string]throttle.Limits{
		"free": {Rate: 1, Burst: 0},
		"pro":  {Rate: 100, Burst: 200},
	})
	fmt.Println(err)
	// Output:
	// acme: 100/s, burst 200, 0 quotas
	// big-customer: 1000/s, burst 2000, 0 quotas
	// newcomer: 1/s, burst 5, 1 quotas
	// throttle: tier "free": Burst must be at least 1, got 0
}

func ExampleLimiter_Allow() {
	// A clock the example moves by hand; services leave the default.
	now := time.Date(2026, time.March, 14, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }

	tiers := tenant.MustTiers("basic")
	limiter, err := throttle.New(tiers, map[string]throttle.Limits{
		"basic": {Rate: 2, Burst: 3}, // a unit back every 500ms
	}, throttle.WithClock(clock))
	if err != nil {
		panic(err)
	}
	acme := tenant.Tenant{ID: "acme", Tier: tiers.MustLookup("basic")}
	ctx := context.Background()

	show := func() {
		d, err := limiter.Allow(ctx, acme, 1)
		if err != nil {
			panic(err)
		}
		if d.Allowed {
			fmt.Printf("%s allowed, %d left\n", now.Format("15:04:05.000"), d.Remaining)
		} else {
			fmt.Printf("%s refused (%s), retry after %v\n", now.Format("15:04:05.000"), d.Reason, d.RetryAfter)
		}
	}
	for range 4 {
		show()
	}
	now = now.Add(300 * time.Millisecond)
	show()
	now = now.Add(200 * time.Millisecond)
	show()
	// Output:
	// 12:00:00.000 allowed, 2 left
	// 12:00:00.000 allowed, 1 left
	// 12:00:00.000 allowed, 0 left
	// 12:00:00.000 refused (rate), retry after 500ms
	// 12:00:00.300 refused (rate), retry after 200ms
	// 12:00:00.500 allowed, 0 left
}

func ExampleLimiter_Middleware() {
	now := time.Date(2026, time.March, 14, 12, 0, 0, 0, time.UTC)
	tiers := tenant.MustTiers("basic")
	limiter, err := throttle.New(tiers, map[string]throttle.Limits{
		"basic": {Rate: 0.5, Burst: 2, Quotas: []throttle.Quota{{Limit: 100, Period: throttle.Day}}},
	}, throttle.WithClock(func() time.Time { return now }))
	if err != nil {
		panic(err)
	}
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "hello")
	})
	handler := limiter.Middleware()(hello)

	// In a service authz puts the tenant in the context.
	acme := tenant.Tenant{ID: "acme", Tier: tiers.MustLookup("basic")}
	for range 3 {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r = r.WithContext(tenant.NewContext(r.Context(), acme))
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, r)
		if ra := w.Header().Get("Retry-After"); ra != "" {
			fmt.Println(w.Code, "Retry-After:", ra)
		} else {
			fmt.Println(w.Code)
		}
		fmt.Println("  RateLimit-Policy:", w.Header().Get("RateLimit-Policy"))
		fmt.Println("  RateLimit:", w.Header().Get("RateLimit"))
	}
	// Output:
	// 200
	//   RateLimit-Policy: "rate";q=2;w=4, "day";q=100;w=86400
	//   RateLimit: "rate";r=1;t=2, "day";r=99;t=43200
	// 200
	//   RateLimit-Policy: "rate";q=2;w=4, "day";q=100;w=86400
	//   RateLimit: "rate";r=0;t=4, "day";r=98;t=43200
	// 429 Retry-After: 2
	//   RateLimit-Policy: "rate";q=2;w=4, "day";q=100;w=86400
	//   RateLimit: "rate";r=0;t=2, "day";r=98;t=43200
}

// Each user of a tenant gets a budget of its own, under the tenant's
// limits.
func ExampleByUser() {
	now := time.Date(2026, time.March, 14, 12, 0, 0, 0, time.UTC)
	tiers := tenant.MustTiers("basic")
	limiter, err := throttle.New(tiers, map[string]throttle.Limits{
		"basic": {Rate: 1, Burst: 2},
	}, throttle.WithClock(func() time.Time { return now }))
	if err != nil {
		panic(err)
	}
	handler := limiter.Middleware(throttle.ByUser())(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))

	for _, user := range []string{"alice", "alice", "alice", "bob"} {
		// In a service authz puts the tenant, and its user, in the context.
		acme := tenant.Tenant{ID: "acme", Tier: tiers.MustLookup("basic"), Subject: user}
		r := httptest.NewRequest(http.MethodGet, "/orders", nil)
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, r.WithContext(tenant.NewContext(r.Context(), acme)))
		fmt.Println(user, w.Code)
	}
	// Output:
	// alice 200
	// alice 200
	// alice 429
	// bob 200
}

// Each route of a tenant gets a budget of its own: the route the router
// matched, so that /orders/1 and /orders/2 share one.
func ExampleByRoute() {
	now := time.Date(2026, time.March, 14, 12, 0, 0, 0, time.UTC)
	tiers := tenant.MustTiers("basic")
	limiter, err := throttle.New(tiers, map[string]throttle.Limits{
		"basic": {Rate: 1, Burst: 2},
	}, throttle.WithClock(func() time.Time { return now }))
	if err != nil {
		panic(err)
	}
	ok := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	perRoute := limiter.Middleware(throttle.ByRoute())
	mux := http.NewServeMux()
	mux.Handle("GET /orders/{id}", perRoute(ok))
	mux.Handle("POST /export", perRoute(ok))
	// In front of the router (tenancy.New wires the throttle there), the
	// stack's route lookup finds the route instead.

	acme := tenant.Tenant{ID: "acme", Tier: tiers.MustLookup("basic")}
	for _, req := range []string{"POST /export", "POST /export", "POST /export", "GET /orders/1", "GET /orders/2", "GET /orders/3"} {
		method, path, _ := strings.Cut(req, " ")
		r := httptest.NewRequest(method, path, nil)
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r.WithContext(tenant.NewContext(r.Context(), acme)))
		fmt.Println(req, w.Code)
	}
	// Output:
	// POST /export 200
	// POST /export 200
	// POST /export 429
	// GET /orders/1 200
	// GET /orders/2 200
	// GET /orders/3 429
}

// A stricter limiter for one route, beside the service's, on one store:
// named apart, their budgets are apart.
func ExampleWithName() {
	now := time.Date(2026, time.March, 14, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	tiers := tenant.MustTiers("basic")
	store, err := throttle.NewMemoryStore() // a redisstore, shared by replicas, in production
	if err != nil {
		panic(err)
	}
	service, err := throttle.New(tiers, map[string]throttle.Limits{"basic": {Rate: 100, Burst: 100}},
		throttle.WithStore(store), throttle.WithClock(clock))
	if err != nil {
		panic(err)
	}
	export, err := throttle.New(tiers, map[string]throttle.Limits{"basic": {Rate: 0.1, Burst: 1}},
		throttle.WithStore(store), throttle.WithClock(clock), throttle.WithName("export"))
	if err != nil {
		panic(err)
	}
	ok := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	mux := http.NewServeMux()
	mux.Handle("POST /export", export.Middleware()(ok))
	mux.Handle("GET /orders", ok)
	handler := service.Middleware()(mux)

	acme := tenant.Tenant{ID: "acme", Tier: tiers.MustLookup("basic")}
	for _, req := range []string{"POST /export", "POST /export", "GET /orders"} {
		method, path, _ := strings.Cut(req, " ")
		r := httptest.NewRequest(method, path, nil)
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, r.WithContext(tenant.NewContext(r.Context(), acme)))
		fmt.Println(req, w.Code, w.Header().Values("RateLimit"))
	}
	// Output:
	// POST /export 200 ["rate";r=99;t=1 "export.rate";r=0;t=10]
	// POST /export 429 ["rate";r=98;t=1 "export.rate";r=0;t=10]
	// GET /orders 200 ["rate";r=97;t=1]
}
