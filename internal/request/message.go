package request

import (
	"context"
	"fmt"
	"sync"
	"time"
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
//
// It may answer one more key, derived from the message when it is first
// asked for (see [DeriveMessageValue]): the message's baggage, which most
// messages' handlers never read, is then parsed only when one does.
type messageParent struct {
	context.Context
	st *State

	derivedKey any // nil: none
	derive     func(parent context.Context, arg any) context.Context
	deriveArg  any
	deriveOnce sync.Once
	derived    context.Context
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
	if p.derivedKey != nil && key == p.derivedKey {
		p.deriveOnce.Do(func() { p.derived = p.derive(p.Context, p.deriveArg) })
		return p.derived.Value(key)
	}
	return p.Context.Value(key)
}

// messageState is a message's State and the context it starts from, in
// one allocation.
type messageState struct {
	st     State
	parent messageParent
}

// DeriveMessageValue has the context of the message whose State is st
// answer key (a comparable context key) with the value that
// derive(parent, arg).Value(key) returns, where parent is the context the
// message's handler was called with: derive runs once, on the first
// lookup of key, and never if no one asks. It reports false, and changes
// nothing, when st is not a message's State whose Context is still the
// one EnterMessage made, or when a derived key is set already: the caller
// then derives the context itself.
//
// It is for the first layer only, before any other layer sees the State
// (see [State.First]). derive must return a context that answers key as
// parent would with the value added; arg is passed as given (a map, a
// pointer: no allocation).
func DeriveMessageValue(st *State, key any, derive func(parent context.Context, arg any) context.Context, arg any) bool {
	p, ok := st.Context.(*messageParent)
	if !ok || p.st != st || p.derivedKey != nil || key == nil || derive == nil {
		return false
	}
	p.derivedKey, p.derive, p.deriveArg = key, derive, arg
	return true
}

// EnterMessage is how message layer l starts on a message: it returns the
// message's State from ctx, or a new one when l is the first layer to see
// the message (created is true), whose Start is now. The State is the context l passes on. A
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
	ms := new(messageState)
	st = &ms.st
	st.start = time.Now() // read once for every layer, as a request's
	st.entered.Store(1 << l)
	ms.parent.Context, ms.parent.st = ctx, st
	st.Context = &ms.parent
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
