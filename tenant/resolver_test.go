package tenant_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/tenancykit/tenancy/tenant"
)

// resolveResult is what a test expects of Resolve: an ID, or an error
// matched with errors.Is.
type resolveResult struct {
	id  string
	err error
}

func checkResolve(t *testing.T, res tenant.Resolver, r *http.Request, want resolveResult) tenant.Tenant {
	t.Helper()
	got, err := res.Resolve(r)
	if want.err != nil {
		if !errors.Is(err, want.err) {
			t.Fatalf("Resolve = %+v, %v; want error %v", got, err, want.err)
		}
		if !got.IsZero() {
			t.Errorf("Resolve returned tenant %+v with error %v", got, err)
		}
		return got
	}
	if err != nil {
		t.Fatalf("Resolve error = %v, want tenant %q", err, want.id)
	}
	if got.ID != want.id {
		t.Errorf("Resolve ID = %q, want %q", got.ID, want.id)
	}
	return got
}

func TestVerified(t *testing.T) {
	res := tenant.Verified()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	checkResolve(t, res, r, resolveResult{err: tenant.ErrNoTenant})

	in := tenant.Tenant{ID: "acme", Subject: "user-1", Roles: []string{"admin"}}
	r = r.WithContext(tenant.NewContext(r.Context(), in))
	got := checkResolve(t, res, r, resolveResult{id: "acme"})
	if got.Subject != "user-1" || !got.HasRole("admin") {
		t.Errorf("Verified dropped fields: %+v", got)
	}
}

var trustedNets = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("2001:db8::/32"),
}

func TestTrustedHeaderConfig(t *testing.T) {
	_, err := tenant.TrustedHeader(nil)
	if err == nil {
		t.Fatal("TrustedHeader without trustedPeers: nil error")
	}
	for _, want := range []string{"tenant: ", "trustedPeers", "X-Tenant-ID"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}

	_, err = tenant.TrustedHeader([]netip.Prefix{}, tenant.WithIDHeader("X-Org"))
	if err == nil || !strings.Contains(err.Error(), "X-Org") {
		t.Errorf("TrustedHeader with empty trustedPeers error = %v, want one naming X-Org", err)
	}

	_, err = tenant.TrustedHeader([]netip.Prefix{trustedNets[0], {}})
	if err == nil || !strings.Contains(err.Error(), "trustedPeers") {
		t.Errorf("TrustedHeader with an invalid prefix error = %v, want one naming trustedPeers", err)
	}

	res, err := tenant.TrustedHeader(trustedNets)
	if err != nil || res == nil {
		t.Fatalf("TrustedHeader = %v, %v; want a resolver", res, err)
	}
}

// TestTrustedHeaderDefaults: nil options and options given their zero
// value leave the defaults, X-Tenant-ID and no tier header; the peers are
// those given at construction, whatever happens to the slice later.
func TestTrustedHeaderDefaults(t *testing.T) {
	peers := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	res, err := tenant.TrustedHeader(peers, nil, tenant.WithIDHeader(""), tenant.WithTierHeader("", nil))
	if err != nil {
		t.Fatal(err)
	}
	peers[0] = netip.MustParsePrefix("192.0.2.0/24")
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "10.0.0.1:1"
	r.Header.Set("X-Tenant-ID", "acme")
	r.Header.Set("X-Tenant-Tier", "premium")
	got := checkResolve(t, res, r, resolveResult{id: "acme"})
	if !got.Tier.IsZero() {
		t.Errorf("Tier = %q without a tier header, want the unknown tier", got.Tier)
	}
	r.RemoteAddr = "192.0.2.1:1"
	checkResolve(t, res, r, resolveResult{err: tenant.ErrNoTenant})

	// WithTierHeader(name, nil) reads tiers of DefaultTiers.
	res, err = tenant.TrustedHeader(trustedNets, tenant.WithTierHeader("X-Tenant-Tier", nil))
	if err != nil {
		t.Fatal(err)
	}
	r.RemoteAddr = "10.0.0.1:1"
	if got := checkResolve(t, res, r, resolveResult{id: "acme"}); got.Tier != tenant.DefaultTiers.MustLookup("premium") {
		t.Errorf("Tier = %q, want premium of DefaultTiers", got.Tier)
	}
}

