package throttle_test

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/tenancykit/tenancy/throttle"
)

func take(t *testing.T, s throttle.Store, key string, lim throttle.Limits, cost int, now time.Time) throttle.Result {
	t.Helper()
	res, err := s.Take(context.Background(), key, lim, cost, now)
	if err != nil {
		t.Fatalf("Take(%q, %v): %v", key, now, err)
	}
	return res
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

// TestQuotaPeriods spends a quota to its last unit one second before the
// UTC period ends, is refused a nanosecond before, and finds it fresh at
// the first instant of the next period.
func TestQuotaPeriods(t *testing.T) {
	const limit = 5
	tests := []struct {
		name     string
		period   throttle.Period
		begin    string // inside the period, where the first units are spent
		boundary string // where the next period starts
		next     string // where the one after starts
	}{
		{"hour", throttle.Hour, "2026-03-14T13:00:00Z", "2026-03-14T14:00:00Z", "2026-03-14T15:00:00Z"},
		{"day", throttle.Day, "2026-03-14T00:00:00Z", "2026-03-15T00:00:00Z", "2026-03-16T00:00:00Z"},
		{"day over new year", throttle.Day, "2026-12-31T08:00:00Z", "2027-01-01T00:00:00Z", "2027-01-02T00:00:00Z"},
		{"month of 31 days", throttle.Month, "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z", "2026-05-01T00:00:00Z"},
		{"month December to January", throttle.Month, "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z", "2027-02-01T00:00:00Z"},
		{"month February in a leap year", throttle.Month, "2028-02-01T00:00:00Z", "2028-03-01T00:00:00Z", "2028-04-01T00:00:00Z"},
		{"month February in a common year", throttle.Month, "2027-02-01T00:00:00Z", "2027-03-01T00:00:00Z", "2027-04-01T00:00:00Z"},
		{"month January", throttle.Month, "2027-01-01T00:00:00Z", "2027-02-01T00:00:00Z", "2027-03-01T00:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newMemoryStore(t)
			lim := throttle.Limits{Rate: 1000, Burst: 100, Quotas: []throttle.Quota{{Limit: limit, Period: tt.period}}}
			begin, boundary, next := utc(tt.begin), utc(tt.boundary), utc(tt.next)

			res := take(t, s, "acme", lim, limit-1, begin)
			want := []throttle.QuotaState{{Period: tt.period, Limit: limit, Remaining: 1, ResetAfter: boundary.Sub(begin)}}
			if diff := cmp.Diff(want, res.Quotas); !res.Allowed || diff != "" {
				t.Fatalf("at the start of the period: allowed %v, quotas (-want +got):\n%s", res.Allowed, diff)
			}

			last := boundary.Add(-time.Second) // 23:59:59 for a day
			res = take(t, s, "acme", lim, 1, last)
			want[0].Remaining, want[0].ResetAfter = 0, time.Second
			if diff := cmp.Diff(want, res.Quotas); !res.Allowed || diff != "" {
				t.Fatalf("last unit at %v: allowed %v, quotas (-want +got):\n%s", last, res.Allowed, diff)
			}

			res = take(t, s, "acme", lim, 1, boundary.Add(-1))
			want[0].ResetAfter = 1
			if diff := cmp.Diff(want, res.Quotas); res.Allowed || res.Reason != throttle.ReasonQuota || res.RetryAfter != 1 || diff != "" {
				t.Fatalf("1ns before the boundary = allowed %v, reason %q, RetryAfter %v; want refused for quota, 1ns; quotas (-want +got):\n%s",
					res.Allowed, res.Reason, res.RetryAfter, diff)
			}

			res = take(t, s, "acme", lim, 1, boundary)
			want[0].Remaining, want[0].ResetAfter = limit-1, next.Sub(boundary)
			if diff := cmp.Diff(want, res.Quotas); !res.Allowed || diff != "" {
				t.Fatalf("at %v the quota is not fresh: allowed %v, quotas (-want +got):\n%s", boundary, res.Allowed, diff)
			}
		})
	}
}

