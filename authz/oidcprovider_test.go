package authz_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/tenancykit/tenancy/authz"
	"github.com/tenancykit/tenancy/internal/testservers"
	"github.com/tenancykit/tenancy/tenant"
)

// These tests run a real OpenID provider (oidc-provider, started by
// testservers) with two clients, one per tenant, whose access tokens carry
// the tenant's claims, and verify its tokens as a service would: keys found
// through discovery, claims mapped by a ClaimMapping.

// oidcMapping maps the claims the provider's clients carry.
var oidcMapping = authz.ClaimMapping{Tenant: "tenant_id", Tier: "tier", Roles: "roles"}

func startOIDCProvider(t *testing.T, opts ...testservers.OIDCOption) *testservers.OIDCServer {
	t.Helper()
	return testservers.OIDC(t, append([]testservers.OIDCOption{
		testservers.WithOIDCClient("acme-orders", "acme-secret", map[string]any{
			"tenant_id": "acme", "tier": "premium", "roles": []string{"admin", "billing"}, "org_id": 1001,
		}),
		testservers.WithOIDCClient("globex-reports", "globex-secret", map[string]any{
			"tenant_id": "globex", "tier": "basic", "roles": []string{"viewer"},
		}),
	}, opts...)...)
}

// fetchCounter is an http.RoundTripper that counts the requests for each
// path, so a test sees how often the verifier fetched the JWK Set. It
// keeps no connection open, for goleak.
type fetchCounter struct {
	base http.RoundTripper
	jwks atomic.Int64
}

func (f *fetchCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Path == "/jwks" { // oidc-provider's jwks_uri
		f.jwks.Add(1)
	}
	return f.base.RoundTrip(r)
}

