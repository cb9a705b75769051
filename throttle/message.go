package throttle

import (
	"time"

	"github.com/tenancykit/tenancy/internal/request"
	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/tenant"
)

// concurrencyRetry is how long a message waits when its tenant has every
// in-flight slot taken: as long as a request refused for it is told to
// wait (Retry-After: 1).
const concurrencyRetry = time.Second

// MessageMiddleware returns message middleware that admits each message
// by its tenant's limits, as Middleware admits requests: one unit of the
// tenant's rate and quotas per message, and one of its in-flight slots
// (MaxConcurrent) while the handler runs. A message the limits refuse is
// deferred, never dropped nor dead-lettered: message.Defer with the
// time until the budget allows it (for a quota, until the period
// resets; with every slot taken, a second; with a store that cannot
// decide, the store's retry), so that the transport delivers it again
// then and a tenant over its budget waits while the others go on.
// Deferrals are recorded (tenant.Rejection, "throttle" and the reason)
// for the message log and the meter outside, and counted in
// tenancy.throttle.decisions like refused requests.
//
// A tenant's messages spend the same budget and in-flight slots as its
// requests through the same Limiter: for budgets of their own, give the
// consumer a Limiter of its own, with WithName.
//
// A message without a tenant the throttle may charge (none, or a claimed
// one without WithClaimedTenants) is rejected, "throttle" and
// "tenant_required": the trust mode is missing or misplaced, and no
// delivery can fix that.
//
// It belongs inside the trust mode (tenancy's Stack.WrapMessages wires
// that order); wrapped around a layer that belongs outside it, it panics
// naming the fix.
func (l *Limiter) MessageMiddleware() message.Middleware {
	return func(next message.Handler) message.Handler {
		if next == nil {
			panic("throttle: MessageMiddleware needs a handler")
		}
		return request.NewMessageHandler[*message.Message](request.Throttle, next, func(st *request.State, m *message.Message, next request.MessageNext[*message.Message]) error {
			t, ok := tenant.FromContext(st)
			if !ok || !(l.claimed || t.Source.Verified()) {
				if !st.Entered(request.Authz) {
					request.ReportOnce(noTrustReport{}, "throttle: a message reached (throttle.Limiter).MessageMiddleware before any trust mode had run for it: if the throttle is outside the trust mode, every message is dead-lettered. Wire them "+request.MessageOrder+", or build them with tenancy's Stack.WrapMessages")
				}
				l.count(st, "", false, reasonNoTenant)
				st.Reject(request.Rejection{By: "throttle", Reason: "tenant_required"})
				return &message.RejectError{By: "throttle", Reason: "tenant_required", Err: tenant.ErrNoTenant}
			}
			// One time for the whole decision: the message's, unless the
			// clock was injected; the limits and the key looked up once.
			now := st.Start()
			if !l.systemClock || now.IsZero() {
				now = l.now()
			}
			tier := t.Tier.String()
			lim := l.LimitsFor(t)
			key := budgetKey(l.name, tenantKey(t.ID), nil, nil, nil)
			if lim.MaxConcurrent > 0 {
				e, _, ok := l.local.acquire(key, lim.MaxConcurrent, now)
				if !ok {
					l.count(st, tier, false, ReasonConcurrency)
					return deferMessage(st, ReasonConcurrency, concurrencyRetry)
				}
				defer e.release()
			}
			d, err := l.take(st, key, &lim, 1, tier, now)
			switch {
			case d.Allowed:
			case err != nil || d.Reason == ReasonStore:
				return deferMessage(st, ReasonStore, max(d.RetryAfter, time.Second))
			default:
				return deferMessage(st, d.Reason, d.RetryAfter)
			}
			if l.inFlight.Enabled(st) {
				l.flight(st, tier, "handler", 1)
				defer l.flight(st, tier, "handler", -1)
			}
			return next.HandleMessage(st, m)
		})
	}
}

// noTrustReport keys the report of a throttle that seems to sit outside
// the message trust mode.
type noTrustReport struct{}

// deferMessage records a deferral for the layers outside and returns it.
func deferMessage(st *request.State, reason Reason, after time.Duration) error {
	st.Reject(request.Rejection{By: "throttle", Reason: string(reason)})
	return message.Defer(after)
}
