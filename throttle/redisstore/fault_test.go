package redisstore_test

import (
	"context"
	"encoding/base64"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tenancykit/tenancy/internal/testservers"
	"github.com/tenancykit/tenancy/throttle"
	"github.com/tenancykit/tenancy/throttle/redisstore"
)

// The fault tests drive three replicas in lockstep with a simulated clock:
// at each tick every replica asks once for the same tenant, all at the
// same simulated time, and the test waits for the three answers before the
// clock moves on. Faults are real (a paused or killed redis-server) and
// happen between known ticks, so how many requests meet a fault depends on
// the ticks, not on how fast a loaded machine runs them; only the replicas'
// waits for Redis take real time.

// tick is the simulated time between two rounds of requests: three
// requests every 10ms, 300/s, six times the rate of faultLimits.
const tick = 10 * time.Millisecond

// faultLimits are the issue's: 50/s, burst 100.
var faultLimits = throttle.Limits{Rate: 50, Burst: 100}

// fleet is three stores, each with a client of its own, on one Redis.
type fleet struct {
	t        *testing.T
	stores   []*redisstore.Store
	now      time.Time
	admitted int
	reasons  map[throttle.Reason]int
}

func newFleet(t *testing.T, srv *testservers.RedisServer, opts ...redisstore.Option) *fleet {
	t.Helper()
	return newFleetOf(t, func() redis.UniversalClient { return newClient(t, srv.Addr) }, opts...)
}

// newFleetOf is newFleet with clients from client.
func newFleetOf(t *testing.T, client func() redis.UniversalClient, opts ...redisstore.Option) *fleet {
	t.Helper()
	f := &fleet{t: t, now: time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC), reasons: map[throttle.Reason]int{}}
	opts = append([]redisstore.Option{redisstore.WithTimeout(50 * time.Millisecond)}, opts...)
	for range 3 {
		f.stores = append(f.stores, newStore(t, client(), opts...))
	}
	// Each counted itself and those before it when warmed; once more
	// and each has counted all three.
	for _, s := range f.stores {
		if err := s.Warm(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	for i, s := range f.stores {
		if st := s.Stats(); st.Replicas != 3 {
			t.Fatalf("replica %d: stats %+v, want 3 replicas counted", i, st)
		}
	}
	return f
}

// round has every replica ask once for key at the current simulated
// time, then moves the clock on by one tick. It returns how many of the
// three were admitted.
func (f *fleet) round(key string, lim throttle.Limits) int {
	n := f.ask(key, lim)
	f.now = f.now.Add(tick)
	return n
}

// ask has every replica ask once for key at the current simulated time.
func (f *fleet) ask(key string, lim throttle.Limits) int {
	var (
		mu sync.Mutex
		wg sync.WaitGroup
		n  int
	)
	for _, s := range f.stores {
		wg.Go(func() {
			res, err := s.Take(context.Background(), key, lim, 1, f.now)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				f.t.Errorf("Take: %v", err)
				return
			}
			if res.Allowed {
				n++
			} else {
				f.reasons[res.Reason]++
			}
		})
	}
	wg.Wait()
	f.admitted += n
	return n
}

func (f *fleet) down() int {
	n := 0
	for _, s := range f.stores {
		if s.Stats().Down {
			n++
		}
	}
	return n
}

func (f *fleet) stats() []redisstore.Stats {
	out := make([]redisstore.Stats, len(f.stores))
	for i, s := range f.stores {
		out[i] = s.Stats()
	}
	return out
}

// ideal is what one in-process store admits for the same rounds.
func ideal(t *testing.T, rounds int, lim throttle.Limits) int {
	mem, err := throttle.NewMemoryStore()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
	n := 0
	for range rounds {
		for range 3 {
			if res, _ := mem.Take(context.Background(), "acme", lim, 1, now); res.Allowed {
				n++
			}
		}
		now = now.Add(tick)
	}
	return n
}

// configured is burst + rate·t, what the limits promise over d.
func configured(lim throttle.Limits, d time.Duration) float64 {
	return float64(lim.Burst) + lim.Rate*d.Seconds()
}

// pause stops srv with SIGSTOP (a hung host: connections are accepted and
// nothing answers) and returns the function that continues it once at
// least min has passed since, in real time.
func pause(t *testing.T, srv *testservers.RedisServer, min time.Duration) (resume func()) {
	t.Helper()
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	resumed := false
	resume = func() {
		if resumed {
			return
		}
		resumed = true
		if left := min - time.Since(begin); left > 0 {
			time.Sleep(left) // the pause is real: it lasts at least min
		}
		if err := srv.Resume(); err != nil {
			t.Error(err)
		}
	}
	t.Cleanup(resume)
	return resume
}