func TestTrustedHeader(t *testing.T) {
	res, err := tenant.TrustedHeader(trustedNets, tenant.WithTierHeader("X-Tenant-Tier", tenant.DefaultTiers))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		remote   string
		header   http.Header
		want     resolveResult
		wantTier string
	}{
		{
			name:   "trusted IPv4 peer",
			remote: "10.1.2.3:5555",
			header: http.Header{"X-Tenant-Id": {"acme"}},
			want:   resolveResult{id: "acme"},
		},
		{
			name:   "trusted peer as IPv4-mapped IPv6",
			remote: "[::ffff:10.1.2.3]:5555",
			header: http.Header{"X-Tenant-Id": {"acme"}},
			want:   resolveResult{id: "acme"},
		},
		{
			name:   "trusted IPv6 peer",
			remote: "[2001:db8::7]:443",
			header: http.Header{"X-Tenant-Id": {"acme"}},
			want:   resolveResult{id: "acme"},
		},
		{
			name:   "trusted peer without port",
			remote: "10.9.9.9",
			header: http.Header{"X-Tenant-Id": {"acme"}},
			want:   resolveResult{id: "acme"},
		},
		{
			name:   "untrusted peer with the header",
			remote: "192.0.2.1:1234",
			header: http.Header{"X-Tenant-Id": {"acme"}, "X-Tenant-Tier": {"platinum"}},
			want:   resolveResult{err: tenant.ErrNoTenant},
		},
		{
			name:   "untrusted IPv4-mapped peer",
			remote: "[::ffff:192.0.2.1]:1234",
			header: http.Header{"X-Tenant-Id": {"acme"}},
			want:   resolveResult{err: tenant.ErrNoTenant},
		},
		{
			name:   "unparsable remote address",
			remote: "not-an-address",
			header: http.Header{"X-Tenant-Id": {"acme"}},
			want:   resolveResult{err: tenant.ErrNoTenant},
		},
		{
			name:   "empty remote address",
			remote: "",
			header: http.Header{"X-Tenant-Id": {"acme"}},
			want:   resolveResult{err: tenant.ErrNoTenant},
		},
		{
			name:   "trusted peer without the header",
			remote: "10.1.2.3:5555",
			header: http.Header{"X-Tenant-Tier": {"premium"}},
			want:   resolveResult{err: tenant.ErrNoTenant},
		},
		{
			name:   "header given twice",
			remote: "10.1.2.3:5555",
			header: http.Header{"X-Tenant-Id": {"acme", "globex"}},
			want:   resolveResult{err: tenant.ErrInvalidID},
		},
		{
			name:   "header given twice with the same value",
			remote: "10.1.2.3:5555",
			header: http.Header{"X-Tenant-Id": {"acme", "acme"}},
			want:   resolveResult{err: tenant.ErrInvalidID},
		},
		{
			name:   "invalid ID with newline",
			remote: "10.1.2.3:5555",
			header: http.Header{"X-Tenant-Id": {"acme\nadmin"}},
			want:   resolveResult{err: tenant.ErrInvalidID},
		},
		{
			name:   "empty ID",
			remote: "10.1.2.3:5555",
			header: http.Header{"X-Tenant-Id": {""}},
			want:   resolveResult{err: tenant.ErrInvalidID},
		},
		{
			name:     "known tier, any case",
			remote:   "10.1.2.3:5555",
			header:   http.Header{"X-Tenant-Id": {"acme"}, "X-Tenant-Tier": {"PREMIUM"}},
			want:     resolveResult{id: "acme"},
			wantTier: "premium",
		},
		{
			name:   "empty tier header leaves the tier unknown",
			remote: "10.1.2.3:5555",
			header: http.Header{"X-Tenant-Id": {"acme"}, "X-Tenant-Tier": {""}},
			want:   resolveResult{id: "acme"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/orders", nil)
			r.RemoteAddr = tt.remote
			r.Header = tt.header
			got := checkResolve(t, res, r, tt.want)
			if got.Tier.String() != tt.wantTier {
				t.Errorf("Tier = %q, want %q", got.Tier, tt.wantTier)
			}
		})
	}
}

func TestTrustedHeaderUnknownTier(t *testing.T) {
	res, err := tenant.TrustedHeader(trustedNets, tenant.WithTierHeader("X-Tenant-Tier", nil))
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "10.0.0.1:1"
	r.Header.Set("X-Tenant-ID", "acme")
	r.Header.Set("X-Tenant-Tier", "gold-secret")
	got, err := res.Resolve(r)
	if err == nil || errors.Is(err, tenant.ErrNoTenant) {
		t.Fatalf("Resolve with an unknown tier = %+v, %v; want a refusal", got, err)
	}
	if !got.IsZero() {
		t.Errorf("Resolve returned tenant %+v with its error", got)
	}
	if strings.Contains(err.Error(), "gold-secret") {
		t.Errorf("error %q repeats the header value", err)
	}
}

