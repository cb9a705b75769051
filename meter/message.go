package meter

import (
	"time"

	"github.com/tenancykit/tenancy/internal/request"
	"github.com/tenancykit/tenancy/message"
)

// The meters of [MessageMiddleware]. Declare them with [MessageMeters].
const (
	MeterMessages        = "messages"
	MeterMessagesDenied  = "messages.denied"
	MeterMessageBytes    = "messages.bytes"
	MeterMessageDuration = "messages.duration"
)

// MessageMeters returns the meters [MessageMiddleware] records, for
// [WithMeters]: every one has the dimension "source" (the queue or
// stream); denied messages also "reason" (who refused or deferred them and
// why, such as "stamp:expired" or "throttle:rate"). Each call returns a new
// slice.
func MessageMeters() []Meter {
	return []Meter{
		{Name: MeterMessages, Unit: UnitCount, Dimensions: []string{"source"}},
		{Name: MeterMessagesDenied, Unit: UnitCount, Dimensions: []string{"source", "reason"}},
		{Name: MeterMessageBytes, Unit: UnitBytes, Dimensions: []string{"source"}},
		{Name: MeterMessageDuration, Unit: UnitMilliseconds, Dimensions: []string{"source"}},
	}
}

// MessageMiddleware returns message middleware that puts rec in the
// message's context, for [Add] in handlers, and meters every message for
// its tenant: one messages, the bytes of its body and the time its
// handling took; a message a layer inside refused or deferred (a stamp
// refused, a tenant over its budget) is metered as messages.denied
// instead of messages, with the reason, and a refused message, which has
// no tenant, as unattributed usage. What the handler returns (its own
// Defer or Reject) does not change how the message is metered.
//
// It belongs inside logging.MessageLog and outside the trust mode, so
// that every refusal is counted (tenancy's Stack.WrapMessages wires that
// order); wrapped around a layer that belongs outside it, it panics
// naming the fix.
func MessageMiddleware(rec *Recorder) message.Middleware {
	if rec == nil {
		panic("meter: MessageMiddleware needs a *Recorder")
	}
	return func(next message.Handler) message.Handler {
		if next == nil {
			panic("meter: MessageMiddleware needs a handler")
		}
		return request.NewMessageHandler[*message.Message](request.Meter, next, func(st *request.State, m *message.Message, next request.MessageNext[*message.Message]) error {
			start := rec.clock.now()
			st.SetRecorder(rec)
			defer rec.meterMessage(st, m, start)
			return next.HandleMessage(st, m)
		})
	}
}

// meterMessage records the meters of one message once it was handled.
func (rec *Recorder) meterMessage(st *request.State, m *message.Message, start time.Time) {
	ms := float64(rec.clock.now().Sub(start)) / float64(time.Millisecond)
	if rej := st.Rejection(); rej.By != "" {
		rec.Add(st, MeterMessagesDenied, 1, m.Source, rej.By+":"+rej.Reason)
	} else {
		rec.Add(st, MeterMessages, 1, m.Source)
	}
	rec.Add(st, MeterMessageBytes, float64(len(m.Body)), m.Source)
	rec.Add(st, MeterMessageDuration, ms, m.Source)
}
