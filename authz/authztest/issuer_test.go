package authztest_test

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.uber.org/goleak"

	"github.com/tenancykit/tenancy/authz"
	"github.com/tenancykit/tenancy/authz/authztest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var epoch = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// claimsOf verifies token with the issuer's current public key, at the
// time now, and returns its header and claims.
func claimsOf(t *testing.T, iss *authztest.Issuer, token string, now time.Time) (map[string]any, jwt.MapClaims) {
	t.Helper()
	claims := jwt.MapClaims{}
	tok, err := jwt.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return iss.PublicKey(), nil },
		jwt.WithTimeFunc(func() time.Time { return now }))
	if err != nil {
		t.Fatalf("parse minted token: %v", err)
	}
	return tok.Header, claims
}

func TestMintRoundTrip(t *testing.T) {
	now := func() time.Time { return epoch }
	iss := authztest.Start(t, authztest.WithClock(now), authztest.WithLifetime(10*time.Minute))
	tok := iss.MustMint("acme", "premium",
		authztest.WithSubject("user-7"),
		authztest.WithRoles("admin", "ops"),
		authztest.WithScopes("orders:read", "orders:write"),
		authztest.WithClaim("custom:seats", 5),
		authztest.WithHeader("typ", "at+jwt"))

	header, claims := claimsOf(t, iss, tok, epoch)
	wantHeader := map[string]any{"alg": "RS256", "kid": iss.KeyID(), "typ": "at+jwt"}
	if diff := cmp.Diff(wantHeader, header); diff != "" {
		t.Errorf("header (-want +got):\n%s", diff)
	}
	wantClaims := jwt.MapClaims{
		"iss":               iss.URL(),
		"aud":               authztest.DefaultAudience,
		"sub":               "user-7",
		"iat":               float64(epoch.Unix()),
		"exp":               float64(epoch.Add(10 * time.Minute).Unix()),
		"custom:tenantId":   "acme",
		"custom:tenantTier": "premium",
		"cognito:groups":    []any{"admin", "ops"},
		"scope":             "orders:read orders:write",
		"custom:seats":      float64(5),
	}
	if diff := cmp.Diff(wantClaims, claims); diff != "" {
		t.Errorf("claims (-want +got):\n%s", diff)
	}

	// The issuer's own verifier accepts what it mints.
	v := iss.Verifier(t, authz.WithClock(now))
	got, err := v.Verify(t.Context(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "acme" || got.Tier.String() != "premium" || got.Subject != "user-7" ||
		!slices.Equal(got.Roles, []string{"admin", "ops"}) || !slices.Equal(got.Scopes, []string{"orders:read", "orders:write"}) {
		t.Errorf("Verify = %+v", got)
	}
}

func TestMintOptions(t *testing.T) {
	iss := authztest.Start(t, authztest.WithClock(func() time.Time { return epoch }), authztest.WithAudience("orders-api"))
	for _, tt := range []struct {
		name  string
		tier  string
		opts  []authztest.TokenOption
		check func(t *testing.T, header map[string]any, c map[string]any)
	}{
		{"audience", "basic", nil, func(t *testing.T, _, c map[string]any) {
			if c["aud"] != "orders-api" || iss.Audience() != "orders-api" {
				t.Errorf("aud = %v, Audience() = %q", c["aud"], iss.Audience())
			}
		}},
		{"no tier", "", nil, func(t *testing.T, _, c map[string]any) {
			if _, ok := c["custom:tenantTier"]; ok {
				t.Errorf("tier claim present: %v", c)
			}
		}},
		{"expiry", "basic", []authztest.TokenOption{authztest.WithExpiry(-time.Minute)}, func(t *testing.T, _, c map[string]any) {
			if c["exp"] != float64(epoch.Add(-time.Minute).Unix()) {
				t.Errorf("exp = %v", c["exp"])
			}
		}},
		{"claim removed", "basic", []authztest.TokenOption{authztest.WithClaim("sub", nil)}, func(t *testing.T, _, c map[string]any) {
			if _, ok := c["sub"]; ok {
				t.Errorf("sub present: %v", c)
			}
		}},
		{"key ID", "basic", []authztest.TokenOption{authztest.WithKeyID("other")}, func(t *testing.T, h, _ map[string]any) {
			if h["kid"] != "other" {
				t.Errorf("kid = %v", h["kid"])
			}
		}},
		{"dotted claim with a scheme stays flat", "basic", []authztest.TokenOption{authztest.WithClaim("https://example.com/a.b", 1)}, func(t *testing.T, _, c map[string]any) {
			if c["https://example.com/a.b"] != float64(1) {
				t.Errorf("claims = %v", c)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := iss.Mint("acme", tt.tier, tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			p := jwt.NewParser()
			parsed, _, err := p.ParseUnverified(tok, jwt.MapClaims{})
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, parsed.Header, parsed.Claims.(jwt.MapClaims))
		})
	}
}

// jwks fetches the issuer's JWK Set over HTTP and returns its key IDs.
func jwks(t *testing.T, iss *authztest.Issuer) []string {
	t.Helper()
	resp, err := http.Get(iss.JWKSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("JWK Set Content-Type = %q", ct)
	}
	var set struct {
		Keys []struct {
			KID string `json:"kid"`
			Alg string `json:"alg"`
			Use string `json:"use"`
			D   string `json:"d"`
		} `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range set.Keys {
		if k.D != "" {
			t.Errorf("key %q publishes its private part", k.KID)
		}
		if k.Use != "sig" || k.Alg == "" {
			t.Errorf("key %q: use %q alg %q", k.KID, k.Use, k.Alg)
		}
		kids = append(kids, k.KID)
	}
	return kids
}

// TestZeroOptionsMeanDefault gives every issuer option its zero value:
// the issuer mints what it mints without them.
func TestZeroOptionsMeanDefault(t *testing.T) {
	iss := authztest.Start(t, nil, authztest.WithAudience(""), authztest.WithAlgorithm(""),
		authztest.WithClaimMapping(authz.ClaimMapping{}), authztest.WithClock(nil), authztest.WithAddr(""),
		authztest.WithLifetime(0))
	before := time.Now().Truncate(time.Second)
	header, claims := claimsOf(t, iss, iss.MustMint("acme", "premium"), time.Now())
	if header["alg"] != "RS256" {
		t.Errorf("alg %v, want RS256", header["alg"])
	}
	if claims["aud"] != authztest.DefaultAudience || claims[authz.Cognito().Tenant] != "acme" || claims[authz.Cognito().Tier] != "premium" {
		t.Errorf("claims %v, want the default audience and Cognito's tenant and tier claims", claims)
	}
	iat, _ := claims.GetIssuedAt()
	exp, _ := claims.GetExpirationTime()
	if iat == nil || exp == nil || iat.Before(before) || exp.Sub(iat.Time) != time.Hour {
		t.Errorf("iat %v, exp %v: want now and an hour later", iat, exp)
	}
	if !strings.HasPrefix(iss.URL(), "http://127.0.0.1:") {
		t.Errorf("URL %s, want a loopback port", iss.URL())
	}
}

func TestRotate(t *testing.T) {
	sorted := cmpopts.SortSlices(func(a, b string) bool { return a < b })
	iss := authztest.Start(t)
	first := iss.KeyID()
	if diff := cmp.Diff([]string{first}, jwks(t, iss)); diff != "" {
		t.Fatalf("initial JWK Set (-want +got):\n%s", diff)
	}
	old := iss.MustMint("acme", "basic")

	// Keep: both keys published, the new one signs.
	if err := iss.Rotate(false); err != nil {
		t.Fatal(err)
	}
	second := iss.KeyID()
	if second == first {
		t.Fatal("Rotate kept the signing key")
	}
	if diff := cmp.Diff([]string{first, second}, jwks(t, iss), sorted); diff != "" {
		t.Errorf("JWK Set after Rotate(false) (-want +got):\n%s", diff)
	}
	if kid := headerKID(t, iss.MustMint("acme", "basic")); kid != second {
		t.Errorf("new tokens are signed by %q, want %q", kid, second)
	}

	// Retire: only the newest key is published.
	if err := iss.Rotate(true); err != nil {
		t.Fatal(err)
	}
	third := iss.KeyID()
	if diff := cmp.Diff([]string{third}, jwks(t, iss)); diff != "" {
		t.Errorf("JWK Set after Rotate(true) (-want +got):\n%s", diff)
	}

	// A fresh verifier no longer accepts tokens of a retired key.
	v := iss.Verifier(t)
	if _, err := v.Verify(t.Context(), old); !errors.Is(err, authz.ErrUnknownKey) {
		t.Errorf("Verify of a token signed by a retired key = %v, want ErrUnknownKey", err)
	}
	if _, err := v.Verify(t.Context(), iss.MustMint("acme", "basic")); err != nil {
		t.Errorf("Verify of a token signed by the new key: %v", err)
	}
}

func headerKID(t *testing.T, token string) string {
	t.Helper()
	tok, _, err := jwt.NewParser().ParseUnverified(token, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := tok.Header["kid"].(string)
	return kid
}

func TestJWKSFetches(t *testing.T) {
	iss := authztest.Start(t)
	if n := iss.JWKSFetches(); n != 0 {
		t.Fatalf("JWKSFetches() = %d before any fetch", n)
	}
	jwks(t, iss)
	jwks(t, iss)
	if n := iss.JWKSFetches(); n != 2 {
		t.Errorf("JWKSFetches() = %d after two fetches, want 2", n)
	}
	// The discovery document is not counted; a verifier's first fetch is.
	resp, err := http.Get(iss.URL() + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	if doc["issuer"] != iss.URL() || doc["jwks_uri"] != iss.JWKSURL() {
		t.Errorf("discovery document = %v", doc)
	}
	iss.Verifier(t)
	if n := iss.JWKSFetches(); n != 3 {
		t.Errorf("JWKSFetches() = %d after a verifier started, want 3", n)
	}
}

func TestWithAddr(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	iss := authztest.Start(t, authztest.WithAddr(addr))
	if want := "http://" + addr; iss.URL() != want {
		t.Errorf("URL() = %q, want %q", iss.URL(), want)
	}
	resp, err := http.Get("http://" + addr + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET JWK Set on %s: %d", addr, resp.StatusCode)
	}

	// The address is taken now: a second issuer cannot have it.
	if other, err := authztest.NewIssuer(authztest.WithAddr(addr)); err == nil {
		other.Close()
		t.Error("NewIssuer on an address in use succeeded")
	} else if !strings.Contains(err.Error(), "authztest: listen on "+addr) {
		t.Errorf("error = %q, want it to name the address", err)
	}
}

func TestNestedClaimMapping(t *testing.T) {
	mapping := authz.ClaimMapping{Tenant: "org.id", Tier: "org.plan", Roles: "realm_access.roles"}
	iss := authztest.Start(t, authztest.WithClaimMapping(mapping))
	tok := iss.MustMint("acme", "platinum", authztest.WithRoles("admin"), authztest.WithClaim("resource_access.api.roles", []string{"read"}))
	_, claims := claimsOf(t, iss, tok, time.Now())
	want := map[string]any{
		"org":             map[string]any{"id": "acme", "plan": "platinum"},
		"realm_access":    map[string]any{"roles": []any{"admin"}},
		"resource_access": map[string]any{"api": map[string]any{"roles": []any{"read"}}},
	}
	for name, w := range want {
		if diff := cmp.Diff(w, claims[name]); diff != "" {
			t.Errorf("claim %q (-want +got):\n%s", name, diff)
		}
	}
	for _, flat := range []string{"org.id", "org.plan", "realm_access.roles"} {
		if _, ok := claims[flat]; ok {
			t.Errorf("claim %q written flat", flat)
		}
	}

	v := iss.Verifier(t)
	got, err := v.Verify(t.Context(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "acme" || got.Tier.String() != "platinum" || !slices.Equal(got.Roles, []string{"admin"}) {
		t.Errorf("Verify = %+v", got)
	}
}

func TestES256(t *testing.T) {
	iss := authztest.Start(t, authztest.WithAlgorithm("ES256"))
	tok := iss.MustMint("acme", "basic")
	header, _ := claimsOf(t, iss, tok, time.Now())
	if header["alg"] != "ES256" {
		t.Errorf("alg = %v, want ES256", header["alg"])
	}
	if _, err := authztest.NewIssuer(authztest.WithAlgorithm("HS256")); err == nil || !strings.Contains(err.Error(), "WithAlgorithm") {
		t.Errorf("NewIssuer with HS256: %v, want an error naming WithAlgorithm", err)
	}
}

func TestMustMintPanics(t *testing.T) {
	// Mint fails when a claim cannot be encoded; MustMint panics with it.
	iss := authztest.Start(t)
	defer func() {
		if recover() == nil {
			t.Error("MustMint did not panic")
		}
	}()
	iss.MustMint("acme", "basic", authztest.WithClaim("bad", func() {}))
}