// TestQuotaPeriodsAreUTC: a tenant ten hours east of UTC does not get a
// fresh day at its local midnight, only at UTC's.
func TestQuotaPeriodsAreUTC(t *testing.T) {
	east := time.FixedZone("UTC+10", 10*3600)
	s := newMemoryStore(t)
	lim := throttle.Limits{Rate: 1000, Burst: 100, Quotas: []throttle.Quota{{Limit: 1, Period: throttle.Day}}}

	take(t, s, "acme", lim, 1, time.Date(2026, 3, 14, 23, 0, 0, 0, east)) // 13:00 UTC
	res := take(t, s, "acme", lim, 1, time.Date(2026, 3, 15, 0, 0, 0, 0, east))
	if res.Allowed {
		t.Fatal("a fresh quota at local midnight, 14:00 UTC")
	}
	if want := 10 * time.Hour; res.RetryAfter != want {
		t.Errorf("RetryAfter = %v, want %v (until midnight UTC)", res.RetryAfter, want)
	}
	if res := take(t, s, "acme", lim, 1, time.Date(2026, 3, 15, 10, 0, 0, 0, east)); !res.Allowed {
		t.Error("refused at midnight UTC")
	}
}

// TestQuotaLateRequest: a request whose time was read just before midnight
// but that reaches the store after one from just after midnight must not
// reopen the day that has ended.
func TestQuotaLateRequest(t *testing.T) {
	s := newMemoryStore(t)
	lim := throttle.Limits{Rate: 1000, Burst: 100, Quotas: []throttle.Quota{{Limit: 2, Period: throttle.Day}}}
	before, after := utc("2026-03-14T23:59:59.999Z"), utc("2026-03-15T00:00:00.001Z")

	take(t, s, "acme", lim, 2, before) // the 14th is used up
	if res := take(t, s, "acme", lim, 1, after); !res.Allowed {
		t.Fatal("refused on the 15th")
	}
	late := take(t, s, "acme", lim, 1, before)
	after2 := take(t, s, "acme", lim, 1, after)
	after3 := take(t, s, "acme", lim, 1, after)
	admitted := 0
	for _, r := range []throttle.Result{late, after2, after3} {
		if r.Allowed {
			admitted++
		}
	}
	// The 14th had nothing left and the 15th has one unit left: one of
	// the three may pass, not more.
	if admitted != 1 {
		t.Errorf("%d of a late request and two more admitted, want 1 (late %v, then %v, %v)", admitted, late.Allowed, after2.Allowed, after3.Allowed)
	}
}

func TestQuotaStateAndRetry(t *testing.T) {
	at := utc("2026-03-14T12:34:56.5Z")
	quotas := []throttle.Quota{
		{Limit: 10, Period: throttle.Hour},
		{Limit: 3, Period: throttle.Day},
		{Limit: 1000, Period: throttle.Month},
	}
	toHour := 25*time.Minute + 3500*time.Millisecond
	toDay := 11*time.Hour + toHour
	toMonth := 17*24*time.Hour + toDay

	s := newMemoryStore(t)
	lim := throttle.Limits{Rate: 100, Burst: 10, Quotas: quotas}
	res := take(t, s, "acme", lim, 2, at)
	want := throttle.Result{
		Allowed:    true,
		Remaining:  8,
		ResetAfter: 2 * interval(100),
		Quotas: []throttle.QuotaState{
			{Period: throttle.Hour, Limit: 10, Remaining: 8, ResetAfter: toHour},
			{Period: throttle.Day, Limit: 3, Remaining: 1, ResetAfter: toDay},
			{Period: throttle.Month, Limit: 1000, Remaining: 998, ResetAfter: toMonth},
		},
	}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Fatalf("after spending 2 (-want +got):\n%s", diff)
	}

	// The day allows 1 more: a cost of 2 is refused until midnight, and
	// spends nothing anywhere.
	res = take(t, s, "acme", lim, 2, at)
	want.Allowed, want.Reason, want.RetryAfter = false, throttle.ReasonQuota, toDay
	if diff := cmp.Diff(want, res); diff != "" {
		t.Fatalf("cost 2 over the day's quota (-want +got):\n%s", diff)
	}

	// When the hour runs out first, the wait is until the next hour.
	s = newMemoryStore(t)
	lim.Quotas[0].Limit, lim.Quotas[1].Limit = 2, 5
	take(t, s, "acme", lim, 2, at)
	if res := take(t, s, "acme", lim, 1, at); res.Allowed || res.RetryAfter != toHour {
		t.Errorf("hour spent: allowed %v, RetryAfter %v; want refused, %v", res.Allowed, res.RetryAfter, toHour)
	}
	// When both run out, the longer wait wins.
	lim.Quotas[1].Limit = 2
	if res := take(t, s, "acme", lim, 1, at); res.Allowed || res.RetryAfter != toDay {
		t.Errorf("hour and day spent: allowed %v, RetryAfter %v; want refused, %v", res.Allowed, res.RetryAfter, toDay)
	}
}

