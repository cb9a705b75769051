package redisstore_test

import (
	"context"
	"encoding/base64"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"
	"github.com/tenancykit/tenancy/internal/testservers"
	"github.com/tenancykit/tenancy/throttle"
	"github.com/tenancykit/tenancy/throttle/redisstore"
)

// TestOneRoundTripPerDecision: a decision is one EVALSHA, whether the
// limits have quotas or not, whether it is admitted or refused, on one
// Redis or a Cluster.
func TestOneRoundTripPerDecision(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		rdb := b.client(t)
		trips := &roundTrips{}
		rdb.AddHook(trips)
		s := newStore(t, rdb)
		ctx := context.Background()
		clk := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
		for _, lim := range []throttle.Limits{
			{Rate: 1000, Burst: 1000},
			{Rate: 10, Burst: 5, Quotas: []throttle.Quota{{Limit: 100, Period: throttle.Hour}, {Limit: 1000, Period: throttle.Day}, {Limit: 10000, Period: throttle.Month}}},
			{Rate: 1000, Burst: 1000, Quotas: []throttle.Quota{{Limit: 3, Period: throttle.Day}}},
		} {
			before := b.commands(t)
			all, decisions := trips.all.Load(), trips.decisions.Load()
			trips.reset()
			const n = 50
			allowed := 0
			for i := range n {
				res, err := s.Take(ctx, "tenant-"+strconv.Itoa(i%5), lim, 1, clk.now())
				if err != nil {
					t.Fatalf("Take %d = %+v, %v", i, res, err)
				}
				if res.Allowed {
					allowed++
				}
			}
			after := b.commands(t)
			sent, decided := trips.all.Load()-all, trips.decisions.Load()-decisions
			// The client counts what it sent, Redis the commands a script
			// runs too: one script run reads a key once. A heartbeat may
			// run beside the decisions, on a key of no tenant.
			eval, hmget := after["eval"]-before["eval"], after["hmget"]-before["hmget"]
			if decided != n || hmget != n || eval != 0 || sent < n || trips.decisionCommands() != "evalsha" {
				t.Fatalf("%+v: %d decisions (%d allowed): the client sent %d round trips naming a tenant (%s) and %d in all; Redis ran %d EVAL, %d HMGET; want one EVALSHA round trip per decision",
					lim, n, allowed, decided, trips.decisionCommands(), sent, eval, hmget)
			}
			clk.add(time.Hour)
		}
	})
}

func TestReplicasShareOneLimit(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		const (
			// A burst of one second of rate: a test machine busy with
			// other work may pause the workers for a while, and a pause
			// longer than burst/rate would lose tokens nobody asked for.
			// Unshared limits would admit three times as many.
			rate     = 100.0
			burst    = 100
			replicas = 3
			runFor   = 3 * time.Second
		)
		lim := throttle.Limits{Rate: rate, Burst: burst}
		stores := make([]*redisstore.Store, replicas)
		for i := range stores {
			stores[i] = newStore(t, b.client(t), redisstore.WithTimeout(time.Second))
		}
		var admitted atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		deadline := start.Add(runFor)
		for _, s := range stores {
			for range 4 { // four workers per replica
				wg.Go(func() {
					for time.Now().Before(deadline) {
						res, err := s.Take(context.Background(), "shared-tenant", lim, 1, time.Now())
						if err != nil {
							t.Error(err)
							return
						}
						if res.Allowed {
							admitted.Add(1)
						}
					}
				})
			}
		}
		wg.Wait()
		elapsed := time.Since(start)
		want := float64(burst) + rate*elapsed.Seconds()
		got := float64(admitted.Load())
		t.Logf("%d replicas admitted %.0f in %v; configured %.0f", replicas, got, elapsed, want)
		if got < 0.9*want || got > 1.1*want {
			t.Fatalf("admitted %.0f, want %.0f ± 10%%", got, want)
		}
		for _, s := range stores {
			if st := s.Stats(); st.Failures != 0 {
				t.Fatalf("stats %+v: no failure expected", st)
			}
		}
	})
}

// countingHandler counts log records by level.
type countingHandler struct {
	warns, infos atomic.Int64
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	switch r.Level {
	case slog.LevelWarn:
		h.warns.Add(1)
	case slog.LevelInfo:
		h.infos.Add(1)
	}
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }

