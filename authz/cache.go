package authz

import (
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tenancykit/tenancy/tenant"
)

const cacheShards = 32

// tokenCache remembers tokens that verified, so that a client sending the
// same token again costs a hash and a map lookup instead of a signature
// check. It is bounded, keyed by a seeded hash of the token, and a hit must
// also match the token's signature: a hash collision cannot hand one caller
// another's tenant, and no usable token is kept in memory. No entry outlives
// its token's exp, and clear empties it when the key set changes.
type tokenCache struct {
	seed     maphash.Seed
	perShard int
	gen      atomic.Uint64
	shards   [cacheShards]cacheShard
}

type cacheShard struct {
	mu sync.RWMutex
	m  map[uint64]cacheEntry
	// spare holds the signature buffers of evicted entries, for the next
	// entries to copy their signature into: a cache that is full, as it is
	// under a stream of new tokens, then stores a token without
	// allocating. At most perShard buffers are kept.
	spare [][]byte
	_     [16]byte // keep shards on separate cache lines
}

type cacheEntry struct {
	// sig is a copy of the token's signature segment. Its buffer is reused
	// once the entry is evicted, so it is read only under the shard's lock.
	sig []byte
	t   *tenant.Tenant
	exp int64 // unix nanoseconds
}

func newTokenCache(size int) *tokenCache {
	c := &tokenCache{seed: maphash.MakeSeed(), perShard: max(1, size/cacheShards)}
	for i := range c.shards {
		c.shards[i].m = make(map[uint64]cacheEntry)
	}
	return c
}

// signature returns what follows the last dot of token (all of it when it
// has none). It scans forward, dot to dot, with strings.IndexByte, which
// is vectorised; strings.LastIndexByte walks back a byte at a time, some
// 2,000 instructions across an RS256 signature.
func signature(token string) string {
	for {
		i := strings.IndexByte(token, '.')
		if i < 0 {
			return token
		}
		token = token[i+1:]
	}
}

// hasSignature reports whether sig is the last segment of token, without
// scanning the token for the last dot.
func hasSignature(token string, sig []byte) bool {
	n := len(token) - len(sig)
	// The conversion in a comparison copies nothing.
	return n > 0 && token[n-1] == '.' && token[n:] == string(sig)
}

// hash is the key of token in the cache. A token is hashed once per
// verification: get and put take the hash. maphash.Comparable hashes the
// whole token in one pass of the runtime's string hash, as a map keyed by
// strings would; maphash.String feeds it 128 bytes at a time, which for a
// token of a kilobyte costs several times as much. Either is seeded per
// cache, and a hit is checked against the signature anyway.
func (c *tokenCache) hash(token string) uint64 { return maphash.Comparable(c.seed, token) }

func (c *tokenCache) get(h uint64, token string, now time.Time) (*tenant.Tenant, bool) {
	s := &c.shards[h%cacheShards]
	s.mu.RLock()
	e, ok := s.m[h]
	// Under the lock: once the entry is evicted, put may reuse its buffer.
	ok = ok && now.UnixNano() < e.exp && hasSignature(token, e.sig)
	s.mu.RUnlock()
	if !ok {
		return nil, false
	}
	return e.t, true
}

// generation is read before a verification starts; put drops the result if
// the key set changed in between.
func (c *tokenCache) generation() uint64 { return c.gen.Load() }

func (c *tokenCache) put(h uint64, token string, t *tenant.Tenant, exp time.Time, gen uint64, now time.Time) {
	if !exp.After(now) {
		return
	}
	s := &c.shards[h%cacheShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.gen.Load() != gen {
		return
	}
	if old, ok := s.m[h]; ok { // the same token verified twice at once
		s.recycle(old.sig, c.perShard)
		delete(s.m, h)
	}
	if len(s.m) >= c.perShard {
		s.evict(now.UnixNano(), c.perShard)
	}
	sig := signature(token)
	var buf []byte
	if n := len(s.spare); n > 0 {
		// One too small (a shorter signature's) is dropped, not kept to
		// block the others.
		if cap(s.spare[n-1]) >= len(sig) {
			buf = s.spare[n-1]
		}
		s.spare[n-1] = nil
		s.spare = s.spare[:n-1]
	}
	s.m[h] = cacheEntry{sig: append(buf[:0], sig...), t: t, exp: exp.UnixNano()}
}

// recycle keeps buf for a later entry, up to limit buffers.
func (s *cacheShard) recycle(buf []byte, limit int) {
	if len(s.spare) < limit {
		s.spare = append(s.spare, buf)
	}
}

// evict drops expired entries, and if that frees less than an eighth of the
// shard, arbitrary ones (map order is random) until it does.
func (s *cacheShard) evict(now int64, limit int) {
	target := limit - max(1, limit/8)
	if target == 0 {
		// What the loops below come to, without walking the map twice.
		for _, e := range s.m {
			s.recycle(e.sig, limit)
		}
		clear(s.m)
		return
	}
	for k, e := range s.m {
		if e.exp <= now {
			s.recycle(e.sig, limit)
			delete(s.m, k)
		}
	}
	if len(s.m) <= target {
		return
	}
	for k, e := range s.m {
		if len(s.m) <= target {
			break
		}
		s.recycle(e.sig, limit)
		delete(s.m, k)
	}
}

func (c *tokenCache) clear() {
	c.gen.Add(1)
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		clear(s.m)
		s.mu.Unlock()
	}
}

func (c *tokenCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}
