package authz_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/tenancykit/tenancy/authz"
	"github.com/tenancykit/tenancy/authz/authztest"
	"github.com/tenancykit/tenancy/tenant"
)

// discoveryServer serves an OIDC discovery document naming issuer (its own
// URL when issuer is "") with status, and a JWK Set that is never valid.
func discoveryServer(t *testing.T, issuer string, status int) *httptest.Server {
	t.Helper()
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/openid-configuration" {
			http.NotFound(w, r)
			return
		}
		if status != http.StatusOK {
			w.WriteHeader(status)
			return
		}
		iss := issuer
		if iss == "" {
			iss = srv.URL
		}
		json.NewEncoder(w).Encode(map[string]string{"issuer": iss, "jwks_uri": srv.URL + "/jwks.json"})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// closedURL returns the URL of a server that no longer listens.
func closedURL(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.NotFoundHandler())
	u := srv.URL
	srv.Close()
	return u
}

func TestNewVerifierErrors(t *testing.T) {
	weakKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	aud := authz.WithAudience(staticAudience)
	static := authz.WithStaticKeys(map[string]crypto.PublicKey{"k1": rsaKey().Public()})
	otherIssuer := discoveryServer(t, "https://other.example.com", http.StatusOK)
	missingDiscovery := discoveryServer(t, "", http.StatusNotFound)
	brokenJWKS := discoveryServer(t, "", http.StatusOK) // its jwks_uri answers 404
	unreachable := closedURL(t)

	tests := []struct {
		name   string
		issuer string
		opts   []authz.Option
		want   []string // the error names each
	}{
		{"no issuer", "", []authz.Option{aud, static}, []string{"NewVerifier", "issuer"}},
		{"relative issuer", "/realms/acme", []authz.Option{aud, static}, []string{"issuer", "absolute URL"}},
		{"issuer without scheme", "issuer.example.com", []authz.Option{aud, static}, []string{"issuer", "absolute URL"}},
		{"no audience", staticIssuer, []authz.Option{static}, []string{"WithAudience", "WithAnyAudience"}},
		{"empty audience", staticIssuer, []authz.Option{authz.WithAudience(""), static}, []string{"WithAudience"}},
		{"unknown algorithm", staticIssuer, []authz.Option{aud, static, authz.WithAlgorithms("RS256", "XS999")}, []string{"WithAlgorithms", "XS999"}},
		{"alg none", staticIssuer, []authz.Option{aud, static, authz.WithAlgorithms("none")}, []string{"WithAlgorithms", `"none"`}},
		{"HS256 without a secret", staticIssuer, []authz.Option{aud, authz.WithAlgorithms("HS256")}, []string{"WithHMACSecret"}},
		{"short HMAC secret", staticIssuer, []authz.Option{aud, authz.WithAlgorithms("HS256"), authz.WithHMACSecret(hmacSecret[:31])}, []string{"WithHMACSecret", "32 bytes"}},
		{"two key sources", staticIssuer, []authz.Option{aud, static, authz.WithJWKSURL(staticIssuer + "jwks.json")}, []string{"WithJWKSURL", "WithStaticKeys"}},
		{"static keys and JWKS", staticIssuer, []authz.Option{aud, static, authz.WithJWKS([]byte(`{"keys":[]}`))}, []string{"WithStaticKeys", "WithJWKS"}},
		{"no static keys", staticIssuer, []authz.Option{aud, authz.WithStaticKeys(map[string]crypto.PublicKey{})}, []string{"WithStaticKeys"}},
		{"static RSA key of 1024 bits", staticIssuer, []authz.Option{aud, authz.WithStaticKeys(map[string]crypto.PublicKey{"weak": weakKey.Public()})}, []string{"WithStaticKeys", `"weak"`, "2048"}},
		{"static key of another type", staticIssuer, []authz.Option{aud, authz.WithStaticKeys(map[string]crypto.PublicKey{"k": hmacSecret})}, []string{"WithStaticKeys", "[]uint8"}},
		{"JWKS not a JWK Set", staticIssuer, []authz.Option{aud, authz.WithJWKS([]byte("not json"))}, []string{"WithJWKS"}},
		{"discovery names another issuer", otherIssuer.URL, []authz.Option{aud}, []string{"discovery", "https://other.example.com", otherIssuer.URL, "match"}},
		{"discovery 404", missingDiscovery.URL, []authz.Option{aud}, []string{"discovery", "404", "WithJWKSURL"}},
		{"discovery unreachable", unreachable, []authz.Option{aud}, []string{"discovery", "WithJWKSURL"}},
		{"JWK Set URL unreachable", staticIssuer, []authz.Option{aud, authz.WithJWKSURL(unreachable + "/jwks.json")}, []string{"WithJWKSURL", unreachable}},
		{"discovered JWK Set unusable", brokenJWKS.URL, []authz.Option{aud}, []string{"jwks_uri", brokenJWKS.URL + "/jwks.json"}},
		{"default tier unknown", staticIssuer, []authz.Option{aud, static, authz.WithDefaultTier("gold")}, []string{"WithDefaultTier", `"gold"`, "basic"}},
		{"negative leeway", staticIssuer, []authz.Option{aud, static, authz.WithLeeway(-time.Second)}, []string{"WithLeeway"}},
		{"leeway over 5 minutes", staticIssuer, []authz.Option{aud, static, authz.WithLeeway(5*time.Minute + time.Second)}, []string{"WithLeeway"}},
		{"no tenant claim", staticIssuer, []authz.Option{aud, static, authz.WithClaimMapping(authz.ClaimMapping{Tier: "tier"})}, []string{"WithClaimMapping", "Tenant"}},
		{"negative cooldown", staticIssuer, []authz.Option{aud, static, authz.WithRefreshCooldown(-time.Second)}, []string{"WithRefreshCooldown"}},
		{"negative refresh interval", staticIssuer, []authz.Option{aud, static, authz.WithRefreshInterval(-time.Second)}, []string{"WithRefreshInterval"}},
		{"negative max token size", staticIssuer, []authz.Option{aud, static, authz.WithMaxTokenBytes(-1)}, []string{"WithMaxTokenBytes"}},
		{"a mapping without the tenant claim", staticIssuer, []authz.Option{aud, static, authz.WithClaimMapping(authz.ClaimMapping{Roles: "groups"})}, []string{"WithClaimMapping", "Tenant"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := authz.NewVerifier(t.Context(), tt.issuer, tt.opts...)
			if err == nil {
				v.Close()
				t.Fatal("NewVerifier succeeded")
			}
			if !strings.HasPrefix(err.Error(), "authz: ") {
				t.Errorf("error %q lacks the authz: prefix", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
		})
	}
}

// TestNewVerifierZeroOptionsMeanDefault gives every option that takes a
// value its zero value: each leaves its default in place, so the verifier
// works as one built without them, token size limit included.
func TestNewVerifierZeroOptionsMeanDefault(t *testing.T) {
	iss := authztest.Start(t)
	v := iss.Verifier(t,
		authz.WithClock(nil),
		authz.WithHTTPClient(nil),
		authz.WithTiers(nil),
		authz.WithClaimMapping(authz.ClaimMapping{}),
		authz.WithAudienceClaim(""),
		authz.WithJWKSURL(""),
		authz.WithStaticKeys(nil),
		authz.WithJWKS(nil),
		authz.WithHMACSecret(nil),
		authz.WithAlgorithms(),
		authz.WithLeeway(0),
		authz.WithDefaultTier(""),
		authz.WithClaimCheck(nil),
		authz.WithCacheSize(0),
		authz.WithRefreshInterval(0),
		authz.WithRefreshCooldown(0),
		authz.WithMaxTokenBytes(0),
		authz.WithRefreshErrorHandler(nil),
	)
	got, err := v.Verify(t.Context(), iss.MustMint("acme", "premium"))
	if err != nil {
		t.Fatalf("Verify = %v", err)
	}
	if got.ID != "acme" || got.Tier.String() != "premium" {
		t.Errorf("tenant %q on %q, want acme on premium (Cognito's claims, the default tiers)", got.ID, got.Tier)
	}
	if authz.CacheLen(v) != 1 {
		t.Errorf("cache holds %d tokens, want 1: WithCacheSize(0) is the default size, not off", authz.CacheLen(v))
	}
	big := iss.MustMint("acme", "premium", authztest.WithClaim("padding", strings.Repeat("x", authz.DefaultMaxTokenBytes)))
	if _, err := v.Verify(t.Context(), big); !errors.Is(err, authz.ErrTokenTooLarge) {
		t.Errorf("Verify of a token over DefaultMaxTokenBytes = %v, want ErrTokenTooLarge", err)
	}
	claims := claimsFor(time.Now(), "acme", "basic")
	claims["iss"], claims["aud"] = iss.URL(), iss.Audience()
	hs := sign(t, jwt.SigningMethodHS256, hmacSecret, iss.KeyID(), claims)
	if _, err := v.Verify(t.Context(), hs); !errors.Is(err, authz.ErrAlgorithm) {
		t.Errorf("Verify of an HS256 token = %v, want ErrAlgorithm: no secret, no HS256", err)
	}
}

// TestWithTiers verifies tokens against the service's own tiers: a tier
// of the set is accepted as that tier, one of the default set is not, and
// WithDefaultTier names a tier of the set.
func TestWithTiers(t *testing.T) {
	plans := tenant.MustTiers("free", "pro")
	iss := authztest.Start(t)
	v := iss.Verifier(t, authz.WithTiers(plans))
	got, err := v.Verify(t.Context(), iss.MustMint("acme", "pro"))
	if err != nil {
		t.Fatal(err)
	}
	if got.Tier != plans.MustLookup("pro") {
		t.Errorf("tier %v (rank %d), want pro of the service's tiers", got.Tier, got.Tier.Rank())
	}
	if _, err := v.Verify(t.Context(), iss.MustMint("acme", "premium")); !errors.Is(err, authz.ErrTierClaim) {
		t.Errorf("a tier of the default set: %v, want ErrTierClaim", err)
	}
	withDefault := iss.Verifier(t, authz.WithTiers(plans), authz.WithDefaultTier("free"))
	if got, err := withDefault.Verify(t.Context(), iss.MustMint("acme", "")); err != nil || got.Tier != plans.MustLookup("free") {
		t.Errorf("token without a tier: %v on %v, want free", err, got.Tier)
	}
	if bad, err := iss.NewVerifier(t.Context(), authz.WithTiers(plans), authz.WithDefaultTier("basic")); err == nil || !strings.Contains(err.Error(), "WithDefaultTier") {
		if bad != nil {
			bad.Close()
		}
		t.Errorf("WithDefaultTier of the default set with other tiers: %v, want a WithDefaultTier error", err)
	}
}

// TestDefaultAlgorithms checks the defaults, and that a caller changing
// the slice it got changes nothing: HS256 cannot be made a default.
func TestDefaultAlgorithms(t *testing.T) {
	want := []string{"RS256", "ES256", "EdDSA"}
	got := authz.DefaultAlgorithms()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("DefaultAlgorithms (-want +got):\n%s", diff)
	}
	got[0] = "HS256"
	if diff := cmp.Diff(want, authz.DefaultAlgorithms()); diff != "" {
		t.Errorf("DefaultAlgorithms after the caller changed its copy (-want +got):\n%s", diff)
	}
}

// TestNewVerifierNilOptions checks that nil options are ignored.
func TestNewVerifierNilOptions(t *testing.T) {
	v, err := authz.NewVerifier(t.Context(), staticIssuer, nil, authz.WithAudience(staticAudience), nil,
		authz.WithStaticKeys(map[string]crypto.PublicKey{"k1": rsaKey().Public()}))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if v.Issuer() != staticIssuer {
		t.Errorf("Issuer() = %q, want %q", v.Issuer(), staticIssuer)
	}
	if err := v.Close(); err != nil { // a second Close is harmless
		t.Errorf("second Close: %v", err)
	}
}

// verifyCase is a token and what Verify must make of it.
type verifyCase struct {
	name    string
	token   string
	want    tenantSummary // when err is nil
	wantErr error
}

// tenantSummary is the part of a tenant.Tenant tests compare.
type tenantSummary struct {
	ID, Tier, Subject string
	Roles, Scopes     []string
}

func summarize(t tenant.Tenant) tenantSummary {
	return tenantSummary{ID: t.ID, Tier: t.Tier.String(), Subject: t.Subject, Roles: t.Roles, Scopes: t.Scopes}
}

func runVerifyCases(t *testing.T, v *authz.Verifier, cases []verifyCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			got, err := v.Verify(t.Context(), tt.token)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Verify error = %v, want %v", err, tt.wantErr)
				}
				if tt.token != "" && strings.Contains(err.Error(), tt.token) {
					t.Errorf("error %q contains the token", err)
				}
				if !got.IsZero() {
					t.Errorf("Verify returned tenant %q with an error", got.ID)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if diff := cmp.Diff(tt.want, summarize(got), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("tenant (-want +got):\n%s", diff)
			}
		})
	}
}

