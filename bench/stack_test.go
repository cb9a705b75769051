package bench_test

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tenancykit/tenancy/authz"
	"github.com/tenancykit/tenancy/tenant"
)

// stackCase is one way to serve the request stream.
type stackCase struct {
	name string
	h    http.Handler
	reqs []*http.Request // cycled through, one per request
}

// stackCases builds the stacks BenchmarkStack compares, around one app:
//
//   - bare: the app alone;
//   - tenancy-cached: access log → meter → authz → throttle (see
//     allLayers), the token already in the verifier's cache (a client
//     sending its token again);
//   - tenancy-fresh: the same stack with a new token on every request, the
//     cache missing every time (see freshTokens);
//   - anchor: auth0 JWT → httprate by tenant → otelhttp with the SDK →
//     slog access log, on the same token;
//   - anchor-noop-otel: the anchor with OpenTelemetry's default no-op
//     providers, a lower bound for a team that installs no SDK.
func stackCases(b testing.TB) []stackCase {
	f := getFixture(b)
	one := []*http.Request{newRequest(f.token)}
	fresh := make([]*http.Request, len(f.fresh))
	for i, tok := range f.fresh {
		fresh[i] = newRequest(tok)
	}

	ours := newTenancyParts(b, newApp(), f.verifier(b)).handler(allLayers...)
	oursFresh := newTenancyParts(b, newApp(), f.verifier(b, authz.WithCacheSize(freshCacheSize))).handler(allLayers...)
	tp, mp := otelProviders(b)
	return []stackCase{
		{"bare", newApp(), one},
		{"tenancy-cached", ours, one},
		{"tenancy-fresh", oursFresh, fresh},
		{"anchor", newAnchorStack(b, f, newApp(), tp, mp), one},
		{"anchor-noop-otel", newAnchorStack(b, f, newApp(), nil, nil), one},
	}
}

// BenchmarkStack serves the same request stream through each stack, one
// request at a time. The difference from bare is what a stack adds per
// request; bench/cmd/report computes it.
func BenchmarkStack(b *testing.B) {
	for _, sc := range stackCases(b) {
		serveOK(b, sc.h, sc.reqs[0])
		b.Run(sc.name, func(b *testing.B) {
			w := newDiscardWriter()
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				w.reset()
				sc.h.ServeHTTP(w, sc.reqs[i%len(sc.reqs)])
				if w.code != http.StatusOK {
					b.Fatalf("status %d", w.code)
				}
				i++
			}
		})
	}
}

// BenchmarkStackParallel is BenchmarkStack on every CPU at once, for
// contention between requests.
func BenchmarkStackParallel(b *testing.B) {
	for _, sc := range stackCases(b) {
		if sc.name == "anchor-noop-otel" {
			continue
		}
		b.Run(sc.name, func(b *testing.B) {
			var seq atomic.Int64
			var failed atomic.Int64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				w := newDiscardWriter()
				i := int(seq.Add(1)) * 257
				for pb.Next() {
					w.reset()
					sc.h.ServeHTTP(w, sc.reqs[i%len(sc.reqs)])
					if w.code != http.StatusOK {
						failed.Add(1)
					}
					i++
				}
			})
			if n := failed.Load(); n > 0 {
				b.Fatalf("%d requests were not answered 200", n)
			}
		})
	}
}

// BenchmarkStackLayers adds our middleware one at a time, outermost first,
// with a cached token, so that a regression can be traced to its layer.
func BenchmarkStackLayers(b *testing.B) {
	f := getFixture(b)
	req := newRequest(f.token)
	parts := newTenancyParts(b, newApp(), f.verifier(b))
	for n := 1; n <= len(allLayers); n++ {
		layers := allLayers[:n]
		h := parts.handler(layers...)
		serveOK(b, h, req)
		b.Run(strings.Join(layers, "+"), func(b *testing.B) {
			w := newDiscardWriter()
			b.ReportAllocs()
			for b.Loop() {
				w.reset()
				h.ServeHTTP(w, req)
			}
		})
	}
}

