package authz

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/tenancykit/tenancy/tenant"
)

// ErrForbidden is wrapped by the error of a check that an authenticated
// tenant failed. The middleware answers it with 403.
var ErrForbidden = errors.New("authz: forbidden")

// ForbiddenError says which requirement a tenant did not meet.
type ForbiddenError struct {
	// Reason is the rejection's reason in the request record: "role",
	// "scope", "tier" or "feature" from the Require* middleware, or what
	// the program that made the error chose. [WriteError] says "forbidden"
	// for an error that wraps ErrForbidden without a ForbiddenError.
	Reason string
	// Detail is the problem's detail: safe to show the client.
	Detail string
}

func (e *ForbiddenError) Error() string { return "authz: forbidden: " + e.Detail }

// Unwrap returns [ErrForbidden].
func (e *ForbiddenError) Unwrap() error { return ErrForbidden }

// verifiedTenant returns the tenant in ctx unless there is none or the
// request only claimed it ([tenant.SourceClaimed]): a tenant named by a
// subdomain has no roles, scopes or tier anyone vouched for.
func verifiedTenant(ctx context.Context) (tenant.Tenant, bool) {
	t, ok := tenant.FromContext(ctx)
	return t, ok && t.Source.Verified()
}

// RequireRole returns middleware that lets through requests whose tenant
// has at least one of roles, and answers others with 403.
func RequireRole(roles ...string) func(http.Handler) http.Handler {
	if len(roles) == 0 {
		panic("authz: RequireRole needs at least one role")
	}
	roles = slices.Clone(roles)
	detail := "This resource needs the role " + strings.Join(roles, " or ") + "."
	return require(func(t tenant.Tenant) bool { return slices.ContainsFunc(roles, t.HasRole) }, "role", detail)
}

// RequireScope returns middleware that lets through requests whose token
// granted every one of scopes, and answers others with 403 and an
// insufficient_scope challenge.
func RequireScope(scopes ...string) func(http.Handler) http.Handler {
	if len(scopes) == 0 {
		panic("authz: RequireScope needs at least one scope")
	}
	scopes = slices.Clone(scopes)
	detail := "This resource needs the scope " + strings.Join(scopes, " and ") + "."
	return require(func(t tenant.Tenant) bool { return hasScopes(t, scopes) }, "scope", detail)
}

// RequireTier returns middleware that lets through requests whose tenant is
// on min or a higher tier, and answers others with 403.
func RequireTier(min tenant.Tier) func(http.Handler) http.Handler {
	if min.IsZero() {
		panic("authz: RequireTier needs a tier from tenant.Tiers.Lookup")
	}
	detail := "This resource needs the " + min.String() + " tier or above."
	return require(func(t tenant.Tenant) bool { return t.Tier.AtLeast(min) }, "tier", detail)
}

// hasScopes reports whether t has every one of scopes.
func hasScopes(t tenant.Tenant, scopes []string) bool {
	for _, s := range scopes {
		if !t.HasScope(s) {
			return false
		}
	}
	return true
}

// Features says which tiers may use which feature. It is immutable and
// safe for concurrent use.
type Features struct {
	tiers map[string][]tenant.Tier
}

// NewFeatures returns the feature table: feature name → the tiers that get
// it. [tenant.Tiers.From] lists "this tier and up". A feature with no tier
// is a mistake and is refused.
func NewFeatures(table map[string][]tenant.Tier) (*Features, error) {
	f := &Features{tiers: make(map[string][]tenant.Tier, len(table))}
	for name, tiers := range table {
		if name == "" {
			return nil, errors.New("authz: NewFeatures: empty feature name")
		}
		if len(tiers) == 0 || slices.ContainsFunc(tiers, tenant.Tier.IsZero) {
			return nil, fmt.Errorf("authz: NewFeatures: feature %q needs at least one known tier", name)
		}
		f.tiers[name] = slices.Clone(tiers)
	}
	return f, nil
}

// Allowed reports whether the verified tenant in ctx may use feature. An
// unknown feature is allowed to no one.
func (f *Features) Allowed(ctx context.Context, feature string) bool {
	t, ok := verifiedTenant(ctx)
	return ok && f.AllowedFor(t.Tier, feature)
}

// AllowedFor reports whether tier includes feature.
func (f *Features) AllowedFor(tier tenant.Tier, feature string) bool {
	return slices.Contains(f.tiers[feature], tier)
}

// Require returns middleware that lets through requests whose tenant's
// tier includes feature, and answers others with 403. It panics when the
// feature is not in the table: a typo must fail at start-up.
func (f *Features) Require(feature string) func(http.Handler) http.Handler {
	if _, ok := f.tiers[feature]; !ok {
		panic(fmt.Sprintf("authz: Features.Require: unknown feature %q", feature))
	}
	detail := "Your plan does not include " + feature + "."
	return require(func(t tenant.Tenant) bool { return f.AllowedFor(t.Tier, feature) }, "feature", detail)
}

// require is the middleware of every Require*: a request without a
// verified tenant is answered as one without a token, whatever ok would
// say, and one whose tenant ok refuses gets 403.
func require(ok func(tenant.Tenant) bool, reason, detail string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			t, has := verifiedTenant(r.Context())
			if !has {
				tenant.Refuse(w, r, "authz", tenant.ErrNoTenant)
				return
			}
			if !ok(t) {
				writeForbidden(w, r, &ForbiddenError{Reason: reason, Detail: detail})
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func writeForbidden(w http.ResponseWriter, r *http.Request, err error) {
	fe := &ForbiddenError{Reason: "forbidden", Detail: "You are not allowed to use this resource."}
	errors.As(err, &fe)
	if fe.Reason == "scope" {
		w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", error_description="`+quoteSafe(fe.Detail)+`"`)
	}
	tenant.Reject(r.Context(), tenant.Rejection{By: "authz", Reason: fe.Reason, Status: http.StatusForbidden, Detail: fe.Detail})
	tenant.WriteProblem(w, tenant.Problem{
		Type:   tenant.ProblemType("forbidden"),
		Title:  "Forbidden",
		Status: http.StatusForbidden,
		Detail: fe.Detail,
	})
}