func TestVerifyAudienceClaim(t *testing.T) {
	// Cognito access tokens carry no "aud", but the app client in "client_id".
	clk := newClock()
	iss, v := startIssuer(t, clk, authz.WithAudienceClaim("client_id"))
	access := func(opts ...authztest.TokenOption) string {
		return iss.MustMint("acme", "basic", append([]authztest.TokenOption{authztest.WithClaim("aud", nil)}, opts...)...)
	}
	runVerifyCases(t, v, []verifyCase{
		{name: "client_id names the audience", token: access(authztest.WithClaim("client_id", iss.Audience())),
			want: tenantSummary{ID: "acme", Tier: "basic", Subject: "user-1"}},
		{name: "client_id names another client", token: access(authztest.WithClaim("client_id", "another-client")), wantErr: authz.ErrAudience},
		{name: "client_id missing, aud right", token: iss.MustMint("acme", "basic"), wantErr: authz.ErrAudience},
		{name: "client_id not a string", token: access(authztest.WithClaim("client_id", []string{iss.Audience()})), wantErr: authz.ErrAudience},
	})
}

// TestVerifyCognitoTokens: with the default audience claim, one
// WithAudience(appClientID) accepts a Cognito access token (no "aud",
// "client_id" and "token_use": "access") and refuses a Cognito ID token
// (whose "aud" is the same app client).
func TestVerifyCognitoTokens(t *testing.T) {
	clk := newClock()
	iss, v := startIssuer(t, clk)
	idAccepting := iss.Verifier(t, authz.WithClock(clk.Now), authz.WithIDTokens())
	client := iss.Audience()
	access := func(opts ...authztest.TokenOption) string {
		return iss.MustMint("acme", "basic", append([]authztest.TokenOption{
			authztest.WithClaim("aud", nil), authztest.WithClaim("client_id", client), authztest.WithClaim("token_use", "access"),
			authztest.WithClaim("scope", "orders/read orders/write"),
		}, opts...)...)
	}
	idToken := iss.MustMint("acme", "basic", authztest.WithClaim("token_use", "id"))
	runVerifyCases(t, v, []verifyCase{
		{name: "access token", token: access(),
			want: tenantSummary{ID: "acme", Tier: "basic", Subject: "user-1", Scopes: []string{"orders/read", "orders/write"}}},
		{name: "access token of another app client", token: access(authztest.WithClaim("client_id", "another-client")), wantErr: authz.ErrAudience},
		{name: "access token without client_id", token: access(authztest.WithClaim("client_id", nil)), wantErr: authz.ErrAudience},
		{name: "access token with an aud of another API", token: access(authztest.WithClaim("aud", "another-api")), wantErr: authz.ErrAudience},
		{name: "ID token", token: idToken, wantErr: authz.ErrTokenType},
		{name: "refresh-like token_use", token: access(authztest.WithClaim("token_use", "refresh")), wantErr: authz.ErrTokenType},
	})
	runVerifyCases(t, idAccepting, []verifyCase{
		{name: "ID token with WithIDTokens", token: idToken, want: tenantSummary{ID: "acme", Tier: "basic", Subject: "user-1"}},
	})
}

