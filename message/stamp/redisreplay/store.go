package redisreplay

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tenancykit/tenancy/internal/redisclient"
	"github.com/tenancykit/tenancy/message/stamp"
)

// Defaults of the options.
const (
	// DefaultTimeout bounds each check's wait for Redis.
	DefaultTimeout = 250 * time.Millisecond
	// DefaultPrefix starts every key.
	DefaultPrefix = "tenancy:stamp:"
)

// Store is a [stamp.ReplayStore] in Redis. It is safe for concurrent use.
type Store struct {
	rdb     redis.UniversalClient
	prefix  string
	timeout time.Duration
}

var _ stamp.ReplayStore = (*Store)(nil)

// Option configures a [Store]. A nil Option is ignored, and an option
// given its zero value leaves the default.
type Option func(*config)

type config struct {
	timeout time.Duration
	prefix  string
}

// WithTimeout bounds each check's wait for Redis; past it the check has
// failed and the message is deferred. Default (also for 0)
// [DefaultTimeout].
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// WithPrefix sets the prefix of every key, to keep services that share one
// Redis apart. It may not hold braces, which would make it the Cluster
// hash tag of every key. Default (also for "") [DefaultPrefix].
func WithPrefix(p string) Option { return func(c *config) { c.prefix = p } }

// New returns a Store over rdb, whose options must have
// ContextTimeoutEnabled set (go-redis otherwise waits out its own read
// timeout, seconds, whatever the context says). New does not contact
// Redis; [Store.Check] does.
func New(rdb redis.UniversalClient, opts ...Option) (*Store, error) {
	if rdb == nil {
		return nil, errors.New("redisreplay: New needs a Redis client")
	}
	var c config
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	switch {
	case c.timeout < 0:
		return nil, fmt.Errorf("redisreplay: WithTimeout needs a positive duration, got %v", c.timeout)
	case strings.ContainsAny(c.prefix, "{}"):
		return nil, fmt.Errorf("redisreplay: WithPrefix %q holds a brace, which would put every key in one Redis Cluster slot", c.prefix)
	case !redisclient.HonoursDeadlines(rdb):
		return nil, errors.New("redisreplay: the Redis client ignores context deadlines, so a slow Redis would hold every message past WithTimeout: set ContextTimeoutEnabled: true in its options")
	}
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	}
	if c.prefix == "" {
		c.prefix = DefaultPrefix
	}
	return &Store{rdb: rdb, prefix: c.prefix, timeout: c.timeout}, nil
}

// Seen records that the stamp jti of source came on message messageID
// until expires, unless a message was recorded for it before, in one
// round trip; it reports whether messageID is the message recorded. An
// error (Redis unreachable, slower than the timeout, an error reply) means
// it could not tell.
func (s *Store) Seen(ctx context.Context, source, jti, messageID string, expires time.Time) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	first, err := s.rdb.SetArgs(ctx, s.key(source, jti), messageID, redis.SetArgs{Mode: "NX", ExpireAt: expires, Get: true}).Result()
	switch {
	case errors.Is(err, redis.Nil): // not there: recorded now
		return true, nil
	case err != nil:
		return false, fmt.Errorf("redisreplay: %w", err)
	}
	return first == messageID, nil
}

// key returns the key that records the stamp jti of source: the prefix,
// then the hash tag of the source and the stamp ID, base64url encoded.
func (s *Store) key(source, jti string) string {
	enc := base64.RawURLEncoding
	var b strings.Builder
	b.Grow(len(s.prefix) + len("replay:{:}") + enc.EncodedLen(len(source)) + enc.EncodedLen(len(jti)))
	b.WriteString(s.prefix)
	b.WriteString("replay:{")
	b.WriteString(enc.EncodeToString([]byte(source)))
	b.WriteByte(':')
	b.WriteString(enc.EncodeToString([]byte(jti)))
	b.WriteByte('}')
	return b.String()
}

// Check makes one check on a key of its own, to learn at start-up that
// Redis answers and takes SET with NX and GET (Redis 7.0 or later). Its
// error says what is wrong; the store handles an outage at any time, so a
// service may start anyway, its stamped messages deferred until Redis
// answers.
func (s *Store) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	err := s.rdb.SetArgs(ctx, s.prefix+"check", "check", redis.SetArgs{Mode: "NX", TTL: time.Second, Get: true}).Err()
	var reply redis.Error
	switch {
	case err == nil || errors.Is(err, redis.Nil):
		return nil
	case errors.As(err, &reply) && strings.Contains(strings.ToLower(reply.Error()), "syntax"):
		return fmt.Errorf("redisreplay: Redis refuses SET with NX and GET, which needs Redis 7.0 or later: %w", err)
	}
	return fmt.Errorf("redisreplay: Redis does not answer: %w", err)
}
