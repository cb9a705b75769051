package tenant_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tenancykit/tenancy/internal/request"
	"github.com/tenancykit/tenancy/tenant"
)

// handlerResult is what the innermost handler saw.
type handlerResult struct {
	called    bool
	tenant    tenant.Tenant
	hasTenant bool
}

// serve runs r through mw around a handler that notes what it saw, the way
// a server would: an outer middleware creates the Record first. It checks
// that neither the middleware nor the handler changed the request the
// outer middleware passed in.
func serve(t *testing.T, mw func(http.Handler) http.Handler, r *http.Request) (*httptest.ResponseRecorder, record, handlerResult) {
	t.Helper()
	var seen handlerResult
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.called = true
		seen.tenant, seen.hasTenant = tenant.FromContext(r.Context())
		w.WriteHeader(http.StatusNoContent)
	})
	w := httptest.NewRecorder()
	_, r, st, _ := request.Enter(request.Stack, w, r)
	rec := record{st}

	before := r.Context()
	beforeURL, beforeHost, beforeHeaders := *r.URL, r.Host, r.Header.Clone()

	mw(inner).ServeHTTP(w, r)

	if r.Context() != before {
		t.Error("middleware replaced the context of the incoming request")
	}
	if *r.URL != beforeURL || r.Host != beforeHost || !cmp.Equal(r.Header, beforeHeaders) {
		t.Error("middleware changed the URL, host or headers of the incoming request")
	}
	return w, rec, seen
}

// record reads what the middleware left in the request's state.
type record struct{ st *request.State }

// Tenant returns the tenant of the request as its context has it.
func (r record) Tenant() (tenant.Tenant, bool) { return tenant.FromContext(r.st) }

// Rejection returns the refusal recorded.
func (r record) Rejection() tenant.Rejection { return tenant.Rejection(r.st.Rejection()) }

