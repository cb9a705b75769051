package authz_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tenancykit/tenancy/authz"
	"github.com/tenancykit/tenancy/authz/authztest"
	"github.com/tenancykit/tenancy/internal/request/requesttest"
	"github.com/tenancykit/tenancy/tenant"
)

// sameTenant reports whether a and b are copies of one cached Tenant: a
// verification builds a new Roles slice, a cache hit hands out the one
// built before.
func sameTenant(a, b tenant.Tenant) bool {
	return len(a.Roles) > 0 && len(b.Roles) > 0 && &a.Roles[0] == &b.Roles[0]
}

func mustVerify(t *testing.T, v *authz.Verifier, token string) tenant.Tenant {
	t.Helper()
	got, err := v.Verify(t.Context(), token)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return got
}

func TestCacheHitSkipsVerification(t *testing.T) {
	clk := newClock()
	iss := authztest.Start(t, authztest.WithClock(clk.Now)) // tokens live one hour
	v := iss.Verifier(t, authz.WithClock(clk.Now))
	uncached := iss.Verifier(t, authz.WithClock(clk.Now), authz.WithCacheSize(-1))
	tok := iss.MustMint("acme", "premium", authztest.WithRoles("admin"))

	// Without a cache, every Verify builds a new tenant: the check below
	// can tell a cache hit from a verification.
	if sameTenant(mustVerify(t, uncached, tok), mustVerify(t, uncached, tok)) {
		t.Fatal("an uncached verifier returned the same tenant twice")
	}
	if n := authz.CacheLen(uncached); n != 0 {
		t.Errorf("uncached verifier holds %d tokens", n)
	}

	first := mustVerify(t, v, tok)
	// The issuer retires the token's key. The verifier has not refreshed,
	// so it could still verify the token; a cache hit does not try.
	if err := iss.Rotate(true); err != nil {
		t.Fatal(err)
	}
	fetches := iss.JWKSFetches()
	clk.Add(time.Hour - time.Second)
	second := mustVerify(t, v, tok)
	if !sameTenant(first, second) {
		t.Error("the second Verify of a token verified it again instead of using the cache")
	}
	if got := iss.JWKSFetches() - fetches; got != 0 {
		t.Errorf("a cache hit fetched the JWK Set %d times", got)
	}

	// At exp the cached entry is refused, and so is the token.
	clk.Add(time.Second)
	if _, err := v.Verify(t.Context(), tok); !errors.Is(err, authz.ErrExpired) {
		t.Errorf("Verify at exp = %v, want ErrExpired", err)
	}
}

func TestCacheEntryNeverOutlivesExp(t *testing.T) {
	tests := []struct {
		name   string
		leeway time.Duration
		steps  []cacheStep
	}{
		{
			name: "no leeway",
			steps: []cacheStep{
				{at: 0, fromCache: false},
				{at: 30 * time.Minute, fromCache: true},
				{at: time.Hour - time.Second, fromCache: true},
				{at: time.Hour, err: authz.ErrExpired},
				{at: 2 * time.Hour, err: authz.ErrExpired},
			},
		},
		{
			name:   "leeway accepts but does not cache past exp",
			leeway: 30 * time.Second,
			steps: []cacheStep{
				{at: 0, fromCache: false},
				{at: time.Hour - time.Second, fromCache: true},
				{at: time.Hour + 10*time.Second, fromCache: false},
				{at: time.Hour + 20*time.Second, fromCache: false},
				{at: time.Hour + 30*time.Second, err: authz.ErrExpired},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			iss := authztest.Start(t, authztest.WithClock(clk.Now))
			v := iss.Verifier(t, authz.WithClock(clk.Now), authz.WithLeeway(tt.leeway))
			tok := iss.MustMint("acme", "premium", authztest.WithRoles("admin"))
			runCacheSteps(t, v, clk, tok, tt.steps)
		})
	}
}

// cacheStep is a Verify at epoch+at, and whether it must be a cache hit.
type cacheStep struct {
	at        time.Duration
	fromCache bool
	err       error
}

func runCacheSteps(t *testing.T, v *authz.Verifier, clk *clock, tok string, steps []cacheStep) {
	t.Helper()
	var prev tenant.Tenant
	for _, s := range steps {
		clk.Add(epoch.Add(s.at).Sub(clk.Now()))
		got, err := v.Verify(t.Context(), tok)
		switch {
		case s.err != nil:
			if !errors.Is(err, s.err) {
				t.Errorf("Verify at +%v = %v, want %v", s.at, err, s.err)
			}
			continue
		case err != nil:
			t.Errorf("Verify at +%v: %v", s.at, err)
			continue
		}
		if hit := sameTenant(prev, got); hit != s.fromCache {
			t.Errorf("Verify at +%v: from cache = %v, want %v", s.at, hit, s.fromCache)
		}
		prev = got
	}
}