// TestQuotaAndRateSpendIndependently: a request the quota refuses spends no
// rate token, and one the rate refuses spends no quota.
func TestQuotaAndRateSpendIndependently(t *testing.T) {
	s := newMemoryStore(t)
	day := []throttle.Quota{{Limit: 2, Period: throttle.Day}}

	t.Run("quota refusal spends no rate", func(t *testing.T) {
		lim := throttle.Limits{Rate: 1, Burst: 3, Quotas: day}
		take(t, s, "q", lim, 2, start)
		for range 5 {
			if res := take(t, s, "q", lim, 1, start); res.Allowed || res.Reason != throttle.ReasonQuota || res.Remaining != 1 {
				t.Fatalf("over quota: %+v, want refused for quota with 1 rate token left", res)
			}
		}
		// Without the quota, exactly the one token left is there.
		lim.Quotas = nil
		if res := take(t, s, "q", lim, 1, start); !res.Allowed {
			t.Fatal("the rate token left is gone: a quota refusal spent it")
		}
		if res := take(t, s, "q", lim, 1, start); res.Allowed {
			t.Fatal("two rate tokens left after the quota refusals, want one")
		}
	})

	t.Run("rate refusal spends no quota", func(t *testing.T) {
		lim := throttle.Limits{Rate: 1, Burst: 1, Quotas: []throttle.Quota{{Limit: 3, Period: throttle.Day}}}
		take(t, s, "r", lim, 1, start)
		for range 10 {
			if res := take(t, s, "r", lim, 1, start); res.Allowed || res.Reason != throttle.ReasonRate || res.Quotas[0].Remaining != 2 {
				t.Fatalf("over rate: %+v, want refused for rate with 2 of the quota left", res)
			}
		}
		for i, want := range []int64{1, 0} {
			res := take(t, s, "r", lim, 1, start.Add(time.Duration(i+1)*time.Second))
			if !res.Allowed || res.Quotas[0].Remaining != want {
				t.Fatalf("second %d: %+v, want allowed with %d of the quota left", i+1, res, want)
			}
		}
		if res := take(t, s, "r", lim, 1, start.Add(3*time.Second)); res.Allowed || res.Reason != throttle.ReasonQuota {
			t.Fatalf("after 3 units: %+v, want refused for quota", res)
		}
	})
}

