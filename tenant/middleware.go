package tenant

import (
	"errors"
	"net/http"
)

// Middleware returns middleware that resolves the tenant of each request
// with res and puts it in the request context and [Record]. A request whose
// source names an invalid tenant ID or tier is refused with 400, one whose
// sources disagree with 403; one that names no tenant passes on without one
// (put [Require] in front of handlers that need a tenant). A tenant whose
// resolver leaves its Source at [SourceAssigned] is marked [SourceClaimed]:
// a resolver reads the request, and the request vouches for nothing.
//
// A tenant already in the context (put there by authz from a verified
// token) is never replaced: when res names another tenant the request is
// refused with 403, and when it names the same one the verified tenant, with
// its roles and subject, stays.
func Middleware(res Resolver) func(http.Handler) http.Handler {
	if res == nil {
		panic("tenant: Middleware needs a Resolver")
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			t, err := res.Resolve(r)
			if err == nil && t.IsZero() {
				err = ErrNoTenant
			}
			cur, verified := FromContext(r.Context())
			if err == nil && verified && cur.ID != t.ID {
				err = ErrMismatch
			}
			switch {
			case err == nil && verified:
				// The tenant in the context came from a verified token:
				// it keeps its roles and subject.
				RecordFromContext(r.Context()).SetTenant(cur)
				next.ServeHTTP(w, r)
			case err == nil:
				if t.Source == SourceAssigned {
					t.Source = SourceClaimed
				}
				ctx := NewContext(r.Context(), t)
				rec := RecordFromContext(ctx)
				rec.SetTenant(t)
				r2 := r.WithContext(ctx)
				next.ServeHTTP(w, r2)
				rec.SetRoute(r2.Pattern)
			case errors.Is(err, ErrNoTenant):
				next.ServeHTTP(w, r)
			case errors.Is(err, ErrMismatch):
				reject(w, r, "tenant_mismatch", Problem{
					Type:   ProblemType("tenant-mismatch"),
					Title:  "Tenant mismatch",
					Status: http.StatusForbidden,
					Detail: "The request names more than one tenant.",
				})
			default:
				reject(w, r, "invalid_tenant", Problem{
					Type:   ProblemType("invalid-tenant"),
					Title:  "Invalid tenant",
					Status: http.StatusBadRequest,
					Detail: "The request names a tenant that is not a valid tenant ID.",
				})
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
			// RFC 9110 §15.5.2: a 401 names how to authenticate.
			w.Header().Set("WWW-Authenticate", "Bearer")
			reject(w, r, "tenant_required", Problem{
				Type:   ProblemType("tenant-required"),
				Title:  "Tenant required",
				Status: http.StatusUnauthorized,
				Detail: "This resource is only available to a tenant.",
			})
			return
		}
		next.ServeHTTP(w, r)
	})
}

func reject(w http.ResponseWriter, r *http.Request, reason string, p Problem) {
	RecordFromContext(r.Context()).Reject(Rejection{By: "tenant", Reason: reason, Status: p.Status})
	WriteProblem(w, p)
}
