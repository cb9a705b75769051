package authz_test

import (
	"net/http"
	"testing"

	"github.com/tenancykit/tenancy/authz"
	"github.com/tenancykit/tenancy/tenant"
)

// TestTokenAndResolverMustAgree: a token for acme on globex's path is a
// 403 tenant-mismatch whether tenant.Middleware runs outside authz or
// inside it; on acme's own path the verified tenant is served.
func TestTokenAndResolverMustAgree(t *testing.T) {
	clk := newClock()
	iss, v := startIssuer(t, clk)
	path, err := tenant.PathPrefix("/t/")
	if err != nil {
		t.Fatal(err)
	}
	token := iss.MustMint("acme", "premium")
	orders := map[string]func(http.Handler) http.Handler{
		"resolver outside authz": func(h http.Handler) http.Handler {
			return tenant.Middleware(path)(authz.Middleware(v)(h))
		},
		"resolver inside authz": func(h http.Handler) http.Handler {
			return authz.Middleware(v)(tenant.Middleware(tenant.Chain(tenant.Verified(), path))(h))
		},
	}
	for name, mw := range orders {
		t.Run(name, func(t *testing.T) {
			h := newHarnessFor(t, mw)
			req := h.request(t, "", "Bearer "+token)
			req.URL.Path = "/t/globex/orders"
			res := h.do(t, req)
			if res.status != http.StatusForbidden || res.handlerRan() {
				t.Fatalf("token for acme on /t/globex/: status %d, handler ran %v; want 403", res.status, res.handlerRan())
			}
			if rej := res.rec.Rejection(); rej.Reason != "tenant_mismatch" || rej.Status != http.StatusForbidden {
				t.Errorf("rejection = %+v, want tenant_mismatch 403", rej)
			}
			checkNoLeak(t, res, token)

			req = h.request(t, "", "Bearer "+token)
			req.URL.Path = "/t/acme/orders"
			res = h.do(t, req)
			if res.status != http.StatusOK || string(res.body) != "acme premium" {
				t.Fatalf("token for acme on /t/acme/: %d %q, want 200", res.status, res.body)
			}
			if tn, _ := res.rec.Tenant(); tn.Source != tenant.SourceToken {
				t.Errorf("record tenant source = %v, want token", tn.Source)
			}
		})
	}
}

// TestUnverifiedTenantIsNotAuthorized reproduces the anonymous request
// that names its victim in the Host header: with optional credentials and
// a subdomain resolver it gets a tenant in its context, but a claimed one,
// which neither tenant.Require nor any authz check accepts.
func TestUnverifiedTenantIsNotAuthorized(t *testing.T) {
	clk := newClock()
	_, v := startIssuer(t, clk)
	sub, err := tenant.Subdomain("api.example.com")
	if err != nil {
		t.Fatal(err)
	}
	feats, err := authz.NewFeatures(map[string][]tenant.Tier{"reports": tiers.From(tiers.MustLookup("basic"))})
	if err != nil {
		t.Fatal(err)
	}
	checks := map[string]func(http.Handler) http.Handler{
		"tenant.Require":   tenant.Require,
		"RequireTier":      authz.RequireTier(tiers.MustLookup("basic")),
		"RequireRole":      authz.RequireRole("admin"),
		"RequireScope":     authz.RequireScope("orders:read"),
		"Features.Require": feats.Require("reports"),
	}
	for name, check := range checks {
		t.Run(name, func(t *testing.T) {
			h := newHarnessFor(t, func(next http.Handler) http.Handler {
				return authz.Middleware(v, authz.WithCredentialsOptional())(
					tenant.Middleware(tenant.Chain(tenant.Verified(), sub))(check(next)))
			})
			req := h.request(t, "")
			req.Host = "victim.api.example.com"
			res := h.do(t, req)
			if res.status != http.StatusUnauthorized || res.handlerRan() {
				t.Fatalf("anonymous request with Host victim: status %d, handler ran %v; want 401", res.status, res.handlerRan())
			}
		})
	}

	// A claimed tenant that carries roles and a tier (a careless custom
	// resolver) is refused the same way.
	claimed := tenantOn("platinum", []string{"admin"}, []string{"orders:read"})
	claimed.Source = tenant.SourceClaimed
	runRequireCases(t, authz.RequireRole("admin"), []requireCase{{name: "claimed admin", tenant: claimed, want: noTenant}})
	runRequireCases(t, authz.RequireTier(tiers.MustLookup("basic")), []requireCase{{name: "claimed platinum", tenant: claimed, want: noTenant}})
	runRequireCases(t, authz.RequireScope("orders:read"), []requireCase{{name: "claimed scope", tenant: claimed, want: noTenant}})
	runRequireCases(t, feats.Require("reports"), []requireCase{{name: "claimed feature", tenant: claimed, want: noTenant}})
	if feats.Allowed(tenant.NewContext(t.Context(), *claimed), "reports") {
		t.Error("Features.Allowed allows a claimed tenant")
	}
}
