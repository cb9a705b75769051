// Package redisstore is a [throttle.Store] kept in Redis, so that every
// replica of a service spends from the same per-tenant budget.
//
// Each decision is one round trip: one script of the store's own decides
// the rate (the generic cell rate algorithm) and every quota (counters per
// UTC period) of a key kept in one hash, exactly as the in-process
// throttle.MemoryStore does. A refused request spends nothing, a tenant
// whose limits change keeps its debt in units, and the answers (reason,
// Retry-After, the RateLimit fields) are those of the in-process store for
// the same requests. Decisions use the time each Take is given, so
// replicas' clocks should agree: one ahead by d gains at most rate·d
// units, once. The limits travel with every call, so tiers and overrides
// need nothing stored in advance.
//
// Keys are safe for Redis Cluster: a tenant's one key carries a hash tag,
// the base64url form of the tenant's key, so any tenant ID, braces and all,
// maps to one slot.
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
