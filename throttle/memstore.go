package throttle

import (
	"context"
	"fmt"
	"hash/maphash"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
)

// MemoryStore is the in-process [Store]: per-key state in a sharded map,
// bounded in two ways without a goroutine of its own.
//
// Keys idle for longer than the idle TTL are forgotten when forgetting
// them loses nothing (their bucket has refilled, they spent no quota in
// the current period, no request of theirs is in flight): the decisions
// the store makes sweep one of its 256 shards in turn, one every TTL/512,
// so a key is forgotten between one and one and a half TTLs after its last
// request, whichever keys are asked for, as long as any is.
//
// The number of keys is capped, over the whole store: no key is ever
// forgotten for the cap before the cap is reached. A new key past it takes
// the place of another, chosen from a small random sample in this order:
// one whose state is back to empty, then one whose bucket is full but that
// spent quota this period (the quota's count is lost), then one still in
// debt, whose debt is kept in a fixed-size table until it is paid: a key
// that comes back finds its debt, never a full burst. (The table is keyed
// by a hash of the key: a new key that shares a slot with an evicted one
// starts with that debt too, at most one refill of the burst.) Keys with a
// request in flight are never evicted; the cap is exceeded by them rather.
// Size the cap above the number of tenants, or use a shared store, when
// quotas must be exact at any scale.
//
// A MemoryStore is safe for concurrent use. Its zero value is not usable;
// call [NewMemoryStore].
type MemoryStore struct {
	seed, check maphash.Seed // check verifies what seed found
	maxKeys     int64
	idleTTL     int64
	sweepEvery  int64 // TTL/(2·memShards)

	keys      atomic.Int64
	evicted   atomic.Int64
	nextSweep atomic.Int64 // unix nanoseconds; 0 before the first decision
	cursor    atomic.Uint32
	calendar  calendar

	debts  atomic.Pointer[[]atomic.Int64] // TATs of keys evicted in debt, by hash
	shards [memShards]memShard
}

const memShards = 256

type memShard struct {
	mu sync.RWMutex
	// m holds the keys by their 64-bit hash; the entry's check confirms it.
	m map[uint64]*memEntry
	// collided holds the keys whose hash another key of the shard has: a
	// chance of about one in 2^44 for a million keys, but never a shared
	// bucket.
	collided map[string]*memEntry
	_        [32]byte
}

// memEntry is one key's state: 64 bytes, a cache line, so that a decision
// without quotas reads one line of it.
type memEntry struct {
	mu       sync.Mutex
	rate     bucket
	check    uint64
	lastSeen atomic.Int64 // unix nanoseconds
	// pins counts the decisions between finding the entry and being done
	// with it, and inflight the requests holding a concurrency slot:
	// neither kind of entry is ever forgotten.
	pins     atomic.Int32
	inflight atomic.Int32
	quotas   *[numPeriods + 1]quotaCounter // indexed by Period; nil until used
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
		seed:       maphash.MakeSeed(),
		check:      maphash.MakeSeed(),
		maxKeys:    int64(c.maxKeys),
		idleTTL:    int64(c.idleTTL),
		sweepEvery: max(1, int64(c.idleTTL)/(2*memShards)),
	}
	for i := range s.shards {
		s.shards[i].m = make(map[uint64]*memEntry)
	}
	return s, nil
}

var _ Store = (*MemoryStore)(nil)

// Take implements [Store].
func (s *MemoryStore) Take(_ context.Context, key string, lim Limits, cost int, now time.Time) (Result, error) {
	e := s.pin(key, now.UnixNano())
	defer e.pins.Add(-1)
	return e.take(lim, cost, now, &s.calendar), nil
}

// Len returns the number of keys tracked.
func (s *MemoryStore) Len() int { return int(s.keys.Load()) }

// Evicted returns how many keys were forgotten to respect the cap while
// they still held state: a bucket not yet full, or quota spent in the
// current period.
func (s *MemoryStore) Evicted() int64 { return s.evicted.Load() }

// pin finds or creates key's entry, marks it seen at now and pins it: the
// caller unpins it (e.pins.Add(-1)) when done.
func (s *MemoryStore) pin(key string, now int64) *memEntry {
	s.maybeSweep(now)
	h := maphash.String(s.seed, key)
	check := maphash.String(s.check, key)
	sh := &s.shards[h>>56] // memShards = 256: the top byte
	sh.mu.RLock()
	e := sh.find(h, check, key)
	if e != nil {
		// Pinned and seen under the shard's lock, so that neither a sweep
		// nor an eviction, which hold it exclusively, can take the entry
		// between the lookup and its use.
		e.pins.Add(1)
		e.seen(now)
	}
	sh.mu.RUnlock()
	if e == nil {
		e = s.insert(sh, key, h, check, now)
	}
	return e
}

