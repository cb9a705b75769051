package redisstore

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tenancykit/tenancy/throttle"
)

// Store is a [throttle.Store] in Redis. It is safe for concurrent use.
//
// Rates, quota periods and the retry interval follow the time each
// [Store.Take] is given, the clock of the throttle.Limiter
// (throttle.WithClock).
type Store struct {
	rdb      redis.UniversalClient
	prefix   string
	timeout  time.Duration
	retry    time.Duration
	replicas int
	local    *throttle.MemoryStore
	logger   *slog.Logger

	mu       sync.Mutex
	down     bool
	retryAt  time.Time
	failures atomic.Int64
	switches atomic.Int64
	fallback atomic.Int64
}

// Option configures a [Store].
type Option func(*config)

type config struct {
	timeout  time.Duration
	retry    time.Duration
	replicas int
	prefix   string
	logger   *slog.Logger
	local    *throttle.MemoryStore
}

// Defaults of the options.
const (
	DefaultTimeout       = 50 * time.Millisecond
	DefaultRetryInterval = time.Second
	DefaultPrefix        = "tenancy:"
)

// WithTimeout bounds each decision's wait for Redis; past it the tier's
// failure policy decides. Default (also for 0) [DefaultTimeout].
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// WithRetryInterval sets how long after a failure Redis is left alone
// before it is tried again. Default (also for 0) [DefaultRetryInterval].
func WithRetryInterval(d time.Duration) Option { return func(c *config) { c.retry = d } }

// WithReplicas sets how many replicas share the limits, for the local
// fallback: each then admits its share. Default (also for 0) 1.
func WithReplicas(n int) Option { return func(c *config) { c.replicas = n } }

// WithPrefix sets the prefix of every key, to keep services that share one
// Redis apart. Default (also for "") [DefaultPrefix].
func WithPrefix(p string) Option { return func(c *config) { c.prefix = p } }

// WithLogger sets where the switch to and from the fallback is logged.
// Default (also for nil) slog.Default().
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithFallbackStore sets the in-process store that limits each replica to
// its share while Redis is away ([throttle.FailLocal]). Default (also for
// nil) a [throttle.MemoryStore] with default options.
func WithFallbackStore(m *throttle.MemoryStore) Option { return func(c *config) { c.local = m } }

// newConfig applies opts over the defaults: a zero or nil value inside an
// option means the default, a negative one is an error naming the option.
func newConfig(opts []Option) (config, error) {
	var c config
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	switch {
	case c.timeout < 0:
		return c, fmt.Errorf("redisstore: WithTimeout needs a positive duration, got %v", c.timeout)
	case c.retry < 0:
		return c, fmt.Errorf("redisstore: WithRetryInterval needs a positive duration, got %v", c.retry)
	case c.replicas < 0:
		return c, fmt.Errorf("redisstore: WithReplicas needs at least 1, got %d", c.replicas)
	}
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	}
	if c.retry == 0 {
		c.retry = DefaultRetryInterval
	}
	if c.replicas == 0 {
		c.replicas = 1
	}
	if c.prefix == "" {
		c.prefix = DefaultPrefix
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	if c.local == nil {
		// Without options a MemoryStore cannot fail.
		c.local, _ = throttle.NewMemoryStore()
	}
	return c, nil
}

// New returns a Store over rdb, whose options must have
// ContextTimeoutEnabled set (go-redis otherwise waits out its own read
// timeout, seconds, whatever the context says). New does not contact Redis:
// an outage at start-up is handled like any other.
func New(rdb redis.UniversalClient, opts ...Option) (*Store, error) {
	if rdb == nil {
		return nil, errors.New("redisstore: New needs a Redis client")
	}
	c, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	if !honoursDeadlines(rdb) {
		return nil, errors.New("redisstore: the Redis client ignores context deadlines, so a slow Redis would hold every request past WithTimeout: set ContextTimeoutEnabled: true in its options")
	}
	return &Store{
		rdb:      rdb,
		prefix:   c.prefix,
		timeout:  c.timeout,
		retry:    c.retry,
		replicas: c.replicas,
		local:    c.local,
		logger:   c.logger,
	}, nil
}

var _ throttle.Store = (*Store)(nil)

