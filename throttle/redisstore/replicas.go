package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/redis/go-redis/v9"
)

// Every store counts itself among the live replicas of its prefix: a
// sorted set in Redis holds one member per store, scored with when it
// expires. Each store refreshes its member every beatEvery of the time
// its decisions are given, and counts the members that have not expired;
// a replica that stops (or stops deciding) drops out after beatTTL.
const (
	beatEvery = 2 * time.Second
	beatTTL   = 10 * time.Second
	// beatTimeout bounds one heartbeat: it runs beside the decisions,
	// never in their way.
	beatTimeout = time.Second
)

// beatScript refreshes this replica's member, forgets expired ones and
// counts the rest, on Redis's clock so that replicas' clocks do not
// matter. KEYS[1] is the set; ARGV the member and its lifetime (ms).
var beatScript = redis.NewScript(`
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)
redis.call('PEXPIRE', KEYS[1], 3 * ttl)
return redis.call('ZCARD', KEYS[1])
`)

// newReplicaID names this store in the set of live replicas.
func newReplicaID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (s *Store) replicasKey() string { return s.prefix + "replicas" }

// beat refreshes this store's member of the live set and learns how many
// replicas are live, at now (the time of the decision that called it).
func (s *Store) beat(ctx context.Context, now time.Time) error {
	n, err := beatScript.Run(ctx, s.rdb, []string{s.replicasKey()}, s.id, beatTTL.Milliseconds()).Int64()
	if err != nil {
		return err
	}
	s.sawReplicas(int(n), now)
	return nil
}

// maybeBeat starts a heartbeat beside the decision at now when one is due.
func (s *Store) maybeBeat(now time.Time) {
	next := s.nextBeat.Load()
	if now.UnixNano() < next || !s.nextBeat.CompareAndSwap(next, now.Add(beatEvery).UnixNano()) {
		return
	}
	s.beats.Lock()
	defer s.beats.Unlock()
	if s.closed {
		return
	}
	s.beating.Add(1)
	go func() {
		defer s.beating.Done()
		ctx, cancel := context.WithTimeout(context.Background(), beatTimeout)
		defer cancel()
		_ = s.beat(ctx, now) // a heartbeat missed is taken again at the next
	}()
}

// sawReplicas records a count of live replicas. A higher count is believed
// at once, a lower one only once no higher count has been seen for a full
// beatTTL: a replica that restarted, or a Redis that lost the set, must not
// make the others believe their share is larger than it is.
func (s *Store) sawReplicas(n int, now time.Time) {
	s.countMu.Lock()
	defer s.countMu.Unlock()
	if n >= s.live || now.Sub(s.liveSince) >= beatTTL {
		s.live, s.liveSince = n, now
	}
}

// replicas is the count of replicas the limits are shared by: the one
// given to WithReplicas, or the live ones counted in Redis, at least 1.
func (s *Store) replicas() int {
	if s.fixedReplicas > 0 {
		return s.fixedReplicas
	}
	s.countMu.Lock()
	defer s.countMu.Unlock()
	return max(1, s.live)
}