func TestValidate(t *testing.T) {
	ok := throttle.Limits{Rate: 1, Burst: 1}
	with := func(f func(*throttle.Limits)) throttle.Limits {
		l := ok
		f(&l)
		return l
	}
	tests := []struct {
		name  string
		lim   throttle.Limits
		field string // the error must name it; "" means valid
	}{
		{"minimal", ok, ""},
		{"everything", throttle.Limits{Rate: 0.5, Burst: 3, MaxConcurrent: 4, Quotas: []throttle.Quota{
			{Limit: 10, Period: throttle.Hour}, {Limit: 100, Period: throttle.Day}, {Limit: 1000, Period: throttle.Month}}}, ""},
		{"fastest rate", with(func(l *throttle.Limits) { l.Rate = 1e9 }), ""},
		{"zero value", throttle.Limits{}, "Rate"},
		{"rate zero", with(func(l *throttle.Limits) { l.Rate = 0 }), "Rate"},
		{"rate negative", with(func(l *throttle.Limits) { l.Rate = -1 }), "Rate"},
		{"rate NaN", with(func(l *throttle.Limits) { l.Rate = math.NaN() }), "Rate"},
		{"rate +Inf", with(func(l *throttle.Limits) { l.Rate = math.Inf(1) }), "Rate"},
		{"rate -Inf", with(func(l *throttle.Limits) { l.Rate = math.Inf(-1) }), "Rate"},
		{"rate above 1e9", with(func(l *throttle.Limits) { l.Rate = 2e9 }), "Rate"},
		{"burst zero", with(func(l *throttle.Limits) { l.Burst = 0 }), "Burst"},
		{"burst negative", with(func(l *throttle.Limits) { l.Burst = -3 }), "Burst"},
		{"burst refilling over centuries", throttle.Limits{Rate: 1e-6, Burst: 10_000}, "Burst"},
		{"max concurrent negative", with(func(l *throttle.Limits) { l.MaxConcurrent = -1 }), "MaxConcurrent"},
		{"quota limit zero", with(func(l *throttle.Limits) { l.Quotas = []throttle.Quota{{Limit: 0, Period: throttle.Day}} }), "Quotas[0].Limit"},
		{"quota limit negative", with(func(l *throttle.Limits) { l.Quotas = []throttle.Quota{{Limit: -1, Period: throttle.Day}} }), "Quotas[0].Limit"},
		{"quota limit huge", with(func(l *throttle.Limits) { l.Quotas = []throttle.Quota{{Limit: 1 << 50, Period: throttle.Day}} }), "Quotas[0].Limit"},
		{"quota period zero", with(func(l *throttle.Limits) { l.Quotas = []throttle.Quota{{Limit: 1}} }), "Quotas[0].Period"},
		{"quota period out of range", with(func(l *throttle.Limits) { l.Quotas = []throttle.Quota{{Limit: 1, Period: 9}} }), "Quotas[0].Period"},
		{"duplicate period", with(func(l *throttle.Limits) {
			l.Quotas = []throttle.Quota{{Limit: 1, Period: throttle.Day}, {Limit: 5, Period: throttle.Hour}, {Limit: 2, Period: throttle.Day}}
		}), "Quotas[2]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.lim.Validate()
			switch {
			case tt.field == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.field != "" && err == nil:
				t.Errorf("Validate() = nil, want an error naming %s", tt.field)
			case tt.field != "" && !strings.HasPrefix(err.Error(), tt.field):
				t.Errorf("Validate() = %q, want it to start with the field %s", err, tt.field)
			}
		})
	}
}

// fill spends one unit for each of n keys named prefix0, prefix1, ... at now.
func fill(t *testing.T, s *throttle.MemoryStore, prefix string, n int, lim throttle.Limits, now time.Time) {
	t.Helper()
	for i := range n {
		take(t, s, prefix+strconv.Itoa(i), lim, 1, now)
	}
}

// tick asks for key "active" every TTL/512 from `from` for half a TTL and
// a little more: the time every shard takes to be swept once.
func tick(t *testing.T, s *throttle.MemoryStore, ttl time.Duration, from time.Time) {
	t.Helper()
	step := ttl / 512
	for i := range 300 {
		take(t, s, "active", throttle.Limits{Rate: 1e6, Burst: 1e6}, 1, from.Add(time.Duration(i)*step))
	}
}

// TestMemoryStoreSweepsOnTime: keys idle past the TTL whose state is back
// to empty are forgotten as time passes, while a single other key is
// asked for and no new key arrives; keys that still hold state are kept.
func TestMemoryStoreSweepsOnTime(t *testing.T) {
	const (
		ttl = time.Minute
		old = 10_000
	)
	rate := throttle.Limits{Rate: 100, Burst: 10}
	dayQuota := throttle.Limits{Rate: 100, Burst: 10, Quotas: []throttle.Quota{{Limit: 100, Period: throttle.Day}}}
	slow := throttle.Limits{Rate: 0.001, Burst: 1} // refills in 1000s
	tests := []struct {
		name     string
		oldLim   throttle.Limits
		oldAt    time.Time
		tickFrom time.Time
		wantLen  int
	}{
		{"idle and empty: swept", rate, start, start.Add(ttl + 1), 1},
		{"not yet idle: kept", rate, start, start, old + 1},
		{"quota spent this period: kept", dayQuota, start, start.Add(ttl + 1), old + 1},
		{"quota spent last period: swept", dayQuota, utc("2026-03-14T23:58:00Z"), utc("2026-03-15T00:00:30Z"), 1},
		{"bucket not refilled: kept", slow, start, start.Add(ttl + 1), old + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newMemoryStore(t, throttle.WithIdleTTL(ttl))
			fill(t, s, "old-", old, tt.oldLim, tt.oldAt)
			if n := s.Len(); n != old {
				t.Fatalf("Len() = %d after %d keys, want %d", n, old, old)
			}
			tick(t, s, ttl, tt.tickFrom)
			if n := s.Len(); n != tt.wantLen {
				t.Errorf("Len() = %d, want %d", n, tt.wantLen)
			}
			if n := s.Evicted(); n != 0 {
				t.Errorf("Evicted() = %d, want 0: nothing was over the cap", n)
			}
		})
	}
}

