package message

import (
	"context"
)

// Message is one message as a transport received it. Transports map
// their records to it: the body, the attributes (SQS message attributes,
// Kafka headers, Redis stream fields), the ID the transport gave the
// message and how often it was delivered. Middleware reads it and never
// changes it.
type Message struct {
	// ID identifies the message in its transport, the same on every
	// delivery of it: the SQS MessageId, the Redis stream entry ID, the
	// Kafka topic/partition/offset. A stamp's replay check tells a
	// redelivery (same ID) from a replay (another ID) by it.
	ID string
	// Body is the payload, as sent.
	Body []byte
	// Attributes are the message's string attributes. A stamped message
	// carries three or four: the stamp, traceparent, baggage and, when the
	// producer's trace has one, tracestate, within SQS's limit of ten.
	// Nil means none.
	Attributes map[string]string
	// Source names the queue, stream or topic the message came from.
	Source string
	// Deliveries is how many times the message was delivered, this one
	// included, when the transport knows (SQS's ApproximateReceiveCount,
	// a stream's delivery counter); 0 when it does not.
	Deliveries int
	// SenderID is the AWS identity that sent the message, when the
	// transport knows it (SQS's SenderId attribute: "AROA…:session-name"
	// for a role session). See [SenderSession].
	SenderID string
}

// Handler handles one message. Its error is the outcome the transport
// acts on (see [OutcomeOf]): nil acknowledges the message, [Defer] asks
// for it again later, [Reject] dead-letters it, any other error is a
// failure left to the transport's retry policy.
//
// Handlers read the tenant with tenant.FromContext, log with
// slog.InfoContext and meter with meter.Add, as HTTP handlers do.
type Handler interface {
	HandleMessage(ctx context.Context, m *Message) error
}

// HandlerFunc is a function that is a [Handler].
type HandlerFunc func(ctx context.Context, m *Message) error

// HandleMessage calls f(ctx, m).
func (f HandlerFunc) HandleMessage(ctx context.Context, m *Message) error { return f(ctx, m) }

// Middleware wraps a [Handler] in another, as func(http.Handler)
// http.Handler wraps an HTTP handler.
type Middleware func(Handler) Handler

var _ Handler = HandlerFunc(nil)
