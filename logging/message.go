package logging

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/tenancykit/tenancy/internal/propagate"
	"github.com/tenancykit/tenancy/internal/request"
	"github.com/tenancykit/tenancy/message"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Keys the message log adds to the schema, with KeyOutcome. A message's
// lines carry its ID as request_id.
const (
	KeyMessageSource = "message_source"
	KeyDeliveries    = "deliveries"
	KeyRetryAfterMS  = "retry_after_ms"
	KeyError         = "error"
	// KeyClaimedTenant is the tenant a refused message claimed, unverified,
	// in its audit record (see [MessageLog]).
	KeyClaimedTenant = "claimed_tenant_id"
)

// MessageLog returns message middleware that writes one line per message
// to logger when its handler returns, panics included: message_source,
// outcome (acked, deferred, rejected, failed), duration_ms, deliveries,
// and, as an access line does, the tenant and who refused the message and
// why (rejected_by, reject_reason, for a layer's refusal or deferral and
// for the handler's message.Reject); retry_after_ms for a deferral, error
// for a failure.
//
// Every line the message logs, here and in the handler, carries the
// message ID as request_id and the trace of the producer: the trace ID of
// the message's traceparent attribute (which stamp.Signer.Stamp writes)
// with a span ID of the message's own, unless the context already holds a
// span. The message's baggage attribute becomes the context's baggage
// when the context has none.
//
// A message a layer of the stack refuses (a trust mode's refusal; a
// throttle or credentials layer that finds no tenant) is also an audit
// event: action "consume", resource the message's source, outcome denied,
// with rejected_by, reject_reason, deliveries when known, the message ID
// as request_id and its trace, and claimed_tenant_id when the message
// claimed a tenant the trust mode could read (never the stamp itself).
// The handler's own message.Reject, deferrals and failures are not audit
// events.
//
// Of the AccessOptions, WithClientErrorLevel sets the level of rejected
// messages (default warn; failures are errors, the rest info),
// WithoutTraceContext leaves a message without a span without trace IDs,
// and WithAuditor sets where the audit events go (default: the auditor set
// with SetDefaultAuditor, else the message log's own logger); the others
// concern requests.
//
// It belongs outermost, so that it sees every refusal (tenancy's
// Stack.WrapMessages wires that order); wrapped around a layer that
// belongs outside it, it panics naming the fix.
func MessageLog(logger *slog.Logger, opts ...AccessOption) message.Middleware {
	if logger == nil {
		panic("logging: MessageLog needs a logger")
	}
	c := accessConfig{clientLevel: slog.LevelWarn}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	// With no auditor named or set as default, audit events go where the
	// message lines go, not to slog.Default.
	c.fallback = NewAuditor(logger.Handler())
	// A logger on a Handler without groups takes the line straight from
	// here, as the access log does (see AccessLog).
	fast, ours := logger.Handler().(*Handler)
	if fast != nil && (len(fast.groups) > 0 || fast.opts.redactor.hasSensitiveKey(messageKeys[:])) {
		fast = nil
	}
	lc := messageLogger{logger: logger, ours: ours, fast: fast}
	return func(next message.Handler) message.Handler {
		if next == nil {
			panic("logging: MessageLog needs a handler")
		}
		return request.NewMessageHandler[*message.Message](request.AccessLog, next, func(st *request.State, m *message.Message, next request.MessageNext[*message.Message]) (err error) {
			// The message's start, read once by the first layer for all of
			// them; a test's clock reads its own.
			start := st.Start()
			if c.now != nil {
				start = c.now()
			}
			st.Info.ID = m.ID
			if st.Info.ID == "" {
				st.Info.ID = newRequestID()
			}
			if st.First(request.AccessLog) && m.Attributes["baggage"] != "" &&
				!request.DeriveMessageValue(st, baggageKey, deriveBaggage, m.Attributes) {
				st.Context = propagate.ExtractBaggage(st.Context, propagation.MapCarrier(m.Attributes))
			}
			if !c.noTrace && !trace.SpanContextFromContext(st).IsValid() {
				setTraceIDs(&st.Info, m.Attributes["traceparent"])
			}
			defer func() {
				if p := recover(); p != nil {
					c.logMessage(&lc, st, m, start, errPanic)
					panic(p)
				}
				c.logMessage(&lc, st, m, start, err)
				c.auditMessage(st, m, err)
			}()
			return next.HandleMessage(st, m)
		})
	}
}

// baggageKey is the context key OpenTelemetry keeps baggage under, found
// by asking a context that records the key it is asked for: a message's
// baggage attribute is parsed only when something looks the key up (most
// handlers never do), through request.DeriveMessageValue. Nil if
// OpenTelemetry looks baggage up otherwise: the attribute is then parsed
// for every message.
var baggageKey = func() any {
	p := keyProbe{Context: context.Background()}
	baggage.FromContext(&p)
	return p.key
}()

