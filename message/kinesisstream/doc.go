// Package kinesisstream carries messages on Amazon Kinesis Data Streams:
// a [Publisher] writes each message as one record (PutRecord), and a
// [Consumer] reads every shard of the stream (GetRecords), hands each
// record to a message.Handler as a message.Message and acts on its
// outcome (message.OutcomeOf).
//
// # The envelope
//
// A Kinesis record has data and a partition key, and no attributes: a
// Publisher writes the message's attributes (stamp.Signer.Stamp's) and its
// body into the data, in a small versioned envelope ([Encode], [Decode]).
// Data that is no envelope (another producer's record, one the Kinesis
// Producer Library aggregated) becomes a message of the data without
// attributes, which a trust mode that needs them refuses: stamp.Trusted
// dead-letters it as "stamp:missing". [NewMessage] builds the message of
// a record, for a Lambda function too.
//
// The partition key is the tenant of the context given to Publish, by
// default: a tenant's messages land on one shard, in the order they were
// published, and tenants spread over the shards ([WithPartitionKey] to
// choose). A record holds at most 1 MiB, its partition key included;
// Publish refuses a message that would not leave room for the attributes
// of its dead letter ([ErrTooLarge], [DeadLetterHeadroom]).
//
// # Messages and outcomes
//
// Message.ID is the shard ID and the sequence number ([MessageID]), which
// Kinesis gives the record: the same on every delivery, and chosen by no
// producer, so a stamp's replay check tells a redelivery from a replay.
// Source is the stream's name; Deliveries counts this Consumer's
// deliveries of the record (a Consumer that starts again counts from 1).
//
// Kinesis keeps no state per record: a consumer only moves a checkpoint
// along a shard. A Consumer keeps the records it read and has not settled
// in a pending set per shard, in memory, and stores as the shard's
// checkpoint ([Checkpoints]) the record before the oldest of them: never
// past a record not yet settled. The outcomes:
//
//   - acked: settled;
//   - deferred: kept, and delivered again once due on the Consumer's
//     clock ([WithClock]); never dead-lettered for it. The records after
//     it go on being handled meanwhile: a deferral holds up no other
//     tenant, and a tenant's records are in order only on their first
//     delivery;
//   - rejected: written to the dead-letter stream ([Publisher.DeadLetter]:
//     the body and attributes, with the reason under [AttrReason]), then
//     settled;
//   - failed: delivered again after [WithRetryDelay], and dead-lettered
//     with the reason "max_deliveries" once it had [WithMaxDeliveries].
//     A handler that panics fails its record the same way; the panic,
//     with its stack, goes to [WithLogger], and the consumer goes on.
//
// A dead letter that cannot be written keeps its record unsettled, and is
// written again after WithRetryDelay; its record is never settled without
// it: a record of another producer so large (within [DeadLetterHeadroom]
// of 1 MiB) that its dead letter does not fit in a record stays unsettled,
// and is logged at each attempt. A record is never written back to the stream it came from: it would
// come back with another ID, and anyone who can write to the stream could
// then make a replayed stamp pass for a redelivery.
//
// When a shard has [WithMaxPending] records unsettled (a tenant deferred
// for long, a handler failing), the Consumer reads no more of it until
// some are settled: the shard's reading pauses until the earliest of them
// is due, while the other shards go on. Records stay in the stream for its
// retention period (a day by default): a shard paused longer loses them.
//
// # At least once
//
// Delivery is at least once. A Consumer that stops, or crashes, leaves its
// pending records and the records after them to be delivered again, with
// the same IDs, by the next Consumer on the same Checkpoints, which
// starts after the checkpoint: a record handled but not yet checkpointed
// (the checkpoint is stored at the end of each round on a shard) is
// delivered again. Poll's context done mid-batch stops the handling; the
// records read and not handled stay before the checkpoint. While Kinesis
// cannot be reached, nothing is read and nothing is settled that needed
// it; reading resumes after the last record read.
//
// Reshards are followed: the children of a shard are read once every
// record of it was settled, so that a key's records stay in order.
//
// # What it is not
//
// A Consumer is the only reader of a stream for one application: it reads
// every shard, takes no leases, and two Consumers on the same Checkpoints
// would each handle every record. Use enhanced fan-out, the Kinesis Client
// Library, or Lambda (tenancylambda) to spread the shards over workers.
// A shard without a checkpoint is read from its oldest record
// (TRIM_HORIZON). [MemoryCheckpoints] keeps checkpoints for the life of
// the process only; package message/kinesisstream/dynamocheckpoints keeps
// them in a DynamoDB table.
//
//	deadLetters, err := kinesisstream.NewPublisher(client, "orders-dead")
//	c, err := kinesisstream.NewConsumer(client, "orders", checkpoints, deadLetters)
//	err = c.Run(ctx, stack.WrapMessages(handler))
//
// # Permissions
//
// A Publisher calls kinesis:PutRecord on its stream; a Consumer
// kinesis:ListShards, kinesis:GetShardIterator and kinesis:GetRecords on
// its stream, and kinesis:PutRecord on the dead-letter stream.
package kinesisstream
