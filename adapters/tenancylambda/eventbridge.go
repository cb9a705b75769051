package tenancylambda

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/message/sqsqueue"
)

// envelope is how a message travels in an EventBridge event's detail,
// which carries no attributes: the attributes (a stamp's, for one) and
// the body exactly as signed, as a JSON string when it is UTF-8, else in
// base64.
type envelope struct {
	Attributes map[string]string `json:"attributes,omitempty"`
	Body       *string           `json:"body,omitempty"`
	BodyBase64 []byte            `json:"body_base64,omitempty"`
}

// EventBridgeDetail returns the Detail of a PutEvents entry that carries
// body with attrs (stamp.Signer.Stamp's, for one), an envelope
//
//	{"attributes": {"tenancy-stamp": "...", "traceparent": "..."}, "body": "..."}
//
// whose body is the bytes as signed: a JSON string when they are UTF-8,
// else "body_base64". Rules matching on the body's own fields do not see
// them inside the string: match on the DetailType or the Source. The
// entry's size counts against EventBridge's 256 KiB.
func EventBridgeDetail(body []byte, attrs map[string]string) (string, error) {
	env := envelope{Attributes: attrs}
	if utf8.Valid(body) {
		s := string(body)
		env.Body = &s
	} else {
		env.BodyBase64 = body
	}
	b, err := json.Marshal(env)
	if err != nil {
		return "", fmt.Errorf("tenancylambda: EventBridgeDetail: %w", err)
	}
	return string(b), nil
}

// EventBridgeMessage maps an EventBridge event to a message.Message: ID is
// the event's id (the same on Lambda's retries of an asynchronous
// invocation), Source its source, Body and Attributes those of the
// envelope of [EventBridgeDetail] in its detail. A detail that is no such
// envelope is the Body as it is, without attributes, which a trust mode
// refuses as it refuses a message without its attributes. Deliveries is 0:
// Lambda does not say.
func EventBridgeMessage(ev events.EventBridgeEvent) *message.Message {
	m := &message.Message{ID: ev.ID, Source: ev.Source, Body: []byte(ev.Detail)}
	var env envelope
	dec := json.NewDecoder(bytes.NewReader(ev.Detail))
	dec.DisallowUnknownFields()
	if dec.Decode(&env) != nil || (env.Body == nil && env.BodyBase64 == nil) {
		return m
	}
	m.Attributes = env.Attributes
	if env.Body != nil {
		m.Body = []byte(*env.Body)
	} else {
		m.Body = env.BodyBase64
	}
	return m
}

// EventBridgeHandler handles the events an EventBridge rule sends to a
// function, which Lambda invokes asynchronously. It is safe for concurrent
// use.
type EventBridgeHandler struct {
	next       message.Handler
	client     sqsqueue.SendMessageAPI
	deadLetter string
	logger     *slog.Logger
}

// EventBridgeOption configures an [EventBridgeHandler].
type EventBridgeOption func(*eventBridgeConfig)

type eventBridgeConfig struct {
	client     sqsqueue.SendMessageAPI
	deadLetter string
	logger     *slog.Logger
}

// WithEventBridgeDeadLetterQueue sends rejected events, as the envelope's
// body and attributes with the reason (sqsqueue.DeadLetterInput), to the
// SQS queue at url with client, and not retried. Default: none; a rejected
// event is then returned as an error, which Lambda retries and sends to the
// function's on-failure destination with the reason.
func WithEventBridgeDeadLetterQueue(client sqsqueue.SendMessageAPI, url string) EventBridgeOption {
	return func(c *eventBridgeConfig) { c.client, c.deadLetter = client, url }
}

// WithEventBridgeLogger sets where an EventBridgeHandler logs rejections
// and handlers that panicked.
// Default, also for nil: slog.Default.
func WithEventBridgeLogger(l *slog.Logger) EventBridgeOption {
	return func(c *eventBridgeConfig) { c.logger = l }
}

// NewEventBridge returns the handler of the events of an EventBridge rule
// that hands each to h, usually a stack's WrapMessages.
func NewEventBridge(h message.Handler, opts ...EventBridgeOption) (*EventBridgeHandler, error) {
	if h == nil {
		return nil, errors.New("tenancylambda: NewEventBridge needs a message.Handler")
	}
	var c eventBridgeConfig
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if (c.client == nil) != (c.deadLetter == "") {
		return nil, errors.New("tenancylambda: WithEventBridgeDeadLetterQueue needs both a client and a queue URL")
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	return &EventBridgeHandler{next: h, client: c.client, deadLetter: c.deadLetter, logger: c.logger}, nil
}

// ErrRejected is wrapped by the error Handle returns for a rejected event
// when there is no dead-letter queue to send it to.
var ErrRejected = errors.New("tenancylambda: event rejected")

// ErrRetry is wrapped by the error Handle returns for an event to be
// delivered again: deferred or failed.
var ErrRetry = errors.New("tenancylambda: event to be delivered again")

// Handle hands ev to the handler and acts on its outcome. Lambda retries an
// asynchronous invocation that returns an error (twice by default, after
// about one and then two minutes; the function's MaximumRetryAttempts),
// then sends the event to the function's on-failure destination or
// dead-letter queue, and drops it when there is none: give the function
// one.
//
//   - acked: nil.
//   - deferred: an error wrapping [ErrRetry], so Lambda retries; its
//     delay is not honoured (Lambda sets it), and a deferral past the
//     retries goes to the on-failure destination like a failure.
//   - rejected: no retry can help. With WithEventBridgeDeadLetterQueue
//     the event is sent there with its reason and Handle returns nil, so
//     Lambda does not retry it (when the send fails, an error wrapping
//     [ErrRetry], so that the event is not lost). Without, an error
//     wrapping [ErrRejected] that names the reason: Lambda cannot be told
//     not to retry, so it retries in vain and then sends the event to the
//     on-failure destination, whose record carries the error message and
//     so the reason. Give a dead-letter queue to spare the retries.
//   - failed: an error wrapping [ErrRetry] and the handler's; a handler
//     that panics fails so too, and the panic is logged.
func (e *EventBridgeHandler) Handle(ctx context.Context, ev events.EventBridgeEvent) error {
	m := EventBridgeMessage(ev)
	herr := handleRecovered(ctx, e.next, m, e.logger)
	outcome, after, reason := message.OutcomeOf(herr)
	switch outcome {
	case message.Acked:
		return nil
	case message.Deferred:
		return fmt.Errorf("%w: %s deferred by %s", ErrRetry, m.ID, after)
	case message.Failed:
		return fmt.Errorf("%w: %s: %w", ErrRetry, m.ID, herr)
	}
	if e.client == nil {
		e.logger.WarnContext(ctx, "tenancylambda: event rejected; left to the on-failure destination",
			"source", m.Source, "message_id", m.ID, "reason", reason)
		return fmt.Errorf("%w: %s: %s", ErrRejected, m.ID, reason)
	}
	if _, err := e.client.SendMessage(context.WithoutCancel(ctx), sqsqueue.DeadLetterInput(e.deadLetter, m, reason)); err != nil {
		return fmt.Errorf("%w: dead-lettering %s (%s): %w", ErrRetry, m.ID, reason, err)
	}
	return nil
}
