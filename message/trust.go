package message

import (
	"context"
	"errors"
	"sync"

	"github.com/tenancykit/tenancy/internal/request"
	"github.com/tenancykit/tenancy/tenant"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// The names of the trust modes, as a refusal's By and the "trust"
// attribute of tenancy.message.refused.
const (
	byStamp       = "stamp"
	byBoundQueue  = "bound_queue"
	bySender      = "sender_session"
	byUnverified  = "unverified_attribute"
	meterScope    = "github.com/tenancykit/tenancy/message"
	refusedMetric = "tenancy.message.refused"
)

// verifyFunc establishes the tenant of m, or refuses it with a
// *RejectError, or defers it (a deferError naming why).
type verifyFunc func(ctx context.Context, m *Message) (tenant.Tenant, error)

// trust returns the middleware of a trust mode: the tenant verify
// establishes goes into the message's state for every layer and the
// handler; a message it refuses never reaches the handler, its refusal is
// recorded for the log and the meter outside, and counted.
func trust(refused *refusals, verify verifyFunc) Middleware {
	return func(next Handler) Handler {
		if next == nil {
			panic("message: a trust mode needs a handler")
		}
		return request.NewMessageHandler[*Message](request.Authz, next, func(st *request.State, m *Message, next request.MessageNext[*Message]) error {
			t, err := verify(st, m)
			if err != nil {
				var rej *RejectError
				var d *deferError
				switch {
				case errors.As(err, &rej):
					st.Reject(request.Rejection{By: rej.By, Reason: rej.Reason})
					refused.add(st, rej.By, rej.Reason)
				case errors.As(err, &d) && d.by != "":
					st.Reject(request.Rejection{By: d.by, Reason: d.reason})
				}
				return err
			}
			st.SetTenant(&t, "")
			return next.HandleMessage(st, m)
		})
	}
}

// refusals counts refused messages in tenancy.message.refused, by trust
// mode and reason.
type refusals struct {
	counter metric.Int64Counter
	sets    sync.Map // [2]string{by, reason} → metric.AddOption, made once
}

func newRefusals(mp metric.MeterProvider) *refusals {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	c, err := mp.Meter(meterScope).Int64Counter(refusedMetric,
		metric.WithDescription("Messages a trust mode refused (dead-lettered, never run as any tenant), by trust mode and reason."),
		metric.WithUnit("{message}"))
	if err != nil {
		c = noop.Int64Counter{}
	}
	return &refusals{counter: c}
}

func (r *refusals) add(ctx context.Context, by, reason string) {
	if r == nil || !r.counter.Enabled(ctx) {
		return
	}
	k := [2]string{by, reason}
	opt, ok := r.sets.Load(k)
	if !ok {
		opt, _ = r.sets.LoadOrStore(k, metric.WithAttributeSet(attribute.NewSet(
			attribute.String("tenancy.trust", by), attribute.String("reason", reason))))
	}
	r.counter.Add(ctx, 1, opt.(metric.AddOption))
}

// reject returns the refusal of a trust mode.
func reject(by, reason string, err error) error {
	return &RejectError{By: by, Reason: reason, Err: err}
}