// honoursDeadlines reports whether the client's network waits end with the
// context, for the client types whose options say so.
func honoursDeadlines(rdb redis.UniversalClient) bool {
	switch c := rdb.(type) {
	case *redis.Client:
		return c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		return c.Options().ContextTimeoutEnabled
	case *redis.Ring:
		return c.Options().ContextTimeoutEnabled
	}
	return true
}

// Warm connects to Redis and loads the store's scripts, so that the first
// decisions do not spend their timeout on a connection and a script load.
// Call it at start-up; an error means Redis is unreachable now, which the
// store handles like any outage, so a service may log it and go on.
func (s *Store) Warm(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redisstore: warm: %w", err)
	}
	if err := decideScript.Load(ctx, s.rdb).Err(); err != nil {
		return fmt.Errorf("redisstore: warm: %w", err)
	}
	return nil
}

// Stats counts how the store has fared.
type Stats struct {
	Failures  int64 // Redis calls that failed or timed out
	Switches  int64 // times the store switched to its fallback
	Fallbacks int64 // decisions made by a failure policy
	Down      bool  // whether the store is on its fallback now
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	down := s.down
	s.mu.Unlock()
	return Stats{Failures: s.failures.Load(), Switches: s.switches.Load(), Fallbacks: s.fallback.Load(), Down: down}
}

// Take implements [throttle.Store].
func (s *Store) Take(ctx context.Context, key string, lim throttle.Limits, cost int, now time.Time) (throttle.Result, error) {
	if !s.available(now) {
		return s.degraded(ctx, key, lim, cost, now)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	res, err := s.take(ctx, key, lim, cost, now)
	if err != nil {
		if errors.Is(err, context.Canceled) && ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return throttle.Result{}, err // the caller gave up; not Redis's fault
		}
		s.failed(now, err)
		return s.degraded(ctx, key, lim, cost, now)
	}
	s.recovered()
	return res, nil
}

func (s *Store) available(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.down || !now.Before(s.retryAt)
}

func (s *Store) failed(now time.Time, err error) {
	s.failures.Add(1)
	s.mu.Lock()
	wasDown := s.down
	s.down, s.retryAt = true, now.Add(s.retry)
	s.mu.Unlock()
	if !wasDown {
		s.switches.Add(1)
		s.logger.Warn("redisstore: Redis unavailable; each tier's failure policy decides until it is back",
			"error", err.Error(), "retry_interval", s.retry.String())
	}
}

func (s *Store) recovered() {
	s.mu.Lock()
	wasDown := s.down
	s.down = false
	s.mu.Unlock()
	if wasDown {
		s.logger.Info("redisstore: Redis is back; limits are shared again")
	}
}

// degraded decides by the tier's failure policy.
func (s *Store) degraded(ctx context.Context, key string, lim throttle.Limits, cost int, now time.Time) (throttle.Result, error) {
	s.fallback.Add(1)
	switch lim.OnStoreFailure {
	case throttle.FailOpen:
		return throttle.Result{Allowed: true, Remaining: lim.Burst}, nil
	case throttle.FailClosed:
		return throttle.Result{Reason: throttle.ReasonStore, RetryAfter: s.retry}, nil
	}
	share := s.share(lim)
	return s.local.Take(ctx, key, share, min(cost, share.Burst), now)
}

// share is one replica's part of lim.
func (s *Store) share(lim throttle.Limits) throttle.Limits {
	n := s.replicas
	out := lim
	out.Rate = lim.Rate / float64(n)
	out.Burst = max(1, lim.Burst/n)
	out.Quotas = make([]throttle.Quota, len(lim.Quotas))
	for i, q := range lim.Quotas {
		out.Quotas[i] = throttle.Quota{Limit: max(1, q.Limit/int64(n)), Period: q.Period}
	}
	return out
}

// encodeTag returns the Cluster hash tag of a key: its base64url form, so
// that any tenant ID, braces and all, maps to one slot.
func encodeTag(key string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(key))
}

func (s *Store) take(ctx context.Context, key string, lim throttle.Limits, cost int, now time.Time) (throttle.Result, error) {
	r, err := s.decide(ctx, key, lim, cost, now, &syncState{})
	return r.Result, err
}
