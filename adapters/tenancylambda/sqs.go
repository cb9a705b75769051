package tenancylambda

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/message/sqsqueue"
)

// SQSClient is what an [SQSHandler] needs of SQS, given with
// [WithSQSClient]: setting a deferred message's visibility and sending
// dead letters. *sqs.Client implements it.
type SQSClient interface {
	sqsqueue.ChangeMessageVisibilityAPI
	sqsqueue.SendMessageAPI
}

// SQSHandler handles the events of an SQS event source mapping, one
// message.Handler call per record, and answers with a partial batch
// response. It is safe for concurrent use.
type SQSHandler struct {
	next       message.Handler
	client     SQSClient
	deadLetter string
	logger     *slog.Logger
}

// SQSOption configures an [SQSHandler].
type SQSOption func(*sqsConfig)

type sqsConfig struct {
	client     SQSClient
	deadLetter string
	logger     *slog.Logger
}

// WithSQSClient gives the client with which a deferred message's
// visibility timeout is set to its delay, and dead letters are sent
// ([WithSQSDeadLetterQueue]). Default: none; a deferred message then comes
// back after the queue's visibility timeout.
func WithSQSClient(c SQSClient) SQSOption { return func(s *sqsConfig) { s.client = c } }

// WithSQSDeadLetterQueue sets the URL of the queue rejected messages are
// sent to, with their reason (sqsqueue.DeadLetterInput); it needs
// [WithSQSClient]. Default: none; a rejected message is then reported as
// a batch item failure and its reason logged, and the queue's redrive
// policy moves it to the queue's dead-letter queue after maxReceiveCount
// receives.
func WithSQSDeadLetterQueue(url string) SQSOption { return func(s *sqsConfig) { s.deadLetter = url } }

// WithSQSLogger sets where an SQSHandler logs the rejections it leaves to
// the redrive policy, the SQS calls that failed and the handlers that
// panicked. Default, also for nil: slog.Default.
func WithSQSLogger(l *slog.Logger) SQSOption { return func(s *sqsConfig) { s.logger = l } }

// NewSQS returns the handler of an SQS event source mapping that hands each
// record to h, usually a stack's WrapMessages. The mapping must have
// ReportBatchItemFailures in its FunctionResponseTypes: without it Lambda
// ignores the partial batch response and deletes the whole batch when the
// invocation returns, failures and all.
func NewSQS(h message.Handler, opts ...SQSOption) (*SQSHandler, error) {
	if h == nil {
		return nil, errors.New("tenancylambda: NewSQS needs a message.Handler")
	}
	var c sqsConfig
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if c.deadLetter != "" && c.client == nil {
		return nil, errors.New("tenancylambda: WithSQSDeadLetterQueue needs WithSQSClient, to send the dead letters with")
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	return &SQSHandler{next: h, client: c.client, deadLetter: c.deadLetter, logger: c.logger}, nil
}

// Handle handles the records of ev in order and returns the records to be
// delivered again as batch item failures:
//
//   - acked: not reported, so Lambda deletes it;
//   - deferred: reported; with WithSQSClient its visibility timeout is set
//     to the delay first (rounded up to whole seconds, at most 12 hours),
//     else it comes back after the queue's visibility timeout;
//   - rejected: with WithSQSDeadLetterQueue sent there with its reason and
//     not reported (a failed send is reported, so the message comes back);
//     without, reported and its reason logged, for the queue's redrive
//     policy to dead-letter after maxReceiveCount receives;
//   - failed: reported; the queue's redrive policy dead-letters it after
//     maxReceiveCount receives. A handler that panics fails its record
//     (the panic is logged), and the other records keep their outcomes.
//
// Records not handled when ctx is done are reported. Handle never returns
// an error: an error would have Lambda deliver the whole batch again.
func (s *SQSHandler) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	var resp events.SQSEventResponse
	for _, r := range ev.Records {
		if ctx.Err() != nil || !s.handle(ctx, r) {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: r.MessageId})
		}
	}
	return resp, nil
}

// handle handles one record, and says whether it is settled.
func (s *SQSHandler) handle(ctx context.Context, r events.SQSMessage) bool {
	m := SQSMessage(r)
	outcome, after, reason := message.OutcomeOf(handleRecovered(ctx, s.next, m, s.logger))
	ctx = context.WithoutCancel(ctx)
	switch outcome {
	case message.Acked:
		return true
	case message.Deferred:
		if s.client != nil {
			url, err := QueueURL(r.EventSourceARN)
			if err == nil {
				_, err = s.client.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
					QueueUrl: aws.String(url), ReceiptHandle: aws.String(r.ReceiptHandle), VisibilityTimeout: sqsqueue.VisibilitySeconds(after),
				})
			}
			if err != nil {
				s.logger.WarnContext(ctx, "tenancylambda: setting the visibility of a deferred message failed; it comes back after the queue's visibility timeout",
					"source", m.Source, "message_id", m.ID, "error", err.Error())
			}
		}
		return false
	case message.Rejected:
		if s.deadLetter == "" {
			s.logger.WarnContext(ctx, "tenancylambda: message rejected; reported as a failure for the queue's redrive policy to dead-letter",
				"source", m.Source, "message_id", m.ID, "reason", reason)
			return false
		}
		if _, err := s.client.SendMessage(ctx, sqsqueue.DeadLetterInput(s.deadLetter, m, reason)); err != nil {
			s.logger.WarnContext(ctx, "tenancylambda: dead-lettering a rejected message failed; it comes back",
				"source", m.Source, "message_id", m.ID, "reason", reason, "error", err.Error())
			return false
		}
		return true
	default:
		return false
	}
}

// SQSMessage maps a record of an SQS event to a message.Message as
// sqsqueue.ToMessage maps a received message: ID is its messageId, Source
// the queue's name (from eventSourceARN), Deliveries its
// ApproximateReceiveCount, SenderID its SenderId, Attributes its String and
// Number message attributes.
func SQSMessage(r events.SQSMessage) *message.Message {
	sm := types.Message{
		MessageId:     aws.String(r.MessageId),
		ReceiptHandle: aws.String(r.ReceiptHandle),
		Body:          aws.String(r.Body),
		Attributes:    r.Attributes,
	}
	if len(r.MessageAttributes) > 0 {
		sm.MessageAttributes = make(map[string]types.MessageAttributeValue, len(r.MessageAttributes))
		for k, v := range r.MessageAttributes {
			sm.MessageAttributes[k] = types.MessageAttributeValue{DataType: aws.String(v.DataType), StringValue: v.StringValue}
		}
	}
	name := r.EventSourceARN
	if i := strings.LastIndexByte(name, ':'); i >= 0 {
		name = name[i+1:]
	}
	return sqsqueue.ToMessage(name, sm)
}

// QueueURL returns the URL of the queue whose ARN is arn
// ("arn:aws:sqs:REGION:ACCOUNT:NAME").
func QueueURL(arn string) (string, error) {
	p := strings.Split(arn, ":")
	if len(p) != 6 || p[0] != "arn" || p[2] != "sqs" || p[3] == "" || p[4] == "" || p[5] == "" {
		return "", fmt.Errorf("tenancylambda: %q is no SQS queue ARN (arn:PARTITION:sqs:REGION:ACCOUNT:NAME)", arn)
	}
	domain := "amazonaws.com"
	if p[1] == "aws-cn" {
		domain = "amazonaws.com.cn"
	}
	return "https://sqs." + p[3] + "." + domain + "/" + p[4] + "/" + p[5], nil
}
