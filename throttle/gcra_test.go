package throttle_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tenancykit/tenancy/tenant"
	"github.com/tenancykit/tenancy/throttle"
)

// TestAdmitsExactly drives one tenant that asks as fast as it can through a
// simulated clock stepping every millisecond, and checks after every step
// that the admissions so far are exactly burst + floor(elapsed/interval),
// with interval the whole number of nanoseconds the bucket uses.
func TestAdmitsExactly(t *testing.T) {
	const step = time.Millisecond
	tests := []struct {
		rate     float64
		burst    int
		duration time.Duration
		want     int // burst + floor(duration/interval), worked out by hand
	}{
		{rate: 1, burst: 1, duration: 10 * time.Second, want: 1 + 10},
		{rate: 5, burst: 10, duration: 10 * time.Second, want: 10 + 50},
		{rate: 50, burst: 100, duration: 10 * time.Second, want: 100 + 500},
		{rate: 500, burst: 1000, duration: 10 * time.Second, want: 1000 + 5000},
		{rate: 0.5, burst: 3, duration: 10 * time.Second, want: 3 + 5},
		{rate: 1000, burst: 1, duration: 10 * time.Second, want: 1 + 10000},
		// 1e9/7 rounds up to 142857143ns: 70 intervals take 10.00000001s,
		// so 10s hold 69, not the 70 that rate·T would suggest.
		{rate: 7, burst: 2, duration: 10 * time.Second, want: 2 + 69},
		// 1e9/3 rounds down to 333333333ns: 30 intervals fit in 9.99999999s.
		{rate: 3, burst: 4, duration: 10*time.Second + 500*time.Millisecond, want: 4 + 31},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("rate=%v,burst=%d", tt.rate, tt.burst), func(t *testing.T) {
			iv := interval(tt.rate)
			if tt.burst == 1 && iv%step != 0 {
				// With a burst of one the client must ask at the very
				// instant a token is due, or the rest of the step is lost.
				t.Fatalf("test setup: step %v does not divide interval %v", step, iv)
			}
			if got := tt.burst + int(tt.duration/iv); got != tt.want {
				t.Fatalf("test setup: burst + duration/interval = %d, table says %d", got, tt.want)
			}
			clk := newClock(start)
			lim, tn := soloLimiter(t, clk, throttle.Limits{Rate: tt.rate, Burst: tt.burst})
			ctx := context.Background()
			admitted := 0
			for elapsed := time.Duration(0); elapsed <= tt.duration; elapsed += step {
				clk.Set(start.Add(elapsed))
				for {
					d, err := lim.Allow(ctx, tn, 1)
					if err != nil {
						t.Fatalf("Allow: %v", err)
					}
					if !d.Allowed {
						if d.Reason != throttle.ReasonRate {
							t.Fatalf("at %v: refused with reason %q, want %q", elapsed, d.Reason, throttle.ReasonRate)
						}
						break
					}
					admitted++
				}
				if want := tt.burst + int(elapsed/iv); admitted != want {
					t.Fatalf("after %v: %d admitted, want exactly %d", elapsed, admitted, want)
				}
			}
			if admitted != tt.want {
				t.Errorf("admitted %d in %v, want exactly %d", admitted, tt.duration, tt.want)
			}
		})
	}
}