// BenchmarkStackWithoutLog serves the request stream through our stack
// without its access log (meter → authz → throttle), with the cached token
// and with a fresh one per request: what the layers other than logging
// add, apart from the cost of writing the line.
func BenchmarkStackWithoutLog(b *testing.B) {
	f := getFixture(b)
	fresh := make([]*http.Request, len(f.fresh))
	for i, tok := range f.fresh {
		fresh[i] = newRequest(tok)
	}
	layers := allLayers[1:]
	for _, sc := range []stackCase{
		{"cached", newTenancyParts(b, newApp(), f.verifier(b)).handler(layers...), []*http.Request{newRequest(f.token)}},
		{"fresh", newTenancyParts(b, newApp(), f.verifier(b, authz.WithCacheSize(freshCacheSize))).handler(layers...), fresh},
	} {
		serveOK(b, sc.h, sc.reqs[0])
		b.Run(sc.name, func(b *testing.B) {
			w := newDiscardWriter()
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				w.reset()
				sc.h.ServeHTTP(w, sc.reqs[i%len(sc.reqs)])
				if w.code != http.StatusOK {
					b.Fatalf("status %d", w.code)
				}
				i++
			}
		})
	}
}

// TestStacks checks that every stack answers the request stream with 200
// and that the app behind ours sees the token's tenant.
func TestStacks(t *testing.T) {
	for _, sc := range stackCases(t) {
		t.Run(sc.name, func(t *testing.T) {
			for _, req := range sc.reqs[:min(len(sc.reqs), 3)] {
				serveOK(t, sc.h, req)
			}
		})
	}
	f := getFixture(t)
	app := newApp()
	var seen tenant.Tenant
	app.HandleFunc("GET /whoami", func(w http.ResponseWriter, r *http.Request) {
		seen, _ = tenant.FromContext(r.Context())
		w.WriteHeader(http.StatusOK)
	})
	h := newTenancyParts(t, app, f.verifier(t)).handler(allLayers...)
	req := newRequest(f.token)
	req.URL.Path = "/whoami"
	serveOK(t, h, req)
	if seen.ID != benchTenant || seen.Tier.String() != benchTier {
		t.Errorf("the app saw tenant %q on tier %q, want %s on %s", seen.ID, seen.Tier.String(), benchTenant, benchTier)
	}
}

// TestFreshTokensMiss checks that the fresh-token stream never hits the
// verifier's cache. A hit reads the clock once; a verification reads it
// again to check the token's times.
func TestFreshTokensMiss(t *testing.T) {
	f := getFixture(t)
	var reads atomic.Int64
	clock := func() time.Time { reads.Add(1); return time.Now() }
	v := f.verifier(t, authz.WithCacheSize(freshCacheSize), authz.WithClock(clock))
	ctx := t.Context()

	// The clock's reads per verification, for a hit and a miss.
	if _, err := v.Verify(ctx, f.fresh[0]); err != nil {
		t.Fatal(err)
	}
	start := reads.Load()
	if _, err := v.Verify(ctx, f.fresh[0]); err != nil {
		t.Fatal(err)
	}
	perHit := reads.Load() - start
	start = reads.Load()
	if _, err := v.Verify(ctx, f.fresh[1]); err != nil {
		t.Fatal(err)
	}
	perMiss := reads.Load() - start
	if perMiss <= perHit {
		t.Fatalf("a miss reads the clock %d times and a hit %d: the test cannot tell them apart", perMiss, perHit)
	}

	// Three rounds through the stream, as the benchmark does.
	hits := 0
	for round := range 3 {
		for i, tok := range f.fresh {
			if round == 0 && i < 2 {
				continue
			}
			before := reads.Load()
			if _, err := v.Verify(ctx, tok); err != nil {
				t.Fatal(err)
			}
			if reads.Load()-before == perHit {
				hits++
			}
		}
	}
	if hits > 0 {
		t.Errorf("%d of %d verifications hit the cache; the fresh-token benchmark must always miss", hits, 3*len(f.fresh)-2)
	}
}