func TestCacheEmptiedOnKeyChange(t *testing.T) {
	clk := newClock()
	iss, v := startIssuer(t, clk)
	tokA := iss.MustMint("acme", "premium", authztest.WithRoles("admin"))
	a := mustVerify(t, v, tokA)
	if n := authz.CacheLen(v); n != 1 {
		t.Fatalf("cache holds %d tokens after one Verify, want 1", n)
	}

	// A refresh that finds the same keys keeps the cache.
	fetches := iss.JWKSFetches()
	if _, err := v.Verify(t.Context(), iss.MustMint("acme", "premium", authztest.WithKeyID("unknown"))); !errors.Is(err, authz.ErrUnknownKey) {
		t.Fatalf("Verify with an unknown kid = %v, want ErrUnknownKey", err)
	}
	if got := iss.JWKSFetches() - fetches; got != 1 {
		t.Fatalf("an unknown kid caused %d fetches, want 1", got)
	}
	if !sameTenant(a, mustVerify(t, v, tokA)) {
		t.Error("a refresh that found the same keys emptied the cache")
	}

	// Once the refresh cooldown has passed, a token signed with a new key
	// makes the verifier fetch the set, which no longer has tokA's key.
	v2 := iss.Verifier(t, authz.WithClock(clk.Now))
	mustVerify(t, v2, tokA)
	if err := iss.Rotate(true); err != nil {
		t.Fatal(err)
	}
	fetches = iss.JWKSFetches()
	tokB := iss.MustMint("globex", "basic", authztest.WithRoles("admin"))
	mustVerify(t, v2, tokB)
	if got := iss.JWKSFetches() - fetches; got != 1 {
		t.Errorf("a new kid caused %d fetches, want 1", got)
	}
	// tokB's own result is not kept either: the key set changed while it
	// was being verified.
	if n := authz.CacheLen(v2); n != 0 {
		t.Errorf("after the key set changed the cache holds %d tokens, want 0", n)
	}
	if _, err := v2.Verify(t.Context(), tokA); !errors.Is(err, authz.ErrUnknownKey) {
		t.Errorf("Verify of a token whose key was retired = %v, want ErrUnknownKey", err)
	}
}

func TestCacheBounded(t *testing.T) {
	const size, tokens = 64, 10_000
	clk := newClock()
	v, err := authz.NewVerifier(t.Context(), staticIssuer, authz.WithAudience(staticAudience),
		authz.WithAlgorithms("HS256"), authz.WithHMACSecret(hmacSecret),
		authz.WithCacheSize(size), authz.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	most := 0
	for i := range tokens {
		c := claimsFor(clk.Now(), fmt.Sprintf("tenant-%d", i), "basic")
		if _, err := v.Verify(t.Context(), sign(t, jwt.SigningMethodHS256, hmacSecret, "", c)); err != nil {
			t.Fatalf("token %d: %v", i, err)
		}
		most = max(most, authz.CacheLen(v))
	}
	if most > size {
		t.Errorf("cache held up to %d tokens, want at most %d", most, size)
	}
	if n := authz.CacheLen(v); n < size/2 {
		t.Errorf("cache holds %d tokens after %d, want it in use (at least %d)", n, tokens, size/2)
	}
}

func TestCacheRequiresTheWholeToken(t *testing.T) {
	clk := newClock()
	iss, v := startIssuer(t, clk)
	tok := iss.MustMint("acme", "premium", authztest.WithRoles("admin"))
	mustVerify(t, v, tok)
	hdr, payload, sig := segments(t, tok)

	// The same signature over another payload: another tenant, or the
	// same claims re-encoded.
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	reencoded := base64.RawURLEncoding.EncodeToString(append([]byte(" "), raw...))
	claims["custom:tenantId"] = "globex"
	forged := b64(claims)

	for _, tt := range []struct{ name, token string }{
		{"another tenant, same signature", hdr + "." + forged + "." + sig},
		{"same claims, other bytes, same signature", hdr + "." + reencoded + "." + sig},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := v.Verify(t.Context(), tt.token)
			if !errors.Is(err, authz.ErrSignature) {
				t.Fatalf("Verify = %q, %v; want ErrSignature", got.ID, err)
			}
		})
	}
	// The genuine token still verifies.
	mustVerify(t, v, tok)
}

// TestMiddlewareTakesTheRequestsTime: with the system clock, the
// middleware checks the cache at the time the stack read once for every
// layer (request.State.Start), not at a reading of its own; with an
// injected clock, at the clock's.
func TestMiddlewareTakesTheRequestsTime(t *testing.T) {
	iss := authztest.Start(t) // tokens live one hour
	tok := iss.MustMint("acme", "premium")
	later := time.Now().Add(2 * time.Hour) // past the token's exp
	serve := func(v *authz.Verifier, start time.Time) int {
		h := authz.Middleware(v)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		w2, r, _ := requesttest.StartAt(w, r, start)
		h.ServeHTTP(w2, r)
		return w.Code
	}

	v := iss.Verifier(t)
	// golang-jwt checks exp at its own reading, so the token verifies; at
	// the request's time it has expired, so it is not cached.
	if code := serve(v, later); code != http.StatusOK {
		t.Fatalf("status %d, want 200", code)
	}
	if n := authz.CacheLen(v); n != 0 {
		t.Errorf("a token expired at the request's time was cached (%d tokens): the middleware read a clock of its own", n)
	}
	if code := serve(v, time.Now()); code != http.StatusOK || authz.CacheLen(v) != 1 {
		t.Errorf("at the request's time now: status %d, %d tokens cached; want 200 and 1", code, authz.CacheLen(v))
	}

	injected := iss.Verifier(t, authz.WithClock(time.Now))
	if code := serve(injected, later); code != http.StatusOK || authz.CacheLen(injected) != 1 {
		t.Errorf("with an injected clock: status %d, %d tokens cached; want 200 and 1 (the clock's time, not the request's)", code, authz.CacheLen(injected))
	}
}
