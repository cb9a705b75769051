package awscreds

import (
	"errors"
	"time"

	"github.com/tenancykit/tenancy/internal/request"
	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/tenant"
)

// credentialsRetry is how long a message waits when its tenant's
// credentials cannot be had: as long as a request is told to (Retry-After:
// 5).
const credentialsRetry = 5 * time.Second

// MessageMiddleware returns message middleware that makes sure the tenant
// of each message has AWS credentials before the handler runs, as
// Middleware does for requests. A message without a tenant, or with one
// it only claimed (unless the Provider has WithClaimedTenants), is
// rejected, "awscreds" and "tenant_required"; a tenant whose credentials
// cannot be had now (STS down) has its message deferred by 5 seconds,
// never dead-lettered, while other tenants carry on. Both are recorded
// for the message log and the meter outside.
//
// It belongs innermost, inside the throttle (tenancy's Stack.WrapMessages
// wires that order, with tenancy.WithMessageCredentials).
func MessageMiddleware(p *Provider) message.Middleware {
	if p == nil {
		panic("awscreds: MessageMiddleware needs a *Provider")
	}
	return func(next message.Handler) message.Handler {
		if next == nil {
			panic("awscreds: MessageMiddleware needs a handler")
		}
		return request.NewMessageHandler[*message.Message](request.Credentials, next, func(st *request.State, m *message.Message, next request.MessageNext[*message.Message]) error {
			_, err := p.Retrieve(st)
			switch {
			case err == nil:
				return next.HandleMessage(st, m)
			case errors.Is(err, tenant.ErrNoTenant):
				st.Reject(request.Rejection{By: "awscreds", Reason: "tenant_required"})
				return &message.RejectError{By: "awscreds", Reason: "tenant_required", Err: err}
			default:
				st.Reject(request.Rejection{By: "awscreds", Reason: "credentials"})
				return message.Defer(credentialsRetry)
			}
		})
	}
}