// TestMemoryStoreNoGoroutine: the store bounds itself without a
// background goroutine.
func TestMemoryStoreNoGoroutine(t *testing.T) {
	running := goleak.IgnoreCurrent()
	before := runtime.NumGoroutine()
	s := newMemoryStore(t, throttle.WithMaxKeys(500), throttle.WithIdleTTL(time.Second))
	lim := throttle.Limits{Rate: 10, Burst: 2}
	for i := range 5 {
		fill(t, s, "k"+strconv.Itoa(i)+"-", 2000, lim, start.Add(time.Duration(i)*time.Minute))
	}
	if after := runtime.NumGoroutine(); after > before {
		t.Errorf("goroutines: %d before the store, %d after using it", before, after)
	}
	goleak.VerifyNone(t, running)
	if s.Len() > 500 {
		t.Errorf("Len() = %d, want at most 500", s.Len())
	}
}

// TestMemoryStoreCap: the key count is the cap, exactly, however many keys
// come, and every key past it took the place of one that held state.
func TestMemoryStoreCap(t *testing.T) {
	const (
		maxKeys  = 1000
		inserted = 100_000
	)
	s := newMemoryStore(t, throttle.WithMaxKeys(maxKeys))
	// One unit spent per key, at a frozen time: every key holds state and
	// none is idle, so every key over the cap is an eviction.
	fill(t, s, "tenant-", inserted, throttle.Limits{Rate: 1, Burst: 5}, start)
	if n := s.Len(); n != maxKeys {
		t.Errorf("Len() = %d after %d keys, want the cap, %d", n, inserted, maxKeys)
	}
	if got, want := s.Evicted(), int64(inserted-maxKeys); got != want {
		t.Errorf("Evicted() = %d, want %d", got, want)
	}
}

// TestMemoryStoreNoEvictionBeforeCap: the cap is the store's, not a
// shard's: as many live keys as the cap are all kept (with a cap per
// shard, the fullest shards evicted live keys early), and the first key
// past it evicts one.
func TestMemoryStoreNoEvictionBeforeCap(t *testing.T) {
	for _, maxKeys := range []int{1, 300, 20_000} {
		s := newMemoryStore(t, throttle.WithMaxKeys(maxKeys))
		lim := throttle.Limits{Rate: 1, Burst: 5}
		fill(t, s, "live-", maxKeys, lim, start)
		if n, ev := s.Len(), s.Evicted(); n != maxKeys || ev != 0 {
			t.Errorf("cap %d: %d live keys: Len() = %d, Evicted() = %d; want all kept", maxKeys, maxKeys, n, ev)
		}
		take(t, s, "one-more", lim, 1, start)
		if n, ev := s.Len(), s.Evicted(); n != maxKeys || ev != 1 {
			t.Errorf("cap %d: one more: Len() = %d, Evicted() = %d; want %d and 1", maxKeys, n, ev, maxKeys)
		}
	}
}

// TestMemoryStoreEvictedDebtKept: a key evicted while in debt comes back
// to its debt, not to a full burst.
func TestMemoryStoreEvictedDebtKept(t *testing.T) {
	s := newMemoryStore(t, throttle.WithMaxKeys(1)) // every new key evicts
	lim := throttle.Limits{Rate: 1, Burst: 5}
	for range 5 {
		if !take(t, s, "victim", lim, 1, start).Allowed {
			t.Fatal("burst refused")
		}
	}
	// Another key takes its place, spends too, and is evicted in turn.
	at := start.Add(time.Millisecond)
	for range 5 {
		take(t, s, "other", lim, 1, at)
	}
	at = at.Add(time.Millisecond)
	res := take(t, s, "victim", lim, 1, at)
	if s.Evicted() != 2 {
		t.Fatalf("Evicted() = %d, want 2: the test did not evict both keys", s.Evicted())
	}
	// The burst was spent at start; a unit is back at start+1s.
	if res.Allowed || res.Reason != throttle.ReasonRate || res.RetryAfter != time.Second-2*time.Millisecond {
		t.Errorf("the victim back after its eviction: %+v; want refused for the rate, retry in 998ms", res)
	}
	if res := take(t, s, "victim", lim, 1, start.Add(time.Second)); !res.Allowed || res.Remaining != 0 {
		t.Errorf("at start+1s: %+v; want one unit, and only one", res)
	}
}