// TestVerifyAccessTokenType: under WithAccessTokenType only RFC 9068
// access tokens pass; by default "JWT" and no typ pass too.
func TestVerifyAccessTokenType(t *testing.T) {
	clk := newClock()
	iss, v := startIssuer(t, clk)
	strict := iss.Verifier(t, authz.WithClock(clk.Now), authz.WithAccessTokenType())
	ok := tenantSummary{ID: "acme", Tier: "basic", Subject: "user-1"}
	at := iss.MustMint("acme", "basic", authztest.WithHeader("typ", "at+jwt"))
	atLong := iss.MustMint("acme", "basic", authztest.WithHeader("typ", "application/AT+JWT"))
	plain := iss.MustMint("acme", "basic")
	none := iss.MustMint("acme", "basic", authztest.WithHeader("typ", nil))
	runVerifyCases(t, v, []verifyCase{
		{name: "at+jwt", token: at, want: ok},
		{name: "JWT", token: plain, want: ok},
		{name: "no typ", token: none, want: ok},
	})
	runVerifyCases(t, strict, []verifyCase{
		{name: "strict at+jwt", token: at, want: ok},
		{name: "strict application/at+jwt", token: atLong, want: ok},
		{name: "strict JWT", token: plain, wantErr: authz.ErrTokenType},
		{name: "strict no typ", token: none, wantErr: authz.ErrTokenType},
	})
}