func TestTrustedHeaderCustomConfig(t *testing.T) {
	tiers := tenant.MustTiers("free", "pro")
	res, err := tenant.TrustedHeader([]netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		tenant.WithIDHeader("X-Org"),
		tenant.WithTierHeader("X-Plan", tiers))
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "127.0.0.1:4000"
	r.Header.Set("X-Tenant-ID", "ignored")
	checkResolve(t, res, r, resolveResult{err: tenant.ErrNoTenant})

	r.Header.Set("X-Org", "acme")
	r.Header.Set("X-Plan", "pro")
	got := checkResolve(t, res, r, resolveResult{id: "acme"})
	if got.Tier != tiers.MustLookup("pro") {
		t.Errorf("Tier = %q rank %d, want pro from the custom set", got.Tier, got.Tier.Rank())
	}

	// A default tier name is not in the custom set.
	r.Header.Set("X-Plan", "premium")
	if _, err := res.Resolve(r); err == nil {
		t.Error("Resolve accepted a tier from another set")
	}
}

func TestSubdomainConfig(t *testing.T) {
	for _, base := range []string{"", ".", "..", "api.example.com:8443", "https://api.example.com", "api.example.com/t", "api example.com"} {
		res, err := tenant.Subdomain(base)
		if err == nil || res != nil {
			t.Errorf("Subdomain(%q) = %v, %v; want an error", base, res, err)
			continue
		}
		if !strings.HasPrefix(err.Error(), "tenant: ") {
			t.Errorf("Subdomain(%q) error %q lacks the package prefix", base, err)
		}
	}
}

func TestSubdomain(t *testing.T) {
	tests := []struct {
		base string
		host string
		want resolveResult
	}{
		{"api.example.com", "acme.api.example.com", resolveResult{id: "acme"}},
		{"api.example.com", "acme.api.example.com:8443", resolveResult{id: "acme"}},
		{"api.example.com", "ACME.Api.Example.COM", resolveResult{id: "acme"}},
		{"api.example.com", "acme.api.example.com.", resolveResult{id: "acme"}},
		{"API.Example.com.", "acme.api.example.com", resolveResult{id: "acme"}},
		{".api.example.com", "acme.api.example.com", resolveResult{id: "acme"}},
		{"api.example.com", "api.example.com", resolveResult{err: tenant.ErrNoTenant}},
		{"api.example.com", "api.example.com:443", resolveResult{err: tenant.ErrNoTenant}},
		{"api.example.com", ".api.example.com", resolveResult{err: tenant.ErrNoTenant}},
		{"api.example.com", "eu.acme.api.example.com", resolveResult{err: tenant.ErrNoTenant}},
		{"api.example.com", "acme.example.com", resolveResult{err: tenant.ErrNoTenant}},
		{"api.example.com", "acme.evilapi.example.com", resolveResult{err: tenant.ErrNoTenant}},
		{"api.example.com", "acmeapi.example.com", resolveResult{err: tenant.ErrNoTenant}},
		{"api.example.com", "api.example.com.evil.net", resolveResult{err: tenant.ErrNoTenant}},
		{"api.example.com", "10.0.0.1:80", resolveResult{err: tenant.ErrNoTenant}},
		{"api.example.com", "[::1]:80", resolveResult{err: tenant.ErrNoTenant}},
		{"api.example.com", "", resolveResult{err: tenant.ErrNoTenant}},
		{"api.example.com", "ac\u202eme.api.example.com", resolveResult{err: tenant.ErrInvalidID}},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			res, err := tenant.Subdomain(tt.base)
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest(http.MethodGet, "/orders", nil)
			r.Host = tt.host
			checkResolve(t, res, r, tt.want)
			if r.Host != tt.host {
				t.Errorf("Resolve changed r.Host to %q", r.Host)
			}
		})
	}
}

func TestPathPrefixConfig(t *testing.T) {
	for _, prefix := range []string{"", "/", "t/", "/t", "t"} {
		res, err := tenant.PathPrefix(prefix)
		if prefix == "/" {
			// "/" starts and ends with a slash: the first segment is the
			// tenant.
			if err != nil {
				t.Errorf("PathPrefix(/) error = %v", err)
			}
			continue
		}
		if err == nil || res != nil {
			t.Errorf("PathPrefix(%q) = %v, %v; want an error", prefix, res, err)
			continue
		}
		if !strings.HasPrefix(err.Error(), "tenant: ") || !strings.Contains(err.Error(), "/t/") {
			t.Errorf("PathPrefix(%q) error %q lacks the prefix or an example", prefix, err)
		}
	}
}

