package redisstore

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tenancykit/tenancy/throttle"
)

// localState is what this replica knows of each key: the state Redis last
// reported, and what the replica admitted on its own since. A decision
// made without Redis continues from it, in the replica's share of the
// limits, instead of starting from a full bucket; the next decision made in
// Redis charges what was admitted meanwhile.
//
// It is bounded like throttle.MemoryStore, without a goroutine: keys idle
// past the idle TTL whose bucket has refilled and that counted nothing in
// the current quota periods are swept as new keys arrive, and past the cap
// the least recently seen of a small sample gives way.
type localState struct {
	seed     maphash.Seed
	perShard int
	idleTTL  int64
	shards   [localShards]localShard
}

const localShards = 64

type localShard struct {
	mu      sync.Mutex
	m       map[string]*entry
	inserts int
}

// entry is one key's state as this replica knows it.
type entry struct {
	mu sync.Mutex
	// known reports whether the bucket's state is known: Redis reported
	// it, or a local decision started it empty.
	known bool
	// tat is the theoretical arrival time (unix ns) Redis last reported,
	// advanced by what was admitted here since, in this replica's share.
	tat      int64
	interval int64 // the emission interval (ns) tat was computed with
	pending  int64 // units admitted here that Redis has not acknowledged
	sending  int64 // the part of pending a call to Redis carries now
	quotas   [numPeriods + 1]quotaView
	seen     atomic.Int64 // unix ns
}

// quotaView is one quota of a key as this replica knows it.
type quotaView struct {
	window   int64 // the period the counts belong to
	reported int64 // the count Redis last reported for it
	pending  int64 // counted here and not acknowledged by Redis
	sending  int64 // the part of pending a call to Redis carries now
}

func newLocalState(maxKeys int, idleTTL time.Duration) *localState {
	l := &localState{
		seed:     maphash.MakeSeed(),
		perShard: max(1, (maxKeys+localShards-1)/localShards),
		idleTTL:  int64(idleTTL),
	}
	for i := range l.shards {
		l.shards[i].m = make(map[string]*entry)
	}
	return l
}

// entry finds or creates key's state and marks it seen at now.
func (l *localState) entry(key string, now int64) *entry {
	sh := &l.shards[maphash.String(l.seed, key)%localShards]
	sh.mu.Lock()
	e, ok := sh.m[key]
	if !ok {
		l.makeRoom(sh, now)
		e = new(entry)
		sh.m[key] = e
	}
	sh.mu.Unlock()
	if e.seen.Load() < now {
		e.seen.Store(now)
	}
	return e
}

// len returns the number of keys remembered.
func (l *localState) len() int {
	n := 0
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

const sweepEvery = 64

// makeRoom is called with the shard locked, before an insert.
func (l *localState) makeRoom(sh *localShard, now int64) {
	sh.inserts++
	if sh.inserts%sweepEvery == 0 || len(sh.m) >= l.perShard {
		const budget = 2 * sweepEvery
		n := 0
		for k, e := range sh.m {
			if n++; n > budget {
				break
			}
			if now-e.seen.Load() > l.idleTTL && e.forgettable(now) {
				delete(sh.m, k)
			}
		}
	}
	if len(sh.m) < l.perShard {
		return
	}
	var (
		victim string
		oldest int64 = 1<<63 - 1
		n      int
	)
	for k, e := range sh.m {
		if seen := e.seen.Load(); seen < oldest {
			victim, oldest = k, seen
		}
		if n++; n == 8 {
			break
		}
	}
	delete(sh.m, victim)
}

// forgettable reports whether forgetting e loses nothing: its bucket has
// refilled, nothing admitted here is owed to Redis, and no quota counted
// anything in its current period.
func (e *entry) forgettable(now int64) bool {
	if !e.mu.TryLock() {
		return false
	}
	defer e.mu.Unlock()
	if e.tat > now || e.pending != 0 {
		return false
	}
	t := time.Unix(0, now)
	for p := throttle.Hour; p <= throttle.Month; p++ {
		q := e.quotas[p]
		if q.reported == 0 && q.pending == 0 {
			continue
		}
		if w, _ := window(p, t); w == q.window {
			return false
		}
	}
	return true
}

// convert carries the debt of the bucket over to a new interval in units,
// as the in-process store and the script do. The caller holds e.mu.
func (e *entry) convert(iv, now int64) {
	if e.interval != iv {
		if e.interval != 0 && e.tat > now {
			owed := float64(e.tat-now) / float64(e.interval)
			e.tat = now + int64(owed*float64(iv))
		}
		e.interval = iv
	}
}

// toSync returns what the next decision in Redis must carry for e, and
// claims what it charges: a decision made meanwhile does not charge it
// again. The caller hands it back to learn, or to unclaim if the call
// failed.
func (e *entry) toSync(lim throttle.Limits, now time.Time) syncState {
	nowNs := now.UnixNano()
	e.mu.Lock()
	defer e.mu.Unlock()
	var sy syncState
	if !e.known {
		return sy
	}
	tat := e.tat
	if iv := interval(lim); e.interval != iv && e.interval != 0 && tat > nowNs {
		tat = nowNs + int64(float64(tat-nowNs)/float64(e.interval)*float64(iv))
	}
	if tat > 0 {
		sy.seed = tat
	}
	sy.prepaid = e.pending - e.sending
	e.sending = e.pending
	for _, lq := range lim.Quotas {
		q := &e.quotas[lq.Period]
		if w, _ := window(lq.Period, now); w != q.window {
			continue // what is known is of another period
		}
		sy.quotas[lq.Period] = quotaSync{set: true, window: q.window, seed: q.reported + q.pending, prepaid: q.pending - q.sending}
		q.sending = q.pending
	}
	return sy
}

// unclaim hands back what a failed call carried, for the next to charge.
// Redis may still carry the call out later, and so count it twice, which
// errs towards refusing.
func (e *entry) unclaim(sent *syncState) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.sending = max(0, e.sending-sent.prepaid)
	for p := throttle.Hour; p <= throttle.Month; p++ {
		if q, qs := &e.quotas[p], sent.quotas[p]; qs.set && q.window == qs.window {
			q.sending = max(0, q.sending-qs.prepaid)
		}
	}
}

