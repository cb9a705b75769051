package bench_test

import (
	"context"
	"net/http"
	"syscall"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tenancykit/tenancy/authz"
	"github.com/tenancykit/tenancy/authz/authztest"
)

// BenchmarkFreshPath takes Stack/tenancy-fresh apart, to find what a token
// that misses the cache costs beyond golang-jwt's jwt.Parse of it. Each
// name is what/tokens:
//
//   - jwt.Parse: golang-jwt alone; uncached: Verifier.Verify without its
//     cache; cache32: through the cache of freshCacheSize, which misses
//     and stores every token; stack-uncached, stack-cache32: the whole
//     stack (allLayers) around those verifiers;
//   - one: the same token (or request) every time, hot in the CPU's caches;
//     fresh: the freshTokens tokens (or requests) in turn, as in
//     Stack/tenancy-fresh; swap: one request whose Authorization header
//     takes the fresh tokens in turn, so that only the token is new, as
//     in a server, where each request was just parsed off the wire;
//     hs256: the fresh tokens' claims signed with HS256, whose check
//     costs a few hundred nanoseconds instead of RS256's 20 µs or so, so
//     that what the stack adds to golang-jwt stands out of the noise of
//     the signature check.
//
// Besides ns/op it reports cpu-ns/op, the CPU time of the process per
// operation (the garbage collector's included), which other work on the
// machine disturbs less than wall time.
func BenchmarkFreshPath(b *testing.B) {
	f := getFixture(b)
	ctx := context.Background()
	key := f.iss.PublicKey()
	keyfunc := func(*jwt.Token) (any, error) { return key, nil }
	uncached := f.verifier(b, authz.WithCacheSize(-1))
	cache32 := f.verifier(b, authz.WithCacheSize(freshCacheSize))
	one := []string{f.token}
	bearers := make([]string, len(f.fresh))
	fresh := make([]*http.Request, len(f.fresh))
	for i, tok := range f.fresh {
		bearers[i] = "Bearer " + tok
		fresh[i] = newRequest(tok)
	}
	hs256, hsVerifier := hs256Tokens(b, f, authz.WithCacheSize(freshCacheSize))
	hsKeyfunc := func(*jwt.Token) (any, error) { return hs256Secret, nil }
	for _, bc := range []struct {
		name   string
		tokens []string
		verify func(string) error
	}{
		{"jwt.Parse/one", one, func(t string) error { _, err := jwt.Parse(t, keyfunc); return err }},
		{"jwt.Parse/hs256", hs256, func(t string) error { _, err := jwt.Parse(t, hsKeyfunc); return err }},
		{"jwt.Parse/fresh", f.fresh, func(t string) error { _, err := jwt.Parse(t, keyfunc); return err }},
		{"uncached/one", one, func(t string) error { _, err := uncached.Verify(ctx, t); return err }},
		{"uncached/fresh", f.fresh, func(t string) error { _, err := uncached.Verify(ctx, t); return err }},
		{"cache32/fresh", f.fresh, func(t string) error { _, err := cache32.Verify(ctx, t); return err }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			defer reportCPU(b)()
			i := 0
			for b.Loop() {
				if err := bc.verify(bc.tokens[i%len(bc.tokens)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
	stackUncached := newTenancyParts(b, newApp(), f.verifier(b, authz.WithCacheSize(-1))).handler(allLayers...)
	stackCache32 := newTenancyParts(b, newApp(), f.verifier(b, authz.WithCacheSize(freshCacheSize))).handler(allLayers...)
	swap := newRequest(f.token)
	hsRequests := make([]*http.Request, len(hs256))
	for i, tok := range hs256 {
		hsRequests[i] = newRequest(tok)
	}
	for _, sc := range []struct {
		name string
		h    http.Handler
		reqs []*http.Request
		swap bool
	}{
		{"stack-uncached/one", stackUncached, []*http.Request{newRequest(f.token)}, false},
		{"stack-uncached/swap", stackUncached, []*http.Request{swap}, true},
		{"stack-uncached/fresh", stackUncached, fresh, false},
		{"stack-cache32/swap", stackCache32, []*http.Request{swap}, true},
		{"stack-cache32/fresh", stackCache32, fresh, false},
		{"stack-cache32/hs256", newTenancyParts(b, newApp(), hsVerifier).handler(allLayers...), hsRequests, false},
	} {
		serveOK(b, sc.h, sc.reqs[0])
		b.Run(sc.name, func(b *testing.B) {
			w := newDiscardWriter()
			b.ReportAllocs()
			defer reportCPU(b)()
			i := 0
			for b.Loop() {
				w.reset()
				r := sc.reqs[i%len(sc.reqs)]
				if sc.swap {
					r.Header["Authorization"][0] = bearers[i%len(bearers)]
				}
				sc.h.ServeHTTP(w, r)
				if w.code != http.StatusOK {
					b.Fatalf("status %d", w.code)
				}
				i++
			}
		})
	}
}

// hs256Secret signs the HS256 tokens of hs256Tokens.
var hs256Secret = []byte("bench-secret-of-thirty-two-bytes")

// hs256Tokens returns the fresh tokens' claims signed with HS256 instead,
// and a verifier of them (with opts), closed when b ends.
func hs256Tokens(b *testing.B, f *fixture, opts ...authz.Option) ([]string, *authz.Verifier) {
	b.Helper()
	tokens := make([]string, len(f.fresh))
	for i, fresh := range f.fresh {
		claims := jwt.MapClaims{}
		if _, _, err := jwt.NewParser().ParseUnverified(fresh, claims); err != nil {
			b.Fatal(err)
		}
		var err error
		if tokens[i], err = jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(hs256Secret); err != nil {
			b.Fatal(err)
		}
	}
	opts = append([]authz.Option{authz.WithAlgorithms("HS256"), authz.WithHMACSecret(hs256Secret),
		authz.WithAudience(authztest.DefaultAudience)}, opts...)
	v, err := authz.NewVerifier(context.Background(), f.iss.URL(), opts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { v.Close() })
	return tokens, v
}

// reportCPU starts counting the process's CPU time; the function it
// returns reports it per operation as cpu-ns/op.
func reportCPU(b *testing.B) func() {
	start := cpuTime()
	return func() { b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op") }
}

// cpuTime is the user and system CPU time of the process so far, in
// nanoseconds.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