// TestAdmitsExactlyLateClient: a client that asks at times of its own,
// never at the instant a unit is due, is still admitted exactly
// burst + floor(elapsed/interval) times, at every instant, as long as it
// asks at least once every (burst-1) intervals: the bucket holds the units
// it was late for. A burst of 1 holds none, so every unit the client was
// late for is lost for good: at 100/s a client asking every 0.75 ms comes
// 0.5 ms late for each unit and gets one per 10.5 ms, 953 in 10 s rather
// than 1,001. That, not rounding (10 ms is a whole number of nanoseconds),
// is why a burst of 1 at 100/s admitted 929 in 10 s over HTTP: each
// admission waited for the client's next request. Tiers whose clients pace
// themselves at the rate need a burst of 2 or more.
func TestAdmitsExactlyLateClient(t *testing.T) {
	const duration = 10 * time.Second
	tests := []struct {
		name    string
		rate    float64
		burst   int
		step    func(rng *rand.Rand, iv time.Duration) time.Duration // until the client asks again
		want    int                                                  // over duration; 0: burst + floor(duration/interval)
		lateOK  bool                                                 // burst 1: the count is not burst + elapsed/interval
		wantGap time.Duration                                        // burst 1: between admissions
	}{
		{name: "burst 1, every 0.75ms", rate: 100, burst: 1,
			step: func(*rand.Rand, time.Duration) time.Duration { return 750 * time.Microsecond },
			want: 1 + int(duration/(10500*time.Microsecond)), lateOK: true, wantGap: 10500 * time.Microsecond},
		{name: "burst 2, every 0.75ms", rate: 100, burst: 2,
			step: func(*rand.Rand, time.Duration) time.Duration { return 750 * time.Microsecond }},
		{name: "burst 2, jitter up to an interval", rate: 100, burst: 2,
			step: func(rng *rand.Rand, iv time.Duration) time.Duration { return 1 + time.Duration(rng.Int64N(int64(iv))) }},
		{name: "burst 3 at 7/s, jitter up to two intervals", rate: 7, burst: 3,
			step: func(rng *rand.Rand, iv time.Duration) time.Duration {
				return 1 + time.Duration(rng.Int64N(int64(2*iv)))
			}},
		{name: "burst 10 at 5000/s, every 0.37ms", rate: 5000, burst: 10,
			step: func(*rand.Rand, time.Duration) time.Duration { return 370 * time.Microsecond }},
		{name: "burst 2 at 0.5/s, every 1.3s", rate: 0.5, burst: 2,
			step: func(*rand.Rand, time.Duration) time.Duration { return 1300 * time.Millisecond }},
		{name: "burst 100 at 50/s, jitter up to 99 intervals", rate: 50, burst: 100,
			step: func(rng *rand.Rand, iv time.Duration) time.Duration {
				return 1 + time.Duration(rng.Int64N(int64(99*iv)))
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			iv := interval(tt.rate)
			rng := rand.New(rand.NewPCG(1001, 929))
			clk := newClock(start)
			lim, tn := soloLimiter(t, clk, throttle.Limits{Rate: tt.rate, Burst: tt.burst})
			ctx := context.Background()
			admitted := 0
			var last time.Duration
			// The client asks at 0, then after each step, and last at
			// exactly duration.
			next := func(elapsed time.Duration) time.Duration {
				if elapsed == duration {
					return duration + 1
				}
				return min(elapsed+tt.step(rng, iv), duration)
			}
			for elapsed := time.Duration(0); elapsed <= duration; elapsed = next(elapsed) {
				clk.Set(start.Add(elapsed))
				for {
					d, err := lim.Allow(ctx, tn, 1)
					if err != nil {
						t.Fatal(err)
					}
					if !d.Allowed {
						break
					}
					if admitted > 0 && tt.wantGap != 0 && elapsed-last != tt.wantGap {
						t.Fatalf("admitted at %v, %v after the last, want %v", elapsed, elapsed-last, tt.wantGap)
					}
					admitted, last = admitted+1, elapsed
				}
				if want := tt.burst + int(elapsed/iv); !tt.lateOK && admitted != want {
					t.Fatalf("after %v: %d admitted, want exactly %d", elapsed, admitted, want)
				}
			}
			want := tt.want
			if want == 0 {
				want = tt.burst + int(duration/iv)
			}
			if admitted != want {
				t.Errorf("admitted %d in %v, want exactly %d", admitted, duration, want)
			}
		})
	}
}

