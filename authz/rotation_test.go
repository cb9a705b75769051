package authz_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tenancykit/tenancy/authz"
	"github.com/tenancykit/tenancy/authz/authztest"
)

// TestRotationNotBlockedByStrangers: a token with a made-up key ID spends
// a JWK Set fetch, but a key the issuer publishes right after it is
// accepted within the 10 s cooldown of that fetch, even while strangers
// keep sending made-up key IDs.
func TestRotationNotBlockedByStrangers(t *testing.T) {
	clk := newClock()
	iss, v := startIssuer(t, clk)
	h := newHarness(t, v)
	stranger := func(i int) string { return withKID(t, iss.MustMint("acme", "premium"), fmt.Sprintf("made-up-%d", i)) }
	unknown := refusal{http.StatusUnauthorized, "unknown_key", "invalid_token"}

	// t=0: a stranger's token makes the verifier look again, in vain.
	tok := stranger(0)
	checkRefused(t, h.bearer(t, tok), unknown, tok)

	// t=1s: the issuer publishes a new key and signs with it.
	clk.Add(time.Second)
	published := clk.Now()
	if err := iss.Rotate(false); err != nil {
		t.Fatal(err)
	}
	fresh := iss.MustMint("acme", "premium")

	// Strangers every 100 ms, and the new key's user retrying each second:
	// the user is in at the latest 10 s after publication.
	var acceptedAt time.Time
	for i := 1; clk.Now().Sub(published) <= 10*time.Second; i++ {
		tok := stranger(i)
		checkRefused(t, h.bearer(t, tok), unknown, tok)
		if i%10 == 0 && acceptedAt.IsZero() {
			if res := h.bearer(t, fresh); res.status == http.StatusOK {
				acceptedAt = clk.Now()
			}
		}
		clk.Add(100 * time.Millisecond)
	}
	if acceptedAt.IsZero() {
		t.Fatal("a token signed with a key published 10 s ago is still refused")
	}
	if d := acceptedAt.Sub(published); d > 10*time.Second {
		t.Errorf("new key accepted %v after publication, want at most 10s", d)
	}
}

// TestUnknownKeyFetchBudget counts JWK Set fetches: 300 concurrent tokens
// with unknown key IDs cost at most 2, and a steady stream of them at most
// one per 10 s.
func TestUnknownKeyFetchBudget(t *testing.T) {
	clk := newClock()
	iss, v := startIssuer(t, clk)
	mw := authz.Middleware(v)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("the handler ran")
	}))
	valid := iss.MustMint("acme", "premium")
	send := func(tok string) int {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "/", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		mw.ServeHTTP(w, req)
		return w.Code
	}

	before := iss.JWKSFetches()
	var wg sync.WaitGroup
	for i := range 300 {
		wg.Go(func() {
			if code := send(withKID(t, valid, fmt.Sprintf("burst-%d", i))); code != http.StatusUnauthorized {
				t.Errorf("unknown kid: status %d, want 401", code)
			}
		})
	}
	wg.Wait()
	if got := iss.JWKSFetches() - before; got > 2 {
		t.Errorf("300 concurrent unknown kids cost %d JWK Set fetches, want at most 2", got)
	}

	// Ten per second for a simulated minute.
	clk.Add(time.Minute)
	before = iss.JWKSFetches()
	for i := range 600 {
		send(withKID(t, valid, fmt.Sprintf("stream-%d", i)))
		clk.Add(100 * time.Millisecond)
	}
	if got := iss.JWKSFetches() - before; got > 6 {
		t.Errorf("a minute of unknown kids at 10/s cost %d JWK Set fetches, want at most 6 (one per 10 s)", got)
	}
}

// TestKeysNotForSignatures: a JWK Set key marked for encryption ("use":
// "enc", or "key_ops" without "verify") never verifies a token, and a token
// with a "crit" header is refused (RFC 7515, section 4.1.11).
func TestKeysNotForSignatures(t *testing.T) {
	clk := newClock()
	pub := &rsaKey().PublicKey
	jwk := func(kid string, extra map[string]any) map[string]any {
		k := map[string]any{
			"kty": "RSA", "kid": kid, "alg": "RS256",
			"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
			"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
		}
		for name, v := range extra {
			k[name] = v
		}
		return k
	}
	set, err := json.Marshal(map[string]any{"keys": []any{
		jwk("sig", map[string]any{"use": "sig"}),
		jwk("unmarked", nil),
		jwk("enc", map[string]any{"use": "enc"}),
		jwk("ops-encrypt", map[string]any{"key_ops": []string{"encrypt", "wrapKey"}}),
		jwk("ops-verify", map[string]any{"key_ops": []string{"verify"}}),
	}})
	if err != nil {
		t.Fatal(err)
	}
	v, err := authz.NewVerifier(t.Context(), staticIssuer, authz.WithJWKS(set),
		authz.WithAudience(staticAudience), authz.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, v)
	tokenFor := func(kid string) string {
		return sign(t, jwt.SigningMethodRS256, rsaKey(), kid, claimsFor(clk.Now(), "acme", "premium"))
	}
	for _, kid := range []string{"sig", "unmarked", "ops-verify"} {
		if res := h.bearer(t, tokenFor(kid)); res.status != http.StatusOK {
			t.Errorf("key %q: status %d, want 200", kid, res.status)
		}
	}
	for _, kid := range []string{"enc", "ops-encrypt"} {
		tok := tokenFor(kid)
		checkRefused(t, h.bearer(t, tok), refusal{http.StatusUnauthorized, "unknown_key", "invalid_token"}, tok)
	}

	iss, v2 := startIssuer(t, clk)
	h2 := newHarness(t, v2)
	for _, crit := range []any{[]string{"exp"}, []string{"b64"}, []string{}, "exp"} {
		tok := iss.MustMint("acme", "premium", authztest.WithHeader("crit", crit))
		checkRefused(t, h2.bearer(t, tok), refusal{http.StatusUnauthorized, "malformed_token", "invalid_token"}, tok)
	}
}

// TestRetiredKeyNotRemembered: the verifier remembers the keys it found
// in the JWK Set, but not past a refresh: once the set no longer holds a
// key, a token signed with it is refused, though the key verified a token
// a moment before (the token cache is off, so every token is verified).
func TestRetiredKeyNotRemembered(t *testing.T) {
	clk := newClock()
	iss, v := startIssuer(t, clk, authz.WithCacheSize(-1))
	h := newHarness(t, v)
	old := iss.MustMint("acme", "premium")
	for range 2 { // the second time, with the key remembered
		if res := h.bearer(t, old); res.status != http.StatusOK {
			t.Fatalf("status %d for a token of the published key", res.status)
		}
	}

	// The issuer retires the key; a token of the new key makes the
	// verifier fetch the set again.
	if err := iss.Rotate(true); err != nil {
		t.Fatal(err)
	}
	if res := h.bearer(t, iss.MustMint("acme", "premium")); res.status != http.StatusOK {
		t.Fatalf("status %d for a token of the new key", res.status)
	}
	checkRefused(t, h.bearer(t, old), refusal{http.StatusUnauthorized, "unknown_key", "invalid_token"}, old)
}
