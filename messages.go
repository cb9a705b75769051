package tenancy

import (
	"errors"
	"slices"

	"github.com/tenancykit/tenancy/internal/request"
	"github.com/tenancykit/tenancy/logging"
	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/meter"
	"github.com/tenancykit/tenancy/throttle"
)

// messageConfig is what only messages need: how a message's tenant is
// trusted, and its credentials.
type messageConfig struct {
	trust       []message.Middleware
	fair        *throttle.FairShare
	credentials message.Middleware
}

// WithMessageTrust says how [Stack.WrapMessages] establishes the tenant
// of a message: stamp.Trusted (package message/stamp),
// message.BoundQueue, message.SenderSession or
// message.UnverifiedAttribute. Several are applied outermost first, each
// inside the one before it (stamp.Trusted(v) then
// message.SenderSession(roleID, "") requires a stamp and a sender of the
// stamp's tenant). Default none: WrapMessages needs one.
func WithMessageTrust(modes ...message.Middleware) Option {
	return func(c *config) {
		if len(modes) == 0 || slices.ContainsFunc(modes, func(m message.Middleware) bool { return m == nil }) {
			c.errs = append(c.errs, errors.New("tenancy: WithMessageTrust: no trust mode, or a nil one"))
		}
		c.messages.trust = modes
	}
}

// WithMessageFairShare shares the consumer's workers among tenants with
// f (see throttle.FairShare): a tenant with a backlog on a shared queue
// waits for its turn among the tenants with messages waiting, and the
// consumer reads past its backlog instead of behind it. It sits inside the
// trust mode, which says whose message it is, and outside the throttle, so
// that a message waiting for a worker holds none of its tenant's
// in-flight slots. Default none: messages run as the transport hands them
// over.
func WithMessageFairShare(f *throttle.FairShare) Option {
	return func(c *config) {
		if f == nil {
			c.errs = append(c.errs, errors.New("tenancy: WithMessageFairShare: nil FairShare; build one with throttle.NewFairShare"))
		}
		c.messages.fair = f
	}
}

// WithMessageCredentials runs mw innermost around message handlers:
// awscreds.MessageMiddleware(provider), so that a message's tenant has its
// AWS credentials before the handler runs (see [WithCredentials] for
// requests). Default none.
func WithMessageCredentials(mw message.Middleware) Option {
	return func(c *config) {
		if mw == nil {
			c.errs = append(c.errs, errors.New("tenancy: WithMessageCredentials: nil middleware"))
		}
		c.messages.credentials = mw
	}
}

// WrapMessages returns h (a queue or stream consumer's handler) inside the
// stack's parts, in the order that works for messages as for requests:
//
//	message log → meter → trust mode → fair share → throttle → credentials → h
//
// The trust mode ([WithMessageTrust]) establishes the tenant, or refuses
// the message, which then never runs as any tenant and is dead-lettered
// with the reason; the log and the meter sit outside it, so that they see
// every refusal, and read the tenant it established from the message's
// state, as the access log of a request does. The fair share
// ([WithMessageFairShare]) gives the workers to the tenants with messages
// waiting in turn, deferring a backlog's excess. The throttle defers a
// message of a tenant over its budget, and credentials are fetched only
// for messages the throttle let through. The access log's logger
// ([WithAccessLog]) writes the message lines and the audit events of
// refused messages (logging.MessageLog, with the access log's options), the
// meter ([WithMeter]) records [meter.MessageMeters], the limiter
// ([WithThrottle]) admits messages as requests, from the same budgets (a
// consumer that needs budgets of its own gets a Stack of its own, with a
// Limiter named apart); WithAuthz, WithResolver and WithCredentials
// concern requests only.
//
// One state is allocated per message and shared by every part. h reads
// the tenant with tenant.FromContext, logs with slog.InfoContext and
// meters with meter.Add, as an HTTP handler does.
//
// It panics when the Stack has no trust mode, naming the option to add.
func (s *Stack) WrapMessages(h message.Handler) message.Handler {
	if h == nil {
		panic("tenancy: Stack.WrapMessages needs a handler")
	}
	c := &s.c
	if len(c.messages.trust) == 0 {
		panic("tenancy: Stack.WrapMessages needs a trust mode, to know whose message it is: add tenancy.WithMessageTrust with stamp.Trusted (signed stamps, package message/stamp), message.BoundQueue (a queue of one tenant), message.SenderSession (the AWS sender) or message.UnverifiedAttribute (internal pools)")
	}
	if c.messages.credentials != nil {
		h = c.messages.credentials(h)
	}
	if c.limiter != nil {
		h = c.limiter.MessageMiddleware()(h)
	}
	if c.messages.fair != nil {
		h = c.messages.fair.MessageMiddleware()(h)
	}
	for _, mode := range slices.Backward(c.messages.trust) {
		h = mode(h)
	}
	if c.recorder != nil {
		h = meter.MessageMiddleware(c.recorder)(h)
	}
	if c.logger != nil {
		h = logging.MessageLog(c.logger, c.accessOpts...)(h)
	}
	return request.NewMessageHandler[*message.Message](request.Stack, h, func(st *request.State, m *message.Message, next request.MessageNext[*message.Message]) error {
		return next.HandleMessage(st, m)
	})
}