// TestRetryAfterIsExact checks that a refused request retried at exactly
// now+RetryAfter is admitted, and one nanosecond earlier is not.
func TestRetryAfterIsExact(t *testing.T) {
	tests := []struct {
		name   string
		lim    throttle.Limits
		cost   int
		offset time.Duration // after the burst was spent, before asking
	}{
		{name: "1/s at once", lim: throttle.Limits{Rate: 1, Burst: 1}, cost: 1},
		{name: "5/s part way", lim: throttle.Limits{Rate: 5, Burst: 10}, cost: 1, offset: 73 * time.Millisecond},
		{name: "0.4/s", lim: throttle.Limits{Rate: 0.4, Burst: 2}, cost: 1, offset: time.Second},
		{name: "7/s odd interval", lim: throttle.Limits{Rate: 7, Burst: 3}, cost: 1, offset: 1},
		{name: "cost 3", lim: throttle.Limits{Rate: 50, Burst: 10}, cost: 3, offset: 15 * time.Millisecond},
		{name: "cost equals burst", lim: throttle.Limits{Rate: 1000, Burst: 4}, cost: 4, offset: 999 * time.Microsecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock(start)
			lim, tn := soloLimiter(t, clk, tt.lim)
			ctx := context.Background()
			for i := range tt.lim.Burst {
				if d, _ := lim.Allow(ctx, tn, 1); !d.Allowed {
					t.Fatalf("request %d of the burst refused", i+1)
				}
			}
			clk.Advance(tt.offset)
			d, err := lim.Allow(ctx, tn, tt.cost)
			if err != nil || d.Allowed {
				t.Fatalf("Allow after the burst = %+v, %v; want a refusal", d, err)
			}
			// The bucket is empty at start and fills one unit per interval.
			iv := interval(tt.lim.Rate)
			if want := time.Duration(tt.cost)*iv - tt.offset; d.RetryAfter != want {
				t.Errorf("RetryAfter = %v, want %v", d.RetryAfter, want)
			}
			retryAt := clk.Now().Add(d.RetryAfter)

			clk.Set(retryAt.Add(-1))
			if d, _ := lim.Allow(ctx, tn, tt.cost); d.Allowed {
				t.Fatalf("admitted 1ns before now+RetryAfter")
			} else if d.RetryAfter != 1 {
				t.Errorf("1ns before: RetryAfter = %v, want 1ns", d.RetryAfter)
			}
			clk.Set(retryAt)
			if d, _ := lim.Allow(ctx, tn, tt.cost); !d.Allowed {
				t.Fatalf("refused at exactly now+RetryAfter (RetryAfter %v)", d.RetryAfter)
			}
		})
	}
}

func TestRemainingAndCost(t *testing.T) {
	clk := newClock(start)
	lim, tn := soloLimiter(t, clk, throttle.Limits{Rate: 10, Burst: 5})
	ctx := context.Background()
	iv := interval(10)

	type step struct {
		Cost       int
		Allowed    bool
		Remaining  int
		RetryAfter time.Duration
		ResetAfter time.Duration
	}
	var got []step
	ask := func(cost int) {
		d, err := lim.Allow(ctx, tn, cost)
		if err != nil {
			t.Fatalf("Allow: %v", err)
		}
		got = append(got, step{d.Cost, d.Allowed, d.Remaining, d.RetryAfter, d.ResetAfter})
	}
	for range 6 {
		ask(1)
	}
	want := []step{
		{1, true, 4, 0, 1 * iv},
		{1, true, 3, 0, 2 * iv},
		{1, true, 2, 0, 3 * iv},
		{1, true, 1, 0, 4 * iv},
		{1, true, 0, 0, 5 * iv},
		{1, false, 0, iv, 5 * iv},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("counting down a burst of 5 (-want +got):\n%s", diff)
	}

	// Cost n spends n; a cost above the burst is spent as the burst.
	got = nil
	clk.Advance(5 * iv) // full again
	ask(3)
	ask(2)
	clk.Advance(5 * iv)
	ask(9) // clamped to 5 by the Limiter
	clk.Advance(5 * iv)
	ask(0)  // at least 1
	ask(-4) // at least 1
	want = []step{
		{3, true, 2, 0, 3 * iv},
		{2, true, 0, 0, 5 * iv},
		{5, true, 0, 0, 5 * iv},
		{1, true, 4, 0, 1 * iv},
		{1, true, 3, 0, 2 * iv},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("costs (-want +got):\n%s", diff)
	}
}

// TestCostAboveBurstStore shows why the Limiter clamps: the bucket itself
// never admits a cost above its burst, not even when full.
func TestCostAboveBurstStore(t *testing.T) {
	s := newMemoryStore(t)
	lim := throttle.Limits{Rate: 10, Burst: 5}
	res, err := s.Take(context.Background(), "k", lim, 6, start)
	if err != nil {
		t.Fatal(err)
	}
	if res.Allowed || res.Reason != throttle.ReasonRate {
		t.Errorf("Take(cost 6, burst 5) on a full bucket = %+v, want refused for rate", res)
	}
	// It spent nothing: the full burst is still there.
	res, _ = s.Take(context.Background(), "k", lim, 5, start)
	if !res.Allowed || res.Remaining != 0 {
		t.Errorf("Take(cost 5) after = %+v, want allowed with 0 remaining", res)
	}
}

