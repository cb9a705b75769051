package tenant_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/tenancykit/tenancy/tenant"
)

// TestSourceOfResolvers: every resolver of the package says how far its
// tenant can be trusted, and Middleware marks a custom resolver's tenant
// claimed unless the resolver says otherwise.
func TestSourceOfResolvers(t *testing.T) {
	peer, err := tenant.TrustedHeader([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})
	if err != nil {
		t.Fatal(err)
	}
	path, err := tenant.PathPrefix("/t/")
	if err != nil {
		t.Fatal(err)
	}
	custom := tenant.ResolverFunc(func(r *http.Request) (tenant.Tenant, error) {
		return tenant.New(r.Header.Get("X-Anyone-Can-Send"), tenant.Tier{})
	})
	vouched := tenant.ResolverFunc(func(r *http.Request) (tenant.Tenant, error) {
		t, err := tenant.New("acme", tenant.Tier{})
		t.Source = tenant.SourcePeer // checked a client certificate, say
		return t, err
	})
	tests := []struct {
		name string
		res  tenant.Resolver
		req  func() *http.Request
		want tenant.Source
	}{
		{"trusted header", peer, func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = "10.1.2.3:4000"
			r.Header.Set("X-Tenant-ID", "acme")
			return r
		}, tenant.SourcePeer},
		{"subdomain", mustSubdomain(t), func() *http.Request {
			return httptest.NewRequest(http.MethodGet, "http://acme.api.example.com/", nil)
		}, tenant.SourceClaimed},
		{"path", path, func() *http.Request { return httptest.NewRequest(http.MethodGet, "/t/acme/orders", nil) }, tenant.SourceClaimed},
		{"custom resolver that says nothing", custom, func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.Header.Set("X-Anyone-Can-Send", "acme")
			return r
		}, tenant.SourceClaimed},
		{"custom resolver that vouches", vouched, func() *http.Request { return httptest.NewRequest(http.MethodGet, "/", nil) }, tenant.SourcePeer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, rec, seen := serve(t, tenant.Middleware(tt.res), tt.req())
			if !seen.hasTenant || seen.tenant.ID != "acme" {
				t.Fatalf("handler saw %+v, want acme", seen.tenant)
			}
			if seen.tenant.Source != tt.want {
				t.Errorf("Source in context = %v, want %v", seen.tenant.Source, tt.want)
			}
			if got, _ := rec.Tenant(); got.Source != tt.want {
				t.Errorf("Source in Record = %v, want %v", got.Source, tt.want)
			}
		})
	}
}

// TestRequireRefusesClaimedTenant: a tenant only the request vouches for
// (Host: victim.example.com) never passes Require; every verified source
// does.
func TestRequireRefusesClaimedTenant(t *testing.T) {
	for _, src := range []tenant.Source{tenant.SourceAssigned, tenant.SourceToken, tenant.SourcePeer, tenant.SourceClaimed} {
		t.Run(src.String(), func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/orders", nil)
			r = r.WithContext(tenant.NewContext(r.Context(), tenant.Tenant{ID: "victim", Source: src}))
			w, rec, seen := serve(t, tenant.Require, r)
			if want := src != tenant.SourceClaimed; seen.called != want {
				t.Fatalf("handler called %v, want %v (status %d)", seen.called, want, w.Code)
			}
			if src == tenant.SourceClaimed && (w.Code != http.StatusUnauthorized || rec.Rejection().Reason != "tenant_required") {
				t.Errorf("claimed tenant: status %d, rejection %+v; want 401 tenant_required", w.Code, rec.Rejection())
			}
		})
	}
}

// TestChainPrefersVerifiedSource: when a claimed source and a verified one
// name the same tenant, the verified tenant (with its roles) is kept,
// whichever comes first in the chain.
func TestChainPrefersVerifiedSource(t *testing.T) {
	verified := tenant.Tenant{ID: "acme", Subject: "alice", Roles: []string{"admin"}, Source: tenant.SourceToken}
	for name, res := range map[string]tenant.Resolver{
		"verified first": tenant.Chain(tenant.Verified(), mustSubdomain(t)),
		"claimed first":  tenant.Chain(mustSubdomain(t), tenant.Verified()),
	} {
		t.Run(name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "http://acme.api.example.com/", nil)
			r = r.WithContext(tenant.NewContext(r.Context(), verified))
			got, err := res.Resolve(r)
			if err != nil {
				t.Fatal(err)
			}
			if got.Source != tenant.SourceToken || got.Subject != "alice" {
				t.Errorf("Resolve = %+v, want the verified tenant", got)
			}
		})
	}
}

func TestSourceString(t *testing.T) {
	for src, want := range map[tenant.Source]string{
		tenant.SourceAssigned: "assigned", tenant.SourceToken: "token", tenant.SourcePeer: "peer",
		tenant.SourceClaimed: "claimed", tenant.Source(99): "unknown",
	} {
		if got := src.String(); got != want {
			t.Errorf("Source(%d).String() = %q, want %q", src, got, want)
		}
		if got := src.Verified(); got != (src != tenant.SourceClaimed) {
			t.Errorf("Source(%d).Verified() = %v", src, got)
		}
	}
}