// TestThreeReplicasThroughPauses: Redis stalls for 100ms every 3s (real
// pauses; 10 rounds of requests meet each), and three replicas still admit
// burst + rate·t within 10%. Each stall costs a few requests a timeout
// each, is decided in each replica's share continuing from the state
// Redis last reported, and is charged to Redis when it answers again.
func TestThreeReplicasThroughPauses(t *testing.T) {
	srv := testservers.Redis(t)
	f := newFleet(t, srv)
	const (
		rounds      = 3000 // 30s
		every       = 300  // 3s
		first       = 150  // the first pause at 1.5s
		pauseRounds = 10   // 100ms
	)
	realStart := time.Now()
	var resume func()
	for i := range rounds {
		switch {
		case i%every == first:
			resume = pause(t, srv, pauseRounds*tick)
		case i%every == first+pauseRounds:
			resume()
		}
		f.round("acme", faultLimits)
	}
	want := configured(faultLimits, rounds*tick)
	t.Logf("30s simulated in %v: admitted %d, want %.0f ± 10%% (one in-process store: %d); refused %v; stats %+v",
		time.Since(realStart).Round(time.Millisecond), f.admitted, want, ideal(t, rounds, faultLimits), f.reasons, f.stats())
	if got := float64(f.admitted); got < 0.9*want || got > 1.1*want {
		t.Fatalf("admitted %d through the pauses, want %.0f ± 10%%", f.admitted, want)
	}
	for i, st := range f.stats() {
		if st.Failures == 0 || st.Down {
			t.Errorf("replica %d: stats %+v; want the pauses to have failed calls, and Redis shared again at the end", i, st)
		}
	}
}

// TestThreeReplicasThroughAnOutage: Redis is killed for 10 of 30 seconds
// and comes back empty. The replicas admit their shares meanwhile, no
// more than 1.15 × (burst + rate·30s) in all, and are back on Redis within
// a second of its return; Redis, empty, learns the buckets from them
// instead of granting a full burst again.
func TestThreeReplicasThroughAnOutage(t *testing.T) {
	srv := testservers.Redis(t)
	f := newFleet(t, srv)
	const (
		rounds   = 3000 // 30s
		killAt   = 1000 // 10s
		returnAt = 2000 // 20s
	)
	var (
		duringOutage int
		backAt       = -1
		realBack     time.Time
		realToBack   time.Duration
	)
	for i := range rounds {
		switch i {
		case killAt:
			srv.Stop()
			duringOutage = f.admitted
		case returnAt:
			duringOutage = f.admitted - duringOutage
			if err := srv.Start(); err != nil {
				t.Fatal(err)
			}
			realBack = time.Now()
		}
		f.round("acme", faultLimits)
		if i >= returnAt && backAt < 0 && f.down() == 0 {
			backAt = i
			realToBack = time.Since(realBack)
		}
		if i == killAt+100 && f.down() != 3 {
			t.Fatalf("a second into the outage, %d of 3 replicas on their fallback; stats %+v", f.down(), f.stats())
		}
	}
	want := configured(faultLimits, rounds*tick)
	outage := configured(throttle.Limits{Rate: faultLimits.Rate}, (returnAt-killAt)*tick)
	t.Logf("admitted %d, want at most %.0f (1.15 × %.0f; one in-process store: %d); %d during the 10s outage (rate·t = %.0f); back on Redis %v after it returned (%v real); refused %v; stats %+v",
		f.admitted, 1.15*want, want, ideal(t, rounds, faultLimits), duringOutage, outage, time.Duration(backAt-returnAt)*tick, realToBack.Round(time.Millisecond), f.reasons, f.stats())
	if got := float64(f.admitted); got > 1.15*want || got < 0.85*want {
		t.Errorf("admitted %d through the outage, want at most %.0f (and not under %.0f)", f.admitted, 1.15*want, 0.85*want)
	}
	if got := float64(duringOutage); got > 1.1*outage || got < 0.8*outage {
		t.Errorf("admitted %d during the outage, want the rate's %.0f: each replica a third", duringOutage, outage)
	}
	if backAt < 0 || time.Duration(backAt-returnAt)*tick > time.Second {
		t.Errorf("back on Redis %d rounds after it returned, want within a second (100 rounds)", backAt-returnAt)
	}
}

