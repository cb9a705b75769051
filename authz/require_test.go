package authz_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/tenancykit/tenancy/authz"
	"github.com/tenancykit/tenancy/authz/authztest"
	"github.com/tenancykit/tenancy/internal/request/requesttest"
	"github.com/tenancykit/tenancy/tenant"
)

var tiers = tenant.DefaultTiers

func tenantOn(tier string, roles, scopes []string) *tenant.Tenant {
	return &tenant.Tenant{ID: "acme", Tier: tiers.MustLookup(tier), Roles: roles, Scopes: scopes}
}

// serveWith runs mw over a handler that writes 200, for a request carrying
// tn (none when nil) and the state the stack creates, and returns the result.
func serveWith(t *testing.T, mw func(http.Handler) http.Handler, tn *tenant.Tenant) result {
	t.Helper()
	ctx := t.Context()
	if tn != nil {
		ctx = tenant.NewContext(ctx, *tn)
	}
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requesttest.MarkRan(r.Context())
	}))
	w := httptest.NewRecorder()
	ww, req, rec := requesttest.Start(w, httptest.NewRequestWithContext(ctx, http.MethodGet, "/", nil))
	h.ServeHTTP(ww, req)
	resp := w.Result()
	return result{status: resp.StatusCode, header: resp.Header, body: w.Body.Bytes(), rec: rec}
}

// requireCase is a tenant (nil for none) and the answer a Require*
// middleware owes it: 200, or a refusal.
type requireCase struct {
	name   string
	tenant *tenant.Tenant
	want   *refusal // nil: let through
}

// forbidden is a 403; only a missing scope carries a challenge (RFC 6750 §3.1).
func forbidden(reason string) *refusal {
	if reason == "scope" {
		return &refusal{http.StatusForbidden, reason, "insufficient_scope"}
	}
	return &refusal{http.StatusForbidden, reason, ""}
}

// noTenant is the one answer of the module to a request without a
// (verified) tenant: 401 tenant-required, a bare Bearer challenge.
var noTenant = &refusal{http.StatusUnauthorized, "tenant_required", ""}

func runRequireCases(t *testing.T, mw func(http.Handler) http.Handler, cases []requireCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			res := serveWith(t, mw, tt.tenant)
			if tt.want == nil {
				if res.status != http.StatusOK || !res.handlerRan() {
					t.Fatalf("got %d (handler ran: %v), want 200; body %s", res.status, res.handlerRan(), res.body)
				}
				if rej := res.rec.Rejection(); !rej.IsZero() {
					t.Errorf("record holds rejection %+v", rej)
				}
				return
			}
			checkRefused(t, res, *tt.want, "")
		})
	}
}

func TestRequireRole(t *testing.T) {
	mw := authz.RequireRole("admin", "owner")
	runRequireCases(t, mw, []requireCase{
		{"first role", tenantOn("basic", []string{"admin"}, nil), nil},
		{"second role", tenantOn("basic", []string{"viewer", "owner"}, nil), nil},
		{"both roles", tenantOn("basic", []string{"owner", "admin"}, nil), nil},
		{"other role", tenantOn("platinum", []string{"viewer"}, nil), forbidden("role")},
		{"role in another case", tenantOn("basic", []string{"Admin"}, nil), forbidden("role")},
		{"no roles", tenantOn("basic", nil, nil), forbidden("role")},
		{"a scope named like the role", tenantOn("basic", nil, []string{"admin"}), forbidden("role")},
		{"no tenant", nil, noTenant},
	})
}

func TestRequireScope(t *testing.T) {
	mw := authz.RequireScope("orders:read", "orders:write")
	runRequireCases(t, mw, []requireCase{
		{"both scopes", tenantOn("basic", nil, []string{"orders:write", "orders:read"}), nil},
		{"both and more", tenantOn("basic", nil, []string{"profile", "orders:read", "orders:write"}), nil},
		{"one scope", tenantOn("basic", nil, []string{"orders:read"}), forbidden("scope")},
		{"no scopes", tenantOn("platinum", nil, nil), forbidden("scope")},
		{"a role named like the scopes", tenantOn("basic", []string{"orders:read", "orders:write"}, nil), forbidden("scope")},
		{"no tenant", nil, noTenant},
	})

	// RFC 6750 §3.1: insufficient_scope, with a 403.
	res := serveWith(t, mw, tenantOn("basic", nil, []string{"orders:read"}))
	want := `Bearer error="insufficient_scope", error_description="This resource needs the scope orders:read and orders:write."`
	if diff := cmp.Diff(want, res.header.Get("WWW-Authenticate")); diff != "" {
		t.Errorf("WWW-Authenticate (-want +got):\n%s", diff)
	}
}

func TestRequireTier(t *testing.T) {
	mw := authz.RequireTier(tiers.MustLookup("premium"))
	runRequireCases(t, mw, []requireCase{
		{"basic", tenantOn("basic", nil, nil), forbidden("tier")},
		{"standard", tenantOn("standard", nil, nil), forbidden("tier")},
		{"premium", tenantOn("premium", nil, nil), nil},
		{"platinum", tenantOn("platinum", nil, nil), nil},
		{"unknown tier", &tenant.Tenant{ID: "acme"}, forbidden("tier")},
		{"no tenant", nil, noTenant},
	})
}

