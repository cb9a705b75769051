package redisstore

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tenancykit/tenancy/throttle"
)

// decideScript makes one decision in one round trip, whatever the limits:
// the rate and every quota of a key live in one hash, read, decided and
// written by this script. It replaces redis_rate, whose script decides the
// rate alone, so that quotas needed a second call, and a request refused
// by a quota had already spent a unit of rate.
//
// It decides exactly as throttle.MemoryStore does, so that a tenant gets
// the same answers whichever store its service uses (a test runs both
// through the same requests): the generic cell rate algorithm on the
// theoretical arrival time (TAT), at the time the caller gives rather
// than Redis's clock; a debt carried over a change of limits in units, not
// in time; quotas checked before the rate, and nothing spent by a refusal.
//
// The caller's clock means replicas should agree on the time: a replica
// whose clock is ahead by d gets at most rate·d units more, once, never
// more as time goes by, because a TAT only moves forward.
//
// Lua numbers are doubles: times are passed as seconds and nanoseconds, and
// reckoned relative to the caller's now, exact while a bucket's debt is
// under 2^53 ns (104 days); a longer one is off by nanoseconds.
//
// KEYS[1] is the key's hash. Its fields: ts and tn, the TAT in seconds and
// nanoseconds; iv, the emission interval (ns) the TAT was last advanced
// with; and for each quota period p, w<p> the index of the period its count
// belongs to and u<p> the count.
//
// ARGV: now (seconds, nanoseconds), interval (ns), burst, cost, prepaid
// (units this replica admitted on its own while Redis was away, charged
// now up to an empty bucket), seed TAT (seconds, nanoseconds; 0 0 for
// none: this replica's view of the bucket, used only when Redis has lost
// the key), then six per quota: period, window index, limit, lifetime (ms,
// to the end of the period and an hour more), seed count (used when Redis
// has lost the key), prepaid units in that window.
//
// It returns {allowed, remaining, retry after (ns), reset after (ns), the
// TAT after the decision relative to now (ns), bit i-1 set when quota i
// refused, count of quota 1, count of quota 2, ...}.
var decideScript = redis.NewScript(`
local key = KEYS[1]
local now_s, now_n = tonumber(ARGV[1]), tonumber(ARGV[2])
local iv = tonumber(ARGV[3])
local burst = tonumber(ARGV[4])
local cost = tonumber(ARGV[5])
local prepaid = tonumber(ARGV[6])
local seed_s, seed_n = tonumber(ARGV[7]), tonumber(ARGV[8])
local nq = (#ARGV - 8) / 6

local fields = {'ts', 'tn', 'iv'}
for i = 1, nq do
  local p = ARGV[8 + 6 * (i - 1) + 1]
  fields[#fields + 1] = 'w' .. p
  fields[#fields + 1] = 'u' .. p
end
local st = redis.call('HMGET', key, unpack(fields))
local exists = st[1] ~= false

local tol = iv * burst
local tat = 0 -- relative to now: at or below zero, the bucket is full
local converted, synced = false, false
if exists then
  tat = (tonumber(st[1]) - now_s) * 1e9 + (tonumber(st[2]) - now_n)
  local old = tonumber(st[3])
  if old ~= iv then
    -- New limits: the units owed stay owed, at the new interval.
    if tat > 0 then tat = math.floor(tat / old * iv) end
    converted = true
  end
  if prepaid > 0 then
    local t = math.max(tat, 0) + prepaid * iv
    if t > tol then t = math.max(tat, tol) end
    tat = t
    synced = true
  end
elseif seed_s > 0 then
  tat = (seed_s - now_s) * 1e9 + (seed_n - now_n)
  synced = true
end

local windows, used = {}, {}
local refused = 0
local bit = 1
for i = 1, nq do
  local a = 8 + 6 * (i - 1)
  local w, limit = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local sw, su = st[3 + 2 * i - 1], st[3 + 2 * i]
  local u = 0
  if exists then
    -- A request whose time is older than the count's period counts in
    -- that newer period; it never reopens one that has ended.
    if sw and tonumber(sw) >= w then
      w, u = tonumber(sw), tonumber(su)
    end
    local pre = tonumber(ARGV[a + 6])
    if pre > 0 then
      u = u + pre
      synced = true
    end
  else
    u = tonumber(ARGV[a + 5])
    if u > 0 then synced = true end
  end
  windows[i], used[i] = w, u
  if u + cost > limit then refused = refused + bit end
  bit = bit * 2
end

local rtat = math.max(tat, 0)
local allowed, remaining, retry, reset = 0, 0, 0, rtat
local persist = synced
if refused == 0 then
  local nxt = rtat + iv * cost
  local allow_at = nxt - tol
  if allow_at > 0 then
    retry = allow_at
    remaining = math.max(0, math.floor((tol - rtat) / iv))
    persist = persist or converted
  else
    allowed = 1
    tat = nxt
    remaining = math.floor((tol - nxt) / iv)
    reset = nxt
    for i = 1, nq do used[i] = used[i] + cost end
    persist = true
  end
else
  -- Refused by a quota: the rate is reported, not spent, and a change of
  -- limits is not carried over yet (the in-process store does the same).
  remaining = math.max(0, math.floor((tol - rtat) / iv))
end

if persist then
  local abs = now_n + tat
  local secs = math.floor(abs / 1e9)
  local nanos = abs - secs * 1e9
  if nanos < 0 then secs, nanos = secs - 1, nanos + 1e9 end
  if nanos >= 1e9 then secs, nanos = secs + 1, nanos - 1e9 end
  local args = {'ts', string.format('%.0f', now_s + secs), 'tn', string.format('%.0f', nanos), 'iv', ARGV[3]}
  -- The key lives while its bucket refills, and a minute more for
  -- replicas whose clocks lag; while a quota has counted something, to
  -- the end of its period and an hour more.
  local ttl = math.ceil(math.max(tat, 0) / 1e6) + 60000
  for i = 1, nq do
    local a = 8 + 6 * (i - 1)
    local p = ARGV[a + 1]
    args[#args + 1] = 'w' .. p
    args[#args + 1] = string.format('%.0f', windows[i])
    args[#args + 1] = 'u' .. p
    args[#args + 1] = string.format('%.0f', used[i])
    if used[i] > 0 then ttl = math.max(ttl, tonumber(ARGV[a + 4])) end
  end
  redis.call('HSET', key, unpack(args))
  if redis.call('PTTL', key) < ttl then
    redis.call('PEXPIRE', key, ttl)
  end
end

local out = {allowed, remaining, retry, reset, math.max(tat, 0), refused}
for i = 1, nq do out[#out + 1] = used[i] end
return out
`)

