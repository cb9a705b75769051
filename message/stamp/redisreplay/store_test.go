package redisreplay_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tenancykit/tenancy/internal/testservers"
	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/message/stamp"
	"github.com/tenancykit/tenancy/message/stamp/redisreplay"
)

// TestReplicasShareTheReplayCheck: two replicas, each with a client and a
// store of its own on one Redis (or a Cluster): a stamp replayed to the
// second on another message is refused stamp:replayed, a redelivery of
// the same message passes on either, and a replica sends Redis one SET
// per stamp its own cache does not hold, none for a redelivery it saw.
func TestReplicasShareTheReplayCheck(t *testing.T) {
	for _, b := range []struct {
		name  string
		start func(t *testing.T) func() redis.UniversalClient // starts Redis, returns a client maker
	}{
		{"single", func(t *testing.T) func() redis.UniversalClient {
			srv := testservers.Redis(t)
			return func() redis.UniversalClient { return newClient(t, srv.Addr) }
		}},
		{"cluster", func(t *testing.T) func() redis.UniversalClient {
			c := testservers.RedisCluster(t)
			return func() redis.UniversalClient { return newClusterClient(t, c) }
		}},
	} {
		t.Run(b.name, func(t *testing.T) {
			clk := newClock()
			s := newSigner(t, clk)
			client := b.start(t)
			rdb1, rdb2 := client(), client()
			sets1, sets2 := &sets{}, &sets{}
			rdb1.AddHook(sets1)
			rdb2.AddHook(sets2)
			r1 := newReplica(t, s, clk, newStore(t, rdb1))
			r2 := newReplica(t, s, clk, newStore(t, rdb2))
			attrs := mustStamp(t, s, "a")
			for _, step := range []struct {
				name         string
				r            *replica
				id           string
				outcome      message.Outcome
				reason       string
				sets1, sets2 int64
			}{
				{"first delivery, replica 1", r1, "1-0", message.Acked, "", 1, 0},
				{"redelivery, replica 1", r1, "1-0", message.Acked, "", 1, 0},
				{"redelivery, replica 2", r2, "1-0", message.Acked, "", 1, 1},
				{"redelivery again, replica 2", r2, "1-0", message.Acked, "", 1, 1},
				{"replay on another message, replica 2", r2, "2-0", message.Rejected, "stamp:replayed", 1, 1},
				{"replay on another message, replica 1", r1, "3-0", message.Rejected, "stamp:replayed", 1, 1},
			} {
				o, reason := step.r.deliver(stamped(step.id, "a", attrs))
				if o != step.outcome || reason != step.reason || sets1.n.Load() != step.sets1 || sets2.n.Load() != step.sets2 {
					t.Fatalf("%s: %s %q after %d and %d SETs; want %s %q after %d and %d", step.name, o, reason, sets1.n.Load(), sets2.n.Load(), step.outcome, step.reason, step.sets1, step.sets2)
				}
			}
			// A replay that reaches the second replica first, on a stamp
			// it never saw, is caught by Redis.
			other := mustStamp(t, s, "b")
			if o, reason := r1.deliver(stamped("4-0", "b", other)); o != message.Acked {
				t.Fatalf("a new stamp on replica 1: %s %q", o, reason)
			}
			if o, reason := r2.deliver(stamped("5-0", "b", other)); o != message.Rejected || reason != "stamp:replayed" {
				t.Fatalf("its replay on replica 2: %s %q, want rejected stamp:replayed", o, reason)
			}
			if r1.ran.Load()+r2.ran.Load() != 5 {
				t.Errorf("the handlers ran %d and %d times, want 5 in all", r1.ran.Load(), r2.ran.Load())
			}
		})
	}
}

// TestClusterSpreadsKeys: on a Cluster, the stamps' keys land on every
// master, not on the slot of one source.
func TestClusterSpreadsKeys(t *testing.T) {
	c := testservers.RedisCluster(t)
	store := newStore(t, newClusterClient(t, c))
	nodes := map[string]int{}
	const stamps = 30
	for i := range stamps {
		id := strconv.Itoa(i)
		ok, err := store.Seen(context.Background(), "orders", "jti-"+id, id+"-0", time.Now().Add(time.Hour))
		if err != nil || !ok {
			t.Fatalf("Seen %d = %v, %v", i, ok, err)
		}
		n, err := c.NodeFor(store.Key("orders", "jti-"+id))
		if err != nil {
			t.Fatal(err)
		}
		got, err := n.Command("GET", store.Key("orders", "jti-"+id))
		if err != nil || got != id+"-0" {
			t.Fatalf("GET on the node of stamp %d = %q, %v; want %q", i, got, err, id+"-0")
		}
		nodes[n.Addr]++
	}
	if len(nodes) != len(c.Nodes) {
		t.Errorf("%d stamps of one source went to %d of %d masters: %v", stamps, len(nodes), len(c.Nodes), nodes)
	}
}

