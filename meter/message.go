package meter

import (
	"time"

	"github.com/tenancykit/tenancy/internal/request"
	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/tenant"
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
		meters := [...]*meterInfo{
			rec.meter(MeterMessages), rec.meter(MeterMessagesDenied),
			rec.meter(MeterMessageBytes), rec.meter(MeterMessageDuration),
		}
		return request.NewMessageHandler[*message.Message](request.Meter, next, func(st *request.State, m *message.Message, next request.MessageNext[*message.Message]) error {
			start := rec.clock.requestStart(st)
			st.SetRecorder(rec)
			defer rec.meterMessage(&meters, st, m, start)
			return next.HandleMessage(st, m)
		})
	}
}

// meterMessage records the meters of one message once it was handled
// (meters: messages, denied, bytes, duration), with one reading of the
// clock for all, as meterRequest does: the end of the duration is also the
// instant that picks the window.
func (rec *Recorder) meterMessage(meters *[4]*meterInfo, st *request.State, m *message.Message, start time.Time) {
	t, ok := tenant.FromContext(st)
	took, end := rec.clock.requestEnd(start)
	p := rec.pointAt(t, ok, end)
	dims := [2]string{m.Source}
	if rej := st.Rejection(); rej.By != "" {
		dims[1] = rej.By + ":" + rej.Reason
		rec.addAt(p, meters[1], 1, dims[:2])
	} else {
		rec.addAt(p, meters[0], 1, dims[:1])
	}
	rec.addAt(p, meters[2], float64(len(m.Body)), dims[:1])
	rec.addAt(p, meters[3], float64(took)/float64(time.Millisecond), dims[:1])
}
