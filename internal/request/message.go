package request

import (
	"context"
	"fmt"
)

// A message is handled by the same layers as a request, in the same order
// (log, meter, trust, throttle, credentials), sharing one State per
// message: this file is the message side of Enter and NewHandler. A
// message's State has no request, writer or route; its Info.ID is the
// message ID.

// messageKey is the context key under which a message's State answers,
// so that a State found in a context is known to be a message's, never
// the HTTP request's in whose context a message may be handled.
type messageKey struct{}

// messageParent is the context a message's State starts from: the
// context the handler was called with, minus the module's keys. A message
// handled inside a request (an in-memory queue drained by a handler) must
// not run as the request's tenant, nor log its request ID, nor share its
// state.
type messageParent struct {
	context.Context
	st *State
}

func (p *messageParent) Value(key any) any {
	switch k := key.(type) {
	case messageKey:
		return p.st
	case contextKey:
		if k != RecorderKey {
			return nil
		}
	}
	return p.Context.Value(key)
}

// EnterMessage is how message layer l starts on a message: it returns the
// message's State from ctx, or a new one when l is the first layer to see
// the message (created is true). The State is the context l passes on. A
// layer that enters after a layer that belongs inside it is reported,
// once per pair.
func EnterMessage(l Layer, ctx context.Context) (st *State, created bool) {
	if st, ok := ctx.Value(messageKey{}).(*State); ok {
		entered := st.entered.Or(1 << l)
		if above := uint8(entered) &^ (1<<(l+1) - 1); above != 0 {
			inner := l + 1
			for above&(1<<inner) == 0 {
				inner++
			}
			reportOnce(messagePair{l, inner}, messageMisorder(l, inner))
		}
		return st, false
	}
	st = new(State)
	st.entered.Store(1 << l)
	st.Context = &messageParent{Context: ctx, st: st}
	return st, true
}

// messagePair keys the report of a misorder between two message layers.
type messagePair struct{ outer, inner Layer }

// MessageOrder is the order of the message layers as the reports spell
// it.
const MessageOrder = "logging.MessageLog → meter.MessageMiddleware → the trust mode (stamp.Trusted, message.BoundQueue, SenderSession or UnverifiedAttribute) → (throttle.Limiter).MessageMiddleware → awscreds.MessageMiddleware, outermost first"

var messageLayerNames = [...]string{
	Stack:       "tenancy.Stack.WrapMessages",
	AccessLog:   "logging.MessageLog",
	Meter:       "meter.MessageMiddleware",
	Authz:       "the message trust mode",
	Throttle:    "(throttle.Limiter).MessageMiddleware",
	Credentials: "awscreds.MessageMiddleware",
}

func messageLayerName(l Layer) string {
	if int(l) < len(messageLayerNames) && messageLayerNames[l] != "" {
		return messageLayerNames[l]
	}
	return l.String()
}

// messageConsequence says what goes wrong when outer runs inside inner.
func messageConsequence(outer, inner Layer) string {
	switch {
	case outer == AccessLog:
		return "messages " + messageLayerName(inner) + " refuses or defers get no log line"
	case outer == Meter:
		return "messages " + messageLayerName(inner) + " refuses or defers are not metered"
	case outer == Authz && inner == Throttle:
		return "the throttle sees no tenant and dead-letters every message"
	case outer == Authz && inner == Credentials:
		return "no message has a tenant when its credentials are fetched, so every one is dead-lettered"
	case outer == Throttle && inner == Credentials:
		return "credentials are fetched from STS for messages the throttle then defers"
	}
	return "the layers do not see each other's decisions"
}

func messageMisorder(outer, inner Layer) string {
	return fmt.Sprintf("%s: %s runs inside %s, which belongs inside it: %s. Wire them %s, or build them with tenancy's Stack.WrapMessages, which does",
		outer.pkg(), messageLayerName(outer), messageLayerName(inner), messageConsequence(outer, inner), MessageOrder)
}

// MessageNext is what a message layer wraps: message.Handler, which this
// package cannot name.
type MessageNext[M any] interface {
	HandleMessage(ctx context.Context, m M) error
}

// MessageHandler is a message layer's handler. It knows the handler inside
// it, so that a wrong order between two layers wired directly is found
// when they are built. Instantiated with *message.Message, it is a
// message.Handler.
type MessageHandler[M any] struct {
	layer Layer
	next  MessageNext[M]
	serve func(st *State, m M, next MessageNext[M]) error
}

// NewMessageHandler returns layer l's handler around next: for each
// message it enters the State and calls serve with it (the context to
// pass on), which calls next or refuses the message.
//
// It panics, naming the fix, when next holds a layer that belongs outside
// l. Layers of the same rank (two trust modes) may wrap each other.
func NewMessageHandler[M any](l Layer, next MessageNext[M], serve func(st *State, m M, next MessageNext[M]) error) *MessageHandler[M] {
	for n := next; ; {
		h, ok := n.(*MessageHandler[M])
		if !ok {
			break
		}
		if h.layer < l {
			panic(messageMisorder(h.layer, l))
		}
		n = h.next
	}
	return &MessageHandler[M]{layer: l, next: next, serve: serve}
}

// HandleMessage enters the message's State and serves it.
func (h *MessageHandler[M]) HandleMessage(ctx context.Context, m M) error {
	st, _ := EnterMessage(h.layer, ctx)
	return h.serve(st, m, h.next)
}