// oidcVerifier builds a verifier for the provider through its discovery
// document, closed at t's cleanup.
func oidcVerifier(t *testing.T, o *testservers.OIDCServer, opts ...authz.Option) (*authz.Verifier, *fetchCounter) {
	t.Helper()
	fc := &fetchCounter{base: &http.Transport{DisableKeepAlives: true}}
	v, err := authz.NewVerifier(t.Context(), o.Issuer(), append([]authz.Option{
		authz.WithDiscovery(),
		authz.WithAudience(o.Audience()),
		authz.WithClaimMapping(oidcMapping),
		authz.WithAccessTokenType(), // oidc-provider sets "typ": "at+jwt"
		authz.WithHTTPClient(&http.Client{Transport: fc, Timeout: 10 * time.Second}),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v, fc
}

func TestOIDCProviderTenants(t *testing.T) {
	o := startOIDCProvider(t)
	v, _ := oidcVerifier(t, o)
	tiers := tenant.DefaultTiers

	for _, tc := range []struct {
		client string
		scopes []string
		want   tenant.Tenant
	}{
		{"acme-orders", []string{"orders:read", "orders:write"}, tenant.Tenant{
			ID: "acme", Tier: tiers.MustLookup("premium"), Subject: "acme-orders",
			Roles: []string{"admin", "billing"}, Scopes: []string{"orders:read", "orders:write"},
			Source: tenant.SourceToken,
		}},
		{"globex-reports", nil, tenant.Tenant{
			ID: "globex", Tier: tiers.MustLookup("basic"), Subject: "globex-reports",
			Roles: []string{"viewer"}, Source: tenant.SourceToken,
		}},
	} {
		t.Run(tc.client, func(t *testing.T) {
			got, err := v.Verify(t.Context(), o.Token(t, tc.client, tc.scopes...))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, cmpopts.IgnoreUnexported(tenant.Tenant{}), cmpopts.EquateComparable(tenant.Tier{})); diff != "" {
				t.Errorf("tenant (-want +got):\n%s", diff)
			}
			if iss, _ := got.Claims().String("iss"); iss != o.Issuer() {
				t.Errorf("iss claim = %q, want %q", iss, o.Issuer())
			}
		})
	}

	// Claims the mapping does not name travel with the tenant.
	acme, err := v.Verify(t.Context(), o.Token(t, "acme-orders"))
	if err != nil {
		t.Fatal(err)
	}
	if org, _ := acme.Claims().Get("org_id"); org != float64(1001) {
		t.Errorf("org_id claim = %v (%T), want 1001", org, org)
	}

	// Through the middleware, and a role check after it.
	h := newHarnessFor(t, func(next http.Handler) http.Handler {
		return authz.Middleware(v)(authz.RequireRole("admin")(next))
	})
	if res := h.bearer(t, o.Token(t, "acme-orders")); res.status != http.StatusOK || string(res.body) != "acme premium" {
		t.Errorf("acme: status %d, body %q; want 200 \"acme premium\"", res.status, res.body)
	}
	tok := o.Token(t, "globex-reports")
	checkRefused(t, h.bearer(t, tok), refusal{http.StatusForbidden, "role", ""}, tok)
}

// TestOIDCProviderES256 verifies tokens the provider signs with its P-256
// key, with the default algorithms.
func TestOIDCProviderES256(t *testing.T) {
	o := startOIDCProvider(t, testservers.WithOIDCAlgorithm("ES256"))
	v, _ := oidcVerifier(t, o)
	got, err := v.Verify(t.Context(), o.Token(t, "globex-reports"))
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "globex" {
		t.Errorf("tenant = %q, want globex", got.ID)
	}
}

func TestOIDCProviderRefusals(t *testing.T) {
	o := startOIDCProvider(t)
	v, _ := oidcVerifier(t, o)
	h := newHarness(t, v)

	// A token the provider issued for another API.
	other, err := o.RequestToken("acme-orders", "https://other.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(t.Context(), other); !errors.Is(err, authz.ErrAudience) {
		t.Errorf("Verify of a token for another audience: %v, want ErrAudience", err)
	}
	checkRefused(t, h.bearer(t, other), refusal{http.StatusUnauthorized, "audience", "invalid_token"}, other)

	// A token of the provider with one character of its signature changed.
	// The one changed is well inside: the last character of a base64url
	// segment may carry only padding bits.
	header, payload, sig := segments(t, o.Token(t, "acme-orders"))
	flipped := []byte(sig)
	i := len(flipped) / 2
	if flipped[i] == 'A' {
		flipped[i] = 'B'
	} else {
		flipped[i] = 'A'
	}
	forged := header + "." + payload + "." + string(flipped)
	if _, err := v.Verify(t.Context(), forged); !errors.Is(err, authz.ErrSignature) {
		t.Errorf("Verify of a token with a changed signature: %v, want ErrSignature", err)
	}
	checkRefused(t, h.bearer(t, forged), refusal{http.StatusUnauthorized, "signature", "invalid_token"}, forged)
}

// TestOIDCProviderRotation: the verifier keeps verifying while the
// provider is down; after the provider comes back and rotates its keys, a
// token with the new key ID costs one JWK Set fetch, tokens signed with
// the replaced key (still published) keep verifying, and once a second
// rotation drops that key and the verifier has learnt of it, they are
// refused, cached or not.
func TestOIDCProviderRotation(t *testing.T) {
	o := startOIDCProvider(t)
	clk := &skewedClock{}
	v, fc := oidcVerifier(t, o, authz.WithClock(clk.Now))
	verify := func(name, tok string) {
		t.Helper()
		if _, err := v.Verify(t.Context(), tok); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}

	cached := o.Token(t, "acme-orders")
	verify("first token", cached)
	unseen := o.Token(t, "globex-reports") // first verified while the provider is down

	o.Stop()
	verify("a cached token, provider down", cached)
	verify("a new token, provider down", unseen)

	if err := o.Start(); err != nil {
		t.Fatal(err)
	}
	newKID, err := o.RotateKeys()
	if err != nil {
		t.Fatal(err)
	}
	rotated := o.Token(t, "acme-orders")
	if kidOf(t, rotated) != newKID || kidOf(t, rotated) == kidOf(t, cached) {
		t.Fatalf("kid after rotation = %q, want the new %q (before: %q)", kidOf(t, rotated), newKID, kidOf(t, cached))
	}
	before := fc.jwks.Load()
	verify("a token with the new key", rotated)
	verify("a token with the replaced key", cached)
	verify("another token with the new key", o.Token(t, "globex-reports"))
	if got := fc.jwks.Load() - before; got != 1 {
		t.Errorf("the rotation cost %d JWK Set fetches, want 1", got)
	}

	// A second rotation drops the first key. The verifier looks at the JWK
	// Set again for the newest key once the cooldown of its last look has
	// passed; the clock moves instead of the test sleeping.
	if _, err := o.RotateKeys(); err != nil {
		t.Fatal(err)
	}
	clk.Skip(authz.DefaultRefreshCooldown + time.Second)
	before = fc.jwks.Load()
	verify("a token with the newest key", o.Token(t, "acme-orders"))
	if got := fc.jwks.Load() - before; got != 1 {
		t.Errorf("the second rotation cost %d JWK Set fetches, want 1", got)
	}
	if _, err := v.Verify(t.Context(), cached); !errors.Is(err, authz.ErrUnknownKey) {
		t.Errorf("Verify of a cached token whose key the provider dropped: %v, want ErrUnknownKey", err)
	}
}

// skewedClock is the real time moved forward by Skip: the provider's
// tokens carry real times, and a test jumps over a cooldown with it
// instead of sleeping.
type skewedClock struct{ skew atomic.Int64 }

func (c *skewedClock) Now() time.Time { return time.Now().Add(time.Duration(c.skew.Load())) }

func (c *skewedClock) Skip(d time.Duration) { c.skew.Add(int64(d)) }

// kidOf returns the "kid" header of a token.
func kidOf(t *testing.T, token string) string {
	t.Helper()
	header, _, _ := segments(t, token)
	data, err := base64.RawURLEncoding.DecodeString(header)
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		KID string `json:"kid"`
	}
	if err := json.Unmarshal(data, &h); err != nil {
		t.Fatal(err)
	}
	return h.KID
}
