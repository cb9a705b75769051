package message

import (
	"context"
	"errors"

	"github.com/tenancykit/tenancy/internal/refusals"
	"github.com/tenancykit/tenancy/internal/request"
	"github.com/tenancykit/tenancy/tenant"
)

// The names of the trust modes, as a refusal's By and the "tenancy.trust"
// attribute of tenancy.message.refused.
const (
	byBoundQueue = "bound_queue"
	bySender     = "sender_session"
	byUnverified = "unverified_attribute"
)

// verifyFunc establishes the tenant of m, or refuses it with a
// *RejectError. The tenant is never changed once returned: a trust mode
// of one tenant returns the same one for every message, which then costs
// no allocation.
type verifyFunc func(ctx context.Context, m *Message) (*tenant.Tenant, error)

// trust returns the middleware of a trust mode: the tenant verify
// establishes goes into the message's state for every layer and the
// handler; a message it refuses never reaches the handler, its refusal is
// recorded for the log and the meter outside, and counted.
func trust(refused *refusals.Counter, verify verifyFunc) Middleware {
	return func(next Handler) Handler {
		if next == nil {
			panic("message: a trust mode needs a handler")
		}
		return request.NewMessageHandler[*Message](request.Authz, next, func(st *request.State, m *Message, next request.MessageNext[*Message]) error {
			t, err := verify(st, m)
			if err != nil {
				var rej *RejectError
				if errors.As(err, &rej) {
					st.Reject(request.Rejection{By: rej.By, Reason: rej.Reason})
					refused.Add(st, rej.By, rej.Reason)
				}
				return err
			}
			st.SetTenant(t, "")
			return next.HandleMessage(st, m)
		})
	}
}

// reject returns the refusal of a trust mode.
func reject(by, reason string, err error) error {
	return &RejectError{By: by, Reason: reason, Err: err}
}