// interval is the time one unit takes to come back under lim, rounded to
// whole nanoseconds exactly as the in-process store rounds it.
func interval(lim throttle.Limits) int64 {
	return max(1, int64(math.Round(float64(time.Second)/lim.Rate)))
}

// syncState is what a remote decision tells Redis of this replica's own view of
// a key: what it admitted on its own while Redis was away, and its view of
// the bucket and counts should Redis have lost the key.
type syncState struct {
	prepaid int64
	seed    int64 // unix ns; 0 for none
	quotas  [numPeriods + 1]quotaSync
}

type quotaSync struct {
	set                   bool // whether this replica knows of the period
	window, seed, prepaid int64
}

// remoteResult is a decision made in Redis, and the state it left.
type remoteResult struct {
	throttle.Result
	tat    int64 // unix ns
	counts [numPeriods + 1]int64
}

// decide runs decideScript for key under lim.
func (s *Store) decide(ctx context.Context, key string, lim throttle.Limits, cost int, now time.Time, sy *syncState) (remoteResult, error) {
	iv := interval(lim)
	nowNs := now.UnixNano()
	args := make([]any, 0, 8+6*len(lim.Quotas))
	args = append(args, now.Unix(), now.Nanosecond(), iv, lim.Burst, cost, sy.prepaid)
	if sy.seed > 0 {
		args = append(args, sy.seed/int64(time.Second), sy.seed%int64(time.Second))
	} else {
		args = append(args, 0, 0)
	}
	var ends [numPeriods + 1]time.Duration
	for _, q := range lim.Quotas {
		w, end := window(q.Period, now)
		ends[q.Period] = end.Sub(now)
		life := (end.Sub(now) + time.Hour + time.Millisecond - 1) / time.Millisecond
		qs := sy.quotas[q.Period]
		seed, prepaid := int64(0), int64(0)
		if qs.set && qs.window == w {
			seed, prepaid = qs.seed, qs.prepaid
		}
		args = append(args, int(q.Period), w, q.Limit, int64(life), seed, prepaid)
	}
	v, err := decideScript.Run(ctx, s.rdb, []string{s.key(key)}, args...).Int64Slice()
	if err != nil {
		return remoteResult{}, err
	}
	if len(v) != 6+len(lim.Quotas) {
		return remoteResult{}, fmt.Errorf("redisstore: the decision script returned %d values for %d quotas", len(v), len(lim.Quotas))
	}
	out := remoteResult{
		Result: throttle.Result{
			Allowed:    v[0] == 1,
			Remaining:  int(v[1]),
			RetryAfter: time.Duration(v[2]),
			ResetAfter: time.Duration(v[3]),
		},
		tat: nowNs + v[4],
	}
	if !out.Allowed {
		out.Reason = throttle.ReasonRate
	}
	if len(lim.Quotas) > 0 {
		out.Quotas = make([]throttle.QuotaState, len(lim.Quotas))
		refused := v[5]
		var retry time.Duration
		for i, q := range lim.Quotas {
			used := v[6+i]
			out.counts[q.Period] = used
			out.Quotas[i] = throttle.QuotaState{Period: q.Period, Limit: q.Limit, Remaining: max(0, q.Limit-used), ResetAfter: ends[q.Period]}
			if refused&(1<<i) != 0 {
				retry = max(retry, ends[q.Period])
			}
		}
		if refused != 0 {
			out.Reason, out.RetryAfter = throttle.ReasonQuota, retry
		}
	}
	return out, nil
}

// numPeriods is the number of quota periods: throttle.Hour, Day and Month.
const numPeriods = int(throttle.Month)

// window numbers the UTC period of p that holds t and returns its end, the
// same way the in-process store does.
func window(p throttle.Period, t time.Time) (int64, time.Time) {
	t = t.UTC()
	switch p {
	case throttle.Hour:
		start := t.Truncate(time.Hour)
		return start.Unix() / 3600, start.Add(time.Hour)
	case throttle.Day:
		y, m, d := t.Date()
		start := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
		return start.Unix() / 86400, start.AddDate(0, 0, 1)
	default:
		y, m, _ := t.Date()
		return int64(y)*12 + int64(m) - 1, time.Date(y, m+1, 1, 0, 0, 0, 0, time.UTC)
	}
}

// key returns the Redis key of a throttle key: every key of one tenant
// carries one Cluster hash tag, whatever characters its ID holds.
func (s *Store) key(key string) string {
	return s.prefix + "{" + encodeTag(key) + "}"
}
