package bench_test

import (
	"context"
	"net/http"
	"syscall"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tenancykit/tenancy/authz"
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
//     in a server, where each request was just parsed off the wire.
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
	for _, bc := range []struct {
		name   string
		tokens []string
		verify func(string) error
	}{
		{"jwt.Parse/one", one, func(t string) error { _, err := jwt.Parse(t, keyfunc); return err }},
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
