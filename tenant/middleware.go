package tenant

import (
	"errors"
	"net/http"

	"github.com/tenancykit/tenancy/internal/request"
)

// Middleware returns middleware that resolves the tenant of each request
// with res and puts it in the request context. A request whose source
// names an invalid tenant ID or tier is refused with 400, one whose
// sources disagree with 403; one that names no tenant passes on without one
// (put [Require] in front of handlers that need a tenant). A tenant whose
// resolver leaves its Source at [SourceAssigned] is marked [SourceClaimed]:
// a resolver reads the request, and the request vouches for nothing.
//
// A tenant already in the context (put there by authz from a verified
// token) is never replaced by a less verified one: when res names another
// tenant the request is refused with 403, and when it names the same one
// the tenant in the context, with its roles and subject, stays. Middleware
// may sit on either side of authz.Middleware.
func Middleware(res Resolver) func(http.Handler) http.Handler {
	if res == nil {
		panic("tenant: Middleware needs a Resolver")
	}
	return func(next http.Handler) http.Handler {
		return request.NewHandler(request.Resolver, next, func(w http.ResponseWriter, r *http.Request, st *request.State, next http.Handler) {
			t, err := res.Resolve(r)
			if err == nil && t.IsZero() {
				err = ErrNoTenant
			}
			if err == nil && t.Source == SourceAssigned {
				t.Source = SourceClaimed
			}
			cur, tok := fromContext(r.Context())
			has := cur != nil
			if err == nil && has && cur.ID != t.ID {
				err = ErrMismatch
			}
			switch {
			case err == nil && has && (cur.Source.Verified() || !t.Source.Verified()):
				// The tenant in the context (from a verified token, say)
				// keeps its roles and subject.
				next.ServeHTTP(w, r)
			case err == nil:
				st.SetTenant(&t, tok)
				next.ServeHTTP(w, r)
			case errors.Is(err, ErrNoTenant):
				next.ServeHTTP(w, r)
			default:
				Refuse(w, r, "tenant", err)
			}
		})
	}
}

// Require is middleware that refuses, with 401 and a Bearer challenge, a
// request that has no tenant in its context, or only one the request
// claimed for itself ([SourceClaimed]). A handler that serves claimed
// tenants (public pages branded per subdomain) reads [FromContext] without
// Require.
func Require(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if t, ok := FromContext(r.Context()); !ok || !t.Source.Verified() {
			Refuse(w, r, "tenant", ErrNoTenant)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Refuse answers a request refused because of its tenant, in the one way
// every part of the module answers it, and records the [Rejection] with By
// set to by:
//
//   - [ErrNoTenant]: no tenant, or none verified enough: 401
//     tenant-required with a Bearer challenge (RFC 9110, section 15.5.2);
//   - [ErrMismatch]: two sources name different tenants: 403
//     tenant-mismatch;
//   - anything else ([ErrInvalidID], [ErrUnknownTier]): 400 invalid-tenant.
//
// The client never sees err's text.
func Refuse(w http.ResponseWriter, r *http.Request, by string, err error) {
	var reason string
	var p Problem
	switch {
	case errors.Is(err, ErrNoTenant):
		w.Header().Set("WWW-Authenticate", "Bearer")
		reason, p = "tenant_required", Problem{
			Type:   ProblemType("tenant-required"),
			Title:  "Tenant required",
			Status: http.StatusUnauthorized,
			Detail: "This resource is only available to a tenant.",
		}
	case errors.Is(err, ErrMismatch):
		reason, p = "tenant_mismatch", Problem{
			Type:   ProblemType("tenant-mismatch"),
			Title:  "Tenant mismatch",
			Status: http.StatusForbidden,
			Detail: "The request names more than one tenant.",
		}
	default:
		reason, p = "invalid_tenant", Problem{
			Type:   ProblemType("invalid-tenant"),
			Title:  "Invalid tenant",
			Status: http.StatusBadRequest,
			Detail: "The request names a tenant that is not a valid tenant ID.",
		}
	}
	Reject(r.Context(), Rejection{By: by, Reason: reason, Status: p.Status})
	WriteProblem(w, p)
}
