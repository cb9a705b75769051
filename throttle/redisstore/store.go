package redisstore

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tenancykit/tenancy/internal/redisclient"
	"github.com/tenancykit/tenancy/throttle"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
)

// Store is a [throttle.Store] in Redis. It is safe for concurrent use.
//
// Rates, quota periods, the retry interval and the heartbeat all follow
// the time each [Store.Take] is given, the clock of the throttle.Limiter
// (throttle.WithClock).
type Store struct {
	rdb           redis.UniversalClient
	prefix        string
	timeout       time.Duration
	retry         time.Duration
	threshold     int32
	fixedReplicas int
	logger        *slog.Logger
	local         *localState
	metrics       *metrics
	id            string // this replica in the set of live ones

	// The fallback, for a single Redis (whole) or each master of a
	// Cluster (nodes, by address).
	whole     breaker
	nodes     sync.Map
	clustered bool

	failures  atomic.Int64
	switches  atomic.Int64
	fallbacks atomic.Int64

	nextBeat  atomic.Int64 // unix ns
	beats     sync.Mutex   // guards closed against new heartbeats
	closed    bool
	beating   sync.WaitGroup
	countMu   sync.Mutex
	live      int       // replicas counted at the last heartbeat
	liveSince time.Time // when a count of at least live was last seen
}

// Option configures a [Store].
type Option func(*config)

type config struct {
	timeout       time.Duration
	retry         time.Duration
	threshold     int
	replicas      int
	prefix        string
	logger        *slog.Logger
	maxKeys       int
	meterProvider metric.MeterProvider
}

// Defaults of the options.
const (
	DefaultTimeout          = 50 * time.Millisecond
	DefaultRetryInterval    = 500 * time.Millisecond
	DefaultFailureThreshold = 3
	DefaultPrefix           = "tenancy:"
	DefaultMaxKeys          = 1_000_000
)

// idleTTL is how long a key may go unseen before this replica may forget
// what it knows of it, once forgetting loses nothing.
const idleTTL = 10 * time.Minute

// WithTimeout bounds each decision's wait for Redis; past it the call has
// failed, and the tier's failure policy decides the request. Default (also
// for 0) [DefaultTimeout].
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// WithRetryInterval sets how often, while the store is on its fallback,
// one decision tries Redis again; the first that succeeds brings the
// limits back to Redis. Default (also for 0) [DefaultRetryInterval].
func WithRetryInterval(d time.Duration) Option { return func(c *config) { c.retry = d } }

// WithFailureThreshold sets how many calls to Redis in a row must fail for
// the store to switch to its fallback. A failed call before that is
// decided alone, by the tier's failure policy, and the next call goes to
// Redis again. Default (also for 0) [DefaultFailureThreshold].
func WithFailureThreshold(n int) Option { return func(c *config) { c.threshold = n } }

// WithReplicas sets how many replicas share the limits, for the local
// fallback: each then admits its share. Default (also for 0): the replicas
// count themselves in Redis (a heartbeat every few seconds), and each uses
// the last count it saw.
func WithReplicas(n int) Option { return func(c *config) { c.replicas = n } }

// WithPrefix sets the prefix of every key, to keep services that share one
// Redis apart. It may not hold braces, which would make it the Cluster
// hash tag of every key. Default (also for "") [DefaultPrefix].
func WithPrefix(p string) Option { return func(c *config) { c.prefix = p } }

// WithLogger sets where the switch to and from the fallback is logged.
// Default (also for nil) slog.Default().
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithMaxKeys caps how many keys this replica remembers the state of, to
// continue from it while Redis is away. A key forgotten, or never seen,
// starts from an empty bucket then. Default (also for 0) [DefaultMaxKeys].
func WithMaxKeys(n int) Option { return func(c *config) { c.maxKeys = n } }

