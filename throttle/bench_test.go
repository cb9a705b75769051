package throttle_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/tenancykit/tenancy/tenant"
	"github.com/tenancykit/tenancy/throttle"
)

// bigQuotas are quotas that never run out, so that a benchmark measures
// their bookkeeping and not refusals.
var bigQuotas = []throttle.Quota{
	{Limit: 1 << 40, Period: throttle.Hour},
	{Limit: 1 << 40, Period: throttle.Day},
	{Limit: 1 << 40, Period: throttle.Month},
}

// tenantID returns the i-th of a set of IDs shaped like the UUIDs identity
// providers hand out.
func tenantID(i int) string {
	return fmt.Sprintf("%08x-4b1d-4e57-9a3c-%012x", i, uint64(i)*2654435761)
}

func tenantIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = tenantID(i)
	}
	return ids
}

// BenchmarkMemoryStoreTake is the store's cost per decision over 100,000
// tenants already tracked, from every CPU at once.
func BenchmarkMemoryStoreTake(b *testing.B) {
	ids := tenantIDs(100_000)
	for _, bc := range []struct {
		name string
		lim  throttle.Limits
	}{
		{"rate", throttle.Limits{Rate: 1e6, Burst: 1 << 20}},
		{"quotas", throttle.Limits{Rate: 1e6, Burst: 1 << 20, Quotas: bigQuotas}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := newMemoryStore(b)
			ctx := context.Background()
			now := start
			for _, id := range ids {
				s.Take(ctx, id, bc.lim, 1, now)
			}
			var seq atomic.Int64
			var refused atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := int(seq.Add(1)) * 7919
				for pb.Next() {
					i++
					if res, _ := s.Take(ctx, ids[i%len(ids)], bc.lim, 1, now); !res.Allowed {
						refused.Add(1)
					}
				}
			})
			if n := refused.Load(); n != 0 {
				b.Fatalf("%d refused: the benchmark is not measuring the allowed path", n)
			}
		})
	}
}

// discardWriter is the cheapest ResponseWriter, so the benchmark measures
// the middleware and not the recorder.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }

// BenchmarkMiddleware is the middleware's cost on the allowed path over a
// bare handler, with the real clock, over 1,000 tenants.
func BenchmarkMiddleware(b *testing.B) {
	bare := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	fast := throttle.Limits{Rate: 1e9, Burst: 1e9}
	withQuotas := fast
	withQuotas.Quotas = bigQuotas
	for _, bc := range []struct {
		name     string
		lim      throttle.Limits
		opts     []throttle.MiddlewareOption
		parallel bool
	}{
		{name: "rate", lim: fast},
		{name: "quotas", lim: withQuotas},
		{name: "quotas+pk+legacy", lim: withQuotas, opts: []throttle.MiddlewareOption{
			throttle.WithPartitionKey([]byte("0123456789abcdef")), throttle.WithLegacyHeaders()}},
		{name: "rate/parallel", lim: fast, parallel: true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ts := tenant.MustTiers("solo")
			l, err := throttle.New(ts, map[string]throttle.Limits{"solo": bc.lim})
			if err != nil {
				b.Fatal(err)
			}
			h := l.Middleware(bc.opts...)(bare)
			reqs := make([]*http.Request, 1000)
			for i, id := range tenantIDs(len(reqs)) {
				tn := tenant.Tenant{ID: id, Tier: ts.MustLookup("solo")}
				reqs[i] = httptest.NewRequest(http.MethodGet, "/", nil)
				reqs[i] = reqs[i].WithContext(tenant.NewContext(reqs[i].Context(), tn))
			}
			b.ReportAllocs()
			if bc.parallel {
				var seq atomic.Int64
				b.RunParallel(func(pb *testing.PB) {
					w := &discardWriter{h: make(http.Header)}
					i := int(seq.Add(1)) * 131
					for pb.Next() {
						i++
						clear(w.h)
						h.ServeHTTP(w, reqs[i%len(reqs)])
					}
				})
				return
			}
			w := &discardWriter{h: make(http.Header)}
			i := 0
			for b.Loop() {
				clear(w.h)
				w.code = 0
				h.ServeHTTP(w, reqs[i%len(reqs)])
				i++
			}
			if w.code != 0 {
				b.Fatalf("status %d: not the allowed path", w.code)
			}
		})
	}
}

// hexID writes the i-th tenant ID of tenantID into b, without fmt.
func hexID(b *[36]byte, i int) {
	const digits = "0123456789abcdef"
	put := func(at, n int, v uint64) {
		for j := at + n - 1; j >= at; j-- {
			b[j] = digits[v&15]
			v >>= 4
		}
	}
	put(0, 8, uint64(i))
	copy(b[8:24], "-4b1d-4e57-9a3c-")
	put(24, 12, uint64(i)*2654435761)
}