func mustSubdomain(t *testing.T) tenant.Resolver {
	t.Helper()
	res, err := tenant.Subdomain("api.example.com")
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestMiddlewareFound(t *testing.T) {
	mw := tenant.Middleware(mustSubdomain(t))
	w, rec, seen := serve(t, mw, httptest.NewRequest(http.MethodGet, "http://acme.api.example.com/orders", nil))

	if w.Code != http.StatusNoContent || !seen.called {
		t.Fatalf("status %d, handler called %v; want the handler to run", w.Code, seen.called)
	}
	if !seen.hasTenant || seen.tenant.ID != "acme" {
		t.Errorf("handler saw tenant %+v, %v; want acme", seen.tenant, seen.hasTenant)
	}
	if got, ok := rec.Tenant(); !ok || got.ID != "acme" {
		t.Errorf("Record tenant = %+v, %v; want acme", got, ok)
	}
	if !rec.Rejection().IsZero() {
		t.Errorf("Record rejection = %+v, want none", rec.Rejection())
	}
}

func TestMiddlewareKeepsVerifiedTenant(t *testing.T) {
	// A tenant authz put in the context keeps its roles and claims when the
	// chain agrees with it.
	verified := tenant.Tenant{ID: "acme", Subject: "user-1", Roles: []string{"admin"}}.
		WithClaims(tenant.NewClaims(map[string]any{"azp": "cli"}))
	mw := tenant.Middleware(tenant.Chain(tenant.Verified(), mustSubdomain(t)))

	r := httptest.NewRequest(http.MethodGet, "http://acme.api.example.com/orders", nil)
	r = r.WithContext(tenant.NewContext(r.Context(), verified))
	w, rec, seen := serve(t, mw, r)

	if w.Code != http.StatusNoContent {
		t.Fatalf("status %d, want 204", w.Code)
	}
	if diff := cmp.Diff(verified, seen.tenant, tenantCmp); diff != "" {
		t.Errorf("handler tenant mismatch (-want +got):\n%s", diff)
	}
	if v, ok := seen.tenant.Claims().String("azp"); !ok || v != "cli" {
		t.Errorf("handler tenant lost its claims: azp = %q, %v", v, ok)
	}
	if got, ok := rec.Tenant(); !ok || !got.HasRole("admin") {
		t.Errorf("Record tenant = %+v, %v; want the verified tenant", got, ok)
	}
}

func TestMiddlewareRejects(t *testing.T) {
	sub := mustSubdomain(t)
	path, err := tenant.PathPrefix("/t/")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		res        tenant.Resolver
		target     string
		wantStatus int
		wantType   string
		wantReason string
	}{
		{
			name:       "invalid ID",
			res:        path,
			target:     "http://api.example.com/t/acme%0Aadmin/orders",
			wantStatus: http.StatusBadRequest,
			wantType:   "invalid-tenant",
			wantReason: "invalid_tenant",
		},
		{
			name:       "sources disagree",
			res:        tenant.Chain(sub, path),
			target:     "http://acme.api.example.com/t/globex/orders",
			wantStatus: http.StatusForbidden,
			wantType:   "tenant-mismatch",
			wantReason: "tenant_mismatch",
		},
		{
			name: "other resolver error",
			res: tenant.ResolverFunc(func(*http.Request) (tenant.Tenant, error) {
				return tenant.Tenant{}, context.DeadlineExceeded
			}),
			target:     "http://api.example.com/orders",
			wantStatus: http.StatusBadRequest,
			wantType:   "invalid-tenant",
			wantReason: "invalid_tenant",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, rec, seen := serve(t, tenant.Middleware(tt.res), httptest.NewRequest(http.MethodGet, tt.target, nil))
			if seen.called {
				t.Error("handler ran for a refused request")
			}
			if w.Code != tt.wantStatus {
				t.Errorf("status = %d, want %d", w.Code, tt.wantStatus)
			}
			p := decodeProblem(t, w)
			if p.Type != tenant.ProblemType(tt.wantType) {
				t.Errorf("problem type = %q, want %q", p.Type, tenant.ProblemType(tt.wantType))
			}
			if p.Title == "" || p.Detail == "" {
				t.Errorf("problem = %+v, want a title and a detail", p)
			}
			for _, leak := range []string{"tenant:", "acme", "globex", "deadline"} {
				if strings.Contains(w.Body.String(), leak) {
					t.Errorf("problem body %q contains %q", w.Body.String(), leak)
				}
			}
			want := tenant.Rejection{By: "tenant", Reason: tt.wantReason, Status: tt.wantStatus}
			if diff := cmp.Diff(want, rec.Rejection()); diff != "" {
				t.Errorf("Record rejection mismatch (-want +got):\n%s", diff)
			}
			if _, ok := rec.Tenant(); ok {
				t.Error("Record has a tenant for a refused request")
			}
		})
	}
}

func TestMiddlewareNoTenant(t *testing.T) {
	w, rec, seen := serve(t, tenant.Middleware(mustSubdomain(t)), httptest.NewRequest(http.MethodGet, "http://api.example.com/orders", nil))
	if !seen.called || w.Code != http.StatusNoContent {
		t.Fatalf("status %d, handler called %v; want the request passed on", w.Code, seen.called)
	}
	if seen.hasTenant {
		t.Errorf("handler saw tenant %+v, want none", seen.tenant)
	}
	if _, ok := rec.Tenant(); ok {
		t.Error("Record has a tenant")
	}
	if !rec.Rejection().IsZero() {
		t.Errorf("Record rejection = %+v, want none", rec.Rejection())
	}
}

func TestMiddlewareWithoutRecord(t *testing.T) {
	// Without an outer Record the middleware still works.
	var got tenant.Tenant
	h := tenant.Middleware(mustSubdomain(t))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = tenant.FromContext(r.Context())
	}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "http://acme.api.example.com/", nil))
	if got.ID != "acme" {
		t.Errorf("handler tenant = %q, want acme", got.ID)
	}

	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "http://ac%E2%80%AEme.api.example.com/", nil))
	if w.Code != http.StatusBadRequest {
		t.Errorf("invalid tenant without a Record: status %d, want 400", w.Code)
	}
}

func TestMiddlewareNilResolver(t *testing.T) {
	v := panicValue(t, func() { tenant.Middleware(nil) })
	msg, ok := v.(string)
	if !ok || !strings.HasPrefix(msg, "tenant:") {
		t.Errorf("Middleware(nil) panicked with %#v, want a string starting with \"tenant:\"", v)
	}
}

