package redisstore

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// breaker follows how calls to one Redis fare: a single server, or one
// master of a Cluster, so that a Cluster node that fails sends only the
// keys of its slots to the failure policies while the others stay shared.
type breaker struct {
	node string // the master's address on a Cluster; "" otherwise

	// down while each tier's failure policy decides; fails counts the
	// failed calls in a row while up; retryAt (unix ns) is when Redis is
	// tried again while down, by one decision at a time (probing).
	down    atomic.Bool
	fails   atomic.Int32
	retryAt atomic.Int64
	probing atomic.Bool
	downAt  atomic.Int64
	mu      sync.Mutex // orders the switches and their log lines
}

// breakerFor returns the breaker of the Redis that holds key: on a
// Cluster, that of the master its slot is on, as the client last learned
// the slots; otherwise, or when the client cannot tell, the store's one.
func (s *Store) breakerFor(ctx context.Context, key string) *breaker {
	cc, ok := s.rdb.(*redis.ClusterClient)
	if !ok {
		return &s.whole
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	node, err := cc.MasterForKey(ctx, key)
	if err != nil {
		return &s.whole
	}
	addr := node.Options().Addr
	if b, ok := s.nodes.Load(addr); ok {
		return b.(*breaker)
	}
	b, _ := s.nodes.LoadOrStore(addr, &breaker{node: addr})
	return b.(*breaker)
}

// breakers calls f with the store's breakers.
func (s *Store) breakers(f func(*breaker)) {
	f(&s.whole)
	s.nodes.Range(func(_, b any) bool {
		f(b.(*breaker))
		return true
	})
}
