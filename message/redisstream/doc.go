// Package redisstream carries messages on Redis Streams with consumer
// groups: a [Publisher] adds each message to a stream (XADD, the body and
// the attributes as fields), and a [Consumer] of a group reads them
// (XREADGROUP), hands each to a message.Handler and acts on its outcome
// (message.OutcomeOf):
//
//   - acked: XACK;
//   - deferred: the entry stays pending and its due time goes into a
//     sorted set of the group's, on the consumer's clock ([WithClock]);
//     the first poll after it claims it again (XCLAIM) and delivers it;
//   - rejected: the entry is added to the dead-letter stream with the
//     reason ([WithDeadLetterStream]; stream + ":dead" by default) and
//     acknowledged;
//   - failed: delivered again after [WithRetryDelay], and dead-lettered
//     with the reason "max_deliveries" once it has had
//     [WithMaxDeliveries]. A handler that panics fails its message the
//     same way; the panic, with its stack, goes to [WithLogger], and the
//     consumer goes on with the other entries.
//
// A Consumer handles one entry at a time, in the order read, unless given
// [WithConcurrency]: then up to that many at once, each settled as its
// handler returns, and it reads only as many entries as it has handlers
// free. That is what a throttle.FairShare in the handler needs to share
// the handlers among tenants and read past one tenant's backlog.
//
// Entries a consumer read and never settled (it stopped, or crashed) are
// claimed by another consumer of the group once idle for
// [WithClaimAfter] (XAUTOCLAIM), and delivered again with their delivery
// count. Message.ID is the entry ID, the same on every delivery, so a
// stamp's replay check tells a redelivery from a replay.
//
//	c, err := redisstream.NewConsumer(ctx, client, "orders", "fulfillment", hostname)
//	err = c.Run(ctx, stack.WrapMessages(handler))
//
// Delivery is at least once: a consumer that stops between the handler's
// return and the XACK (or between the dead-letter XADD and the XACK)
// leaves the entry to be delivered (or dead-lettered) again. Run, stopped,
// reads no more and returns once every entry in hand is settled; an entry
// whose settling failed (Redis away) stays pending and is claimed again. Streams grow
// until trimmed: give the Publisher [WithMaxLen], or trim them yourself.
package redisstream