// TestRedisDownPoliciesAndRecovery: with Redis gone, each tier's policy
// decides; the switch takes WithFailureThreshold failures, is logged once,
// and is undone by the first call that succeeds once the retry interval
// has passed.
func TestRedisDownPoliciesAndRecovery(t *testing.T) {
	srv := testservers.Redis(t)
	clk := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	logs := &countingHandler{}
	s := newStore(t, newClient(t, srv.Addr),
		redisstore.WithReplicas(2),
		redisstore.WithRetryInterval(5*time.Second),
		redisstore.WithLogger(slog.New(logs)),
	)
	ctx := context.Background()
	local := throttle.Limits{Rate: 10, Burst: 10}
	// Redis reports 9 of 10 left: each of the 2 replicas may spend 4 of
	// them on its own.
	if res, err := s.Take(ctx, "local-tenant", local, 1, clk.now()); err != nil || !res.Allowed || res.Remaining != 9 {
		t.Fatalf("with Redis up: %+v, %v", res, err)
	}

	srv.Stop()

	open := throttle.Limits{Rate: 1, Burst: 1, OnStoreFailure: throttle.FailOpen}
	for i := range 20 {
		res, err := s.Take(ctx, "open-tenant", open, 1, clk.now())
		if err != nil || !res.Allowed {
			t.Fatalf("fail open, request %d: %+v, %v", i, res, err)
		}
	}
	closed := throttle.Limits{Rate: 1000, Burst: 1000, OnStoreFailure: throttle.FailClosed}
	res, err := s.Take(ctx, "closed-tenant", closed, 1, clk.now())
	if err != nil || res.Allowed || res.Reason != throttle.ReasonStore {
		t.Fatalf("fail closed: %+v, %v; want refused with reason %q", res, err, throttle.ReasonStore)
	}
	admitted := 0
	for range 20 {
		res, err := s.Take(ctx, "local-tenant", local, 1, clk.now())
		if err != nil {
			t.Fatal(err)
		}
		if res.Allowed {
			admitted++
		}
	}
	if admitted != 4 {
		t.Fatalf("local fallback admitted %d at one instant, want 4: half of the 9 Redis reported left", admitted)
	}
	// A tenant this replica never saw starts empty: its first unit comes
	// after one interval of its share (1/5 s).
	if res, _ := s.Take(ctx, "new-tenant", local, 1, clk.now()); res.Allowed || res.Reason != throttle.ReasonRate || res.RetryAfter != 200*time.Millisecond {
		t.Fatalf("a tenant never seen, at once: %+v; want refused until one unit of its share is back", res)
	}
	st := s.Stats()
	if !st.Down || st.Switches != 1 || st.Failures != redisstore.DefaultFailureThreshold {
		t.Fatalf("stats while down = %+v; want Down, one switch, DefaultFailureThreshold failed calls (later ones skip Redis until the retry interval)", st)
	}
	if logs.warns.Load() != 1 {
		t.Fatalf("logged %d warnings, want the switch logged once", logs.warns.Load())
	}

	// Still within the retry interval: Redis is not tried even though it is back.
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	clk.add(5*time.Second - time.Nanosecond)
	if _, err := s.Take(ctx, "local-tenant", local, 1, clk.now()); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); !st.Down {
		t.Fatalf("stats = %+v; want still down within the retry interval", st)
	}
	clk.add(time.Nanosecond)
	res, err = s.Take(ctx, "closed-tenant", closed, 1, clk.now())
	if err != nil || !res.Allowed {
		t.Fatalf("after recovery: %+v, %v; want shared limits again", res, err)
	}
	if st := s.Stats(); st.Down || st.Switches != 1 {
		t.Fatalf("stats after recovery = %+v", st)
	}
	if logs.infos.Load() != 1 {
		t.Fatalf("logged %d recoveries, want 1", logs.infos.Load())
	}
	// The decision was made in Redis: the tenant's key is there.
	keys, err := srv.Command("KEYS", "*")
	if err != nil {
		t.Fatal(err)
	}
	tag := base64.RawURLEncoding.EncodeToString([]byte("closed-tenant"))
	if !strings.Contains(keys, "{"+tag+"}") {
		t.Fatalf("keys after recovery %q: the decision did not reach Redis", keys)
	}
}