// TestQuotaUsedUpStaysUsedUp: a daily quota used up before Redis stalls is
// still used up on every replica while it stalls, and after it comes back
// empty from a restart.
func TestQuotaUsedUpStaysUsedUp(t *testing.T) {
	srv := testservers.Redis(t)
	f := newFleet(t, srv)
	lim := throttle.Limits{Rate: 50, Burst: 100, Quotas: []throttle.Quota{{Limit: 200, Period: throttle.Day}}}
	for range 300 {
		f.round("acme", lim)
	}
	// A call that a loaded machine makes slower than the timeout is decided
	// alone, and may still be carried out by Redis: counted twice, it
	// leaves the quota used up a little early.
	before := f.admitted
	if before > 200 || before < 195 || f.reasons[throttle.ReasonQuota] == 0 {
		t.Fatalf("before the faults: admitted %d, refused %v; want the quota of 200 used up", f.admitted, f.reasons)
	}
	clear(f.reasons)

	resume := pause(t, srv, 0)
	for range 300 { // 3s
		f.round("acme", lim)
	}
	if f.down() != 3 {
		t.Fatalf("while Redis stalls, %d of 3 replicas on their fallback; stats %+v", f.down(), f.stats())
	}
	resume()
	if f.admitted != before {
		t.Fatalf("admitted %d more while Redis stalled; want 0: the quota was used up", f.admitted-before)
	}

	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	for range 300 {
		f.round("acme", lim)
	}
	if f.admitted != before || f.down() != 0 {
		t.Fatalf("admitted %d more after Redis restarted empty, %d replicas on their fallback; want 0 and none: the replicas tell Redis what it lost", f.admitted-before, f.down())
	}
	if n := f.reasons[throttle.ReasonRate]; n != 0 {
		t.Errorf("%d refusals by rate; want every refusal the quota's", n)
	}
}

// TestLocalAdmissionsChargedOnReturn: what a replica admits on its own
// while Redis is away is charged to Redis when it answers again, so the
// other replicas do not spend it a second time.
func TestLocalAdmissionsChargedOnReturn(t *testing.T) {
	srv := testservers.Redis(t)
	clk := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	ctx := context.Background()
	a := newStore(t, newClient(t, srv.Addr), redisstore.WithReplicas(2), redisstore.WithFailureThreshold(1), redisstore.WithTimeout(200*time.Millisecond))
	b := newStore(t, newClient(t, srv.Addr), redisstore.WithReplicas(2))
	lim := throttle.Limits{Rate: 1, Burst: 10, Quotas: []throttle.Quota{{Limit: 100, Period: throttle.Day}}}
	if res, err := a.Take(ctx, "acme", lim, 1, clk.now()); err != nil || !res.Allowed {
		t.Fatalf("with Redis up: %+v, %v", res, err)
	}
	resume := pause(t, srv, 0)
	local := 0
	for range 10 {
		if res, _ := a.Take(ctx, "acme", lim, 1, clk.now()); res.Allowed {
			local++
		}
	}
	// 9 left in Redis, 2 replicas: 4 here.
	if local != 4 || !a.Stats().Down {
		t.Fatalf("admitted %d on its own, stats %+v; want 4, half of the 9 left", local, a.Stats())
	}
	resume()
	clk.add(redisstore.DefaultRetryInterval)
	res, err := a.Take(ctx, "acme", lim, 1, clk.now())
	if err != nil || a.Stats().Down {
		t.Fatalf("once Redis is back: %+v, %v, stats %+v", res, err, a.Stats())
	}
	// Redis now holds 1 + 4 spent and the half second since (not a whole
	// unit at 1/s). The call that timed out may also have been carried out
	// when Redis resumed, its request being decided here as well: counted
	// twice, which errs on the side of the limits.
	spent := 5
	if res.Allowed {
		spent++
	}
	res, err = b.Take(ctx, "acme", lim, 1, clk.now())
	if err != nil || !res.Allowed {
		t.Fatalf("the other replica after the return: %+v, %v", res, err)
	}
	late := 100 - spent - 1 - int(res.Quotas[0].Remaining)
	if (late != 0 && late != 1) || res.Remaining != 10-spent-1-late {
		t.Fatalf("the other replica after the return: %+v; want %d left of the burst and %d of the quota (one less of each if Redis carried out the call that timed out)", res, 10-spent-1, 100-spent-1)
	}
}