// TestKeyLivesAsLongAsTheStamp: Redis keeps a stamp's key, holding the
// message it first came on, until the stamp expires and the Verifier's
// margin of 5 minutes after (authz's greatest leeway).
func TestKeyLivesAsLongAsTheStamp(t *testing.T) {
	srv := testservers.Redis(t)
	clk := newClock()
	s := newSigner(t, clk, stamp.WithMaxAge(time.Hour))
	store := newStore(t, newClient(t, srv.Addr), redisreplay.WithPrefix("svc:"))
	r := newReplica(t, s, clk, store)
	attrs := mustStamp(t, s, "a")
	if o, reason := r.deliver(stamped("1-0", "a", attrs)); o != message.Acked {
		t.Fatalf("%s %q", o, reason)
	}
	key := store.Key("orders", jti(t, attrs))
	if !strings.HasPrefix(key, "svc:") {
		t.Errorf("key %q lacks the prefix", key)
	}
	got, err := srv.Command("GET", key)
	if err != nil || got != "1-0" {
		t.Fatalf("GET %s = %q, %v; want the message ID 1-0", key, got, err)
	}
	at, err := srv.Command("PEXPIRETIME", key)
	if err != nil {
		t.Fatal(err)
	}
	want := clk.Now().Add(time.Hour + 5*time.Minute).UnixMilli()
	if at != strconv.FormatInt(want, 10) {
		t.Errorf("PEXPIRETIME %s = %s, want %d (the stamp's expiry and 5 minutes)", key, at, want)
	}
}

// TestRedisDownDefers: with Redis stopped, a stamp the replica's cache
// does not hold is deferred (never refused, never run unchecked), a
// redelivery it holds still runs; once Redis is back, the deferred
// message runs and its replay is refused.
func TestRedisDownDefers(t *testing.T) {
	srv := testservers.Redis(t)
	clk := newClock()
	s := newSigner(t, clk)
	store := newStore(t, newClient(t, srv.Addr))
	r := newReplica(t, s, clk, store)
	seen, fresh := mustStamp(t, s, "a"), mustStamp(t, s, "b")
	if o, reason := r.deliver(stamped("1-0", "a", seen)); o != message.Acked {
		t.Fatalf("%s %q", o, reason)
	}
	srv.Stop()
	if o, after := r.deliver(stamped("2-0", "b", fresh)); o != message.Deferred || after != "5s" {
		t.Fatalf("a new stamp, Redis down: %s %q; want deferred 5s", o, after)
	}
	if err := store.Check(context.Background()); err == nil || !strings.Contains(err.Error(), "does not answer") {
		t.Errorf("Check with Redis down = %v, want an error saying Redis does not answer", err)
	}
	if o, reason := r.deliver(stamped("1-0", "a", seen)); o != message.Acked {
		t.Fatalf("a redelivery the cache holds, Redis down: %s %q; want acked", o, reason)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	if o, reason := r.deliver(stamped("2-0", "b", fresh)); o != message.Acked {
		t.Fatalf("the deferred message, Redis back: %s %q; want acked", o, reason)
	}
	if o, reason := newReplica(t, s, clk, store).deliver(stamped("3-0", "b", fresh)); o != message.Rejected || reason != "stamp:replayed" {
		t.Fatalf("its replay to another replica: %s %q; want rejected stamp:replayed", o, reason)
	}
	if n := r.ran.Load(); n != 3 {
		t.Errorf("the handler ran %d times, want 3", n)
	}
}

// TestRedisPausedDefers: a Redis that accepts connections and answers
// nothing holds a check no longer than the timeout, and the message is
// deferred.
func TestRedisPausedDefers(t *testing.T) {
	srv := testservers.Redis(t)
	clk := newClock()
	s := newSigner(t, clk)
	store := newStore(t, newClient(t, srv.Addr), redisreplay.WithTimeout(100*time.Millisecond))
	if err := store.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := newReplica(t, s, clk, store)
	attrs := mustStamp(t, s, "a")
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	o, after := r.deliver(stamped("1-0", "a", attrs))
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	if o != message.Deferred || after != "5s" || r.ran.Load() != 0 {
		t.Fatalf("a stamp, Redis paused: %s %q, ran %d; want deferred 5s, not run", o, after, r.ran.Load())
	}
	if o, reason := r.deliver(stamped("1-0", "a", attrs)); o != message.Acked {
		t.Fatalf("redelivered, Redis resumed: %s %q; want acked", o, reason)
	}
}

// TestNewRefuses: configuration mistakes are errors that name the fix.
func TestNewRefuses(t *testing.T) {
	ok := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true})
	defer ok.Close()
	blind := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer blind.Close()
	for _, tc := range []struct {
		name string
		rdb  redis.UniversalClient
		opts []redisreplay.Option
		want string
	}{
		{"no client", nil, nil, "needs a Redis client"},
		{"no context deadlines", blind, nil, "ContextTimeoutEnabled"},
		{"negative timeout", ok, []redisreplay.Option{redisreplay.WithTimeout(-time.Second)}, "WithTimeout"},
		{"brace in the prefix", ok, []redisreplay.Option{redisreplay.WithPrefix("{svc}:")}, "brace"},
	} {
		_, err := redisreplay.New(tc.rdb, tc.opts...)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "redisreplay: ") {
			t.Errorf("%s: error %v, want one naming %q", tc.name, err, tc.want)
		}
	}
	if _, err := redisreplay.New(ok, nil, redisreplay.WithTimeout(0), redisreplay.WithPrefix("")); err != nil {
		t.Errorf("nil and zero options: %v, want the defaults", err)
	}
}