// TestOneSlowCallIsDecidedAlone: a call slower than the timeout is decided
// by the tier's policy within the timeout, and the store stays on Redis
// until WithFailureThreshold calls in a row have failed.
func TestOneSlowCallIsDecidedAlone(t *testing.T) {
	srv := testservers.Redis(t)
	s := newStore(t, newClient(t, srv.Addr), redisstore.WithTimeout(200*time.Millisecond), redisstore.WithFailureThreshold(2))
	ctx := context.Background()
	lim := throttle.Limits{Rate: 10, Burst: 10, OnStoreFailure: throttle.FailOpen}
	if _, err := s.Take(ctx, "warm", lim, 1, time.Now()); err != nil {
		t.Fatal(err)
	}
	// Redis answers nothing for a while: slower than the timeout.
	if _, err := srv.Command("CLIENT", "PAUSE", "2000", "ALL"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Command("CLIENT", "UNPAUSE") })
	begin := time.Now()
	res, err := s.Take(ctx, "acme", lim, 1, time.Now())
	took := time.Since(begin)
	if err != nil || !res.Allowed {
		t.Fatalf("slow Redis, fail open: %+v, %v", res, err)
	}
	if took > time.Second {
		t.Fatalf("decision took %v; the timeout is 200ms", took)
	}
	if st := s.Stats(); st.Down || st.Failures != 1 || st.Fallbacks != 1 {
		t.Fatalf("stats after one slow call = %+v; want it decided alone, the store still on Redis", st)
	}
	s.Take(ctx, "acme", lim, 1, time.Now())
	if st := s.Stats(); !st.Down || st.Failures != 2 || st.Switches != 1 {
		t.Fatalf("stats after two slow calls in a row = %+v; want the store on its fallback", st)
	}
}

func TestQuotasInRedis(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		clk := &clock{t: time.Date(2026, 11, 21, 23, 0, 0, 0, time.UTC)}
		s := newStore(t, b.client(t))
		ctx := context.Background()
		lim := throttle.Limits{Rate: 1000, Burst: 1000, Quotas: []throttle.Quota{{Limit: 5, Period: throttle.Day}}}
		for i := range 5 {
			res, err := s.Take(ctx, "acme", lim, 1, clk.now())
			if err != nil || !res.Allowed {
				t.Fatalf("request %d: %+v, %v", i, res, err)
			}
			if got := res.Quotas[0].Remaining; got != int64(4-i) {
				t.Fatalf("request %d: quota remaining %d, want %d", i, got, 4-i)
			}
		}
		res, err := s.Take(ctx, "acme", lim, 1, clk.now())
		if err != nil || res.Allowed || res.Reason != throttle.ReasonQuota {
			t.Fatalf("sixth request: %+v, %v; want refused by quota", res, err)
		}
		if res.RetryAfter != time.Hour {
			t.Fatalf("RetryAfter = %v, want 1h until midnight UTC", res.RetryAfter)
		}
		// A refusal by rate spends no quota.
		tight := throttle.Limits{Rate: 1, Burst: 1, Quotas: []throttle.Quota{{Limit: 100, Period: throttle.Month}}}
		first, _ := s.Take(ctx, "globex", tight, 1, clk.now())
		second, _ := s.Take(ctx, "globex", tight, 1, clk.now())
		if !first.Allowed || second.Allowed || second.Reason != throttle.ReasonRate || second.Quotas[0].Remaining != 99 {
			t.Fatalf("first %+v, second %+v; want the rate refusal to leave 99 of the quota", first, second)
		}
		// A new day: the quota is fresh.
		clk.add(time.Hour)
		if res, err := s.Take(ctx, "acme", lim, 1, clk.now()); err != nil || !res.Allowed || res.Quotas[0].Remaining != 4 {
			t.Fatalf("next day: %+v, %v", res, err)
		}
	})
}

// TestKeysAreClusterSafeForAnyTenantID: whatever its ID, a tenant's rate
// and quotas live in one key, so that the script touches one slot; on a
// Cluster the keys spread over the nodes and each is where its slot is.
func TestKeysAreClusterSafeForAnyTenantID(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		s := newStore(t, b.client(t))
		prefix := uniquePrefix(t)
		ctx := context.Background()
		lim := throttle.Limits{Rate: 10, Burst: 10, Quotas: []throttle.Quota{{Limit: 10, Period: throttle.Day}, {Limit: 100, Period: throttle.Month}}}
		ids := []string{"acme", "a{b}c", "}{", "tenant:with:colons", "ünïcode", "{}", "globex", "initech", "umbrella", "hooli"}
		for _, id := range ids {
			if res, err := s.Take(ctx, id, lim, 1, time.Now()); err != nil || !res.Allowed {
				t.Fatalf("%q: %+v, %v", id, res, err)
			}
		}
		tags := map[string]int{}
		nodes := map[*testservers.RedisServer]bool{}
		for key, srv := range b.keys(t, prefix) {
			if key == prefix+"replicas" {
				continue // the heartbeat's
			}
			open := strings.IndexByte(key, '{')
			end := strings.IndexByte(key[open+1:], '}')
			if open < 0 || end <= 0 {
				t.Fatalf("key %q has no hash tag", key)
			}
			tags[key[open+1:open+1+end]]++
			nodes[srv] = true
			if b.cluster != nil {
				if want, err := b.cluster.NodeFor(key); err != nil || want != srv {
					t.Errorf("key %q is on %s, its slot on %v (%v)", key, srv.Addr, want, err)
				}
			}
		}
		for _, id := range ids {
			tag := base64.RawURLEncoding.EncodeToString([]byte(id))
			if tags[tag] != 1 {
				t.Errorf("tenant %q: %d keys with hash tag %q, want its one key, rate and quotas together (tags %v)", id, tags[tag], tag, tags)
			}
		}
		if b.cluster != nil && len(nodes) < 2 {
			t.Errorf("%d tenants' keys on %d node of 3; want them spread", len(ids), len(nodes))
		}
	})
}

