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
// # When Redis is away
//
// A call to Redis that fails or takes longer than the timeout (default
// 50ms) is decided alone by the tier's [throttle.Limits.OnStoreFailure]:
// fail open, fail closed, or (the default) limit locally. The store
// switches to these policies for every decision only after several calls
// in a row have failed (default 3), logs the switch once, and tries Redis
// again with one decision every retry interval (default 500ms); the first
// that succeeds brings the limits back to Redis.
// On a Redis Cluster this is followed for each master: a master that
// fails sends only the keys of its slots to the policies, and the others
// stay shared.
//
// Limiting locally, each replica admits its share: the limits divided by
// the number of replicas, which the replicas count themselves with a
// heartbeat in Redis (or [WithReplicas] sets). The share continues from
// the state Redis last reported for the key, so a stall does not hand out
// a full burst: a tenant whose bucket was empty stays empty, a quota used
// up stays used up, and a tenant this replica never saw starts empty; the
// answers (remaining units, Retry-After) are then those of the share. What
// a replica admits on its own is charged to Redis with the key's next
// decision there, up to an empty bucket; should Redis come back without
// the key (a restart without persistence), the replicas give it back what
// they knew. Admissions by fail open are not charged. With load spread
// evenly over the replicas, an outage of any length admits rate·t in all,
// plus what each replica had not yet seen of the others' spending when
// Redis went away (at most a burst of the rate); a call that timed out may
// still be carried out by Redis later and then counts twice, which errs
// towards refusing.
//
// # Metrics
//
// The store reports, without any tenant label:
//
//   - tenancy.throttle.store.decisions: decisions by mode: shared (in
//     Redis), local, open or closed (by a failure policy), so that a fail-
//     closed tier's refusals are counted, not logged one by one;
//   - tenancy.throttle.store.errors: failed calls by error: timeout,
//     unreachable or reply;
//   - tenancy.throttle.store.switches: switches, by the state switched to;
//   - tenancy.throttle.store.state: how many Redis are in each state, shared
//     or fallback (1 and 0 for one server; on a Cluster, its masters);
//   - tenancy.throttle.store.replicas: the replicas the limits are shared by.
//
// # Wiring
//
//	rdb := redis.NewClient(&redis.Options{Addr: "redis:6379", ContextTimeoutEnabled: true})
//	store, err := redisstore.New(rdb)
//	...
//	defer store.Close()
//	if err := store.Warm(ctx); err != nil {
//		log.Warn("redis not ready; limits are local until it is", "error", err)
//	}
//	limiter, err := throttle.New(tiers, limits, throttle.WithStore(store))
package redisstore
