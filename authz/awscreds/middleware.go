package awscreds

import (
	"errors"
	"net/http"

	"github.com/tenancykit/tenancy/internal/request"
	"github.com/tenancykit/tenancy/tenant"
)

// Middleware returns middleware that makes sure the tenant of each request
// has AWS credentials before the handler runs; cached ones cost a map
// lookup. It belongs inside authz and the throttle (tenancy.New wires
// that order).
//
// A request without a tenant, or with one it only claimed for itself
// (unless the Provider has [WithClaimedTenants]), is answered 401 with a
// Bearer challenge and the tenant-required problem, as [tenant.Require]
// answers it: no retry can help. A tenant whose credentials cannot be had
// (STS down, a tenant ID STS refuses as a tag) gets a 503 problem with
// Retry-After while other tenants carry on. onError, when not nil, hears of
// each of those failures to get credentials (to log it); the client never
// sees the error's text.
func Middleware(p *Provider, onError func(r *http.Request, err error)) func(http.Handler) http.Handler {
	if p == nil {
		panic("awscreds: Middleware needs a *Provider")
	}
	return func(next http.Handler) http.Handler {
		return request.NewHandler(request.Credentials, next, func(w http.ResponseWriter, r *http.Request, _ *request.State, next http.Handler) {
			_, err := p.Retrieve(r.Context())
			switch {
			case err == nil:
				next.ServeHTTP(w, r)
			case errors.Is(err, tenant.ErrNoTenant):
				tenant.Refuse(w, r, "awscreds", tenant.ErrNoTenant)
			default:
				if onError != nil {
					onError(r, err)
				}
				tenant.Reject(r.Context(), tenant.Rejection{By: "awscreds", Reason: "credentials", Status: http.StatusServiceUnavailable})
				tenant.WriteProblem(w, tenant.Problem{
					Type:       tenant.ProblemType("tenant-unavailable"),
					Title:      "Service unavailable",
					Status:     http.StatusServiceUnavailable,
					Detail:     "Your data cannot be reached right now; retry shortly.",
					RetryAfter: 5,
				})
			}
		})
	}
}
