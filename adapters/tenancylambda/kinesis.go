package tenancylambda

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/message/kinesisstream"
)

// KinesisDeadLetter writes a message a handler rejected to a dead-letter
// path, with the reason; *kinesisstream.Publisher is one (a Publisher to
// a dead-letter stream).
type KinesisDeadLetter interface {
	DeadLetter(ctx context.Context, m *message.Message, partitionKey, reason string) error
}

var _ KinesisDeadLetter = (*kinesisstream.Publisher)(nil)

// KinesisHandler handles the events of a Kinesis event source mapping
// with a message.Handler: each record becomes the message.Message a
// kinesisstream.Consumer would have made of it. Give it to lambda.Start
// as its method Handle. It is safe for concurrent use.
type KinesisHandler struct {
	next message.Handler
	c    kinesisConfig
}

// KinesisOption configures a [KinesisHandler].
type KinesisOption func(*kinesisConfig)

type kinesisConfig struct {
	deadLetter KinesisDeadLetter
	logger     *slog.Logger
	errs       []error
}

// WithKinesisDeadLetter writes the records the handler rejects (a trust
// mode's refusal, message.Reject) with dl, then counts them handled: give
// it a kinesisstream.Publisher to a dead-letter stream. A dead letter that
// cannot be written is reported as the record's failure. Default: a
// rejected record is reported as a failure, with the reason logged, and
// the event source mapping's retries and on-failure destination take it
// from there.
func WithKinesisDeadLetter(dl KinesisDeadLetter) KinesisOption {
	return func(c *kinesisConfig) {
		if dl == nil {
			c.errs = append(c.errs, errors.New("tenancylambda: WithKinesisDeadLetter: nil dead letter"))
		}
		c.deadLetter = dl
	}
}

// WithKinesisLogger sets where a KinesisHandler logs the records it
// reports as failures, and why (a handler that panicked with its stack).
// Default, also for nil: slog.Default.
func WithKinesisLogger(l *slog.Logger) KinesisOption {
	return func(c *kinesisConfig) { c.logger = l }
}

// NewKinesis returns a KinesisHandler of h, the consumer's handler inside
// the tenancy stack (stack.WrapMessages(handler)). The event source
// mapping must report batch item failures (FunctionResponseTypes
// ReportBatchItemFailures). Mistakes in the options are reported here.
func NewKinesis(h message.Handler, opts ...KinesisOption) (*KinesisHandler, error) {
	if h == nil {
		return nil, errors.New("tenancylambda: NewKinesis needs the message handler, such as stack.WrapMessages(handler)")
	}
	var c kinesisConfig
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if err := errors.Join(c.errs...); err != nil {
		return nil, err
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	return &KinesisHandler{next: h, c: c}, nil
}

// Handle handles the records of ev, each shard's in order, and returns
// the batch item failures: for each shard, the sequence number of its
// first record that is not done (deferred, failed, rejected without a
// dead letter written, a handler that panicked, or not reached before ctx
// was done). Lambda
// resumes the shard from that record, so the records after it are not
// handled in this invocation: they would be delivered again anyway.
func (k *KinesisHandler) Handle(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
	var resp events.KinesisEventResponse
	stopped := map[string]bool{} // shards with a failure reported
	for _, r := range ev.Records {
		shardID, _, _ := strings.Cut(r.EventID, ":")
		if stopped[shardID] {
			continue
		}
		m := kinesisstream.NewMessage(streamName(r.EventSourceArn), shardID, r.Kinesis.SequenceNumber, r.Kinesis.Data)
		if k.handle(ctx, m, r.Kinesis.PartitionKey) {
			continue
		}
		stopped[shardID] = true
		resp.BatchItemFailures = append(resp.BatchItemFailures, events.KinesisBatchItemFailure{ItemIdentifier: r.Kinesis.SequenceNumber})
	}
	return resp, nil
}

// handle handles one message and reports whether it is done.
func (k *KinesisHandler) handle(ctx context.Context, m *message.Message, partitionKey string) bool {
	if ctx.Err() != nil {
		k.c.logger.WarnContext(ctx, "tenancylambda: invocation ending; the shard resumes from this record", "id", m.ID, "source", m.Source)
		return false
	}
	outcome, after, reason := message.OutcomeOf(handleRecovered(ctx, k.next, m, k.c.logger))
	switch outcome {
	case message.Acked:
		return true
	case message.Deferred:
		k.c.logger.InfoContext(ctx, "tenancylambda: record deferred; the shard resumes from it", "id", m.ID, "source", m.Source, "after", after.String())
		return false
	case message.Failed:
		k.c.logger.WarnContext(ctx, "tenancylambda: record failed; the shard resumes from it", "id", m.ID, "source", m.Source)
		return false
	}
	if k.c.deadLetter == nil {
		k.c.logger.ErrorContext(ctx, "tenancylambda: record rejected, and no dead letter configured; reported as a failure", "id", m.ID, "source", m.Source, "reason", reason)
		return false
	}
	if err := k.c.deadLetter.DeadLetter(context.WithoutCancel(ctx), m, partitionKey, reason); err != nil {
		k.c.logger.ErrorContext(ctx, "tenancylambda: writing a dead letter failed; reported as a failure", "id", m.ID, "source", m.Source, "reason", reason, "error", err.Error())
		return false
	}
	return true
}

// streamName returns the stream's name in a stream's ARN
// ("arn:aws:kinesis:REGION:ACCOUNT:stream/NAME"), or the ARN whole when it
// holds none.
func streamName(arn string) string {
	_, name, ok := strings.Cut(arn, ":stream/")
	if !ok {
		return arn
	}
	name, _, _ = strings.Cut(name, "/") // a consumer's ARN: stream/NAME/consumer/...
	return name
}