func TestVerifyAnyAudience(t *testing.T) {
	clk := newClock()
	iss := authztest.Start(t, authztest.WithClock(clk.Now))
	v, err := authz.NewVerifier(t.Context(), iss.URL(), authz.WithAnyAudience(), authz.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	runVerifyCases(t, v, []verifyCase{
		{name: "any aud", token: iss.MustMint("acme", "basic", authztest.WithClaim("aud", "whatever")),
			want: tenantSummary{ID: "acme", Tier: "basic", Subject: "user-1"}},
	})
}

func TestVerifyStaticKeys(t *testing.T) {
	clk := newClock()
	rsaPub, ecPub := rsaKey().Public(), ecKey().Public()
	v, err := authz.NewVerifier(t.Context(), staticIssuer,
		authz.WithAudience(staticAudience),
		authz.WithStaticKeys(map[string]crypto.PublicKey{"rsa": rsaPub, "ec": ecPub, "": edKey.Public()}),
		authz.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	claims := claimsFor(clk.Now(), "acme", "premium")
	want := tenantSummary{ID: "acme", Tier: "premium", Subject: "user-1"}
	runVerifyCases(t, v, []verifyCase{
		{name: "RS256 by kid", token: sign(t, jwt.SigningMethodRS256, rsaKey(), "rsa", claims), want: want},
		{name: "ES256 by kid", token: sign(t, jwt.SigningMethodES256, ecKey(), "ec", claims), want: want},
		{name: "EdDSA without kid uses the \"\" key", token: sign(t, jwt.SigningMethodEdDSA, edKey, "", claims), want: want},
		{name: "RS256 without kid, the \"\" key is another", token: sign(t, jwt.SigningMethodRS256, rsaKey(), "", claims), wantErr: authz.ErrSignature},
		{name: "unknown kid", token: sign(t, jwt.SigningMethodRS256, rsaKey(), "other", claims), wantErr: authz.ErrUnknownKey},
		{name: "kid of a key of another type", token: sign(t, jwt.SigningMethodRS256, rsaKey(), "ec", claims), wantErr: authz.ErrSignature},
		{name: "RS384 not allowed", token: sign(t, jwt.SigningMethodRS384, rsaKey(), "rsa", claims), wantErr: authz.ErrAlgorithm},
		{name: "HS256 keyed with nothing", token: sign(t, jwt.SigningMethodHS256, []byte{}, "rsa", claims), wantErr: authz.ErrAlgorithm},
	})

	// Without a "" key, kid-less tokens have no key.
	v2, err := authz.NewVerifier(t.Context(), staticIssuer, authz.WithAudience(staticAudience),
		authz.WithStaticKeys(map[string]crypto.PublicKey{"rsa": rsaPub}), authz.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v2.Close() })
	runVerifyCases(t, v2, []verifyCase{
		{name: "no kid, no \"\" key", token: sign(t, jwt.SigningMethodRS256, rsaKey(), "", claims), wantErr: authz.ErrUnknownKey},
	})
}

func TestVerifyJWKSInMemory(t *testing.T) {
	clk := newClock()
	iss := authztest.Start(t, authztest.WithClock(clk.Now))
	jwks, err := iss.JWKS(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	before := iss.JWKSFetches()
	v, err := authz.NewVerifier(t.Context(), iss.URL(), authz.WithAudience(iss.Audience()), authz.WithJWKS(jwks), authz.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	tok := iss.MustMint("acme", "standard")
	if err := iss.Rotate(false); err != nil {
		t.Fatal(err)
	}
	runVerifyCases(t, v, []verifyCase{
		{name: "key in the set", token: tok, want: tenantSummary{ID: "acme", Tier: "standard", Subject: "user-1"}},
		{name: "key not in the set", token: iss.MustMint("acme", "standard"), wantErr: authz.ErrUnknownKey},
		{name: "no kid", token: b64(map[string]any{"alg": "RS256"}) + "." + strings.SplitN(tok, ".", 2)[1], wantErr: authz.ErrUnknownKey},
	})
	if got := iss.JWKSFetches() - before; got != 0 {
		t.Errorf("a verifier with an in-memory JWK Set fetched it %d times", got)
	}
}

func TestVerifyHMACSecret(t *testing.T) {
	clk := newClock()
	iss, v := startIssuer(t, clk, authz.WithHMACSecret(hmacSecret))
	claims := jwt.MapClaims{
		"iss": iss.URL(), "aud": iss.Audience(), "sub": "svc", "iat": clk.Now().Unix(), "exp": clk.Now().Add(time.Minute).Unix(),
		"custom:tenantId": "acme", "custom:tenantTier": "premium",
	}
	otherSecret := []byte(strings.Repeat("x", 32))
	runVerifyCases(t, v, []verifyCase{
		{name: "HS256 with the secret", token: sign(t, jwt.SigningMethodHS256, hmacSecret, "", claims),
			want: tenantSummary{ID: "acme", Tier: "premium", Subject: "svc"}},
		{name: "HS256 with the secret and any kid", token: sign(t, jwt.SigningMethodHS256, hmacSecret, "whatever", claims),
			want: tenantSummary{ID: "acme", Tier: "premium", Subject: "svc"}},
		{name: "HS256 with another secret", token: sign(t, jwt.SigningMethodHS256, otherSecret, "", claims), wantErr: authz.ErrSignature},
		{name: "HS384 not allowed", token: sign(t, jwt.SigningMethodHS384, hmacSecret, "", claims), wantErr: authz.ErrAlgorithm},
		{name: "RS256 from the issuer still works", token: iss.MustMint("acme", "basic"),
			want: tenantSummary{ID: "acme", Tier: "basic", Subject: "user-1"}},
	})

	// A verifier for HS256 alone needs no key source and fetches nothing.
	hs, err := authz.NewVerifier(t.Context(), staticIssuer, authz.WithAudience(staticAudience),
		authz.WithAlgorithms("HS256"), authz.WithHMACSecret(hmacSecret), authz.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hs.Close() })
	runVerifyCases(t, hs, []verifyCase{
		{name: "HS256 only", token: sign(t, jwt.SigningMethodHS256, hmacSecret, "", claimsFor(clk.Now(), "acme", "basic")),
			want: tenantSummary{ID: "acme", Tier: "basic", Subject: "user-1"}},
		{name: "HS256 only, RS256 refused", token: sign(t, jwt.SigningMethodRS256, rsaKey(), "", claimsFor(clk.Now(), "acme", "basic")),
			wantErr: authz.ErrAlgorithm},
	})
}

func TestVerifyES256Issuer(t *testing.T) {
	clk := newClock()
	iss := authztest.Start(t, authztest.WithAlgorithm("ES256"), authztest.WithClock(clk.Now))
	v := iss.Verifier(t, authz.WithClock(clk.Now))
	tok := iss.MustMint("acme", "platinum", authztest.WithRoles("admin"))
	if alg := jwtHeader(t, tok)["alg"]; alg != "ES256" {
		t.Fatalf("issuer signed with %v, want ES256", alg)
	}
	runVerifyCases(t, v, []verifyCase{
		{name: "ES256", token: tok, want: tenantSummary{ID: "acme", Tier: "platinum", Subject: "user-1", Roles: []string{"admin"}}},
	})

	// A verifier that allows RS256 only refuses it.
	rs := iss.Verifier(t, authz.WithClock(clk.Now), authz.WithAlgorithms("RS256"))
	runVerifyCases(t, rs, []verifyCase{{name: "ES256 not allowed", token: tok, wantErr: authz.ErrAlgorithm}})
}

func jwtHeader(t *testing.T, token string) map[string]any {
	t.Helper()
	tok, _, err := jwt.NewParser().ParseUnverified(token, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	return tok.Header
}

func TestVerifyLeeway(t *testing.T) {
	clk := newClock()
	iss := authztest.Start(t, authztest.WithClock(clk.Now))
	strict := iss.Verifier(t, authz.WithClock(clk.Now))
	lenient := iss.Verifier(t, authz.WithClock(clk.Now), authz.WithLeeway(30*time.Second))
	expired10s := iss.MustMint("acme", "basic", authztest.WithExpiry(-10*time.Second))
	expired31s := iss.MustMint("acme", "basic", authztest.WithExpiry(-31*time.Second))
	issuedIn10s := iss.MustMint("acme", "basic", authztest.WithClaim("iat", clk.Now().Add(10*time.Second).Unix()))
	validIn10s := iss.MustMint("acme", "basic", authztest.WithClaim("nbf", clk.Now().Add(10*time.Second).Unix()))
	ok := tenantSummary{ID: "acme", Tier: "basic", Subject: "user-1"}

	t.Run("without leeway", func(t *testing.T) {
		runVerifyCases(t, strict, []verifyCase{
			{name: "exp 10s ago", token: expired10s, wantErr: authz.ErrExpired},
			{name: "iat in 10s", token: issuedIn10s, wantErr: authz.ErrNotYetValid},
			{name: "nbf in 10s", token: validIn10s, wantErr: authz.ErrNotYetValid},
		})
	})
	t.Run("with 30s leeway", func(t *testing.T) {
		runVerifyCases(t, lenient, []verifyCase{
			{name: "exp 10s ago", token: expired10s, want: ok},
			{name: "exp 31s ago", token: expired31s, wantErr: authz.ErrExpired},
			{name: "iat in 10s", token: issuedIn10s, want: ok},
			{name: "nbf in 10s", token: validIn10s, want: ok},
		})
	})
}

func TestVerifyClaimMappings(t *testing.T) {
	const ns = "https://api.example.com/"
	tests := []struct {
		name    string
		mapping authz.ClaimMapping
		opts    []authztest.TokenOption
		check   func(t *testing.T, claims map[string]any) // the minted claims are where the preset looks
		want    tenantSummary
	}{
		{
			name:    "Cognito",
			mapping: authz.Cognito(),
			opts:    []authztest.TokenOption{authztest.WithRoles("admin", "ops")},
			check: func(t *testing.T, c map[string]any) {
				if c["custom:tenantId"] != "acme" || c["custom:tenantTier"] != "premium" {
					t.Errorf("claims %v lack the Cognito custom attributes", c)
				}
			},
			want: tenantSummary{ID: "acme", Tier: "premium", Subject: "user-1", Roles: []string{"admin", "ops"}},
		},
		{
			name:    "Auth0 namespaced",
			mapping: authz.Auth0(ns),
			opts:    []authztest.TokenOption{authztest.WithRoles("admin")},
			check: func(t *testing.T, c map[string]any) {
				if c[ns+"tenant_id"] != "acme" || c[ns+"tier"] != "premium" || c[ns+"roles"] == nil {
					t.Errorf("claims %v lack the namespaced claims", c)
				}
			},
			want: tenantSummary{ID: "acme", Tier: "premium", Subject: "user-1", Roles: []string{"admin"}},
		},
		{
			name:    "Keycloak nested realm roles",
			mapping: authz.Keycloak(),
			opts:    []authztest.TokenOption{authztest.WithRoles("offline_access", "admin")},
			check: func(t *testing.T, c map[string]any) {
				ra, _ := c["realm_access"].(map[string]any)
				if ra == nil || ra["roles"] == nil {
					t.Errorf("claims %v lack realm_access.roles", c)
				}
			},
			want: tenantSummary{ID: "acme", Tier: "basic", Subject: "user-1", Roles: []string{"offline_access", "admin"}}, // Keycloak has no tier claim
		},
		{
			name:    "no tier claim: the lowest tier",
			mapping: authz.ClaimMapping{Tenant: "org"},
			want:    tenantSummary{ID: "acme", Tier: "basic", Subject: "user-1"},
		},
		{
			name:    "roles as one space-separated string",
			mapping: authz.ClaimMapping{Tenant: "org", Tier: "plan", Roles: "groups"},
			opts:    []authztest.TokenOption{authztest.WithClaim("groups", "admin ops")},
			want:    tenantSummary{ID: "acme", Tier: "premium", Subject: "user-1", Roles: []string{"admin", "ops"}},
		},
		{
			name:    "custom subject claim",
			mapping: authz.ClaimMapping{Tenant: "org", Tier: "plan", Subject: "email"},
			opts:    []authztest.TokenOption{authztest.WithClaim("email", "jo@example.com")},
			want:    tenantSummary{ID: "acme", Tier: "premium", Subject: "jo@example.com"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			iss := authztest.Start(t, authztest.WithClaimMapping(tt.mapping), authztest.WithClock(clk.Now))
			v := iss.Verifier(t, authz.WithClock(clk.Now))
			tok := iss.MustMint("acme", "premium", tt.opts...)
			if tt.check != nil {
				claims := jwt.MapClaims{}
				if _, _, err := jwt.NewParser().ParseUnverified(tok, claims); err != nil {
					t.Fatal(err)
				}
				tt.check(t, claims)
			}
			got, err := v.Verify(t.Context(), tok)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if diff := cmp.Diff(tt.want, summarize(got), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("tenant (-want +got):\n%s", diff)
			}
		})
	}
}

func TestVerifyScopesAndRoles(t *testing.T) {
	clk := newClock()
	iss, v := startIssuer(t, clk)
	base := tenantSummary{ID: "acme", Tier: "basic", Subject: "user-1"}
	with := func(f func(*tenantSummary)) tenantSummary { s := base; f(&s); return s }
	runVerifyCases(t, v, []verifyCase{
		{name: "scope string", token: iss.MustMint("acme", "basic", authztest.WithScopes("orders:read", "orders:write")),
			want: with(func(s *tenantSummary) { s.Scopes = []string{"orders:read", "orders:write"} })},
		{name: "scp array", token: iss.MustMint("acme", "basic", authztest.WithClaim("scp", []string{"orders:read", "profile"})),
			want: with(func(s *tenantSummary) { s.Scopes = []string{"orders:read", "profile"} })},
		{name: "scope wins over scp", token: iss.MustMint("acme", "basic", authztest.WithScopes("a"), authztest.WithClaim("scp", []string{"b"})),
			want: with(func(s *tenantSummary) { s.Scopes = []string{"a"} })},
		{name: "scope not a string", token: iss.MustMint("acme", "basic", authztest.WithClaim("scope", 7)), wantErr: authz.ErrClaims},
		{name: "scp with a number", token: iss.MustMint("acme", "basic", authztest.WithClaim("scp", []any{"a", 1})), wantErr: authz.ErrClaims},
		{name: "256 roles", token: iss.MustMint("acme", "basic", authztest.WithRoles(manyRoles(256)...)),
			want: with(func(s *tenantSummary) { s.Roles = manyRoles(256) })},
		{name: "257 roles", token: iss.MustMint("acme", "basic", authztest.WithRoles(manyRoles(257)...)), wantErr: authz.ErrClaims},
		{name: "257 scopes", token: iss.MustMint("acme", "basic", authztest.WithScopes(manyRoles(257)...)), wantErr: authz.ErrClaims},
	})
}

func TestVerifyClaimErrors(t *testing.T) {
	clk := newClock()
	iss, v := startIssuer(t, clk)
	tests := []struct {
		name  string
		token string
		want  *authz.ClaimError
	}{
		{"tenant missing", iss.MustMint("acme", "basic", authztest.WithClaim("custom:tenantId", nil)),
			&authz.ClaimError{Claim: "custom:tenantId", Reason: "missing", Err: authz.ErrTenantClaim}},
		{"tenant fraction", iss.MustMint("acme", "basic", authztest.WithClaim("custom:tenantId", 1.5)),
			&authz.ClaimError{Claim: "custom:tenantId", Reason: "a number that is not an integer", Err: authz.ErrTenantClaim}},
		{"tenant a list", iss.MustMint("acme", "basic", authztest.WithClaim("custom:tenantId", []string{"acme"})),
			&authz.ClaimError{Claim: "custom:tenantId", Reason: "a list or an object (see ClaimMapping.TenantFromList)", Err: authz.ErrTenantClaim}},
		{"tenant empty", iss.MustMint("", "basic"),
			&authz.ClaimError{Claim: "custom:tenantId", Reason: "not a valid tenant ID: empty", Err: authz.ErrTenantClaim}},
		{"tier missing", iss.MustMint("acme", ""),
			&authz.ClaimError{Claim: "custom:tenantTier", Reason: "missing", Err: authz.ErrTierClaim}},
		{"tier unknown", iss.MustMint("acme", "gold"),
			&authz.ClaimError{Claim: "custom:tenantTier", Reason: "names an unknown tier", Err: authz.ErrTierClaim}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(t.Context(), tt.token)
			var ce *authz.ClaimError
			if !errors.As(err, &ce) {
				t.Fatalf("Verify error = %v, want a *ClaimError", err)
			}
			if diff := cmp.Diff(*tt.want, *ce, cmpopts.EquateErrors()); diff != "" {
				t.Errorf("ClaimError (-want +got):\n%s", diff)
			}
			if !errors.Is(err, tt.want.Err) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.want.Err)
			}
		})
	}
}