// keyProbe is a context that records the last key it was asked for.
type keyProbe struct {
	context.Context
	key any
}

func (p *keyProbe) Value(key any) any {
	p.key = key
	return nil
}

// deriveBaggage adds the baggage of a message's attributes (a
// map[string]string) to parent when parent has none.
func deriveBaggage(parent context.Context, attrs any) context.Context {
	a, _ := attrs.(map[string]string)
	return propagate.ExtractBaggage(parent, propagation.MapCarrier(a))
}

// rejectionOf returns who rejected a message and why when err is a
// *message.RejectError (the handler's message.Reject), else "" and "".
// Apart from logMessage, so that a message acknowledged does not pay for
// the variable errors.As needs.
func rejectionOf(err error) (by, reason string) {
	var rej *message.RejectError
	if errors.As(err, &rej) {
		return rej.By, rej.Reason
	}
	return "", ""
}

// errPanic is the failure a panicking handler is logged with.
var errPanic = errors.New("logging: the handler panicked")

// messageKeys are the keys of a message line's own fields.
var messageKeys = [...]string{KeyMessageSource, KeyOutcome, KeyDurationMS, KeyDeliveries, KeyRejectedBy, KeyRejectReason, KeyRetryAfterMS, KeyError}

// messageLogger is where MessageLog writes its lines.
type messageLogger struct {
	logger *slog.Logger
	// ours: the logger's handler is a *Handler, which adds the
	// context's fields itself.
	ours bool
	// fast is that Handler when the line may skip it (no groups, none of
	// messageKeys redacted): the line then gets the context's fields here
	// and goes to the handler the Handler wraps, as an access line does.
	fast *Handler
}

func (c *accessConfig) logMessage(lc *messageLogger, st *request.State, m *message.Message, start time.Time, err error) {
	outcome, after, _ := message.OutcomeOf(err)
	level := slog.LevelInfo
	switch outcome {
	case message.Rejected:
		level = c.clientLevel
	case message.Failed:
		level = slog.LevelError
	}
	if !lc.logger.Enabled(st, level) {
		return
	}
	var end time.Time
	if c.now != nil {
		end = c.now()
	} else {
		end = start.Add(time.Since(start)) // one monotonic reading
	}
	var buf [24]slog.Attr
	attrs := append(buf[:0],
		slog.String(KeyMessageSource, m.Source),
		slog.String(KeyOutcome, outcome.String()),
		slog.Float64(KeyDurationMS, float64(end.Sub(start).Microseconds())/1000),
	)
	if m.Deliveries > 0 {
		attrs = append(attrs, slog.Int(KeyDeliveries, m.Deliveries))
	}
	by, reason := st.Rejection().By, st.Rejection().Reason
	if by == "" && err != nil {
		by, reason = rejectionOf(err)
	}
	if by != "" {
		attrs = append(attrs, slog.String(KeyRejectedBy, by), slog.String(KeyRejectReason, reason))
	}
	switch outcome {
	case message.Deferred:
		attrs = append(attrs, slog.Int64(KeyRetryAfterMS, after.Milliseconds()))
	case message.Failed:
		attrs = append(attrs, slog.String(KeyError, err.Error()))
	}
	// What Handler.Handle would add, in its order, to a line with nothing
	// to redact: a failure's error text may hold anything, so it takes the
	// Handler's path; the other values are checked here.
	if h := lc.fast; h != nil && outcome != message.Failed && !looksLikeJWT(m.Source) && !looksLikeJWT(reason) {
		h.handlePlain(st, end, level, "message", attrs)
		return
	}
	if !lc.ours {
		attrs = appendContext(attrs, st, nil)
	}
	lc.logger.LogAttrs(st, level, "message", attrs...)
}

// auditMessage writes the audit event of a message a layer of the stack
// refused: rejected, with the layer's refusal in the state (the handler's
// own message.Reject leaves none there).
func (c *accessConfig) auditMessage(st *request.State, m *message.Message, err error) {
	rej := st.Rejection()
	if rej.By == "" {
		return
	}
	if o, _, _ := message.OutcomeOf(err); o != message.Rejected {
		return
	}
	a := c.auditorFor()
	if a == nil {
		return
	}
	var buf [4]slog.Attr
	attrs := append(buf[:0], slog.String(KeyRejectedBy, rej.By), slog.String(KeyRejectReason, rej.Reason))
	if m.Deliveries > 0 {
		attrs = append(attrs, slog.Int(KeyDeliveries, m.Deliveries))
	}
	var re *message.RejectError
	if errors.As(err, &re) && re.Tenant != "" {
		attrs = append(attrs, slog.String(KeyClaimedTenant, re.Tenant))
	}
	a.Audit(st, "consume", m.Source, OutcomeDenied, attrs...)
}
