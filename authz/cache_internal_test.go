package authz

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tenancykit/tenancy/tenant"
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

// TestCacheReusesEvictedSignatures: a full cache copies a new token's
// signature into the buffer of an entry it evicted, without allocating,
// and a reused buffer never lets the token it held before find the entry:
// every token finds its own tenant, or nothing.
func TestCacheReusesEvictedSignatures(t *testing.T) {
	c := newTokenCache(cacheShards) // one entry per shard: every put evicts
	now := time.Unix(1_000_000, 0)
	exp := now.Add(time.Hour)
	tokens := make([]string, 256)
	tenants := make([]tenant.Tenant, len(tokens))
	for i := range tokens {
		tokens[i] = fmt.Sprintf("hdr.claims-%04d.%s%04d", i, strings.Repeat(string(rune('a'+i%26)), 338), i)
		tenants[i].ID = fmt.Sprint(i)
	}
	put := func(i int) {
		tok := tokens[i]
		c.put(c.hash(tok), tok, &tenants[i], exp, c.generation(), now)
	}
	for round := range 2 {
		for i, tok := range tokens {
			put(i)
			if got, ok := c.get(c.hash(tok), tok, now); !ok || got.ID != fmt.Sprint(i) {
				t.Fatalf("round %d: token %d just stored: get = %v, %v", round, i, got, ok)
			}
		}
	}
	hits := 0
	for i, tok := range tokens {
		if got, ok := c.get(c.hash(tok), tok, now); ok {
			hits++
			if got.ID != fmt.Sprint(i) {
				t.Errorf("token %d found tenant %s", i, got.ID)
			}
		}
	}
	if n := c.len(); hits != n || n == 0 || n > cacheShards {
		t.Errorf("%d tokens found, %d entries: want as many, 1 to %d", hits, n, cacheShards)
	}
	i := 0
	if allocs := testing.AllocsPerRun(200, func() { put(i % len(tokens)); i++ }); allocs != 0 {
		t.Errorf("put into a full cache: %v allocations, want 0", allocs)
	}
}

// TestCacheReuseUnderConcurrency: readers and writers of a cache that
// evicts on every put never see a reused buffer as another token's match
// (and, under -race, never read one while it is written).
func TestCacheReuseUnderConcurrency(t *testing.T) {
	c := newTokenCache(cacheShards)
	now := time.Unix(1_000_000, 0)
	exp := now.Add(time.Hour)
	tokens := make([]string, 128)
	tenants := make([]tenant.Tenant, len(tokens))
	for i := range tokens {
		tokens[i] = fmt.Sprintf("hdr.claims-%04d.%s%04d", i, strings.Repeat("s", 338), i)
		tenants[i].ID = fmt.Sprint(i)
	}
	var wg sync.WaitGroup
	var wrong, hits atomic.Int64
	for w := range 4 {
		wg.Go(func() {
			for n := range 2000 {
				i := (n*7 + w*31) % len(tokens)
				h := c.hash(tokens[i])
				if w%2 == 0 {
					c.put(h, tokens[i], &tenants[i], exp, c.generation(), now)
				}
				if got, ok := c.get(h, tokens[i], now); ok {
					hits.Add(1)
					if got != &tenants[i] {
						wrong.Add(1)
					}
				}
			}
		})
	}
	wg.Wait()
	if wrong.Load() != 0 || hits.Load() == 0 {
		t.Errorf("%d of %d hits found another token's tenant (want 0 of some)", wrong.Load(), hits.Load())
	}
}
