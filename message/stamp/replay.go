package stamp

import (
	"hash/maphash"
	"sync"
	"time"
)

const replayShards = 16

// replayCache remembers, for each stamp accepted, the ID of the message
// it came on, until the stamp expires: the same stamp on another message
// of the same source is a replay, on the same message a redelivery. It
// holds about size stamps, the most recent: when a shard is full, its
// oldest entry goes (first in, first out), so a replay is caught as long
// as its first delivery is among the last size stamps accepted.
type replayCache struct {
	seed     maphash.Seed
	perShard int
	shards   [replayShards]replayShard
}

type replayShard struct {
	mu    sync.Mutex
	m     map[replayKey]replayEntry
	order []replayRef // ring of the keys in the order added, grown to perShard
	head  int         // oldest in order
	n     int         // refs in order
	seq   uint64
}

// replayKey names a stamp: its jti within its source. A struct of the two
// strings rather than one joined string, so that a lookup (every
// redelivery) allocates nothing.
type replayKey struct{ source, jti string }

// shard returns the shard of k: a seeded hash of source and jti, with a
// separator so that ("ab", "c") and ("a", "bc") differ, computed on the
// stack.
func (c *replayCache) shard(k replayKey) *replayShard {
	var h maphash.Hash
	h.SetSeed(c.seed)
	h.WriteString(k.source)
	h.WriteByte(0)
	h.WriteString(k.jti)
	return &c.shards[h.Sum64()%replayShards]
}

// own returns copies of k and the message ID id, in one allocation, for
// an entry to keep: the message's strings may share the memory of a
// larger buffer (a transport's reply) that the cache must not hold on to.
func own(k replayKey, id string) (replayKey, string) {
	b := k.source + k.jti + id
	n, m := len(k.source), len(k.source)+len(k.jti)
	return replayKey{source: b[:n], jti: b[n:m]}, b[m:]
}

type replayEntry struct {
	id  string // the message ID
	exp int64  // unix nanoseconds
	seq uint64
}

type replayRef struct {
	key replayKey
	seq uint64
}

func newReplayCache(size int) *replayCache {
	c := &replayCache{seed: maphash.MakeSeed(), perShard: max(1, size/replayShards)}
	for i := range c.shards {
		c.shards[i].m = make(map[replayKey]replayEntry)
	}
	return c
}

// see records that the stamp jti came from source on message id, valid
// until exp, and reports whether that is no replay: the first time, or a
// redelivery of the same message.
func (c *replayCache) see(source, jti, id string, exp, now time.Time) bool {
	key := replayKey{source, jti}
	s := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.m[key]; ok && e.exp > now.UnixNano() {
		return e.id == id
	}
	key, id = own(key, id)
	if s.n == c.perShard { // full: the oldest goes
		old := s.order[s.head]
		if e, ok := s.m[old.key]; ok && e.seq == old.seq {
			delete(s.m, old.key)
		}
		s.head = (s.head + 1) % len(s.order)
		s.n--
	}
	s.seq++
	s.m[key] = replayEntry{id: id, exp: exp.UnixNano(), seq: s.seq}
	ref := replayRef{key: key, seq: s.seq}
	if len(s.order) < c.perShard { // still filling: head is 0
		s.order = append(s.order, ref)
	} else {
		s.order[(s.head+s.n)%len(s.order)] = ref
	}
	s.n++
	return true
}