// WithMeterProvider sets where the store's metrics are reported. Default
// (also for nil) the global otel.GetMeterProvider().
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) { c.meterProvider = mp }
}

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
	case c.threshold < 0:
		return c, fmt.Errorf("redisstore: WithFailureThreshold needs at least 1, got %d", c.threshold)
	case c.replicas < 0:
		return c, fmt.Errorf("redisstore: WithReplicas needs at least 1, got %d", c.replicas)
	case c.maxKeys < 0:
		return c, fmt.Errorf("redisstore: WithMaxKeys needs a positive number of keys, got %d", c.maxKeys)
	case strings.ContainsAny(c.prefix, "{}"):
		return c, fmt.Errorf("redisstore: WithPrefix %q holds a brace, which would put every key in one Redis Cluster slot", c.prefix)
	}
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	}
	if c.retry == 0 {
		c.retry = DefaultRetryInterval
	}
	if c.threshold == 0 {
		c.threshold = DefaultFailureThreshold
	}
	if c.prefix == "" {
		c.prefix = DefaultPrefix
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	if c.maxKeys == 0 {
		c.maxKeys = DefaultMaxKeys
	}
	if c.meterProvider == nil {
		c.meterProvider = otel.GetMeterProvider()
	}
	return c, nil
}

// New returns a Store over rdb, whose options must have
// ContextTimeoutEnabled set (go-redis otherwise waits out its own read
// timeout, seconds, whatever the context says). New does not contact
// Redis: an outage at start-up is handled like any other. Call
// [Store.Close] when done with the store.
func New(rdb redis.UniversalClient, opts ...Option) (*Store, error) {
	if rdb == nil {
		return nil, errors.New("redisstore: New needs a Redis client")
	}
	c, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	if !redisclient.HonoursDeadlines(rdb) {
		return nil, errors.New("redisstore: the Redis client ignores context deadlines, so a slow Redis would hold every request past WithTimeout: set ContextTimeoutEnabled: true in its options")
	}
	s := &Store{
		rdb:           rdb,
		prefix:        c.prefix,
		timeout:       c.timeout,
		retry:         c.retry,
		threshold:     int32(c.threshold),
		fixedReplicas: c.replicas,
		logger:        c.logger,
		local:         newLocalState(c.maxKeys, idleTTL),
		id:            newReplicaID(),
	}
	_, s.clustered = rdb.(*redis.ClusterClient)
	if s.metrics, err = newMetrics(c.meterProvider, s); err != nil {
		return nil, fmt.Errorf("redisstore: metrics: %w", err)
	}
	return s, nil
}

var _ throttle.Store = (*Store)(nil)

// Warm connects to Redis, loads the store's scripts and counts the live
// replicas, so that the first decisions do not spend their timeout on a
// connection and a script load. Call it at start-up; an error means Redis
// is unreachable now, which the store handles like any outage, so a
// service may log it and go on.
func (s *Store) Warm(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redisstore: warm: %w", err)
	}
	for _, sc := range []*redis.Script{decideScript, beatScript} {
		if err := sc.Load(ctx, s.rdb).Err(); err != nil {
			return fmt.Errorf("redisstore: warm: %w", err)
		}
	}
	if err := s.beat(ctx, time.Now()); err != nil {
		return fmt.Errorf("redisstore: warm: %w", err)
	}
	return nil
}

// Close stops the heartbeat and takes this replica out of the count of
// live ones, so that the others' shares grow at once instead of after the
// heartbeat expires. It does not close the Redis client. The store still
// decides after Close, as a replica whose heartbeat has expired.
func (s *Store) Close() error {
	s.beats.Lock()
	s.closed = true
	s.beats.Unlock()
	s.beating.Wait()
	err := s.metrics.reg.Unregister()
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	if zerr := s.rdb.ZRem(ctx, s.replicasKey(), s.id).Err(); zerr != nil {
		err = errors.Join(err, zerr)
	}
	if err != nil {
		return fmt.Errorf("redisstore: close: %w", err)
	}
	return nil
}

// Stats counts how the store has fared.
// On a Redis Cluster, switches are counted per master, and Down reports
// whether any master is on the fallback.
type Stats struct {
	Failures  int64 // Redis calls that failed or timed out
	Switches  int64 // times the store switched to its fallback
	Fallbacks int64 // decisions made by a failure policy
	Down      bool  // whether the store is on its fallback now
	Replicas  int   // how many replicas the limits are shared by now
	Keys      int   // keys whose state this replica remembers
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	return Stats{
		Failures:  s.failures.Load(),
		Switches:  s.switches.Load(),
		Fallbacks: s.fallbacks.Load(),
		Down:      s.isDown(),
		Replicas:  s.replicas(),
		Keys:      s.local.len(),
	}
}