// TestMemoryStoreKeepsInFlight: a tenant with a request in flight keeps
// its concurrency count however hard the cap presses.
func TestMemoryStoreKeepsInFlight(t *testing.T) {
	clk := newClock(start)
	s := newMemoryStore(t, throttle.WithMaxKeys(1))
	lim, tn := soloLimiter(t, clk, throttle.Limits{Rate: 1000, Burst: 10, MaxConcurrent: 1}, throttle.WithMemoryStore(s))

	release, ok := lim.Acquire(tn)
	if !ok {
		t.Fatal("first Acquire refused")
	}
	ctx := context.Background()
	for i := range 10_000 {
		other := mustTenant(t, "other-"+strconv.Itoa(i), tn.Tier)
		clk.Advance(time.Millisecond) // the holder becomes the least recently seen
		if _, err := lim.Allow(ctx, other, 1); err != nil {
			t.Fatal(err)
		}
		if n := s.Len(); n > 2 {
			t.Fatalf("Len() = %d, want at most the cap and the key in flight", n)
		}
	}
	if _, ok := lim.Acquire(tn); ok {
		t.Fatal("second Acquire admitted: the key in flight was evicted and its count lost")
	}
	release()
	release2, ok := lim.Acquire(tn)
	if !ok {
		t.Fatal("Acquire refused after release")
	}
	release2()
}

// TestMemoryStoreChurn runs decisions, slots, sweeps and evictions at
// once, for the race detector, and checks that a key's slot count
// survives them all: a slot taken is never lost to an eviction.
func TestMemoryStoreChurn(t *testing.T) {
	clk := newClock(start)
	s := newMemoryStore(t, throttle.WithMaxKeys(64), throttle.WithIdleTTL(time.Second))
	lim, solo := soloLimiter(t, clk, throttle.Limits{Rate: 50, Burst: 3, MaxConcurrent: 1, Quotas: []throttle.Quota{{Limit: 1 << 30, Period: throttle.Hour}}}, throttle.WithMemoryStore(s))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 0))
			ctx := context.Background()
			for range 3000 {
				clk.Advance(time.Duration(rng.IntN(int(time.Millisecond))))
				tn := mustTenant(t, "k"+strconv.Itoa(rng.IntN(500)), solo.Tier)
				if _, err := lim.Allow(ctx, tn, 1); err != nil {
					t.Error(err)
					return
				}
				if release, ok := lim.Acquire(tn); ok {
					// While it holds its slot, the key's only slot is taken.
					if _, again := lim.Acquire(tn); again {
						t.Errorf("%s: a second slot while one is held", tn.ID)
					}
					release()
				}
			}
		})
	}
	wg.Wait()
	if n := s.Len(); n > 64 {
		t.Errorf("Len() = %d, want at most the cap once nothing is in flight", n)
	}
}

