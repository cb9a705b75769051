package tenant_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/tenancykit/tenancy/tenant"
)

func ExampleFromContext() {
	acme, err := tenant.New("acme", tenant.DefaultTiers.MustLookup("premium"))
	if err != nil {
		panic(err)
	}
	ctx := tenant.NewContext(context.Background(), acme)

	if t, ok := tenant.FromContext(ctx); ok {
		fmt.Println(t.ID, t.Tier)
	}
	_, ok := tenant.FromContext(context.Background())
	fmt.Println("tenant in an empty context:", ok)
	// Output:
	// acme premium
	// tenant in an empty context: false
}

func ExampleTiers() {
	plans := tenant.MustTiers("free", "pro", "enterprise")
	pro := plans.MustLookup("pro")

	for _, t := range plans.All() {
		fmt.Printf("%s at least pro: %v\n", t, t.AtLeast(pro))
	}
	var unknown tenant.Tier
	fmt.Println("unknown at least free:", unknown.AtLeast(plans.Lowest()))
	// Output:
	// free at least pro: false
	// pro at least pro: true
	// enterprise at least pro: true
	// unknown at least free: false
}

func ExampleChain() {
	sub, err := tenant.Subdomain("api.example.com")
	if err != nil {
		panic(err)
	}
	res := tenant.Chain(tenant.Verified(), sub)

	r := httptest.NewRequest(http.MethodGet, "https://acme.api.example.com/orders", nil)
	t, err := res.Resolve(r)
	fmt.Println(t.ID, err)

	// A token for globex on acme's subdomain is refused.
	globex := tenant.Tenant{ID: "globex"}
	r = r.WithContext(tenant.NewContext(r.Context(), globex))
	_, err = res.Resolve(r)
	fmt.Println(errors.Is(err, tenant.ErrMismatch))
	// Output:
	// acme <nil>
	// true
}

func ExampleRequire() {
	sub, err := tenant.Subdomain("api.example.com")
	if err != nil {
		panic(err)
	}
	// A public page: any tenant the host names, verified or not.
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, _ := tenant.FromContext(r.Context())
		fmt.Printf("page of %s (%s)\n", t.ID, t.Source)
	})
	// Orders: only a verified tenant (a token, a trusted peer).
	mux := http.NewServeMux()
	mux.Handle("GET /page", page)
	mux.Handle("GET /orders", tenant.Require(page))
	h := tenant.Middleware(sub)(mux)

	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "https://acme.api.example.com/page", nil))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "https://acme.api.example.com/orders", nil))
	fmt.Println("orders:", w.Code)
	// Output:
	// page of acme (claimed)
	// orders: 401
}

func ExampleWriteProblem() {
	w := httptest.NewRecorder()
	tenant.WriteProblem(w, tenant.Problem{
		Type:       tenant.ProblemType("rate-limited"),
		Title:      "Too many requests",
		Status:     http.StatusTooManyRequests,
		Detail:     "The tenant has used its request rate.",
		RetryAfter: 2,
	})
	fmt.Println(w.Code)
	fmt.Println(w.Header().Get("Content-Type"))
	fmt.Println(w.Header().Get("Retry-After"))
	fmt.Print(w.Body.String())
	// Output:
	// 429
	// application/problem+json
	// 2
	// {"type":"https://github.com/tenancykit/tenancy/blob/main/docs/problems.md#rate-limited","title":"Too many requests","status":429,"detail":"The tenant has used its request rate.","retry_after":2}
}
