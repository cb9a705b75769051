package redisstore_test

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"
	"github.com/tenancykit/tenancy/throttle"
)

// step is one request of a script run through both stores: the clock
// moves by advance (backwards too, as clocks read out of order do), then
// key asks for cost units under lim, n times.
type step struct {
	advance time.Duration
	key     string // "acme" when empty
	lim     throttle.Limits
	cost    int // 1 when 0
	n       int // 1 when 0
}

var (
	hour  = throttle.Quota{Limit: 3, Period: throttle.Hour}
	day   = throttle.Quota{Limit: 5, Period: throttle.Day}
	month = throttle.Quota{Limit: 7, Period: throttle.Month}
)

// scripts are the sequences both stores must answer alike.
var scripts = map[string]struct {
	start time.Time
	steps []step
}{
	"burst then refill": {steps: []step{
		{lim: throttle.Limits{Rate: 10, Burst: 5}, n: 7},
		{advance: 100 * time.Millisecond, lim: throttle.Limits{Rate: 10, Burst: 5}, n: 2},
		{advance: 250 * time.Millisecond, lim: throttle.Limits{Rate: 10, Burst: 5}, n: 4},
		{advance: time.Second, lim: throttle.Limits{Rate: 10, Burst: 5}, n: 6},
	}},
	"fractional rate": {steps: []step{
		{lim: throttle.Limits{Rate: 0.5, Burst: 2}, n: 3},
		{advance: 1900 * time.Millisecond, lim: throttle.Limits{Rate: 0.5, Burst: 2}},
		{advance: 100 * time.Millisecond, lim: throttle.Limits{Rate: 0.5, Burst: 2}, n: 2},
	}},
	"burst 1 at a high rate": {steps: []step{
		{lim: throttle.Limits{Rate: 2000, Burst: 1}, n: 2},
		{advance: 499 * time.Microsecond, lim: throttle.Limits{Rate: 2000, Burst: 1}},
		{advance: time.Microsecond, lim: throttle.Limits{Rate: 2000, Burst: 1}, n: 2},
		{advance: 7 * time.Millisecond, lim: throttle.Limits{Rate: 2000, Burst: 1}, n: 2},
	}},
	"a rate that does not divide a second": {steps: []step{
		{lim: throttle.Limits{Rate: 3, Burst: 2}, n: 3},
		{advance: 333333333, lim: throttle.Limits{Rate: 3, Burst: 2}, n: 2},
		{advance: 1, lim: throttle.Limits{Rate: 3, Burst: 2}, n: 2},
	}},
	"cost above one": {steps: []step{
		{lim: throttle.Limits{Rate: 10, Burst: 10}, cost: 4, n: 3},
		{advance: 200 * time.Millisecond, lim: throttle.Limits{Rate: 10, Burst: 10}, cost: 4},
		{advance: 200 * time.Millisecond, lim: throttle.Limits{Rate: 10, Burst: 10}, cost: 3},
	}},
	"a quota refusal spends nothing": {steps: []step{
		// Two admitted, then the quota refuses: the rate keeps its last
		// unit, and stays quota-exceeded with its Retry-After however
		// often the tenant asks.
		{lim: throttle.Limits{Rate: 1, Burst: 3, Quotas: []throttle.Quota{{Limit: 2, Period: throttle.Day}}}, n: 10},
		{advance: 10 * time.Second, lim: throttle.Limits{Rate: 1, Burst: 3, Quotas: []throttle.Quota{{Limit: 2, Period: throttle.Day}}}, n: 5},
	}},
	"two quotas used up at once: Retry-After is the later end": {steps: []step{
		{lim: throttle.Limits{Rate: 100, Burst: 10, Quotas: []throttle.Quota{{Limit: 2, Period: throttle.Month}, {Limit: 2, Period: throttle.Day}}}, n: 3},
	}},
	"a rate refusal spends no quota": {steps: []step{
		{lim: throttle.Limits{Rate: 1, Burst: 1, Quotas: []throttle.Quota{{Limit: 10, Period: throttle.Hour}}}, n: 3},
		{advance: time.Second, lim: throttle.Limits{Rate: 1, Burst: 1, Quotas: []throttle.Quota{{Limit: 10, Period: throttle.Hour}}}, n: 2},
	}},
	"quotas across the end of an hour, a day and a month": {
		start: time.Date(2026, time.November, 30, 23, 59, 59, 500_000_000, time.UTC),
		steps: []step{
			{lim: throttle.Limits{Rate: 1000, Burst: 10, Quotas: []throttle.Quota{hour, day, month}}, n: 4},
			{advance: 499 * time.Millisecond, lim: throttle.Limits{Rate: 1000, Burst: 10, Quotas: []throttle.Quota{hour, day, month}}},
			{advance: time.Millisecond, lim: throttle.Limits{Rate: 1000, Burst: 10, Quotas: []throttle.Quota{hour, day, month}}, n: 4},
			// A request whose time was read before the boundary counts
			// in the new periods.
			{advance: -2 * time.Millisecond, lim: throttle.Limits{Rate: 1000, Burst: 10, Quotas: []throttle.Quota{hour, day, month}}},
			{advance: time.Hour, lim: throttle.Limits{Rate: 1000, Burst: 10, Quotas: []throttle.Quota{hour, day, month}}, n: 4},
			{advance: 24 * time.Hour, lim: throttle.Limits{Rate: 1000, Burst: 10, Quotas: []throttle.Quota{hour, day, month}}, n: 3},
		},
	},
	"quotas change with the limits": {steps: []step{
		{lim: throttle.Limits{Rate: 100, Burst: 10, Quotas: []throttle.Quota{day}}, n: 3},
		{lim: throttle.Limits{Rate: 100, Burst: 10, Quotas: []throttle.Quota{month, day}}, n: 3},
		{lim: throttle.Limits{Rate: 100, Burst: 10}, n: 2},
		{lim: throttle.Limits{Rate: 100, Burst: 10, Quotas: []throttle.Quota{{Limit: 8, Period: throttle.Day}}}, n: 3},
	}},
	"an upgrade carries the debt over in units": {steps: []step{
		// 60 units owed at 1/s are 0.6s at 100/s, not a minute.
		{lim: throttle.Limits{Rate: 1, Burst: 60}, n: 61},
		{advance: 10 * time.Second, lim: throttle.Limits{Rate: 100, Burst: 100}, n: 50},
		{advance: 300 * time.Millisecond, lim: throttle.Limits{Rate: 100, Burst: 100}, n: 3},
		// And back down: the units owed now take the slow interval.
		{lim: throttle.Limits{Rate: 1, Burst: 60}, n: 2},
		{advance: 30 * time.Second, lim: throttle.Limits{Rate: 1, Burst: 60}, n: 2},
	}},
	"a quota refusal does not carry a change of limits over": {steps: []step{
		{lim: throttle.Limits{Rate: 1, Burst: 10, Quotas: []throttle.Quota{{Limit: 5, Period: throttle.Day}}}, n: 6},
		{advance: time.Second, lim: throttle.Limits{Rate: 10, Burst: 10, Quotas: []throttle.Quota{{Limit: 5, Period: throttle.Day}}}, n: 2},
		{advance: time.Second, lim: throttle.Limits{Rate: 10, Burst: 10, Quotas: []throttle.Quota{{Limit: 50, Period: throttle.Day}}}, n: 12},
	}},
	"a clock read out of order": {steps: []step{
		{lim: throttle.Limits{Rate: 10, Burst: 2}, n: 2},
		{advance: 150 * time.Millisecond, lim: throttle.Limits{Rate: 10, Burst: 2}},
		{advance: -100 * time.Millisecond, lim: throttle.Limits{Rate: 10, Burst: 2}, n: 2},
	}},
	"keys are apart": {steps: []step{
		{key: "acme", lim: throttle.Limits{Rate: 1, Burst: 2}, n: 3},
		{key: "globex", lim: throttle.Limits{Rate: 1, Burst: 2}, n: 3},
		{key: "a{b}c", lim: throttle.Limits{Rate: 1, Burst: 2}, n: 3},
		{key: "\x01ip:10.0.0.1", lim: throttle.Limits{Rate: 1, Burst: 2}, n: 3},
	}},
}