func TestNewMemoryStoreOptions(t *testing.T) {
	for name, opt := range map[string]throttle.MemoryOption{
		"WithMaxKeys": throttle.WithMaxKeys(-1),
		"WithIdleTTL": throttle.WithIdleTTL(-time.Second),
	} {
		t.Run(name+" negative", func(t *testing.T) {
			s, err := throttle.NewMemoryStore(opt)
			if err == nil || s != nil {
				t.Fatalf("NewMemoryStore = %v, %v; want an error", s, err)
			}
			if !strings.HasPrefix(err.Error(), "throttle: "+name) {
				t.Errorf("error %q does not start with \"throttle: %s\"", err, name)
			}
		})
	}
	// A nil option is ignored.
	if s := newMemoryStore(t, nil); s.Len() != 0 {
		t.Error("a new store is not empty")
	}

	// Zero means the default: a million keys, not none.
	t.Run("WithMaxKeys(0)", func(t *testing.T) {
		s := newMemoryStore(t, throttle.WithMaxKeys(0))
		fill(t, s, "tenant-", 2000, throttle.Limits{Rate: 1, Burst: 5}, start)
		if n, ev := s.Len(), s.Evicted(); n != 2000 || ev != 0 {
			t.Errorf("Len() = %d, Evicted() = %d after 2000 keys; want all kept under the default cap", n, ev)
		}
	})
	// Zero means the default: ten minutes, not an instant.
	t.Run("WithIdleTTL(0)", func(t *testing.T) {
		rate := throttle.Limits{Rate: 100, Burst: 10}
		const old = 1000
		for _, tc := range []struct {
			idle    time.Duration
			wantLen int
		}{
			{2 * time.Minute, old + 1},
			{throttle.DefaultIdleTTL + time.Minute, 1},
		} {
			s := newMemoryStore(t, throttle.WithIdleTTL(0))
			fill(t, s, "old-", old, rate, start)
			tick(t, s, throttle.DefaultIdleTTL, start.Add(tc.idle))
			if n := s.Len(); n != tc.wantLen {
				t.Errorf("keys idle for %v: Len() = %d, want %d", tc.idle, n, tc.wantLen)
			}
		}
	})
}

// wantPanic checks that f panics with a message prefixed "throttle:".
func wantPanic(t *testing.T, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		r := recover()
		if r == nil {
			t.Fatal("did not panic")
		}
		if msg, _ := r.(string); !strings.HasPrefix(msg, "throttle: ") {
			t.Errorf("panic %#v, want a string starting with %q", r, "throttle: ")
		}
	}()
	f()
}

func TestPeriodText(t *testing.T) {
	for _, p := range []throttle.Period{throttle.Hour, throttle.Day, throttle.Month} {
		b, err := p.MarshalText()
		if err != nil {
			t.Fatalf("%v.MarshalText: %v", p, err)
		}
		if string(b) != p.String() {
			t.Errorf("%d.MarshalText() = %q, String() = %q", p, b, p.String())
		}
		var back throttle.Period
		if err := back.UnmarshalText(b); err != nil || back != p {
			t.Errorf("UnmarshalText(%q) = %v, %v; want %v", b, back, err, p)
		}
	}

	for _, p := range []throttle.Period{0, -1, 4} {
		if b, err := p.MarshalText(); err == nil || !strings.HasPrefix(err.Error(), "throttle: ") {
			t.Errorf("Period(%d).MarshalText() = %q, %v; want a throttle: error", int(p), b, err)
		}
		if want := "Period(" + strconv.Itoa(int(p)) + ")"; p.String() != want {
			t.Errorf("String() = %q, want %q", p.String(), want)
		}
	}
	for _, s := range []string{"DAY", "Day"} {
		var p throttle.Period
		if err := p.UnmarshalText([]byte(s)); err != nil || p != throttle.Day {
			t.Errorf("UnmarshalText(%q) = %v, %v; periods are read case-insensitively, like tier names", s, p, err)
		}
	}
	for _, s := range []string{"", "week", "days", " day"} {
		p := throttle.Day
		if err := p.UnmarshalText([]byte(s)); err == nil || !strings.HasPrefix(err.Error(), "throttle: ") {
			t.Errorf("UnmarshalText(%q) = %v, want a throttle: error", s, err)
		}
		if p != throttle.Day {
			t.Errorf("UnmarshalText(%q) failed but changed the period to %v", s, p)
		}
	}

	// Limits travel as JSON configuration.
	lim := throttle.Limits{Rate: 2.5, Burst: 5, MaxConcurrent: 3, Quotas: []throttle.Quota{
		{Limit: 100, Period: throttle.Hour}, {Limit: 10_000, Period: throttle.Month}}}
	b, err := json.Marshal(lim)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"rate":2.5,"burst":5,"quotas":[{"limit":100,"period":"hour"},{"limit":10000,"period":"month"}],"max_concurrent":3}`; string(b) != want {
		t.Errorf("json.Marshal = %s\nwant %s", b, want)
	}
	var back throttle.Limits
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(lim, back); diff != "" {
		t.Errorf("JSON round trip (-want +got):\n%s", diff)
	}
	if err := json.Unmarshal([]byte(`{"rate":1,"burst":1,"quotas":[{"limit":1,"period":"fortnight"}]}`), &back); err == nil {
		t.Error("json.Unmarshal accepted the period \"fortnight\"")
	}
}