// BenchmarkDecision is the cost of one decision (Limiter.Allow, a rate
// without quotas) for a tenant drawn at random among n that the store
// already tracks, with the tenant ID made afresh each time, as a request's
// is (one allocation of the benchmark's own). With 10,000 tenants the
// store's state stays in the CPU caches; with 1,000,000 every decision
// waits on main memory for each line of state it reads, which is what
// bounds it.
func BenchmarkDecision(b *testing.B) {
	ts := tenant.MustTiers("solo")
	for _, n := range []int{10_000, 1_000_000} {
		for _, parallel := range []bool{false, true} {
			name := fmt.Sprintf("tenants=%d", n)
			if parallel {
				name += "/parallel"
			}
			b.Run(name, func(b *testing.B) {
				l, err := throttle.New(ts, map[string]throttle.Limits{"solo": {Rate: 1e6, Burst: 1 << 20}})
				if err != nil {
					b.Fatal(err)
				}
				solo := ts.MustLookup("solo")
				ctx := context.Background()
				var id [36]byte
				for i := range n {
					hexID(&id, i)
					l.Allow(ctx, tenant.Tenant{ID: string(id[:]), Tier: solo}, 1)
				}
				b.ReportAllocs()
				if parallel {
					b.ResetTimer()
					var seq atomic.Uint64
					b.RunParallel(func(pb *testing.PB) {
						rng := rand.New(rand.NewPCG(seq.Add(1), 0))
						var id [36]byte
						for pb.Next() {
							hexID(&id, rng.IntN(n))
							l.Allow(ctx, tenant.Tenant{ID: string(id[:]), Tier: solo}, 1)
						}
					})
					return
				}
				rng := rand.New(rand.NewPCG(1, 0))
				for b.Loop() {
					hexID(&id, rng.IntN(n))
					l.Allow(ctx, tenant.Tenant{ID: string(id[:]), Tier: solo}, 1)
				}
			})
		}
	}
}

// BenchmarkMemoryStorePerTenant measures the heap a MemoryStore holds per
// tracked tenant, with 1,000,000 tenants of UUID-shaped IDs (which the
// store keeps as hashes, not strings), reported as B/tenant: a 64-byte
// entry and its place in the map, and 64 bytes more with quotas.
func BenchmarkMemoryStorePerTenant(b *testing.B) {
	const n = 1_000_000
	for _, bc := range []struct {
		name string
		lim  throttle.Limits
	}{
		{"rate", throttle.Limits{Rate: 100, Burst: 10}},
		{"quotas", throttle.Limits{Rate: 100, Burst: 10, Quotas: bigQuotas}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			var perTenant float64
			for b.Loop() {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				// The default cap: exactly room for all.
				s := newMemoryStore(b)
				for i := range n {
					// The ID is garbage once the store has its key.
					s.Take(ctx, tenantID(i), bc.lim, 1, start)
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				if s.Len() != n {
					b.Fatalf("tracked %d of %d", s.Len(), n)
				}
				perTenant = float64(after.HeapAlloc-before.HeapAlloc) / float64(s.Len())
				runtime.KeepAlive(s)
			}
			b.ReportMetric(perTenant, "B/tenant")
			if perTenant > 200 {
				b.Errorf("%.0f B per tenant, want at most 200", perTenant)
			}
		})
	}
}

// golang/go#65508 (and #71360): x/time/rate's Limiter.Allow reads the
// clock before taking its lock, and when a goroutine with an older time
// gets the lock after one with a newer time, advance() moves the
// limiter's last-update time backwards, so the next caller is credited
// again for time already paid out. The bucket here takes the time as an
// argument too, but its state only moves forward (the TAT is a maximum),
// so a late arrival can only be refused, never over-admitted.

// overAdmission replays arrivals whose clock readings reach the lock out of
// order, as goroutines preempted between time.Now and the mutex do, and
// returns what x/time/rate and the GCRA store admit, and the most any
// limiter may admit.
func overAdmission(seed uint64, ratePerSec float64, burst, arrivals int, gap, jitter time.Duration) (xtime, gcra, bound int) {
	type arrival struct{ read, lock time.Time }
	rng := rand.New(rand.NewPCG(seed, 0))
	as := make([]arrival, arrivals)
	for i := range as {
		read := start.Add(time.Duration(i) * gap)
		as[i] = arrival{read, read.Add(time.Duration(rng.Int64N(int64(jitter))))}
	}
	slices.SortStableFunc(as, func(a, b arrival) int { return a.lock.Compare(b.lock) })

	xl := rate.NewLimiter(rate.Limit(ratePerSec), burst)
	s, err := throttle.NewMemoryStore()
	if err != nil {
		panic(err)
	}
	lim := throttle.Limits{Rate: ratePerSec, Burst: burst}
	first, last := as[0].read, as[0].read
	for _, a := range as {
		if xl.AllowN(a.read, 1) {
			xtime++
		}
		if res, _ := s.Take(context.Background(), "k", lim, 1, a.read); res.Allowed {
			gcra++
		}
		if a.read.Before(first) {
			first = a.read
		}
		if a.read.After(last) {
			last = a.read
		}
	}
	bound = burst + int(last.Sub(first)/interval(ratePerSec))
	return xtime, gcra, bound
}