// TestVerifyErrorsHideTheToken checks that errors, which end up in logs,
// never carry the token or a claim value.
func TestVerifyErrorsHideTheToken(t *testing.T) {
	clk := newClock()
	iss, v := startIssuer(t, clk)
	secretTenant := "tenant-" + strings.Repeat("s", 40) + "\n"
	for _, tok := range []string{
		iss.MustMint(secretTenant, "basic"),
		iss.MustMint("acme", secretTenant),
		iss.MustMint("acme", "basic", authztest.WithExpiry(-time.Hour)),
		iss.MustMint("acme", "basic", authztest.WithKeyID(secretTenant)),
		"a." + strings.Repeat("b", 100) + ".c",
	} {
		_, err := v.Verify(t.Context(), tok)
		if err == nil {
			t.Fatal("Verify succeeded")
		}
		if frag, ok := sharedFragment(tok, err.Error(), leakWindow+1); ok {
			t.Errorf("error %q contains %q from the token", err, frag)
		}
		if strings.Contains(err.Error(), strings.Repeat("s", 20)) {
			t.Errorf("error %q contains a claim value", err)
		}
	}
}

func TestVerifyTokenSize(t *testing.T) {
	clk := newClock()
	iss, v := startIssuer(t, clk, authz.WithMaxTokenBytes(2000))
	tok := iss.MustMint("acme", "basic")
	runVerifyCases(t, v, []verifyCase{
		{name: "empty", token: "", wantErr: authz.ErrNoToken},
		{name: "under the limit", token: tok, want: tenantSummary{ID: "acme", Tier: "basic", Subject: "user-1"}},
		{name: "over the limit", token: iss.MustMint("acme", "basic", authztest.WithClaim("pad", strings.Repeat("p", 2000))), wantErr: authz.ErrTokenTooLarge},
	})
}