func (sh *memShard) find(h, check uint64, key string) *memEntry {
	e := sh.m[h]
	if (e == nil || e.check != check) && sh.collided != nil {
		e = sh.collided[key]
	}
	if e != nil && e.check != check {
		e = nil
	}
	return e
}

func (e *memEntry) seen(now int64) {
	if e.lastSeen.Load() < now {
		e.lastSeen.Store(now)
	}
}

// insert adds key, pinned, making room for it first when the store is at
// its cap.
func (s *MemoryStore) insert(sh *memShard, key string, h, check uint64, now int64) *memEntry {
	// The place is taken before the key is added, so that keys inserted
	// at once in different shards cannot all find room for one.
	if s.keys.Add(1) > s.maxKeys {
		s.makeRoom(int(h>>56), now)
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e := sh.find(h, check, key); e != nil { // another goroutine was first
		s.keys.Add(-1)
		e.pins.Add(1)
		e.seen(now)
		return e
	}
	e := &memEntry{check: check}
	e.lastSeen.Store(now)
	e.pins.Add(1)
	if debt := s.debtOf(h); debt > now {
		e.rate.tat = debt
	}
	if sh.m[h] == nil {
		sh.m[h] = e
	} else { // a collided key stays there for its life
		if sh.collided == nil {
			sh.collided = make(map[string]*memEntry)
		}
		sh.collided[key] = e
	}
	return e
}

// makeRoom forgets one key for a new one: the best of a sample of the
// shard the new key goes to, or of the next shards when that one has
// nothing that may go (a small cap leaves most shards empty). The shards
// are locked one at a time.
func (s *MemoryStore) makeRoom(first int, now int64) {
	for i := 0; i < memShards && s.keys.Load() > s.maxKeys; {
		sh := &s.shards[(first+i)%memShards]
		sh.mu.Lock()
		freed := s.sweepLocked(sh, now, 2*sampleSize) > 0 || s.evictLocked(sh, now)
		sh.mu.Unlock()
		if !freed {
			i++
		}
	}
	// When every key looked at is in use (a decision under way, a request
	// in flight), none is forgotten, and the cap is exceeded rather; the
	// next new key makes up for it.
}

// sampleSize is how many keys an eviction compares.
const sampleSize = 8

// Eviction classes, best first.
const (
	classEmpty = iota // bucket full, no quota spent this period
	classQuota        // bucket full, quota spent: its count is lost
	classDebt         // bucket in debt: the debt is kept in the table
	classNone         // pinned, in flight or busy: never evicted
)

// evictLocked forgets the best candidate of a sample of sh, locked.
func (s *MemoryStore) evictLocked(sh *memShard, now int64) bool {
	var (
		victim    *memEntry
		victimKey uint64
		vClass    = classNone
		vSeen     int64
		n         int
	)
	for h, e := range sh.m {
		if n++; n > sampleSize {
			break
		}
		c := e.class(now)
		if c < vClass || c == vClass && c != classNone && e.lastSeen.Load() < vSeen {
			victim, victimKey, vClass, vSeen = e, h, c, e.lastSeen.Load()
		}
	}
	if victim == nil {
		return false
	}
	if vClass == classDebt {
		s.keepDebt(victimKey, victim.rate.tat)
	}
	if vClass != classEmpty {
		s.evicted.Add(1)
	}
	s.remove(sh, victimKey, victim)
	return true
}

// class says what forgetting e would lose. The caller holds the shard
// exclusively, so no decision can pin e meanwhile.
func (e *memEntry) class(now int64) int {
	if e.pins.Load() != 0 || e.inflight.Load() != 0 || !e.mu.TryLock() {
		return classNone
	}
	defer e.mu.Unlock()
	if !e.rate.full(now) {
		return classDebt
	}
	if e.quotas != nil {
		t := time.Unix(0, now)
		for p := Hour; p <= Month; p++ {
			if q := e.quotas[p]; q.used != 0 {
				if w, _ := p.window(t); w == q.window {
					return classQuota
				}
			}
		}
	}
	return classEmpty
}

// remove deletes e, found under h, from sh, locked.
func (s *MemoryStore) remove(sh *memShard, h uint64, e *memEntry) {
	if sh.m[h] == e {
		delete(sh.m, h)
	} else {
		for k, c := range sh.collided {
			if c == e {
				delete(sh.collided, k)
				break
			}
		}
	}
	s.keys.Add(-1)
}

// maybeSweep sweeps the next shard when a sweep is due at now: one every
// sweepEvery, so that every shard is swept once per half idle TTL.
func (s *MemoryStore) maybeSweep(now int64) {
	next := s.nextSweep.Load()
	if now < next || !s.nextSweep.CompareAndSwap(next, now+s.sweepEvery) {
		return
	}
	if next == 0 {
		return // the first decision only starts the clock
	}
	sh := &s.shards[s.cursor.Add(1)%memShards]
	// Find the idle keys under the read lock, so that decisions go on
	// meanwhile, then forget them under the write lock.
	var idle [64]uint64
	found := 0
	sh.mu.RLock()
	for h, e := range sh.m {
		if now-e.lastSeen.Load() > s.idleTTL {
			idle[found] = h
			if found++; found == len(idle) {
				break
			}
		}
	}
	collided := len(sh.collided) > 0
	sh.mu.RUnlock()
	if found == 0 && !collided {
		return
	}
	sh.mu.Lock()
	for _, h := range idle[:found] {
		if e := sh.m[h]; e != nil && now-e.lastSeen.Load() > s.idleTTL && e.class(now) == classEmpty {
			s.remove(sh, h, e)
		}
	}
	if found == len(idle) || collided {
		s.sweepLocked(sh, now, -1) // more than a batch: the rest now
	}
	sh.mu.Unlock()
}

// sweepLocked forgets the idle keys of sh, locked, whose state is empty,
// looking at no more than budget keys (all for a negative budget). It
// returns how many it forgot.
func (s *MemoryStore) sweepLocked(sh *memShard, now int64, budget int) int {
	forgotten, n := 0, 0
	for h, e := range sh.m {
		if n++; budget >= 0 && n > budget {
			break
		}
		if now-e.lastSeen.Load() > s.idleTTL && e.class(now) == classEmpty {
			s.remove(sh, h, e)
			forgotten++
		}
	}
	for k, e := range sh.collided {
		if now-e.lastSeen.Load() > s.idleTTL && e.class(now) == classEmpty {
			delete(sh.collided, k)
			s.keys.Add(-1)
			forgotten++
		}
	}
	return forgotten
}

// The debt table keeps, by hash, the latest TAT of the keys evicted in
// debt. It is made at the first such eviction: 1/8 of the cap in slots,
// between 1,024 and 131,072 (1 MiB).
func (s *MemoryStore) keepDebt(h uint64, tat int64) {
	debts := s.debts.Load()
	if debts == nil {
		n := min(max(1024, 1<<bits.Len64(uint64(s.maxKeys/8))), 1<<17)
		t := make([]atomic.Int64, n)
		if !s.debts.CompareAndSwap(nil, &t) {
			debts = s.debts.Load()
		} else {
			debts = &t
		}
	}
	slot := &(*debts)[h&uint64(len(*debts)-1)]
	for {
		old := slot.Load()
		if old >= tat || slot.CompareAndSwap(old, tat) {
			return
		}
	}
}

// debtOf returns the debt kept for h, a TAT, or 0.
func (s *MemoryStore) debtOf(h uint64) int64 {
	debts := s.debts.Load()
	if debts == nil {
		return 0
	}
	return (*debts)[h&uint64(len(*debts)-1)].Load()
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
	if len(lim.Quotas) > 0 && e.quotas == nil {
		e.quotas = new([numPeriods + 1]quotaCounter)
	}
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
	e := s.pin(key, now.UnixNano())
	defer e.pins.Add(-1)
	n := e.inflight.Add(1)
	if n > int32(maxInFlight) {
		e.inflight.Add(-1)
		return nil, 0, false
	}
	return e, maxInFlight - int(n), true
}

func (e *memEntry) release() { e.inflight.Add(-1) }

// busy reports whether every one of max in-flight slots of key is taken.
func (s *MemoryStore) busy(key string, maxInFlight int, now time.Time) bool {
	e := s.pin(key, now.UnixNano())
	defer e.pins.Add(-1)
	return e.inflight.Load() >= int32(maxInFlight)
}

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
