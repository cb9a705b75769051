// Package redisstore is a [throttle.Store] kept in Redis, so that every
// replica of a service spends from the same per-tenant budget.
//
// Rates use the generic cell rate algorithm of github.com/go-redis/redis_rate
// (one EVALSHA, clocked by the Redis server, so replicas' clocks do not
// matter); the limits travel with every call, so tiers and overrides need
// nothing stored in advance. Quotas are counters per UTC period (INCRBY with
// an expiry at the end of the period) updated by a small script only when
// the rate allowed the request and every quota has room; a rate-only limit
// is decided in exactly one round trip, one with quotas in two.
//
// One difference from the in-process store: redis_rate keeps a bucket's
// debt as a time, not in units, so a tenant that spent a slow tier's burst
// and is then upgraded waits out that time at its new limits (the
// in-process store converts the debt). Tiers whose burst refills in about
// the same time, as the defaults do, do not notice.
//
// Keys are safe for Redis Cluster: every key of a tenant carries the same
// hash tag, the base64url form of the tenant's key, so any tenant ID, braces
// and all, maps to one slot.
//
// When Redis is unreachable or slower than the timeout (default 50ms), each
// tier's [throttle.Limits.OnStoreFailure] decides: fail open, fail closed,
// or (the default) limit locally with the limits divided by the replica
// count. The switch is logged once, counted in [Store.Stats], and undone
// automatically: after a failure, Redis is tried again once the retry
// interval has passed, and the first success returns to shared limits.
//
//	rdb := redis.NewClient(&redis.Options{Addr: "redis:6379"})
//	store, err := redisstore.New(rdb, redisstore.WithReplicas(3))
//	...
//	limiter, err := throttle.New(tiers, limits, throttle.WithStore(store))
package redisstore
