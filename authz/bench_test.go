package authz_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tenancykit/tenancy/authz"
	"github.com/tenancykit/tenancy/authz/authztest"
	"github.com/tenancykit/tenancy/tenant"
)

// discardWriter is a ResponseWriter that keeps nothing, so that benchmarks
// measure the middleware rather than a recorder.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}

// benchSetup returns a verifier whose cache already holds the token of the
// request it returns, and the handler every benchmark ends in.
func benchSetup(b *testing.B) (*authz.Verifier, *http.Request, http.Handler) {
	iss := authztest.Start(b)
	v := iss.Verifier(b)
	tok := iss.MustMint("acme", "premium", authztest.WithRoles("admin"), authztest.WithScopes("orders:read"))
	if _, err := v.Verify(b.Context(), tok); err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/orders", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	return v, req, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
}

// checkServes fails the benchmark unless h lets req through with a tenant.
func checkServes(b *testing.B, mw func(http.Handler) http.Handler, req *http.Request) {
	ok := false
	mw(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		_, ok = tenant.FromContext(r.Context())
	})).ServeHTTP(&discardWriter{h: http.Header{}}, req)
	if !ok {
		b.Fatal("the middleware did not let the benchmark's request through")
	}
}

// BenchmarkMiddlewareCached measures authz.Middleware for a token already
// in the cache. The bare sub-benchmark is the same handler without it: the
// difference is the middleware's overhead.
func BenchmarkMiddlewareCached(b *testing.B) {
	v, req, bare := benchSetup(b)
	mw := authz.Middleware(v)
	checkServes(b, mw, req)
	for _, bb := range []struct {
		name string
		h    http.Handler
	}{
		{"bare", bare},
		{"authz", mw(bare)},
	} {
		b.Run(bb.name, func(b *testing.B) {
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				bb.h.ServeHTTP(w, req)
			}
		})
	}
}

// BenchmarkMiddlewareCachedParallel is BenchmarkMiddlewareCached/authz on
// every CPU, for contention in the cache.
func BenchmarkMiddlewareCachedParallel(b *testing.B) {
	v, req, bare := benchSetup(b)
	mw := authz.Middleware(v)
	checkServes(b, mw, req)
	h := mw(bare)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		w := &discardWriter{h: http.Header{}}
		for pb.Next() {
			h.ServeHTTP(w, req)
		}
	})
}

// BenchmarkVerifyUncached compares a verification without the cache to
// golang-jwt's jwt.Parse of the same token with the same key: what authz
// adds is key lookup by kid, claim checks and mapping to a tenant.
func BenchmarkVerifyUncached(b *testing.B) {
	iss := authztest.Start(b)
	v := iss.Verifier(b, authz.WithCacheSize(-1))
	tok := iss.MustMint("acme", "premium", authztest.WithRoles("admin"), authztest.WithScopes("orders:read"))
	key := iss.PublicKey()
	b.Run("authz", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.Verify(b.Context(), tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("jwt.Parse", func(b *testing.B) {
		keyfunc := func(*jwt.Token) (any, error) { return key, nil }
		b.ReportAllocs()
		for b.Loop() {
			if _, err := jwt.Parse(tok, keyfunc); err != nil {
				b.Fatal(err)
			}
		}
	})
}
