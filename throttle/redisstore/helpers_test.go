package redisstore_test

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tenancykit/tenancy/internal/testservers"
	"github.com/tenancykit/tenancy/throttle/redisstore"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(testservers.AfterRun(m, func() {
		if stopCluster != nil {
			stopCluster()
		}
	}))
}

// The Redis Cluster the tests share, started by the first that needs it.
var (
	clusterOnce sync.Once
	cluster     *testservers.RedisClusterServers
	clusterErr  error
	stopCluster func()
)

// backend is a Redis the store's tests run against: one server, or a
// Cluster of three nodes.
type backend struct {
	servers []*testservers.RedisServer
	cluster *testservers.RedisClusterServers // nil for one server
}

// forEachBackend runs f against a Redis server of its own and against the
// shared Redis Cluster, whose tests keep apart by their keys' prefixes.
func forEachBackend(t *testing.T, f func(t *testing.T, b *backend)) {
	t.Run("single", func(t *testing.T) {
		f(t, &backend{servers: []*testservers.RedisServer{testservers.Redis(t)}})
	})
	t.Run("cluster", func(t *testing.T) {
		clusterOnce.Do(func() { cluster, stopCluster, clusterErr = testservers.StartRedisCluster() })
		testservers.Check(t, clusterErr)
		if err := cluster.WaitOK(context.Background()); err != nil {
			t.Fatal(err)
		}
		f(t, &backend{servers: cluster.Nodes, cluster: cluster})
	})
}

// client returns a new client of b, closed at the test's end.
func (b *backend) client(t *testing.T) redis.UniversalClient {
	t.Helper()
	if b.cluster == nil {
		return newClient(t, b.servers[0].Addr)
	}
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: b.cluster.Addrs, MaxRetries: -1, DialTimeout: 200 * time.Millisecond, ContextTimeoutEnabled: true})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// commands sums commands over b's servers.
func (b *backend) commands(t *testing.T) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, srv := range b.servers {
		for name, n := range commands(t, srv) {
			out[name] += n
		}
	}
	return out
}

// keys lists the keys of b's servers that start with prefix, each with the
// server that holds it.
func (b *backend) keys(t *testing.T, prefix string) map[string]*testservers.RedisServer {
	t.Helper()
	out := map[string]*testservers.RedisServer{}
	for _, srv := range b.servers {
		raw, err := srv.Command("KEYS", prefix+"*")
		if err != nil {
			t.Fatal(err)
		}
		for key := range strings.FieldsSeq(raw) {
			out[key] = srv
		}
	}
	return out
}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newClient(t *testing.T, addr string) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond, ContextTimeoutEnabled: true})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// newStore returns a store with a timeout generous enough for a loaded
// test machine under -race (tests of the timeout set their own) and keys
// of the test's own prefix, its scripts already loaded, closed at the
// test's end.
func newStore(t *testing.T, rdb redis.UniversalClient, opts ...redisstore.Option) *redisstore.Store {
	t.Helper()
	s, err := redisstore.New(rdb, append([]redisstore.Option{redisstore.WithTimeout(2 * time.Second), redisstore.WithPrefix(uniquePrefix(t))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Warm(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

// commands returns the number of calls per command from INFO commandstats.
func commands(t *testing.T, srv *testservers.RedisServer) map[string]int {
	t.Helper()
	info, err := srv.Command("INFO", "commandstats")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for line := range strings.SplitSeq(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		calls, _, _ := strings.Cut(strings.TrimPrefix(rest, "calls="), ",")
		n, _ := strconv.Atoi(calls)
		out[strings.TrimPrefix(name, "cmdstat_")] = n
	}
	return out
}

// roundTrips counts what a client sends: one command or one pipeline is
// one round trip. Decisions are the round trips that name a tenant's key
// (whose hash tag is in braces); the rest are heartbeats and the like.
type roundTrips struct {
	all, decisions atomic.Int64
	mu             sync.Mutex
	names          map[string]bool // commands of the decisions
}

// reset forgets the commands seen.
func (h *roundTrips) reset() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.names = nil
}

// decisionCommands lists the commands decisions were sent as.
func (h *roundTrips) decisionCommands() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return strings.Join(slices.Sorted(maps.Keys(h.names)), ",")
}

func (h *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.all.Add(1)
		for _, a := range cmd.Args() {
			if s, ok := a.(string); ok && strings.Contains(s, "{") {
				h.decisions.Add(1)
				h.mu.Lock()
				if h.names == nil {
					h.names = map[string]bool{}
				}
				h.names[cmd.Name()] = true
				h.mu.Unlock()
				break
			}
		}
		return next(ctx, cmd)
	}
}
func (h *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { h.all.Add(1); return next(ctx, cmds) }
}

// uniquePrefix keeps the keys of one test apart from another's, and from
// its own in an earlier run (-count), on a shared server: the same prefix
// for every call within a test.
func uniquePrefix(t *testing.T) string {
	prefixes.Lock()
	defer prefixes.Unlock()
	if p, ok := prefixes.m[t]; ok {
		return p
	}
	if prefixes.m == nil {
		prefixes.m = map[*testing.T]string{}
	}
	prefixes.n++
	r := strings.NewReplacer("/", ":", "{", "(", "}", ")")
	p := r.Replace(t.Name()) + ":" + strconv.Itoa(prefixes.n) + ":"
	prefixes.m[t] = p
	t.Cleanup(func() {
		prefixes.Lock()
		delete(prefixes.m, t)
		prefixes.Unlock()
	})
	return p
}

var prefixes struct {
	sync.Mutex
	m map[*testing.T]string
	n int
}