// TestSameAnswersAsMemory runs the in-process store and the Redis store
// through the same requests and compares their Results field by field.
func TestSameAnswersAsMemory(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		rdb := b.client(t)
		for name, sc := range scripts {
			t.Run(name, func(t *testing.T) {
				start := sc.start
				if start.IsZero() {
					start = time.Date(2026, time.March, 14, 12, 0, 0, 123_456_789, time.UTC)
				}
				compare(t, rdb, start, sc.steps)
			})
		}
		t.Run("random", func(t *testing.T) {
			compare(t, rdb, time.Date(2026, time.January, 31, 22, 58, 0, 987_654_321, time.UTC), randomSteps(rand.New(rand.NewPCG(1, 2)), 3000))
		})
	})
}

// randomSteps draws n steps over a few keys and limits that share periods
// and change tiers, at gaps around the limits' intervals.
func randomSteps(r *rand.Rand, n int) []step {
	limits := []throttle.Limits{
		{Rate: 10, Burst: 5, Quotas: []throttle.Quota{{Limit: 40, Period: throttle.Hour}}},
		{Rate: 50, Burst: 100},
		{Rate: 3, Burst: 1, Quotas: []throttle.Quota{{Limit: 30, Period: throttle.Day}, {Limit: 35, Period: throttle.Month}}},
		{Rate: 0.7, Burst: 4, Quotas: []throttle.Quota{{Limit: 20, Period: throttle.Hour}, {Limit: 60, Period: throttle.Day}}},
	}
	keys := []string{"acme", "globex", "initech"}
	gaps := []time.Duration{0, 0, time.Millisecond, 20 * time.Millisecond, 100 * time.Millisecond, 333 * time.Millisecond, time.Second, 7 * time.Second, -5 * time.Millisecond}
	steps := make([]step, n)
	tier := map[string]int{}
	for i := range steps {
		k := keys[r.IntN(len(keys))]
		if r.IntN(20) == 0 {
			tier[k] = r.IntN(len(limits))
		}
		lim := limits[tier[k]]
		steps[i] = step{
			advance: gaps[r.IntN(len(gaps))] + time.Duration(r.IntN(1000)),
			key:     k,
			lim:     lim,
			cost:    1 + r.IntN(lim.Burst),
		}
	}
	return steps
}

func compare(t *testing.T, rdb redis.UniversalClient, start time.Time, steps []step) {
	t.Helper()
	mem, err := throttle.NewMemoryStore()
	if err != nil {
		t.Fatal(err)
	}
	rs := newStore(t, rdb)
	ctx := context.Background()
	now := start
	n := 0
	for i, s := range steps {
		now = now.Add(s.advance)
		key, cost, times := s.key, max(s.cost, 1), max(s.n, 1)
		if key == "" {
			key = "acme"
		}
		for j := range times {
			n++
			want, err := mem.Take(ctx, key, s.lim, cost, now)
			if err != nil {
				t.Fatal(err)
			}
			got, err := rs.Take(ctx, key, s.lim, cost, now)
			if err != nil {
				t.Fatalf("step %d, request %d: %v", i, j, err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("step %d, request %d (%s, cost %d at %s under %+v): Redis differs from memory (-memory +redis):\n%s",
					i, j, key, cost, now.Format(time.RFC3339Nano), s.lim, diff)
			}
		}
	}
	if st := rs.Stats(); st.Failures != 0 {
		t.Fatalf("stats %+v: a call to Redis failed, so some answers were not Redis's", st)
	}
	t.Logf("%d requests answered alike", n)
}
