package testservers_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tenancykit/tenancy/internal/testservers"
)

// decodeToken returns a JWT's header and claims, unverified: the authz
// tests verify the provider's tokens.
func decodeToken(t *testing.T, token string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d segments, want 3", len(parts))
	}
	decode := func(seg string) map[string]any {
		data, err := base64.RawURLEncoding.DecodeString(seg)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	return decode(parts[0]), decode(parts[1])
}

// noKeepAlives leaves no idle connection behind for goleak to find.
var noKeepAlives = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// jwksKIDs returns the key IDs of the provider's JWK Set, with a check that
// it publishes no private key material.
func jwksKIDs(t *testing.T, o *testservers.OIDCServer) []string {
	t.Helper()
	resp, err := noKeepAlives.Get(o.Issuer() + "/jwks")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range set.Keys {
		if _, private := k["d"]; private {
			t.Errorf("the JWK Set publishes the private part of key %v", k["kid"])
		}
		kids = append(kids, k["kid"].(string))
	}
	slices.Sort(kids)
	return kids
}

func TestOIDC(t *testing.T) {
	o := testservers.OIDC(t,
		testservers.WithOIDCClient("acme-svc", "acme-secret", map[string]any{
			"tenant_id": "acme", "tier": "premium", "roles": []string{"admin", "billing"}, "org_id": 42,
		}),
		testservers.WithOIDCClient("globex-svc", "globex-secret", map[string]any{"tenant_id": "globex"}),
	)
	if !strings.HasPrefix(o.Issuer(), "http://127.0.0.1:") || o.Audience() != testservers.DefaultOIDCAudience {
		t.Fatalf("Issuer, Audience = %q, %q", o.Issuer(), o.Audience())
	}

	header, claims := decodeToken(t, o.Token(t, "acme-svc", "orders:read", "orders:write"))
	if header["alg"] != "RS256" || header["typ"] != "at+jwt" || header["kid"] == nil {
		t.Errorf("header = %v; want alg RS256, typ at+jwt and a kid", header)
	}
	for _, drop := range []string{"iat", "exp", "jti"} {
		if _, ok := claims[drop]; !ok {
			t.Errorf("claims lack %q", drop)
		}
		delete(claims, drop)
	}
	want := map[string]any{
		"iss": o.Issuer(), "aud": o.Audience(), "sub": "acme-svc", "client_id": "acme-svc",
		"scope":     "orders:read orders:write",
		"tenant_id": "acme", "tier": "premium", "roles": []any{"admin", "billing"}, "org_id": float64(42),
	}
	if diff := cmp.Diff(want, claims); diff != "" {
		t.Errorf("acme-svc claims (-want +got):\n%s", diff)
	}

	// Another client, another resource.
	tok, err := o.RequestToken("globex-svc", "https://other.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if _, claims := decodeToken(t, tok); claims["aud"] != "https://other.example.com" || claims["tenant_id"] != "globex" || claims["scope"] != nil {
		t.Errorf("globex-svc claims = %v; want aud https://other.example.com, tenant_id globex, no scope", claims)
	}

	// client_secret_basic works too.
	req, err := http.NewRequest(http.MethodPost, o.Issuer()+"/token", strings.NewReader("grant_type=client_credentials"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("globex-svc", "globex-secret")
	resp, err := noKeepAlives.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("token request with client_secret_basic: HTTP %d, want 200", resp.StatusCode)
	}

	// Refusals come back as OIDCErrors.
	for _, tc := range []struct{ client, resource, code string }{
		{"nobody", "", "invalid_client"},
		{"acme-svc", "not a uri", "invalid_target"},
	} {
		_, err := o.RequestToken(tc.client, tc.resource)
		var oe *testservers.OIDCError
		if !errors.As(err, &oe) || oe.Code != tc.code {
			t.Errorf("RequestToken(%q, %q) error = %v; want %s", tc.client, tc.resource, err, tc.code)
		}
	}

	// A restart keeps the keys; a rotation replaces the signing key and
	// keeps the one it replaced published.
	kids := jwksKIDs(t, o)
	if len(kids) != 2 {
		t.Fatalf("JWK Set key IDs = %v; want one RSA and one EC key", kids)
	}
	oldKID := header["kid"]
	if err := o.Restart(); err != nil {
		t.Fatal(err)
	}
	if got := jwksKIDs(t, o); !slices.Equal(got, kids) {
		t.Errorf("JWK Set after Restart = %v; want %v", got, kids)
	}
	if h, _ := decodeToken(t, o.Token(t, "acme-svc")); h["kid"] != oldKID {
		t.Errorf("kid after Restart = %v; want %v", h["kid"], oldKID)
	}
	newKID, err := o.RotateKeys()
	if err != nil {
		t.Fatal(err)
	}
	if h, _ := decodeToken(t, o.Token(t, "acme-svc")); h["kid"] != newKID || newKID == oldKID {
		t.Errorf("kid after RotateKeys = %v; want the new %s (the old was %v)", h["kid"], newKID, oldKID)
	}
	rotated := jwksKIDs(t, o)
	if len(rotated) != 4 || !slices.Contains(rotated, newKID) || !slices.Contains(rotated, oldKID.(string)) {
		t.Errorf("JWK Set after RotateKeys = %v; want 4 keys with %s and %v", rotated, newKID, oldKID)
	}
	if _, err := o.RotateKeys(); err != nil {
		t.Fatal(err)
	}
	if got := jwksKIDs(t, o); len(got) != 4 || slices.Contains(got, oldKID.(string)) || !slices.Contains(got, newKID) {
		t.Errorf("JWK Set after a second RotateKeys = %v; want 4 keys with %s, without %v", got, newKID, oldKID)
	}

	o.Stop()
	if _, err := o.RequestToken("acme-svc", ""); err == nil {
		t.Fatal("RequestToken after Stop succeeded")
	}
	if err := o.Start(); err != nil {
		t.Fatal(err)
	}
	o.Token(t, "acme-svc")
}

func TestOIDCES256(t *testing.T) {
	o := testservers.OIDC(t,
		testservers.WithOIDCAlgorithm("ES256"),
		testservers.WithOIDCAudience("https://orders.example.com"),
		testservers.WithOIDCClient("svc", "secret", nil),
	)
	header, claims := decodeToken(t, o.Token(t, "svc"))
	if header["alg"] != "ES256" || claims["aud"] != "https://orders.example.com" {
		t.Errorf("header %v, claims %v; want alg ES256, aud https://orders.example.com", header, claims)
	}
}

func TestOIDCConfigErrors(t *testing.T) {
	for name, opts := range map[string][]testservers.OIDCOption{
		"duplicate client": {testservers.WithOIDCClient("a", "s", nil), testservers.WithOIDCClient("a", "t", nil)},
		"no secret":        {testservers.WithOIDCClient("a", "", nil)},
		"algorithm":        {testservers.WithOIDCAlgorithm("HS256")},
		"audience":         {testservers.WithOIDCAudience("not absolute")},
		"claims":           {testservers.WithOIDCClient("a", "s", map[string]any{"c": make(chan int)})},
	} {
		t.Run(name, func(t *testing.T) {
			_, stop, err := testservers.StartOIDC(opts...)
			stop()
			if errors.Is(err, testservers.ErrNotInstalled) {
				testservers.Check(t, err)
			}
			if err == nil || !strings.HasPrefix(err.Error(), "testservers: ") {
				t.Errorf("StartOIDC error = %v; want a testservers: error", err)
			}
		})
	}
}

// TestOIDCMissing checks that a missing oidc-provider skips the test,
// naming what to install, and that a wrong OIDCProviderEnv fails it.
func TestOIDCMissing(t *testing.T) {
	t.Chdir(t.TempDir()) // no go.mod above, so no .servers
	t.Setenv(testservers.OIDCProviderEnv, "")
	t.Setenv(testservers.RequireEnv, "")

	_, stop, err := testservers.StartOIDC()
	stop()
	if !errors.Is(err, testservers.ErrNotInstalled) || !strings.Contains(err.Error(), "scripts/test") {
		t.Fatalf("StartOIDC error = %v; want ErrNotInstalled naming scripts/test", err)
	}
	var skipped bool
	t.Run("skip", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		testservers.OIDC(t)
		t.Error("OIDC returned with oidc-provider missing")
	})
	if !skipped {
		t.Error("the test was not skipped")
	}

	t.Setenv(testservers.OIDCProviderEnv, filepath.Join(t.TempDir(), "nope"))
	_, stop, err = testservers.StartOIDC()
	stop()
	if err == nil || errors.Is(err, testservers.ErrNotInstalled) {
		t.Fatalf("StartOIDC with a wrong %s: %v; want an error that is not ErrNotInstalled", testservers.OIDCProviderEnv, err)
	}
}