// TestConcurrentOneKey hammers one tenant from 64 goroutines at a frozen
// time: exactly the burst is admitted; after k intervals, exactly k more.
func TestConcurrentOneKey(t *testing.T) {
	const (
		goroutines = 64
		burst      = 50
		rate       = 100
		k          = 7
	)
	clk := newClock(start)
	lim, tn := soloLimiter(t, clk, throttle.Limits{Rate: rate, Burst: burst})

	hammer := func(per int) int64 {
		var admitted atomic.Int64
		var wg sync.WaitGroup
		begin := make(chan struct{})
		for range goroutines {
			wg.Go(func() {
				<-begin
				for range per {
					d, err := lim.Allow(context.Background(), tn, 1)
					if err != nil {
						t.Error(err)
						return
					}
					if d.Allowed {
						admitted.Add(1)
					}
				}
			})
		}
		close(begin)
		wg.Wait()
		return admitted.Load()
	}

	if got := hammer(2 * burst); got != burst {
		t.Fatalf("%d goroutines at a frozen time admitted %d, want exactly the burst %d", goroutines, got, burst)
	}
	clk.Advance(k * interval(rate))
	if got := hammer(2 * k); got != k {
		t.Fatalf("after %d intervals: %d more admitted, want exactly %d", k, got, k)
	}
	if got := hammer(2); got != 0 {
		t.Fatalf("frozen again: %d more admitted, want 0", got)
	}
}

// TestConcurrentManyKeys does the same over 1,000 tenants at once: every
// tenant gets exactly its own burst, then exactly k more.
func TestConcurrentManyKeys(t *testing.T) {
	const (
		goroutines = 8
		keys       = 1000
		burst      = 5
		rate       = 20
		k          = 2
	)
	clk := newClock(start)
	lim, solo := soloLimiter(t, clk, throttle.Limits{Rate: rate, Burst: burst})
	tenants := make([]tenantWithCount, keys)
	for i := range tenants {
		tenants[i].t = mustTenant(t, "tenant-"+strconv.Itoa(i), solo.Tier)
	}

	round := func(attempts int) {
		var wg sync.WaitGroup
		begin := make(chan struct{})
		for g := range goroutines {
			wg.Go(func() {
				<-begin
				for a := range attempts {
					for j := range keys {
						// Each goroutine walks the tenants from a different place.
						tc := &tenants[(j+g*keys/goroutines+a)%keys]
						d, err := lim.Allow(context.Background(), tc.t, 1)
						if err != nil {
							t.Error(err)
							return
						}
						if d.Allowed {
							tc.admitted.Add(1)
						}
					}
				}
			})
		}
		close(begin)
		wg.Wait()
	}
	check := func(want int64) {
		t.Helper()
		bad := 0
		for i := range tenants {
			if got := tenants[i].admitted.Load(); got != want {
				if bad++; bad <= 5 {
					t.Errorf("tenant %d: %d admitted, want exactly %d", i, got, want)
				}
			}
		}
		if bad > 0 {
			t.FailNow()
		}
	}

	round(burst)
	check(burst)
	clk.Advance(k * interval(rate))
	round(k)
	check(burst + k)
}

type tenantWithCount struct {
	t        tenant.Tenant
	admitted atomic.Int64
}

// An upgraded tenant carries its debt over in units, not in time: spent on
// a slow tier, it is not locked out of a fast one for the slow refill time.
func TestUpgradeCarriesDebtInUnits(t *testing.T) {
	s := newMemoryStore(t)
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	slow := throttle.Limits{Rate: 1, Burst: 60}
	for range 60 {
		if r, _ := s.Take(ctx, "acme", slow, 1, now); !r.Allowed {
			t.Fatal("burst refused")
		}
	}
	if r, _ := s.Take(ctx, "acme", slow, 1, now); r.Allowed || r.RetryAfter != time.Second {
		t.Fatalf("slow tier after its burst: %+v", r)
	}
	fast := throttle.Limits{Rate: 100, Burst: 100}
	if r, _ := s.Take(ctx, "acme", fast, 1, now); !r.Allowed || r.Remaining != 39 {
		t.Fatalf("after the upgrade: %+v; want allowed with 100-60-1 = 39 left", r)
	}
	// A downgrade carries the debt the other way, and never reports a
	// negative remainder.
	if r, _ := s.Take(ctx, "acme", slow, 1, now); r.Allowed || r.Remaining != 0 || r.RetryAfter != 2*time.Second {
		t.Fatalf("after the downgrade: %+v; want 61 units owed at 1/s against a burst of 60", r)
	}
}
