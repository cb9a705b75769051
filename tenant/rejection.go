package tenant

import (
	"context"

	"github.com/tenancykit/tenancy/internal/request"
)

// Rejection says which part of the stack refused a request and why. The
// access log and the meter, outside, read it after the request: a 401 or
// 429 line names who refused it, and refusals are metered apart.
type Rejection struct {
	// By names the part: "authz", "throttle", "tenant", "awscreds", or the
	// name a service gives its own middleware.
	By string
	// Reason is a short machine-readable cause, such as "expired", "rate"
	// or "tenant_required".
	Reason string
	// Status is the HTTP status the client was sent.
	Status int
	// Detail is the precise cause for the server's logs, never for the
	// client: which claim, which check ("claim \"custom:tenantTier\"
	// names an unknown tier"). It never holds a token, a key or a claim's
	// value. Empty when Reason says it all.
	Detail string
}

// IsZero reports whether r records no rejection.
func (r Rejection) IsZero() bool { return r.By == "" }

// Reject records that the request ctx belongs to was refused, for the
// access log and the meter outside: a service's own middleware calls it
// when it refuses a request, as every part of this module does. The first
// rejection of a request is kept: it is the one the client saw. Outside a
// request seen by the module's middleware it does nothing.
func Reject(ctx context.Context, rej Rejection) {
	if st := request.FromContext(ctx); st != nil {
		st.Reject(request.Rejection(rej))
	}
}