// Take implements [throttle.Store].
//
// The decision is made in Redis, in one round trip, unless Redis has
// failed WithFailureThreshold calls in a row: then, until a call succeeds
// again (one decision tries every WithRetryInterval), each tier's
// [throttle.Limits.OnStoreFailure] decides. A call that fails alone is
// decided the same way, and the store stays on Redis.
func (s *Store) Take(ctx context.Context, key string, lim throttle.Limits, cost int, now time.Time) (throttle.Result, error) {
	e := s.local.entry(key, now.UnixNano())
	b := s.breakerFor(ctx, s.key(key))
	if b.down.Load() {
		at := b.retryAt.Load()
		if now.UnixNano() < at || !b.probing.CompareAndSwap(false, true) {
			return s.degraded(ctx, e, lim, cost, now), nil
		}
		defer b.probing.Store(false)
	} else {
		s.maybeBeat(now)
	}
	res, err := s.remote(ctx, e, key, lim, cost, now)
	if err != nil {
		if errors.Is(err, context.Canceled) && errors.Is(ctx.Err(), context.Canceled) {
			return throttle.Result{}, err // the caller gave up; not Redis's fault
		}
		s.failed(ctx, b, now, err)
		return s.degraded(ctx, e, lim, cost, now), nil
	}
	s.succeeded(ctx, b, now)
	s.metrics.decided(ctx, modeShared)
	return res, nil
}

// remote decides in Redis and remembers the state Redis reported.
func (s *Store) remote(ctx context.Context, e *entry, key string, lim throttle.Limits, cost int, now time.Time) (throttle.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	sent := e.toSync(lim, now)
	r, err := s.decide(ctx, key, lim, cost, now, &sent)
	if err != nil {
		e.unclaim(&sent)
		return throttle.Result{}, err
	}
	e.learn(lim, now, &sent, &r)
	return r.Result, nil
}

// isDown reports whether some Redis (on a Cluster, some master) is on
// its fallback.
func (s *Store) isDown() bool {
	down := false
	s.breakers(func(b *breaker) { down = down || b.down.Load() })
	return down
}

func (s *Store) failed(ctx context.Context, b *breaker, now time.Time, err error) {
	s.failures.Add(1)
	s.metrics.failed(ctx, err)
	if b.down.Load() {
		b.retryAt.Store(now.Add(s.retry).UnixNano())
		return
	}
	if b.fails.Add(1) < s.threshold {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.down.Load() {
		return
	}
	b.retryAt.Store(now.Add(s.retry).UnixNano())
	b.downAt.Store(now.UnixNano())
	b.down.Store(true)
	s.switches.Add(1)
	s.metrics.switched(ctx, stateFallback)
	s.logger.Warn("redisstore: Redis unavailable; each tier's failure policy decides until it answers again",
		s.nodeAttr(b), "error", err.Error(), "failures_in_a_row", s.threshold, "retry_interval", s.retry.String())
}

func (s *Store) succeeded(ctx context.Context, b *breaker, now time.Time) {
	b.fails.Store(0)
	if !b.down.Load() {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.down.Load() {
		return
	}
	b.down.Store(false)
	s.metrics.switched(ctx, stateShared)
	s.logger.Info("redisstore: Redis answers again; limits are shared again",
		s.nodeAttr(b), "fallback_for", time.Duration(now.UnixNano()-b.downAt.Load()).String())
}

// nodeAttr names the Cluster node of b in a log line, when there is one.
func (s *Store) nodeAttr(b *breaker) slog.Attr {
	if b.node == "" {
		return slog.Attr{}
	}
	return slog.String("node", b.node)
}

// degraded decides by the tier's failure policy.
func (s *Store) degraded(ctx context.Context, e *entry, lim throttle.Limits, cost int, now time.Time) throttle.Result {
	s.fallbacks.Add(1)
	switch lim.OnStoreFailure {
	case throttle.FailOpen:
		s.metrics.decided(ctx, modeOpen)
		return throttle.Result{Allowed: true, Remaining: lim.Burst}
	case throttle.FailClosed:
		s.metrics.decided(ctx, modeClosed)
		return throttle.Result{Reason: throttle.ReasonStore, RetryAfter: s.retry}
	}
	s.metrics.decided(ctx, modeLocal)
	return e.take(lim, cost, now, s.replicas())
}

// encodeTag returns the Cluster hash tag of a key: its base64url form, so
// that any tenant ID, braces and all, maps to one slot.
func encodeTag(key string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(key))
}
