package throttle

import (
	"context"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// MemoryStore is the in-process [Store]: per-key state in a sharded map,
// bounded in two ways without any background goroutine. Keys idle for
// longer than the idle TTL are swept as new keys arrive, when forgetting
// them loses nothing (their bucket has refilled and they spent no quota in
// the current period); and the number of keys is capped, the least
// recently seen of a small random sample giving way to a new one.
//
// A key evicted by the cap while it still had quota spent in the current
// period forgets that spending; size the cap above the number of tenants,
// or use a shared store when quotas must be exact at any scale.
//
// A MemoryStore is safe for concurrent use. Its zero value is not usable;
// call [NewMemoryStore].
type MemoryStore struct {
	seed     maphash.Seed
	perShard int
	idleTTL  int64
	evicted  atomic.Int64
	calendar calendar
	shards   [memShards]memShard
}

const memShards = 256

type memShard struct {
	mu      sync.RWMutex
	m       map[string]*memEntry
	inserts int
	_       [24]byte
}

// memEntry is one key's state, about 80 bytes.
type memEntry struct {
	mu       sync.Mutex
	rate     bucket
	quotas   [numPeriods + 1]quotaCounter // indexed by Period
	lastSeen atomic.Int64                 // unix nanoseconds
	inflight atomic.Int32
}

type quotaCounter struct {
	window int64 // index of the period the count belongs to
	used   int64
}

// MemoryOption configures a [MemoryStore].
type MemoryOption func(*memConfig)

type memConfig struct {
	maxKeys int
	idleTTL time.Duration
}

// Defaults of a [MemoryStore].
const (
	DefaultMaxKeys = 1_000_000
	DefaultIdleTTL = 10 * time.Minute
)

// WithMaxKeys caps how many keys are tracked. Default [DefaultMaxKeys],
// also for 0.
func WithMaxKeys(n int) MemoryOption { return func(c *memConfig) { c.maxKeys = n } }

// WithIdleTTL sets how long a key may go unseen before it may be
// forgotten. Default [DefaultIdleTTL], also for 0.
func WithIdleTTL(d time.Duration) MemoryOption { return func(c *memConfig) { c.idleTTL = d } }

// NewMemoryStore returns an empty in-process store. Nil options are
// ignored; a negative cap or TTL is an error naming the option.
func NewMemoryStore(opts ...MemoryOption) (*MemoryStore, error) {
	var c memConfig
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	switch {
	case c.maxKeys < 0:
		return nil, fmt.Errorf("throttle: WithMaxKeys needs a positive number of keys, got %d", c.maxKeys)
	case c.idleTTL < 0:
		return nil, fmt.Errorf("throttle: WithIdleTTL needs a positive duration, got %v", c.idleTTL)
	}
	if c.maxKeys == 0 {
		c.maxKeys = DefaultMaxKeys
	}
	if c.idleTTL == 0 {
		c.idleTTL = DefaultIdleTTL
	}
	s := &MemoryStore{
		seed:     maphash.MakeSeed(),
		perShard: max(1, (c.maxKeys+memShards-1)/memShards),
		idleTTL:  int64(c.idleTTL),
	}
	for i := range s.shards {
		s.shards[i].m = make(map[string]*memEntry)
	}
	return s, nil
}

var _ Store = (*MemoryStore)(nil)

// Take implements [Store].
func (s *MemoryStore) Take(_ context.Context, key string, lim Limits, cost int, now time.Time) (Result, error) {
	e := s.entry(key, now.UnixNano())
	return e.take(lim, cost, now, &s.calendar), nil
}

// Len returns the number of keys tracked.
func (s *MemoryStore) Len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		n += len(sh.m)
		sh.mu.RUnlock()
	}
	return n
}

// Evicted returns how many keys were forgotten to respect the cap while
// they still held state.
func (s *MemoryStore) Evicted() int64 { return s.evicted.Load() }

// entry finds or creates key's state and marks it seen at now.
func (s *MemoryStore) entry(key string, now int64) *memEntry {
	sh := &s.shards[maphash.String(s.seed, key)%memShards]
	sh.mu.RLock()
	e, ok := sh.m[key]
	sh.mu.RUnlock()
	if !ok {
		sh.mu.Lock()
		if e, ok = sh.m[key]; !ok {
			s.makeRoom(sh, now)
			e = new(memEntry)
			// Seen before it is visible, or the next insert into the
			// shard could evict it as the oldest key before its first use.
			e.lastSeen.Store(now)
			sh.m[key] = e
		}
		sh.mu.Unlock()
	}
	if e.lastSeen.Load() < now {
		e.lastSeen.Store(now)
	}
	return e
}

// sweepEvery is how many inserts into a shard trigger an idle sweep of it.
const sweepEvery = 64

