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
// # Trust modes
//
// A consumer says how it trusts a message's tenant with a trust mode,
// named for what it proves: signed stamps (message/stamp), or one of the
// three of this package. A message a trust mode refuses never runs as any
// tenant: the mode returns a [*RejectError] with a precise reason, the
// transport dead-letters it with that reason, the message log and the
// meter record it, and tenancy.message.refused counts it by mode and
// reason.
//
//   - stamp.Trusted (message/stamp): the message was stamped by the
//     producing service whose key signed it, for this tenant, within its
//     lifetime, with this body, and it is no replay. It proves what the
//     producer verified, no more. A producer stamps a message with the
//     verified tenant of its request (stamp.Signer); the user's bearer
//     token is never put in a message.
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
// A trust mode is a [Middleware]: wrap the handler in it, or give it to
// tenancy.WithMessageTrust for the stack to place.
//
//	worker := message.BoundQueue("acme", tenant.DefaultTiers.MustLookup("premium"))(handler)
//	err := worker.HandleMessage(ctx, m) // runs handler as acme
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
