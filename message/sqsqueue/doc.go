// Package sqsqueue carries messages on Amazon SQS: a [Publisher] sends
// each message (SendMessage, the attributes as String message attributes,
// the tenant as the MessageGroupId), and a [Worker] long-polls a queue
// (ReceiveMessage), hands each message to a message.Handler and acts on its
// outcome (message.OutcomeOf):
//
//   - acked: deleted, in batches (DeleteMessageBatch) once the batch's
//     handlers have returned;
//   - deferred: its visibility timeout is set to the delay, rounded up to
//     whole seconds and capped at SQS's 12 hours (ChangeMessageVisibility),
//     and SQS delivers it again after it; it is never dead-lettered for
//     being deferred;
//   - rejected: sent to the dead-letter queue ([WithDeadLetterQueue]) with
//     its body and attributes and the reason as the attribute [AttrReason],
//     then deleted; when that send fails it is not deleted, and comes back
//     after its visibility timeout;
//   - failed: hidden for [WithRetryDelay] and delivered again, until its
//     ApproximateReceiveCount reaches [WithMaxDeliveries]; then it is
//     dead-lettered with the reason "max_deliveries".
//     A handler that panics fails its message the same way; the panic,
//     with its stack, goes to [WithLogger], and the worker goes on.
//
// A message's ID is its MessageId, the same on every delivery, so a
// stamp's replay check tells a redelivery from a replay; Deliveries is its
// ApproximateReceiveCount, SenderID its SenderId (for message.SenderSession)
// and Source the queue's name ([WithSource]).
//
//	w, err := sqsqueue.NewWorker(sqs.NewFromConfig(cfg), queueURL,
//		sqsqueue.WithDeadLetterQueue(deadLetterURL))
//	err = w.Run(ctx, stack.WrapMessages(handler))
//
// # Delivery
//
// Delivery is at least once, and no message is lost: a message is deleted
// only once it was handled and acknowledged, or once its dead letter was
// sent. A message whose handler did not return (the worker stopped, or
// crashed), whose deletion failed (a DeleteMessageBatch failure, whole or
// for some entries) or whose dead letter could not be sent stays in the
// queue and comes back after its visibility timeout; so does one whose
// deferral could not be set (then after the visibility timeout rather
// than the delay). A Worker whose context is done starts no more handlers
// and settles those that returned.
//
// Receipt handles expire with the visibility timeout: a handler slower
// than it would see its message delivered again to another consumer while
// it runs, and its deletion fail. So the Worker asks for a visibility
// timeout ([WithVisibilityTimeout]) and, while handlers run, extends the
// visibility of each unsettled message of the batch every half of it (a
// heartbeat), up to the 12 hours SQS allows after a receive.
//
// # The queue's redrive policy
//
// The Worker dead-letters itself, with the reason, so a queue needs no
// redrive policy. A queue may keep one as a safety net, for messages whose
// dead letter could never be sent: SQS then moves a message to its
// dead-letter queue once received maxReceiveCount times, without a reason.
// SQS counts every receive, deferred ones too, so set maxReceiveCount well
// above WithMaxDeliveries and above the deferrals a tenant over its budget
// may take; else SQS dead-letters deferred messages. The alternative is
// to let the policy do it all: a WithMaxDeliveries above its
// maxReceiveCount leaves failing messages to SQS, and their reason is lost.
//
// # Fair queues and FIFO queues
//
// Publish sets the MessageGroupId to the tenant of its context. On a
// standard queue this makes it an SQS fair queue: SQS treats each group as
// a tenant (a message without a group is a tenant of its own), and when
// one holds a disproportionate share of the messages in flight (AWS
// documents more than about 10% and at least 30 of its own) or of the
// consumers' recent processing time (more than about 10%), it delivers the
// quiet tenants' messages first, until the noisy tenant's share falls
// back, its backlog is drained, or it sent nothing for five minutes. It
// drops and throttles nothing, and orders nothing: the noisy tenant's
// messages only wait longer. It needs no setting on the queue, and no
// change to consumers. On a FIFO queue (a name
// ending in ".fifo") the group is required, and keeps each tenant's
// messages in order; give [WithDeduplicationID] or turn on the queue's
// content-based deduplication.
//
// # Tests
//
// Two sets of tests, each for what it can show.
//
// Against fauxqs 1.9.2 (an SQS emulator, started per test by the module's
// test servers), with the SDK's *sqs.Client (an endpoint, static
// credentials, a region): queues and dead-letter queues created with
// CreateQueue; stamped messages verified end to end through the stack
// with stamp.Trusted, each run as its tenant and deleted, and forged,
// tampered, missing and replayed stamps dead-lettered with their reason
// and deleted; a deferral of a second coming back on the emulator's own
// clock with an ApproximateReceiveCount of 2; the limit of ten
// attributes, which fauxqs does not enforce, kept by Publish and by the
// dead letters; the emulator stopped while a handler runs (Run logs the
// failed deletion and receives, tries again, and handles what is sent
// once it is back); the dead-letter queue's server stopped (the rejected
// message stays in its queue, comes back, and is dead-lettered once the
// server is back). Fauxqs keeps its queues in memory, so a restart
// empties it.
//
// Against a fake of the one-method interfaces whose answers are shaped as
// SQS's (the SDK's types, String attributes, a receipt handle that
// changes on every receive, an ApproximateReceiveCount that counts them,
// a long poll that returns when a message arrives), for what needs an
// injected clock or a failure fauxqs cannot be made to give: retries up
// to WithMaxDeliveries and deferrals of 90 seconds and more, without
// waiting for them; the heartbeat; a worker stopped mid-batch; a
// DeleteMessageBatch that fails for some entries; SenderId of a role
// session (fauxqs gives every message the same SenderId); the FIFO
// queue's group and deduplication ID; the receive's parameters.
package sqsqueue
