package awscreds

import (
	"errors"
	"net/http"

	"github.com/tenancykit/tenancy/internal/request"
	"github.com/tenancykit/tenancy/tenant"
)

// MiddlewareOption configures [Middleware]. A nil MiddlewareOption is
// ignored.
type MiddlewareOption func(*middlewareConfig)

type middlewareConfig struct {
	onError func(r *http.Request, err error)
}

// WithOnError sets a function that hears of each request whose tenant's
// credentials could not be had (STS down, a tenant ID STS refuses as a
// tag), before the middleware answers it with 503: to log the error, which
// the client never sees. It runs on the request's goroutine. Default none;
// nil means none. A request without a tenant is not such a failure.
func WithOnError(f func(r *http.Request, err error)) MiddlewareOption {
	return func(c *middlewareConfig) { c.onError = f }
}

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
// Retry-After while other tenants carry on; [WithOnError] hears of each
// such failure.
func Middleware(p *Provider, opts ...MiddlewareOption) func(http.Handler) http.Handler {
	if p == nil {
		panic("awscreds: Middleware needs a *Provider")
	}
	var c middlewareConfig
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
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
				if c.onError != nil {
					c.onError(r, err)
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