// TestOverAdmission65508 replays out-of-order clock readings: the GCRA
// store never admits more than burst + elapsed/interval; x/time/rate's
// count is logged for comparison.
func TestOverAdmission65508(t *testing.T) {
	const arrivals = 50_000
	tests := []struct {
		rate   float64
		burst  int
		gap    time.Duration // between clock readings: 1/arrival rate
		jitter time.Duration // how late a reading may reach the lock
	}{
		{rate: 1000, burst: 10, gap: 10 * time.Microsecond, jitter: 2 * time.Millisecond},
		{rate: 100, burst: 1, gap: 20 * time.Microsecond, jitter: 20 * time.Millisecond},
		{rate: 10, burst: 5, gap: 100 * time.Microsecond, jitter: 200 * time.Millisecond},
		{rate: 5000, burst: 10_000, gap: 10 * time.Microsecond, jitter: time.Millisecond}, // platinum
		{rate: 100_000, burst: 1000, gap: time.Microsecond, jitter: time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("rate=%v,burst=%d,jitter=%v", tt.rate, tt.burst, tt.jitter), func(t *testing.T) {
			x, g, bound := overAdmission(65508, tt.rate, tt.burst, arrivals, tt.gap, tt.jitter)
			t.Logf("over %v: at most %d may pass; x/time/rate admitted %d (%+d), GCRA %d (%+d)",
				arrivals*tt.gap, bound, x, x-bound, g, g-bound)
			if g > bound {
				t.Errorf("GCRA admitted %d, more than the %d allowed", g, bound)
			}
		})
	}
}

// BenchmarkOverAdmission65508 drives x/time/rate's Limiter.Allow and this
// package's Limiter.Allow, both on the real clock, from 64 goroutines, and
// reports how many each admitted beyond burst + rate·elapsed.
func BenchmarkOverAdmission65508(b *testing.B) {
	ts := tenant.MustTiers("solo")
	for _, lim := range []throttle.Limits{{Rate: 1000, Burst: 10}, {Rate: 100_000, Burst: 1000}} {
		for _, bc := range []struct {
			name  string
			allow func() func() bool
		}{
			{"x-time-rate", func() func() bool {
				return rate.NewLimiter(rate.Limit(lim.Rate), lim.Burst).Allow
			}},
			{"gcra", func() func() bool {
				l, err := throttle.New(ts, map[string]throttle.Limits{"solo": lim})
				if err != nil {
					b.Fatal(err)
				}
				tn := tenant.Tenant{ID: "acme", Tier: ts.MustLookup("solo")}
				ctx := context.Background()
				return func() bool {
					d, _ := l.Allow(ctx, tn, 1)
					return d.Allowed
				}
			}},
		} {
			b.Run(fmt.Sprintf("rate=%v/%s", lim.Rate, bc.name), func(b *testing.B) {
				allow := bc.allow()
				var admitted atomic.Int64
				b.SetParallelism(32) // 32 goroutines per CPU
				begin := time.Now()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if allow() {
							admitted.Add(1)
						}
					}
				})
				elapsed := time.Since(begin)
				bound := float64(lim.Burst) + math.Floor(elapsed.Seconds()*lim.Rate)
				b.ReportMetric(float64(admitted.Load()), "admitted")
				b.ReportMetric(max(float64(admitted.Load())-bound, 0), "over-admitted")
			})
		}
	}
}

// TestGCRAExactRealClock is the real-clock run of the benchmark above as a
// test: 64 goroutines asking as fast as they can for a bounded number of
// requests never get more than burst + rate·elapsed.
func TestGCRAExactRealClock(t *testing.T) {
	const (
		ratePerSec = 1000
		burst      = 10
		goroutines = 64
		each       = 2000
	)
	lim, tn := soloLimiter(t, newClock(start), throttle.Limits{Rate: ratePerSec, Burst: burst}, throttle.WithClock(time.Now))
	var admitted atomic.Int64
	var wg sync.WaitGroup
	begin := time.Now()
	for range goroutines {
		wg.Go(func() {
			for range each {
				if d, _ := lim.Allow(context.Background(), tn, 1); d.Allowed {
					admitted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(begin)
	bound := int64(burst) + int64(elapsed/interval(ratePerSec))
	if got := admitted.Load(); got > bound {
		t.Errorf("admitted %d in %v, more than burst + rate·elapsed = %d", got, elapsed, bound)
	}
}