func TestLimitsTravelWithEachCall(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		s := newStore(t, b.client(t))
		ctx := context.Background()
		small := throttle.Limits{Rate: 1, Burst: 2}
		big := throttle.Limits{Rate: 1, Burst: 50}
		n := 0
		for range 10 {
			if res, _ := s.Take(ctx, "acme", small, 1, time.Now()); res.Allowed {
				n++
			}
		}
		if n != 2 {
			t.Fatalf("burst 2 admitted %d", n)
		}
		// An upgrade applies to the very next request.
		if res, err := s.Take(ctx, "acme", big, 1, time.Now()); err != nil || !res.Allowed {
			t.Fatalf("after upgrade: %+v, %v", res, err)
		}
	})
}

func TestNewRejectsBadOptions(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true})
	defer rdb.Close()
	for name, opt := range map[string]redisstore.Option{
		"timeout":   redisstore.WithTimeout(-time.Millisecond),
		"retry":     redisstore.WithRetryInterval(-time.Second),
		"threshold": redisstore.WithFailureThreshold(-1),
		"replicas":  redisstore.WithReplicas(-1),
		"max keys":  redisstore.WithMaxKeys(-1),
		"prefix":    redisstore.WithPrefix("svc{a}:"),
	} {
		if _, err := redisstore.New(rdb, opt); err == nil || !strings.HasPrefix(err.Error(), "redisstore: With") {
			t.Errorf("%s: err = %v, want a redisstore: With... error", name, err)
		}
	}
	if _, err := redisstore.New(nil); err == nil {
		t.Error("New(nil) succeeded")
	}
	plain := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer plain.Close()
	if _, err := redisstore.New(plain); err == nil || !strings.Contains(err.Error(), "ContextTimeoutEnabled") {
		t.Errorf("a client that ignores deadlines: err = %v, want one naming ContextTimeoutEnabled", err)
	}
}