func TestRequireDetail(t *testing.T) {
	// The problem detail tells the client what it lacks, and nothing else.
	for _, tt := range []struct {
		name string
		mw   func(http.Handler) http.Handler
		want string
	}{
		{"role", authz.RequireRole("admin", "owner"), "This resource needs the role admin or owner."},
		{"tier", authz.RequireTier(tiers.MustLookup("premium")), "This resource needs the premium tier or above."},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := serveWith(t, tt.mw, tenantOn("basic", nil, nil))
			if !strings.Contains(string(res.body), `"detail":"`+tt.want+`"`) {
				t.Errorf("body %s lacks the detail %q", res.body, tt.want)
			}
		})
	}
}

func TestRequirePanics(t *testing.T) {
	features, err := authz.NewFeatures(map[string][]tenant.Tier{"export": tiers.All()})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		f    func()
	}{
		{"RequireRole without roles", func() { authz.RequireRole() }},
		{"RequireScope without scopes", func() { authz.RequireScope() }},
		{"RequireTier with the zero Tier", func() { authz.RequireTier(tenant.Tier{}) }},
		{"Features.Require of an unknown feature", func() { features.Require("exprot") }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if r == nil || !strings.HasPrefix(fmt.Sprint(r), "authz: ") {
					t.Errorf("recover() = %v, want a panic with the authz: prefix", r)
				}
			}()
			tt.f()
		})
	}
}