// learn records what Redis answered to a decision that carried sent.
func (e *entry) learn(lim throttle.Limits, now time.Time, sent *syncState, r *remoteResult) {
	iv := interval(lim)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.known && e.interval == iv {
		// Another decision may have been answered first with a newer
		// state: the TAT only moves forward.
		e.tat = max(e.tat, r.tat)
	} else {
		e.tat = r.tat
	}
	e.interval, e.known = iv, true
	e.pending = max(0, e.pending-sent.prepaid)
	e.sending = max(0, e.sending-sent.prepaid)
	for _, q := range lim.Quotas {
		w, _ := window(q.Period, now)
		v := &e.quotas[q.Period]
		switch {
		case w > v.window:
			*v = quotaView{window: w, reported: r.counts[q.Period]}
		case w == v.window:
			v.reported = max(v.reported, r.counts[q.Period])
			if qs := sent.quotas[q.Period]; qs.set && qs.window == w {
				v.pending = max(0, v.pending-qs.prepaid)
				v.sending = max(0, v.sending-qs.prepaid)
			}
		}
	}
}

// take decides on this replica alone, in its share of lim: rate, burst
// and what is left of each quota divided by the number of replicas n. The
// bucket continues from the state Redis last reported, or starts empty
// when this replica never heard of the key; a quota used up in Redis stays
// used up here.
func (e *entry) take(lim throttle.Limits, cost int, now time.Time, n int) throttle.Result {
	nowNs := now.UnixNano()
	iv := interval(lim)
	burst := max(1, lim.Burst/n)
	share := iv * int64(n)
	tolerance := share * int64(burst)
	cost = min(cost, burst)

	var res throttle.Result
	if len(lim.Quotas) > 0 {
		res.Quotas = make([]throttle.QuotaState, len(lim.Quotas))
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.convert(iv, nowNs)
	if !e.known {
		e.tat, e.known = nowNs+tolerance, true
	}
	quotaOK := true
	var quotaRetry time.Duration
	for i, q := range lim.Quotas {
		w, end := window(q.Period, now)
		v := &e.quotas[q.Period]
		if w > v.window {
			*v = quotaView{window: w}
		}
		allowance := max(0, (q.Limit-v.reported)/int64(n))
		res.Quotas[i] = throttle.QuotaState{Period: q.Period, Limit: q.Limit, Remaining: max(0, allowance-v.pending), ResetAfter: end.Sub(now)}
		if v.pending+int64(cost) > allowance {
			quotaOK = false
			quotaRetry = max(quotaRetry, end.Sub(now))
		}
	}
	tat := max(e.tat, nowNs)
	res.ResetAfter = time.Duration(tat - nowNs)
	res.Remaining = int(max(0, (tolerance-(tat-nowNs))/share))
	if !quotaOK {
		res.Reason, res.RetryAfter = throttle.ReasonQuota, quotaRetry
		return res
	}
	next := tat + share*int64(cost)
	if allowAt := next - tolerance; nowNs < allowAt {
		res.Reason, res.RetryAfter = throttle.ReasonRate, time.Duration(allowAt-nowNs)
		return res
	}
	e.tat = next
	e.pending += int64(cost)
	for i, q := range lim.Quotas {
		e.quotas[q.Period].pending += int64(cost)
		res.Quotas[i].Remaining -= int64(cost)
	}
	res.Allowed = true
	res.Remaining = int((tolerance - (next - nowNs)) / share)
	res.ResetAfter = time.Duration(next - nowNs)
	return res
}
