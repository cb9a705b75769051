package throttle

import "time"

// bucket is the state of one tenant's rate limit: the generic cell rate
// algorithm keeps the theoretical arrival time (TAT) of the next request,
// so a bucket costs sixteen bytes and a decision is a little arithmetic. Unlike a token bucket that reads the clock before
// taking its lock (golang/go#65508), every decision here is made under the
// caller's lock with the time it passes, so admissions are exact.
type bucket struct {
	tat int64 // unix nanoseconds
	// interval is the emission interval the TAT was last advanced with.
	// When the limits change (a tier upgrade), the debt is carried over
	// in units, not in time: 60 units owed at 1/s become 0.6 s at 100/s,
	// instead of locking the upgraded tenant out for a minute.
	interval int64
}

// rateResult is a bucket's answer.
type rateResult struct {
	allowed    bool
	remaining  int
	retryAfter time.Duration // until cost can be spent; 0 when allowed
	resetAfter time.Duration // until the bucket is full again
}

// take spends cost at now under l if the bucket allows it. The caller
// holds the lock that guards b.
func (b *bucket) take(now int64, l Limits, cost int) rateResult {
	interval := l.interval()
	if b.interval != interval {
		if b.interval != 0 && b.tat > now {
			owed := float64(b.tat-now) / float64(b.interval)
			b.tat = now + int64(owed*float64(interval))
		}
		b.interval = interval
	}
	tolerance := interval * int64(l.Burst)
	tat := max(b.tat, now)
	next := tat + interval*int64(cost)
	if allowAt := next - tolerance; now < allowAt {
		return rateResult{
			retryAfter: time.Duration(allowAt - now),
			resetAfter: time.Duration(tat - now),
			remaining:  int(max(0, (tolerance-(tat-now))/interval)),
		}
	}
	b.tat = next
	return rateResult{
		allowed:    true,
		remaining:  int((tolerance - (next - now)) / interval),
		resetAfter: time.Duration(next - now),
	}
}

// full reports whether the bucket has refilled, so forgetting it loses
// nothing.
func (b *bucket) full(now int64) bool { return b.tat <= now }