func TestFeatures(t *testing.T) {
	premium := tiers.MustLookup("premium")
	f, err := authz.NewFeatures(map[string][]tenant.Tier{
		"export":   tiers.From(premium),
		"sso":      {tiers.MustLookup("platinum")},
		"invoices": {tiers.MustLookup("basic"), tiers.MustLookup("platinum")},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, feature := range []string{"export", "sso", "invoices", "unknown"} {
		for _, tier := range tiers.All() {
			if f.AllowedFor(tier, feature) {
				got[feature] = append(got[feature], tier.String())
			}
		}
	}
	want := map[string][]string{
		"export":   {"premium", "platinum"},
		"sso":      {"platinum"},
		"invoices": {"basic", "platinum"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("AllowedFor (-want +got):\n%s", diff)
	}
	if f.AllowedFor(tenant.Tier{}, "export") {
		t.Error("the unknown tier is allowed a feature")
	}

	t.Run("Allowed", func(t *testing.T) {
		for _, tt := range []struct {
			name    string
			ctx     context.Context
			feature string
			want    bool
		}{
			{"premium tenant, export", tenant.NewContext(t.Context(), *tenantOn("premium", nil, nil)), "export", true},
			{"standard tenant, export", tenant.NewContext(t.Context(), *tenantOn("standard", nil, nil)), "export", false},
			{"platinum tenant, unknown feature", tenant.NewContext(t.Context(), *tenantOn("platinum", nil, nil)), "unknown", false},
			{"no tenant", t.Context(), "invoices", false},
		} {
			t.Run(tt.name, func(t *testing.T) {
				if got := f.Allowed(tt.ctx, tt.feature); got != tt.want {
					t.Errorf("Allowed = %v, want %v", got, tt.want)
				}
			})
		}
	})

	t.Run("Require", func(t *testing.T) {
		runRequireCases(t, f.Require("export"), []requireCase{
			{"standard", tenantOn("standard", nil, nil), forbidden("feature")},
			{"premium", tenantOn("premium", nil, nil), nil},
			{"platinum", tenantOn("platinum", nil, nil), nil},
			{"no tenant", nil, noTenant},
		})
	})
}

func TestNewFeaturesErrors(t *testing.T) {
	for _, tt := range []struct {
		name  string
		table map[string][]tenant.Tier
		want  string
	}{
		{"empty feature name", map[string][]tenant.Tier{"": tiers.All()}, "empty feature name"},
		{"no tiers", map[string][]tenant.Tier{"export": nil}, `"export"`},
		{"zero tier", map[string][]tenant.Tier{"export": {tenant.Tier{}}}, `"export"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f, err := authz.NewFeatures(tt.table)
			if err == nil || f != nil {
				t.Fatalf("NewFeatures = %v, %v; want an error", f, err)
			}
			if !strings.HasPrefix(err.Error(), "authz: NewFeatures") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want one from NewFeatures naming %s", err, tt.want)
			}
		})
	}

	// The table is copied: changing it afterwards changes nothing.
	table := map[string][]tenant.Tier{"export": {tiers.MustLookup("platinum")}}
	f, err := authz.NewFeatures(table)
	if err != nil {
		t.Fatal(err)
	}
	table["export"][0] = tiers.MustLookup("basic")
	if f.AllowedFor(tiers.MustLookup("basic"), "export") {
		t.Error("Features shares the caller's table")
	}
}

// TestRequireAnyRoleEveryScope pins what each check asks of one tenant:
// any one of the roles, every one of the scopes, the tier or a higher one.
func TestRequireAnyRoleEveryScope(t *testing.T) {
	acme := tenantOn("premium", []string{"admin", "ops"}, []string{"a", "b"})
	premium, platinum := tiers.MustLookup("premium"), tiers.MustLookup("platinum")
	for _, tt := range []struct {
		name   string
		mw     func(http.Handler) http.Handler
		tenant *tenant.Tenant
		want   *refusal
	}{
		{"RequireRole one of them", authz.RequireRole("viewer", "ops"), acme, nil},
		{"RequireRole none", authz.RequireRole("viewer"), acme, forbidden("role")},
		{"RequireRole no tenant", authz.RequireRole("admin"), nil, noTenant},
		{"RequireScope all", authz.RequireScope("a", "b"), acme, nil},
		{"RequireScope one missing", authz.RequireScope("a", "c"), acme, forbidden("scope")},
		{"RequireScope no tenant", authz.RequireScope("a"), nil, noTenant},
		{"RequireTier same", authz.RequireTier(premium), acme, nil},
		{"RequireTier lower", authz.RequireTier(tiers.MustLookup("basic")), acme, nil},
		{"RequireTier higher", authz.RequireTier(platinum), acme, forbidden("tier")},
		{"RequireTier no tenant", authz.RequireTier(tiers.MustLookup("basic")), nil, noTenant},
	} {
		runRequireCases(t, tt.mw, []requireCase{{name: tt.name, tenant: tt.tenant, want: tt.want}})
	}
}

// TestRequireKeepsItsArguments changes the slice RequireRole and
// RequireScope were given: the checks do not change with it.
func TestRequireKeepsItsArguments(t *testing.T) {
	roles, scopes := []string{"admin"}, []string{"a"}
	byRole, byScope := authz.RequireRole(roles...), authz.RequireScope(scopes...)
	roles[0], scopes[0] = "viewer", "b"
	runRequireCases(t, byRole, []requireCase{
		{"admin still passes", tenantOn("basic", []string{"admin"}, nil), nil},
		{"viewer still refused", tenantOn("basic", []string{"viewer"}, nil), forbidden("role")},
	})
	runRequireCases(t, byScope, []requireCase{
		{"a still passes", tenantOn("basic", nil, []string{"a"}), nil},
		{"b still refused", tenantOn("basic", nil, []string{"b"}), forbidden("scope")},
	})
}

// TestRequireAfterMiddleware checks the usual chain: authz.Middleware puts
// the tenant in the context, RequireTier reads it.
func TestRequireAfterMiddleware(t *testing.T) {
	clk := newClock()
	iss, v := startIssuer(t, clk)
	chain := func(next http.Handler) http.Handler {
		return authz.Middleware(v)(authz.RequireTier(tiers.MustLookup("premium"))(authz.RequireScope("orders:read")(next)))
	}
	h := newHarnessFor(t, chain)
	for _, tt := range []struct {
		name  string
		token string
		want  *refusal
	}{
		{"platinum with the scope", iss.MustMint("acme", "platinum", authztest.WithScopes("orders:read")), nil},
		{"basic with the scope", iss.MustMint("acme", "basic", authztest.WithScopes("orders:read")), forbidden("tier")},
		{"premium without the scope", iss.MustMint("acme", "premium"), forbidden("scope")},
		{"expired", iss.MustMint("acme", "platinum", authztest.WithExpiry(-1)), &refusal{http.StatusUnauthorized, "expired", "invalid_token"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := h.bearer(t, tt.token)
			if tt.want == nil {
				if res.status != http.StatusOK || !res.handlerRan() {
					t.Fatalf("got %d, want 200; body %s", res.status, res.body)
				}
				return
			}
			checkRefused(t, res, *tt.want, tt.token)
			// A tenant refused with 403 was authenticated: the record names it.
			if _, ok := res.rec.Tenant(); ok != (tt.want.status == http.StatusForbidden) {
				t.Errorf("record names a tenant: %v, want %v", ok, tt.want.status == http.StatusForbidden)
			}
		})
	}
}

func TestWriteError(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
		want refusal
	}{
		{"forbidden", &authz.ForbiddenError{Reason: "feature", Detail: "No."}, refusal{http.StatusForbidden, "feature", ""}},
		{"bare ErrForbidden", authz.ErrForbidden, refusal{http.StatusForbidden, "forbidden", ""}},
		{"wrapped sentinel", fmt.Errorf("context: %w", authz.ErrExpired), refusal{http.StatusUnauthorized, "expired", "invalid_token"}},
		{"foreign error", errors.New("crypto/rsa: verification error"), refusal{http.StatusUnauthorized, "invalid_token", "invalid_token"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := serveWith(t, func(http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { authz.WriteError(w, r, tt.err) })
			}, nil)
			checkRefused(t, res, tt.want, "")
		})
	}
}