func TestPathPrefix(t *testing.T) {
	tests := []struct {
		prefix string
		target string
		want   resolveResult
	}{
		{"/t/", "/t/acme/orders", resolveResult{id: "acme"}},
		{"/t/", "/t/acme", resolveResult{id: "acme"}},
		{"/t/", "/t/acme/", resolveResult{id: "acme"}},
		{"/t/", "/t/acme/orders?tenant=globex", resolveResult{id: "acme"}},
		{"/t/", "/t/m%C3%BCller/orders", resolveResult{id: "müller"}},
		{"/api/v1/tenants/", "/api/v1/tenants/acme/orders", resolveResult{id: "acme"}},
		{"/", "/acme/orders", resolveResult{id: "acme"}},
		{"/t/", "/t/", resolveResult{err: tenant.ErrNoTenant}},
		{"/t/", "/t//orders", resolveResult{err: tenant.ErrNoTenant}},
		{"/t/", "/t", resolveResult{err: tenant.ErrNoTenant}},
		{"/t/", "/orders", resolveResult{err: tenant.ErrNoTenant}},
		{"/t/", "/tenants/acme", resolveResult{err: tenant.ErrNoTenant}},
		{"/t/", "/x/t/acme", resolveResult{err: tenant.ErrNoTenant}},
		{"/t/", "/t/acme%0Aadmin/orders", resolveResult{err: tenant.ErrInvalidID}},
		{"/t/", "/t/%20acme/orders", resolveResult{err: tenant.ErrInvalidID}},
	}
	for _, tt := range tests {
		t.Run(tt.prefix+" "+tt.target, func(t *testing.T) {
			res, err := tenant.PathPrefix(tt.prefix)
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest(http.MethodGet, tt.target, nil)
			before := *r.URL
			checkResolve(t, res, r, tt.want)
			if *r.URL != before {
				t.Errorf("Resolve changed r.URL from %+v to %+v", before, *r.URL)
			}
		})
	}
}

// TestPathPrefixAgreesWithServeMux checks the promise that route patterns
// such as "/t/{tenant}/orders" keep working: the tenant PathPrefix resolves
// must be the segment the router hands the handler as {tenant}, or the
// request must be refused. Otherwise Chain(Verified(), PathPrefix) lets a
// token for "acme" through on "/t/acme%2Fother/orders", whose {tenant} is
// "acme/other".
func TestPathPrefixAgreesWithServeMux(t *testing.T) {
	res, err := tenant.PathPrefix("/t/")
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{
		"/t/acme/orders",
		"/t/m%C3%BCller/orders",
		"/t/acme%2Fother/orders",
		"/t/acme%2F..%2Fglobex/orders",
	} {
		t.Run(target, func(t *testing.T) {
			var segment string
			mux := http.NewServeMux()
			mux.HandleFunc("/t/{tenant}/orders", func(w http.ResponseWriter, r *http.Request) {
				segment = r.PathValue("tenant")
			})
			r := httptest.NewRequest(http.MethodGet, target, nil)
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, r)
			if rec.Code != http.StatusOK {
				t.Fatalf("mux answered %d, want the route to match", rec.Code)
			}

			got, err := res.Resolve(r)
			switch {
			case errors.Is(err, tenant.ErrInvalidID):
				// Refusing the request is fine.
			case err != nil:
				t.Errorf("Resolve(%q) error = %v, want a tenant or ErrInvalidID", target, err)
			case got.ID != segment:
				t.Errorf("Resolve(%q) = tenant %q, but the route's {tenant} is %q", target, got.ID, segment)
			}
		})
	}
}

func staticResolver(id string, err error) tenant.Resolver {
	return tenant.ResolverFunc(func(*http.Request) (tenant.Tenant, error) {
		if err != nil {
			return tenant.Tenant{}, err
		}
		return tenant.Tenant{ID: id, Subject: "from-" + id}, nil
	})
}

func TestResolverFunc(t *testing.T) {
	var seen *http.Request
	res := tenant.ResolverFunc(func(r *http.Request) (tenant.Tenant, error) {
		seen = r
		return tenant.Tenant{ID: "acme"}, nil
	})
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	checkResolve(t, res, r, resolveResult{id: "acme"})
	if seen != r {
		t.Error("ResolverFunc did not pass the request through")
	}
}

