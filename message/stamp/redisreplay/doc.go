// Package redisreplay is a [stamp.ReplayStore] kept in Redis, so that the
// replicas of a consumer share one replay check: a stamp replayed to
// another replica, on another message of the same source, is refused
// there too, and a redelivery of the same message passes on whichever
// replica it lands.
//
// Each check the Verifier's own replay cache cannot answer is one round
// trip: SET key messageID NX EXAT expires GET, which records the message
// a stamp first came on and returns the one recorded before, if any. It
// needs Redis 7.0 or later (SET with both NX and GET); [Store.Check]
// says so at start-up. A key lives as long as the Verifier asks: the
// stamp's expiry and a margin for clock skew (see package stamp), by
// Redis's clock, so the replicas' clocks and Redis's should agree. A key
// is Cluster-safe: its hash tag is the source and the stamp ID, base64url
// encoded, so that keys spread over the slots and no brace in a source
// picks one.
//
// # When Redis is away
//
// A check that fails, or takes longer than the timeout (default
// [DefaultTimeout]), is an error: the Verifier defers the message (it is
// never dead-lettered for it, and never accepted unchecked), and the
// transport delivers it again later. While Redis is away, stamps the
// Verifier's cache holds (redeliveries to the same replica) are still
// answered; every other stamped message waits for Redis.
//
// What is not promised: a Redis that loses its data (a restart without
// persistence, a failover to a replica that had not received the key)
// forgets the stamps it held, and a replay that reaches another replica
// after that passes, as one whose first delivery has left the Verifier's
// cache does without a store. Give Redis persistence, or rely on the
// handler's own idempotency for that window.
//
// # Wiring
//
//	rdb := redis.NewClient(&redis.Options{Addr: "redis:6379", ContextTimeoutEnabled: true})
//	store, err := redisreplay.New(rdb)
//	...
//	if err := store.Check(ctx); err != nil {
//		log.Warn("replay store not ready; stamped messages wait for it", "error", err)
//	}
//	verifier, err := stamp.NewVerifier(ctx, issuer, stamp.WithJWKSURL(jwksURL), stamp.WithReplayStore(store))
package redisreplay