// TestClusterNodeDown: on a Redis Cluster, a master killed for 10s of 30
// sends only the tenants of its slots to the failure policies: a tenant on
// another master is decided in Redis throughout, as one in-process store
// would, while the tenant on the dead master gets its shares, and
// both are back on Redis within a second of the master's return.
func TestClusterNodeDown(t *testing.T) {
	c := testservers.RedisCluster(t)
	b := &backend{servers: c.Nodes, cluster: c}
	prefix := uniquePrefix(t)
	f := newFleetOf(t, func() redis.UniversalClient { return b.client(t) }, redisstore.WithPrefix(prefix))
	// Two tenants whose keys are on different masters.
	tenants := map[*testservers.RedisServer]string{}
	for i := 0; len(tenants) < 2; i++ {
		id := "tenant-" + strconv.Itoa(i)
		n, err := c.NodeFor(prefix + "{" + base64.RawURLEncoding.EncodeToString([]byte(id)) + "}")
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := tenants[n]; !ok {
			tenants[n] = id
		}
	}
	var (
		dead, live string
		deadNode   *testservers.RedisServer
	)
	for n, id := range tenants {
		if deadNode == nil {
			deadNode, dead = n, id
		} else {
			live = id
		}
	}
	const (
		rounds   = 3000
		killAt   = 1000
		returnAt = 2000
	)
	var (
		admitted = map[string]int{}
		outage   int
		backAt   = -1
	)
	for i := range rounds {
		switch i {
		case killAt:
			deadNode.Stop()
			outage = admitted[dead]
		case returnAt:
			outage = admitted[dead] - outage
			if err := deadNode.Start(); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			err := c.WaitOK(ctx)
			cancel()
			if err != nil {
				t.Fatal(err)
			}
		}
		admitted[dead] += f.ask(dead, faultLimits)
		admitted[live] += f.ask(live, faultLimits)
		f.now = f.now.Add(tick)
		if i == killAt+100 && f.down() != 3 {
			t.Fatalf("a second after a master died, %d of 3 replicas have it on their fallback; stats %+v", f.down(), f.stats())
		}
		if i >= returnAt && backAt < 0 && f.down() == 0 {
			backAt = i
		}
	}
	want := ideal(t, rounds, faultLimits)
	t.Logf("tenant on the live master: %d admitted (one in-process store: %d); on the dead one: %d, %d during the 10s outage (rate.t = 500), back %v after the master returned; stats %+v",
		admitted[live], want, admitted[dead], outage, time.Duration(backAt-returnAt)*tick, f.stats())
	// Its decisions are Redis's throughout, but for a call that a loaded
	// machine makes slower than the timeout now and then, decided alone.
	if d := admitted[live] - want; d < -want/100 || d > want/100 {
		t.Errorf("the tenant on a live master was admitted %d times, want %d ± 1%% as in process", admitted[live], want)
	}
	if got := float64(admitted[dead]); got > 1.15*configured(faultLimits, rounds*tick) || got < 0.85*configured(faultLimits, rounds*tick) {
		t.Errorf("the tenant on the dead master was admitted %d times, want at most 1.15 × %.0f", admitted[dead], configured(faultLimits, rounds*tick))
	}
	if outage < 450 || outage > 550 {
		t.Errorf("the tenant on the dead master was admitted %d times during the outage, want the rate's 500", outage)
	}
	if backAt < 0 || backAt-returnAt > 100 {
		t.Errorf("back on Redis %d rounds after the master returned, want within a second (100 rounds)", backAt-returnAt)
	}
}

// TestLocalAdmissionsChargedOnce: decisions in Redis made at once for a key
// with admissions of its own to charge charge them once between them.
func TestLocalAdmissionsChargedOnce(t *testing.T) {
	srv := testservers.Redis(t)
	clk := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	ctx := context.Background()
	s := newStore(t, newClient(t, srv.Addr), redisstore.WithReplicas(1), redisstore.WithFailureThreshold(1), redisstore.WithTimeout(200*time.Millisecond))
	lim := throttle.Limits{Rate: 100_000, Burst: 100_000, Quotas: []throttle.Quota{{Limit: 10_000, Period: throttle.Day}}}
	admitted := 0
	take := func() {
		res, err := s.Take(ctx, "acme", lim, 1, clk.now())
		if err != nil {
			t.Error(err)
		}
		if res.Allowed {
			admitted++
		}
	}
	concurrently := func(n int) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				res, err := s.Take(ctx, "acme", lim, 1, clk.now())
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				if res.Allowed {
					admitted++
				}
				mu.Unlock()
			})
		}
		wg.Wait()
	}
	take()
	resume := pause(t, srv, 0)
	for range 20 {
		take()
	}
	if !s.Stats().Down {
		t.Fatalf("stats %+v; want the store on its fallback", s.Stats())
	}
	resume()
	clk.add(redisstore.DefaultRetryInterval)
	concurrently(50) // one tries Redis, the others decide here meanwhile
	concurrently(50) // all in Redis, with what was admitted here to charge
	res, err := s.Take(ctx, "acme", lim, 1, clk.now())
	if err != nil || !res.Allowed || s.Stats().Down {
		t.Fatalf("last request: %+v, %v, stats %+v", res, err, s.Stats())
	}
	admitted++
	// The call that timed out may have been carried out by Redis too.
	used := lim.Quotas[0].Limit - res.Quotas[0].Remaining
	if used != int64(admitted) && used != int64(admitted)+1 {
		t.Fatalf("Redis counts %d of the day's quota used for %d admitted; want each counted once (and the call that timed out perhaps twice)", used, admitted)
	}
}