func TestTenantClaims(t *testing.T) {
	clk := newClock()
	iss, v := startIssuer(t, clk)
	tok := iss.MustMint("acme", "premium",
		authztest.WithClaim("custom:seats", 42),
		authztest.WithClaim("custom:region", "eu-west-1"),
		authztest.WithClaim("org.unit", "billing"))
	got, err := v.Verify(t.Context(), tok)
	if err != nil {
		t.Fatal(err)
	}
	c := got.Claims()
	for _, tt := range []struct {
		name string
		want any
	}{
		{"custom:seats", 42.0},
		{"custom:region", "eu-west-1"},
		{"org.unit", "billing"},
		{"custom:tenantId", "acme"},
		{"iss", iss.URL()},
	} {
		v, ok := c.Get(tt.name)
		if !ok || !cmp.Equal(tt.want, v) {
			t.Errorf("Claims().Get(%q) = %v, %v; want %v", tt.name, v, ok, tt.want)
		}
	}
	if _, ok := c.Get("custom:absent"); ok {
		t.Error("Claims().Get of an absent claim reported true")
	}
}

// TestVerifyContextCancelled checks that a cancelled context does not let
// a token through.
func TestVerifyContextCancelled(t *testing.T) {
	clk := newClock()
	iss, v := startIssuer(t, clk)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := v.Verify(ctx, iss.MustMint("acme", "basic", authztest.WithKeyID("unknown"))); !errors.Is(err, authz.ErrUnknownKey) {
		t.Errorf("Verify with a cancelled context = %v, want ErrUnknownKey", err)
	}
}