// makeRoom is called with the shard locked, before an insert.
func (s *MemoryStore) makeRoom(sh *memShard, now int64) {
	sh.inserts++
	if sh.inserts%sweepEvery == 0 || len(sh.m) >= s.perShard {
		s.sweep(sh, now)
	}
	if len(sh.m) < s.perShard {
		return
	}
	// Full of live keys: drop the least recently seen of a sample.
	var (
		victim string
		oldest int64 = 1<<63 - 1
		n      int
	)
	for k, e := range sh.m {
		// A key with requests in flight keeps its concurrency count.
		if seen := e.lastSeen.Load(); seen < oldest && e.inflight.Load() == 0 {
			victim, oldest = k, seen
		}
		if n++; n == 8 {
			break
		}
	}
	if oldest != 1<<63-1 {
		delete(sh.m, victim)
		s.evicted.Add(1)
	}
}

// sweep forgets idle keys whose state is back to empty.
func (s *MemoryStore) sweep(sh *memShard, now int64) {
	const budget = 2 * sweepEvery
	n := 0
	for k, e := range sh.m {
		if n++; n > budget {
			return
		}
		if now-e.lastSeen.Load() > s.idleTTL && e.forgettable(now) {
			delete(sh.m, k)
		}
	}
}

func (e *memEntry) forgettable(now int64) bool {
	if e.inflight.Load() != 0 || !e.mu.TryLock() {
		return false
	}
	defer e.mu.Unlock()
	if !e.rate.full(now) {
		return false
	}
	t := time.Unix(0, now)
	for p := Hour; p <= Month; p++ {
		q := e.quotas[p]
		if q.used == 0 {
			continue
		}
		if w, _ := p.window(t); w == q.window {
			return false
		}
	}
	return true
}

func (e *memEntry) take(lim Limits, cost int, now time.Time, cal *calendar) Result {
	nowNs := now.UnixNano()
	var res Result
	// The calendar needs no lock: work it out before taking e's.
	var (
		windows [numPeriods + 1]int64
		resets  [numPeriods + 1]time.Duration
	)
	if len(lim.Quotas) > 0 {
		res.Quotas = make([]QuotaState, len(lim.Quotas))
		for _, q := range lim.Quotas {
			windows[q.Period], resets[q.Period] = cal.window(q.Period, nowNs)
		}
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	quotaOK := true
	var quotaRetry time.Duration
	for i, q := range lim.Quotas {
		w, reset := windows[q.Period], resets[q.Period]
		c := &e.quotas[q.Period]
		// A request whose time was read before another's may reach the
		// lock after it: it counts in the newer period, never reopens
		// the one that has ended.
		if w > c.window {
			c.window, c.used = w, 0
		}
		res.Quotas[i] = QuotaState{Period: q.Period, Limit: q.Limit, Remaining: max(0, q.Limit-c.used), ResetAfter: reset}
		if c.used+int64(cost) > q.Limit {
			quotaOK = false
			quotaRetry = max(quotaRetry, reset)
		}
	}
	if !quotaOK {
		// Report the bucket without spending from it.
		probe := e.rate
		r := probe.take(nowNs, lim, 0)
		res.Reason, res.RetryAfter = ReasonQuota, quotaRetry
		res.Remaining, res.ResetAfter = r.remaining, r.resetAfter
		return res
	}
	r := e.rate.take(nowNs, lim, cost)
	res.Remaining, res.ResetAfter = r.remaining, r.resetAfter
	if !r.allowed {
		res.Reason, res.RetryAfter = ReasonRate, r.retryAfter
		return res
	}
	res.Allowed = true
	for i, q := range lim.Quotas {
		e.quotas[q.Period].used += int64(cost)
		res.Quotas[i].Remaining -= int64(cost)
	}
	return res
}

// acquire takes one of max in-flight slots of key and says how many are
// left, or returns false when all are taken.
func (s *MemoryStore) acquire(key string, maxInFlight int, now time.Time) (*memEntry, int, bool) {
	e := s.entry(key, now.UnixNano())
	n := e.inflight.Add(1)
	if n > int32(maxInFlight) {
		e.inflight.Add(-1)
		return nil, 0, false
	}
	return e, maxInFlight - int(n), true
}

func (e *memEntry) release() { e.inflight.Add(-1) }

// calendar remembers the current period of each kind, so that most
// decisions skip the calendar arithmetic of [Period.window].
type calendar [numPeriods + 1]atomic.Pointer[periodWindow]

type periodWindow struct {
	index      int64
	start, end int64 // unix nanoseconds, [start, end)
}

// window returns the index of p's period that contains now, and the time
// until the next one starts.
func (c *calendar) window(p Period, now int64) (int64, time.Duration) {
	cur := c[p].Load()
	if cur != nil && cur.start <= now && now < cur.end {
		return cur.index, time.Duration(cur.end - now)
	}
	t := time.Unix(0, now)
	index, next := p.window(t)
	var start time.Time
	switch p {
	case Hour:
		start = next.Add(-time.Hour)
	case Day:
		start = next.AddDate(0, 0, -1)
	default:
		start = next.AddDate(0, -1, 0)
	}
	if cur == nil || index > cur.index {
		c[p].Store(&periodWindow{index: index, start: start.UnixNano(), end: next.UnixNano()})
	}
	return index, next.Sub(t)
}
