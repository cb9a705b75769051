// Package stamp vouches for the tenant of a message from one service to
// another: a producer stamps each message with the verified tenant of its
// request ([Signer]), and a consumer's trust mode ([Trusted]) runs the
// message as the tenant its stamp proves, after checking the stamp with
// the producer's public keys ([Verifier]). It is the trust mode of
// package message for messages that cross services; the others (a queue
// bound to one tenant, the AWS sender, an unverified attribute) need no
// keys and live in message.
//
// # The stamp
//
// [Signer.Stamp] returns the attributes to send with a message: a compact
// JWS (golang-jwt) under [Attribute], signed with the producing service's
// own key, of the type [Type], naming the issuer (the service), the
// tenant, its tier and user, when it was made and when it expires
// ([WithMaxAge], a day by default), a unique ID, the SHA-256 of the body
// and, with [WithDestination], the destination; and the W3C traceparent
// and baggage of the producer's context. Only a verified tenant is
// stamped. The user's bearer token is never put in a message: it would
// expire while the message waits, and whoever reads the queue could call
// the user's APIs with it.
//
// Keys rotate by key ID ([Signer.AddKey], [Signer.Rotate],
// [Signer.RemoveKey]); the producer serves [Signer.JWKS] and consumers
// fetch it ([WithJWKSURL]) with authz's key machinery, fetching again when
// a stamp names a key they do not know.
//
//	signer, _ := stamp.NewSigner("https://orders.example.com", key, "2026-03")
//	attrs, err := signer.Stamp(r.Context(), body, stamp.WithDestination("fulfillment"))
//	// send body with attrs as the message's attributes
//
// # What a stamp proves
//
// [Trusted] proves that the message was stamped by the producing service
// whose key signed it, for this tenant, within its lifetime, with this
// body, for this destination (with [ForDestination]; a verifier without
// it refuses a stamp made for any destination), and that it is no replay: the same stamp on another message of the same source is
// refused, a redelivery of the same message is not. It proves what the
// producer verified, no more: a producer that stamps what its caller
// claims makes every consumer believe the claim. Give each producing
// service a key of its own, so that a consumer trusts each producer by
// name and a leaked key is one service's to rotate.
//
// A stamp outlives the user's token but not its maximum age: a message
// redriven from a dead-letter queue after that needs a new stamp from a
// service trusted to make one, never a longer maximum age.
//
//	verifier, err := stamp.NewVerifier(ctx, "https://orders.example.com",
//		stamp.WithJWKSURL("https://orders.example.com/.well-known/jwks.json"),
//		stamp.ForDestination("fulfillment"))
//	// ...
//	stack, err := tenancy.New(tenancy.WithMessageTrust(stamp.Trusted(verifier)))
//	worker := stack.WrapMessages(handler)
//
// # Replays
//
// A Verifier remembers each stamp it accepted, with the message it came
// on, until the stamp expires. Alone, it catches replays within one
// process, while the first delivery is among the last
// [WithReplayCacheSize] stamps it accepted; a replay that reaches another
// replica, or comes after that, is caught only by the handler's own
// idempotency.
//
// With [WithReplayStore] (package message/stamp/redisreplay keeps one in
// Redis), the replicas share the check: a stamp its own cache does not
// hold is checked in the store, which remembers it until it expires and
// 5 minutes after (authz's greatest leeway), so a replay is refused
// whichever replica it reaches and however many stamps came between; a
// redelivery the cache holds costs no call. A check the store cannot make
// (it is unreachable, or slower than its timeout) defers the message: it
// is never dead-lettered for it, and never accepted unchecked. What the
// store forgets (a Redis restarted without persistence) it no longer
// catches.
package stamp