func TestRequire(t *testing.T) {
	t.Run("no tenant", func(t *testing.T) {
		w, rec, seen := serve(t, tenant.Require, httptest.NewRequest(http.MethodGet, "/orders", nil))
		if seen.called {
			t.Error("handler ran without a tenant")
		}
		if w.Code != http.StatusUnauthorized {
			t.Errorf("status = %d, want 401", w.Code)
		}
		p := decodeProblem(t, w)
		want := tenant.Problem{
			Type:   tenant.ProblemType("tenant-required"),
			Title:  "Tenant required",
			Status: http.StatusUnauthorized,
			Detail: "This resource is only available to a tenant.",
		}
		if diff := cmp.Diff(want, p); diff != "" {
			t.Errorf("problem mismatch (-want +got):\n%s", diff)
		}
		wantRej := tenant.Rejection{By: "tenant", Reason: "tenant_required", Status: http.StatusUnauthorized}
		if diff := cmp.Diff(wantRej, rec.Rejection()); diff != "" {
			t.Errorf("Record rejection mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("tenant", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodGet, "/orders", nil)
		r = r.WithContext(tenant.NewContext(r.Context(), tenant.Tenant{ID: "acme"}))
		w, rec, seen := serve(t, tenant.Require, r)
		if !seen.called || w.Code != http.StatusNoContent {
			t.Fatalf("status %d, handler called %v; want the request passed on", w.Code, seen.called)
		}
		if seen.tenant.ID != "acme" {
			t.Errorf("handler tenant = %q, want acme", seen.tenant.ID)
		}
		if !rec.Rejection().IsZero() {
			t.Errorf("Record rejection = %+v, want none", rec.Rejection())
		}
	})

	t.Run("behind Middleware", func(t *testing.T) {
		mw := func(next http.Handler) http.Handler { return tenant.Middleware(mustSubdomain(t))(tenant.Require(next)) }

		// A subdomain is claimed by the request: not enough for Require.
		w, rec, seen := serve(t, mw, httptest.NewRequest(http.MethodGet, "http://acme.api.example.com/orders", nil))
		if seen.called || w.Code != http.StatusUnauthorized || rec.Rejection().Reason != "tenant_required" {
			t.Errorf("with a subdomain only: handler called %v, status %d, rejection %+v; want 401 tenant_required", seen.called, w.Code, rec.Rejection())
		}

		w, rec, seen = serve(t, mw, httptest.NewRequest(http.MethodGet, "http://api.example.com/orders", nil))
		if seen.called || w.Code != http.StatusUnauthorized || rec.Rejection().Reason != "tenant_required" {
			t.Errorf("without a subdomain: handler called %v, status %d, rejection %+v; want 401 tenant_required", seen.called, w.Code, rec.Rejection())
		}
	})
}

// TestMiddlewareNeverReplacesVerifiedTenant: a tenant authz verified is in
// the context before tenant.Middleware runs. A resolver that names another
// tenant must not silently swap it (a token for acme used on globex's
// subdomain would then act for globex), and one that names the same tenant
// must not drop its subject, roles and claims.
func TestMiddlewareNeverReplacesVerifiedTenant(t *testing.T) {
	verified := tenant.Tenant{ID: "acme", Subject: "user-1", Roles: []string{"admin"}}
	for _, host := range []string{"globex.api.example.com", "acme.api.example.com"} {
		t.Run(host, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "http://"+host+"/orders", nil)
			r = r.WithContext(tenant.NewContext(r.Context(), verified))
			w, _, seen := serve(t, tenant.Middleware(mustSubdomain(t)), r)
			if !seen.called {
				if w.Code != http.StatusForbidden {
					t.Errorf("refused with %d, want 403", w.Code)
				}
				return
			}
			if diff := cmp.Diff(verified, seen.tenant, tenantCmp); diff != "" {
				t.Errorf("handler tenant differs from the verified one (-verified +handler):\n%s", diff)
			}
		})
	}
}