// TestRefreshFailureKeepsKeys stops the issuer: background refreshes fail,
// are reported, and the keys fetched before keep verifying tokens.
func TestRefreshFailureKeepsKeys(t *testing.T) {
	clk := newClock()
	failures := make(chan error, 1)
	iss, v := startIssuer(t, clk,
		authz.WithCacheSize(-1),
		authz.WithRefreshInterval(10*time.Millisecond),
		authz.WithRefreshErrorHandler(func(err error) {
			select {
			case failures <- err:
			default: // one report is enough; never block the refresh
			}
		}))
	tok := iss.MustMint("acme", "basic")
	iss.Close()

	select {
	case err := <-failures:
		if err == nil {
			t.Fatal("refresh error handler called with nil")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no refresh failure reported within 10s")
	}
	if _, err := v.Verify(t.Context(), tok); err != nil {
		t.Errorf("Verify after failed refreshes: %v", err)
	}
}

// countingTransport counts the requests it carries.
type countingTransport struct {
	n atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

// pathRecorder is a transport that records the path of each request.
type pathRecorder struct {
	next  *http.Transport
	mu    sync.Mutex
	paths []string
}

func newPathRecorder(t *testing.T) *pathRecorder {
	r := &pathRecorder{next: &http.Transport{}}
	t.Cleanup(r.next.CloseIdleConnections)
	return r
}

func (p *pathRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	p.mu.Lock()
	p.paths = append(p.paths, r.URL.Path)
	p.mu.Unlock()
	return p.next.RoundTrip(r)
}

func (p *pathRecorder) take() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.paths
	p.paths = nil
	return out
}

// TestWithDiscovery names discovery as the key source: the verifier reads
// the issuer's discovery document, then the JWK Set it names, and accepts
// the issuer's tokens; a document for another issuer, or a second key
// source, fails at construction. Named, discovery runs even where the
// default would have none (only HMAC algorithms).
func TestWithDiscovery(t *testing.T) {
	iss := authztest.Start(t)
	rec := newPathRecorder(t)
	client := authz.WithHTTPClient(&http.Client{Transport: rec, Timeout: 5 * time.Second})
	const discovery, jwks = "/.well-known/openid-configuration", "/.well-known/jwks.json"

	v := iss.Verifier(t, authz.WithDiscovery(), client)
	if diff := cmp.Diff([]string{discovery, jwks}, rec.take()); diff != "" {
		t.Errorf("requests at construction (-want +got):\n%s", diff)
	}
	mustVerify(t, v, iss.MustMint("acme", "basic"))

	// The issuer must match the document's exactly: here, but for a
	// trailing slash.
	_, err := authz.NewVerifier(t.Context(), iss.URL()+"/", authz.WithAudience(iss.Audience()), authz.WithDiscovery(), client)
	if err == nil || !strings.Contains(err.Error(), "names issuer") || !strings.Contains(err.Error(), "trailing slash") {
		t.Errorf("NewVerifier for %s/ = %v, want an error saying the discovery document names another issuer", iss.URL(), err)
	}
	if diff := cmp.Diff([]string{discovery}, rec.take()); diff != "" {
		t.Errorf("requests for the wrong issuer (-want +got):\n%s", diff)
	}

	_, err = iss.NewVerifier(t.Context(), authz.WithDiscovery(), authz.WithJWKSURL(iss.JWKSURL()), client)
	if err == nil || !strings.Contains(err.Error(), "choose one key source") {
		t.Errorf("WithDiscovery and WithJWKSURL: %v, want the one-key-source error", err)
	}

	hs, err := iss.NewVerifier(t.Context(), authz.WithDiscovery(), client,
		authz.WithAlgorithms("HS256"), authz.WithHMACSecret(hmacSecret))
	if err != nil {
		t.Fatal(err)
	}
	hs.Close()
	if diff := cmp.Diff([]string{discovery, jwks}, rec.take()); diff != "" {
		t.Errorf("requests of an HS256 verifier with WithDiscovery (-want +got):\n%s", diff)
	}
}

func TestWithHTTPClient(t *testing.T) {
	clk := newClock()
	rt := &countingTransport{}
	iss, v := startIssuer(t, clk, authz.WithHTTPClient(&http.Client{Transport: rt, Timeout: time.Second}))
	// Discovery and the first JWK Set fetch.
	if n := rt.n.Load(); n != 2 {
		t.Errorf("the client carried %d requests at start-up, want 2", n)
	}
	mustVerify(t, v, iss.MustMint("acme", "basic"))
}

// TestVerifierKeepsItsOwnKeys changes the caller's key map and secret after
// construction: the verifier is not affected.
func TestVerifierKeepsItsOwnKeys(t *testing.T) {
	clk := newClock()
	keys := map[string]crypto.PublicKey{"k1": edKey.Public()}
	secret := append([]byte(nil), hmacSecret...)
	v, err := authz.NewVerifier(t.Context(), staticIssuer, authz.WithAudience(staticAudience),
		authz.WithStaticKeys(keys), authz.WithHMACSecret(secret), authz.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	delete(keys, "k1")
	clear(secret)

	claims := claimsFor(clk.Now(), "acme", "basic")
	runVerifyCases(t, v, []verifyCase{
		{name: "static key removed from the caller's map", token: sign(t, jwt.SigningMethodEdDSA, edKey, "k1", claims),
			want: tenantSummary{ID: "acme", Tier: "basic", Subject: "user-1"}},
		{name: "caller's secret wiped", token: sign(t, jwt.SigningMethodHS256, hmacSecret, "", claims),
			want: tenantSummary{ID: "acme", Tier: "basic", Subject: "user-1"}},
		{name: "zero secret refused", token: sign(t, jwt.SigningMethodHS256, make([]byte, 32), "", claims), wantErr: authz.ErrSignature},
	})
}