func TestChain(t *testing.T) {
	none := staticResolver("", tenant.ErrNoTenant)
	invalid := staticResolver("", &tenant.IDError{Reason: "test"})
	errBackend := errors.New("backend down")
	broken := staticResolver("", errBackend)
	tests := []struct {
		name        string
		rs          []tenant.Resolver
		want        resolveResult
		wantSubject string
	}{
		{"first wins", []tenant.Resolver{none, staticResolver("acme", nil), none}, resolveResult{id: "acme"}, "from-acme"},
		{"first of agreeing sources kept", []tenant.Resolver{staticResolver("acme", nil), tenant.ResolverFunc(func(*http.Request) (tenant.Tenant, error) {
			return tenant.Tenant{ID: "acme", Subject: "second"}, nil
		})}, resolveResult{id: "acme"}, "from-acme"},
		{"disagreement", []tenant.Resolver{staticResolver("acme", nil), none, staticResolver("globex", nil)}, resolveResult{err: tenant.ErrMismatch}, ""},
		{"invalid first", []tenant.Resolver{invalid, staticResolver("acme", nil)}, resolveResult{err: tenant.ErrInvalidID}, ""},
		{"invalid after a tenant", []tenant.Resolver{staticResolver("acme", nil), invalid}, resolveResult{err: tenant.ErrInvalidID}, ""},
		{"other error passed on", []tenant.Resolver{staticResolver("acme", nil), broken}, resolveResult{err: errBackend}, ""},
		{"all absent", []tenant.Resolver{none, none}, resolveResult{err: tenant.ErrNoTenant}, ""},
		{"empty chain", nil, resolveResult{err: tenant.ErrNoTenant}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			got := checkResolve(t, tenant.Chain(tt.rs...), r, tt.want)
			if got.Subject != tt.wantSubject {
				t.Errorf("Subject = %q, want %q (the first source's tenant)", got.Subject, tt.wantSubject)
			}
		})
	}
}

func TestChainRealSources(t *testing.T) {
	sub, err := tenant.Subdomain("api.example.com")
	if err != nil {
		t.Fatal(err)
	}
	path, err := tenant.PathPrefix("/t/")
	if err != nil {
		t.Fatal(err)
	}
	chain := tenant.Chain(tenant.Verified(), sub, path)

	withToken := func(r *http.Request, id string) *http.Request {
		return r.WithContext(tenant.NewContext(context.Background(), tenant.Tenant{ID: id, Roles: []string{"admin"}}))
	}
	tests := []struct {
		name string
		r    *http.Request
		want resolveResult
	}{
		{"token only", withToken(httptest.NewRequest(http.MethodGet, "http://api.example.com/orders", nil), "acme"), resolveResult{id: "acme"}},
		{"token and matching subdomain", withToken(httptest.NewRequest(http.MethodGet, "http://acme.api.example.com/orders", nil), "acme"), resolveResult{id: "acme"}},
		{"token for another tenant's subdomain", withToken(httptest.NewRequest(http.MethodGet, "http://globex.api.example.com/orders", nil), "acme"), resolveResult{err: tenant.ErrMismatch}},
		{"token for another tenant's path", withToken(httptest.NewRequest(http.MethodGet, "http://api.example.com/t/globex/orders", nil), "acme"), resolveResult{err: tenant.ErrMismatch}},
		{"subdomain and path disagree", httptest.NewRequest(http.MethodGet, "http://acme.api.example.com/t/globex/orders", nil), resolveResult{err: tenant.ErrMismatch}},
		{"subdomain and path agree", httptest.NewRequest(http.MethodGet, "http://acme.api.example.com/t/acme/orders", nil), resolveResult{id: "acme"}},
		{"invalid path segment", withToken(httptest.NewRequest(http.MethodGet, "http://api.example.com/t/acme%0A/orders", nil), "acme"), resolveResult{err: tenant.ErrInvalidID}},
		{"nothing", httptest.NewRequest(http.MethodGet, "http://api.example.com/orders", nil), resolveResult{err: tenant.ErrNoTenant}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := checkResolve(t, chain, tt.r, tt.want)
			if tt.want.id != "" && tt.name != "subdomain and path agree" && !got.HasRole("admin") {
				t.Errorf("Chain returned %+v, want the verified tenant with its roles", got)
			}
		})
	}
}
