package redisreplay_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tenancykit/tenancy/internal/testservers"
	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/message/stamp"
	"github.com/tenancykit/tenancy/message/stamp/redisreplay"
	"github.com/tenancykit/tenancy/tenant"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(testservers.AfterRun(m))
}

const issuer = "https://orders.example.com"

// clock is a time source tests move by hand. It starts at the current
// second: Redis expires keys by its own clock, so the stamps' expiry
// must lie ahead of it.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Now().Truncate(time.Second)} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// newSigner returns a Signer of issuer with a new P-256 key on clk.
func newSigner(t *testing.T, clk *clock, opts ...stamp.Option) *stamp.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := stamp.NewSigner(issuer, k, "k1", append([]stamp.Option{stamp.WithClock(clk.Now)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newClient returns a client of addr that gives up at once on a server
// that is down, closed at the test's end.
func newClient(t *testing.T, addr string) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond, ContextTimeoutEnabled: true})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// newClusterClient returns a client of c, closed at the test's end.
func newClusterClient(t *testing.T, c *testservers.RedisClusterServers) *redis.ClusterClient {
	t.Helper()
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs, MaxRetries: -1, DialTimeout: 200 * time.Millisecond, ContextTimeoutEnabled: true})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// newStore returns a store over rdb with a timeout generous enough for a
// loaded test machine under -race (tests of the timeout set their own).
func newStore(t *testing.T, rdb redis.UniversalClient, opts ...redisreplay.Option) *redisreplay.Store {
	t.Helper()
	s, err := redisreplay.New(rdb, append([]redisreplay.Option{redisreplay.WithTimeout(2 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// replica is one consumer: a Verifier of s's stamps on clk sharing store,
// and the handler Trusted makes of it, which counts what it ran.
type replica struct {
	h   message.Handler
	ran atomic.Int64
}

func newReplica(t *testing.T, s *stamp.Signer, clk *clock, store stamp.ReplayStore) *replica {
	t.Helper()
	v, err := stamp.NewVerifier(context.Background(), issuer, stamp.WithJWKS(s.JWKS()), stamp.WithClock(clk.Now), stamp.WithReplayStore(store))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	r := &replica{}
	r.h = stamp.Trusted(v)(message.HandlerFunc(func(ctx context.Context, m *message.Message) error {
		if _, ok := tenant.FromContext(ctx); !ok {
			t.Errorf("message %s ran without a tenant", m.ID)
		}
		r.ran.Add(1)
		return nil
	}))
	return r
}

// deliver hands m to r and returns the outcome and its reason or delay.
func (r *replica) deliver(m *message.Message) (message.Outcome, string) {
	o, after, reason := message.OutcomeOf(r.h.HandleMessage(context.Background(), m))
	if o == message.Deferred {
		return o, after.String()
	}
	return o, reason
}

// stamped returns a message of source "orders" with ID id and body, and
// attrs as its attributes.
func stamped(id, body string, attrs map[string]string) *message.Message {
	return &message.Message{ID: id, Source: "orders", Body: []byte(body), Attributes: attrs}
}

// mustStamp stamps body for tenant acme.
func mustStamp(t *testing.T, s *stamp.Signer, body string) map[string]string {
	t.Helper()
	ctx := tenant.NewContext(context.Background(), tenant.Tenant{ID: "acme", Tier: tenant.DefaultTiers.MustLookup("basic"), Source: tenant.SourceToken})
	attrs, err := s.Stamp(ctx, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return attrs
}

// jti reads the stamp ID of attrs, unverified.
func jti(t *testing.T, attrs map[string]string) string {
	t.Helper()
	parts := strings.Split(attrs[stamp.Attribute], ".")
	if len(parts) != 3 {
		t.Fatalf("stamp %q is no compact JWS", attrs[stamp.Attribute])
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		JTI string `json:"jti"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil || claims.JTI == "" {
		t.Fatalf("stamp claims %s: %v", payload, err)
	}
	return claims.JTI
}

// sets counts the SET commands a client sends.
type sets struct{ n atomic.Int64 }

func (h *sets) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *sets) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "set" {
			h.n.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (h *sets) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
