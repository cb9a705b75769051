package authz

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// TestSignature: signature finds what follows the last dot, as
// strings.LastIndexByte would, for any number of dots.
func TestSignature(t *testing.T) {
	for _, token := range []string{"", ".", "..", "a", "a.b", "a.b.c", "a.b.c.d", "hdr.payload.", ".sig", "a..b", strings.Repeat("x", 300) + "." + strings.Repeat("y", 500) + "." + strings.Repeat("z", 342)} {
		if got, want := signature(token), token[strings.LastIndexByte(token, '.')+1:]; got != want {
			t.Errorf("signature(%q) = %q, want %q", token, got, want)
		}
	}
}

// TestCacheHashCoversTheWholeToken: the cache's key of a token changes
// with any one byte of it, header, claims or signature: a key of part of
// the token would let a token with the same part, and other claims, find
// the entry and only the signature check stand in the way. Two caches key
// the same token differently: the hash is seeded per cache.
func TestCacheHashCoversTheWholeToken(t *testing.T) {
	c := newTokenCache(64)
	token := []byte(strings.Repeat("eyJhbGciOiJSUzI1NiJ9", 20) + "." + strings.Repeat("c2lnbmF0dXJl", 30))
	h := c.hash(string(token))
	for i := range token {
		was := token[i]
		token[i] ^= 1
		if c.hash(string(token)) == h {
			t.Fatalf("changing byte %d of %d left the cache key as it was", i, len(token))
		}
		token[i] = was
	}
	if c.hash(string(token)) != h {
		t.Fatal("the same token got another key")
	}
	if newTokenCache(64).hash(string(token)) == h {
		t.Error("two caches keyed a token the same: the hash is not seeded per cache")
	}
}

// TestExpiry: expiry reads exp as golang-jwt's GetExpirationTime does,
// to the second, for whole and fractional numbers, and has none where it
// has none; out of its own range it defers to golang-jwt.
func TestExpiry(t *testing.T) {
	for _, exp := range []any{nil, 1796139120.0, 1796139120.999, 1.5, 0.0, -3.0, 1e12, 1e300, "1796139120", json.Number("1796139120")} {
		claims := jwt.MapClaims{"sub": "alice"}
		if exp != nil {
			claims["exp"] = exp
		}
		got, ok := expiry(claims)
		want, err := claims.GetExpirationTime()
		switch {
		case err != nil || want == nil:
			if ok {
				t.Errorf("exp %v: expiry = %v, want none (GetExpirationTime: %v, %v)", exp, got, want, err)
			}
		case !ok || !got.Equal(want.Time):
			t.Errorf("exp %v: expiry = %v, %v, want %v", exp, got, ok, want.Time)
		}
	}
}
