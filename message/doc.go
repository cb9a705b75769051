// Package message gives work that arrives on a queue or a stream the
// tenant context HTTP requests get: a producer stamps each message with
// the verified tenant of its request, and a consumer's handler runs as the
// tenant the message proves, with tenant-tagged logs, metering, limits
// and credentials, through the same parts and the same composition point
// as HTTP (tenancy's Stack.WrapMessages).
//
// A [Handler] handles one [*Message]; its error is the outcome a transport
// acts on ([OutcomeOf]): nil acknowledges, [Defer] asks for the message
// again later, [Reject] dead-letters it with a reason, any other error is
// a failure left to the transport's retry policy. Transports turn their
// records into Messages (message/memqueue in memory, message/redisstream
// on Redis Streams) and call the composed handler.
//
// # The stamp
//
// [Signer.Stamp] returns the attributes to send with a message: a compact
// JWS (golang-jwt) under [StampAttribute], signed with the producing
// service's own key, of the type [StampType], naming the issuer (the
// service), the tenant, its tier and user, when it was made and when it
// expires ([WithMaxAge], a day by default), a unique ID, the SHA-256 of
// the body and, with [WithDestination], the destination; and the W3C
// traceparent and baggage of the producer's context. Only a verified
// tenant is stamped. The user's bearer token is never put in a message: it
// would expire while the message waits, and whoever reads the queue could
// call the user's APIs with it.
//
// Keys rotate by key ID ([Signer.AddKey], [Signer.Rotate],
// [Signer.RemoveKey]); the producer serves [Signer.JWKS] and consumers
// fetch it ([WithJWKSURL]) with authz's key machinery, fetching again when
// a stamp names a key they do not know.
//
//	signer, _ := message.NewSigner("https://orders.example.com", key, "2026-03")
//	attrs, err := signer.Stamp(r.Context(), body, message.WithDestination("fulfillment"))
//	// send body with attrs as the message's attributes
//
// # Trust modes
//
// A consumer says how it trusts a message's tenant with one of four trust
// modes, each named for what it proves. A message a trust mode refuses
// never runs as any tenant: the mode returns a [*RejectError] with a
// precise reason, the transport dead-letters it with that reason, the
// message log and the meter record it, and tenancy.message.refused counts
// it by mode and reason.
//
//   - [Stamped]: the message was stamped by the producing service whose
//     key signed it, for this tenant, within its lifetime, with this body,
//     and (with [ForDestination]) for this destination, and it is no
//     replay: the same stamp on another message of the same source is
//     refused, a redelivery of the same message is not. It proves what the
//     producer verified, no more: a producer that stamps what its caller
//     claims makes every consumer believe the claim. Give each producing
//     service a key of its own, so that a consumer trusts each producer by
//     name and a leaked key is one service's to rotate. A stamp outlives
//     the user's token but not its maximum age: a message redriven from a
//     dead-letter queue after that needs a new stamp from a service trusted
//     to make one, never a longer maximum age. Replays are caught within
//     one process, while the first delivery is among the last
//     [WithReplayCacheSize] stamps it accepted; a replay that reaches
//     another replica, or comes after that, is caught only by the
//     handler's own idempotency.
//   - [BoundQueue]: the queue belongs to one tenant (a silo), so its
//     messages do. It proves what the queue's access policy proves: that
//     only that tenant's producers can send to it.
//   - [SenderSession]: the message was sent by a session of the tenant
//     role named for the tenant (SQS's SenderId), so with that tenant's
//     scoped credentials. It proves nothing when SNS or EventBridge
//     delivered the message: SQS then reports their identity, and the
//     sender is hidden; use stamps for fan-out.
//   - [UnverifiedAttribute]: an attribute names the tenant, and no one
//     vouches for it (tenant.SourceClaimed): for internal pools whose
//     producers are all trusted. As over HTTP, the throttle and
//     credentials refuse a claimed tenant unless told otherwise.
//
// # The consumer's stack
//
// tenancy's Stack.WrapMessages wires the message layers in the order HTTP
// uses: the message log (logging.MessageLog), the meter
// (meter.MessageMiddleware), the trust mode, the throttle
// ((throttle.Limiter).MessageMiddleware: a tenant over its budget is
// deferred, never dropped, and its in-flight messages are capped) and
// credentials (awscreds.MessageMiddleware). The log and the meter sit
// outside the trust mode so that they see its refusals, and read the
// tenant it established from the message's state. Handlers read the
// tenant with tenant.FromContext, log with slog.InfoContext and meter with
// meter.Add, exactly as HTTP handlers do; a message's lines carry its ID
// as request_id and continue the producer's trace.
package message
