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
	m     map[string]replayEntry
	order []replayRef // ring of the keys in the order added, grown to perShard
	head  int         // oldest in order
	n     int         // refs in order
	seq   uint64
}

type replayEntry struct {
	id  string // the message ID
	exp int64  // unix nanoseconds
	seq uint64
}

type replayRef struct {
	key string
	seq uint64
}

func newReplayCache(size int) *replayCache {
	c := &replayCache{seed: maphash.MakeSeed(), perShard: max(1, size/replayShards)}
	for i := range c.shards {
		c.shards[i].m = make(map[string]replayEntry)
	}
	return c
}

// see records that the stamp jti came from source on message id, valid
// until exp, and reports whether that is no replay: the first time, or a
// redelivery of the same message.
func (c *replayCache) see(source, jti, id string, exp, now time.Time) bool {
	key := source + "\x00" + jti
	s := &c.shards[maphash.String(c.seed, key)%replayShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.m[key]; ok && e.exp > now.UnixNano() {
		return e.id == id
	}
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