// TestZeroOptionsMeanDefaults: an option given its zero value, and a nil
// option, leave the default in place.
func TestZeroOptionsMeanDefaults(t *testing.T) {
	srv := testservers.Redis(t)
	s, err := redisstore.New(newClient(t, srv.Addr), nil,
		redisstore.WithTimeout(0), redisstore.WithRetryInterval(0), redisstore.WithFailureThreshold(0),
		redisstore.WithReplicas(0), redisstore.WithPrefix(""), redisstore.WithLogger(nil),
		redisstore.WithMaxKeys(0), redisstore.WithMeterProvider(nil))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	if err := s.Warm(ctx); err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	lim := throttle.Limits{Rate: 10, Burst: 10, Quotas: []throttle.Quota{{Limit: 100, Period: throttle.Day}}}
	// A timeout of zero would refuse every call to Redis. A loaded machine
	// may make one slower than DefaultTimeout now and then: the last call
	// must have succeeded, so that no failure counts towards the switch.
	for i := 0; ; i++ {
		failures := s.Stats().Failures
		if res, err := s.Take(ctx, "acme", lim, 1, clk.now()); err != nil || !res.Allowed {
			t.Fatalf("with Redis up: %+v, %v, %+v", res, err, s.Stats())
		}
		if s.Stats().Failures == failures {
			break
		}
		if i == 10 {
			t.Fatalf("stats %+v: every call to Redis failed", s.Stats())
		}
	}
	failures := s.Stats().Failures
	keys, err := srv.Command("KEYS", "*")
	if err != nil {
		t.Fatal(err)
	}
	for key := range strings.FieldsSeq(keys) {
		if !strings.HasPrefix(key, redisstore.DefaultPrefix) {
			t.Errorf("key %q does not start with DefaultPrefix %q", key, redisstore.DefaultPrefix)
		}
	}
	// Counted in Redis, not set: this store is the one replica.
	if st := s.Stats(); st.Replicas != 1 {
		t.Fatalf("stats %+v: want 1 replica counted", st)
	}

	// Redis answers nothing: each decision waits DefaultTimeout, then the
	// tier's policy (local, one replica: what Redis said was left)
	// decides, until DefaultFailureThreshold calls in a row have failed.
	if _, err := srv.Command("CLIENT", "PAUSE", "3000", "ALL"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Command("CLIENT", "UNPAUSE") })
	for i := range redisstore.DefaultFailureThreshold {
		if st := s.Stats(); st.Down {
			t.Fatalf("stats %+v after %d failed calls; want DefaultFailureThreshold (%d) to switch", st, i, redisstore.DefaultFailureThreshold)
		}
		begin := time.Now()
		res, err := s.Take(ctx, "acme", lim, 1, clk.now())
		took := time.Since(begin)
		if err != nil || !res.Allowed {
			t.Fatalf("Redis paused: %+v, %v; want the local fallback to admit", res, err)
		}
		if took < redisstore.DefaultTimeout || took > time.Second {
			t.Errorf("the decision took %v, want DefaultTimeout (%v) and a little", took, redisstore.DefaultTimeout)
		}
	}
	if st := s.Stats(); !st.Down {
		t.Fatalf("stats %+v; want the store on its fallback", st)
	}
	admitted := redisstore.DefaultFailureThreshold
	for range 20 {
		if res, _ := s.Take(ctx, "acme", lim, 1, clk.now()); res.Allowed {
			admitted++
		}
	}
	if left := lim.Burst - int(failures) - 1; admitted != left {
		t.Errorf("local fallback admitted %d at one instant, want the %d Redis said were left", admitted, left)
	}
	if _, err := srv.Command("CLIENT", "UNPAUSE"); err != nil {
		t.Fatal(err)
	}

	// Redis is left alone for DefaultRetryInterval after the switch.
	clk.add(redisstore.DefaultRetryInterval - time.Millisecond)
	s.Take(ctx, "acme", lim, 1, clk.now())
	if st := s.Stats(); !st.Down {
		t.Fatalf("stats %+v before the retry interval passed; want still down", st)
	}
	clk.add(time.Millisecond)
	s.Take(ctx, "acme", lim, 1, clk.now())
	if st := s.Stats(); st.Down || st.Failures != failures+redisstore.DefaultFailureThreshold {
		t.Fatalf("stats %+v once the retry interval passed; want Redis back", st)
	}
}

// TestPrefix: stores with one prefix share budgets; stores with another
// keep theirs apart, every key under its store's prefix.
func TestPrefix(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		p := uniquePrefix(t)
		a := newStore(t, b.client(t), redisstore.WithPrefix(p+"svc-a:"))
		aReplica := newStore(t, b.client(t), redisstore.WithPrefix(p+"svc-a:"))
		other := newStore(t, b.client(t), redisstore.WithPrefix(p+"svc-b:"))
		ctx := context.Background()
		lim := throttle.Limits{Rate: 0.01, Burst: 1, Quotas: []throttle.Quota{{Limit: 100, Period: throttle.Day}}}
		now := time.Now()
		for _, step := range []struct {
			name  string
			s     *redisstore.Store
			allow bool
		}{
			{"svc-a", a, true},
			{"another replica of svc-a", aReplica, false},
			{"svc-b", other, true},
		} {
			res, err := step.s.Take(ctx, "acme", lim, 1, now)
			if err != nil || res.Allowed != step.allow {
				t.Errorf("%s: %+v, %v; want allowed %v", step.name, res, err, step.allow)
			}
		}
		tag := "{" + base64.RawURLEncoding.EncodeToString([]byte("acme")) + "}"
		found := map[string]int{}
		for key := range b.keys(t, p) {
			found[strings.TrimPrefix(key, p)]++
		}
		// acme's one key and the replicas of each prefix.
		want := map[string]int{"svc-a:" + tag: 1, "svc-b:" + tag: 1, "svc-a:replicas": 1, "svc-b:replicas": 1}
		if diff := cmp.Diff(want, found); diff != "" {
			t.Errorf("keys (-want +got):\n%s", diff)
		}
		// Each counted itself when warmed: the second of svc-a saw the first.
		if st := aReplica.Stats(); st.Replicas != 2 {
			t.Errorf("svc-a's second replica: stats %+v, want 2 replicas", st)
		}
	})
}
