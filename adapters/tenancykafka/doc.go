// Package tenancykafka carries messages on Kafka, through franz-go: a
// [Producer] produces one record per message, and a [Consumer], a member
// of a consumer group, hands each record to a message.Handler (tenancy's
// Stack.WrapMessages) as a message.Message and acts on its outcome
// (message.OutcomeOf). It is a module of its own, so that the core module
// does not depend on a Kafka client.
//
//	p, err := tenancykafka.NewProducer(client, "orders")
//	attrs, err := signer.Stamp(r.Context(), body)
//	id, err := p.Publish(r.Context(), body, attrs) // keyed by the request's tenant
//
//	c, err := tenancykafka.NewConsumer(brokers, "orders", "fulfillment")
//	defer c.Close()
//	err = c.Run(ctx, stack.WrapMessages(handler))
//
// # Records and messages
//
// The Producer puts the message's body in the record's value and its
// attributes (stamp.Signer.Stamp's: the stamp, traceparent, baggage) in
// its headers. The record's key is the ID of the tenant of the context by
// default, so that a tenant's records go to one partition, in the order
// they were produced; a context without a tenant is an error
// ([ErrNoKey]), and [WithKey] keys records otherwise.
//
// The Consumer maps a record to a message: Message.ID is
// topic/partition/offset, set by Kafka and the same on every delivery
// (a stamp's replay check tells a redelivery from a replay by it), Source
// is the topic, Attributes are the headers (of a header repeated, the last
// value), Deliveries counts the deliveries by this member since the group
// gave it the partition.
//
// # Outcomes
//
// Kafka keeps one committed offset per partition and group, not an
// acknowledgement per record, and redelivers nothing by itself. The
// Consumer keeps, per partition, a set of the records it handed over and
// has not settled, in memory, and commits the offset of the oldest of
// them (or, with none, the offset after the last record handed over):
// never past a record that is not settled.
//
//   - acked: settled.
//   - deferred: kept in the set and delivered again once due, on the
//     Consumer's clock ([WithClock]); never dead-lettered for being
//     deferred. Meanwhile the records after it are handed over, except
//     those of the same key (a tenant, with the default key), which wait
//     behind it in the set: the records of a key are handed over in the
//     order of their offsets, deferrals included.
//   - rejected: produced to the dead-letter topic ([WithDeadLetterTopic],
//     the topic + ".dead" by default) with its key, value and headers and
//     the reason under [HeaderReason] (a record's own headers of the
//     dead-letter names are dropped, so that none is forged), then settled. When that fails, the
//     record stays unsettled and is delivered again after
//     [WithRetryDelay].
//   - failed: delivered again after WithRetryDelay, and dead-lettered with
//     the reason "max_deliveries" once it has had [WithMaxDeliveries].
//     A handler that panics fails its record the same way; the panic,
//     with its stack, goes to [WithLogger], and the consumer goes on.
//
// A partition's set holds at most [WithMaxPending] records (deferred,
// failed, or waiting behind one of their key). A partition whose set is
// full gets no new records until one settles (its fetching is paused): a
// tenant deferred for long, on a partition it shares with others, slows
// those others down to the pace of its own deferrals. Deferred records are
// not produced again to the topic: a copy would need a producer-visible
// mark of the original's ID for the stamp's replay check, and whoever may
// produce to the topic could forge it.
//
// # What is promised
//
// Delivery is at least once. Nothing is committed before it is settled:
// a member that stops, crashes, loses its session or has a partition taken
// away by a rebalance leaves the partition's unsettled records, and every
// record after the oldest of them, to the next member, which delivers them
// again (records after a deferred one that were settled are delivered
// again too: handlers must be idempotent). Deferrals live in the member's
// memory and do not survive it: the next member delivers the record at
// once, counting Deliveries from 1. A dead-lettered record whose commit
// did not happen is dead-lettered again.
//
// Records of a partition are handed over one at a time, in offset order,
// except that a deferred or failed record comes back when due, after the
// records behind it of other keys; partitions are handled concurrently.
// Rebalances wait for the handlers in flight (kgo.BlockRebalanceOnPoll):
// give the group a rebalance timeout above the longest a handler takes
// ([WithClientOptions] with kgo.RebalanceTimeout).
package tenancykafka
