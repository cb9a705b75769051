package tenancylambda

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode"

	"github.com/aws/aws-lambda-go/events"
	"github.com/tenancykit/tenancy/authz"
	"github.com/tenancykit/tenancy/tenant"
)

// authorizerKey is the context key of what the event's authorizer
// verified: a map[string]any of claims, or of a Lambda authorizer's
// context. Only the Handler puts it there, from the event.
type authorizerKey struct{}

// Authorizer returns the resolver of the tenant API Gateway's authorizer
// verified, for a function only API Gateway invokes (see "Re-verify or
// trust the authorizer" in the package documentation). It reads what the
// [Handler] took from the event:
//
//   - HTTP API (payload 2.0): the claims of a JWT authorizer
//     (requestContext.authorizer.jwt.claims), or the context of a Lambda
//     authorizer (requestContext.authorizer.lambda);
//   - REST API (payload 1.0): the claims of a Cognito authorizer
//     (requestContext.authorizer.claims), or the context of a Lambda
//     authorizer (requestContext.authorizer, a flat map); an HTTP API's
//     1.0 events are read the same way.
//
// API Gateway passes a JWT's claims as strings: an array as "[a b c]",
// which is read back as a list (so m.Roles and m.Scopes work), numbers and
// booleans as their text. m maps the claims to a tenant of tiers (nil
// means tenant.DefaultTiers) as authz.ClaimMapping.Map does, with
// defaultTier for claims without a tier; the tenant's Source is
// tenant.SourcePeer, which the parts that act with a tenant's authority
// accept. A request without authorizer data, or whose claims lack the
// tenant claim, names no tenant (tenant.ErrNoTenant); claims that name an
// invalid tenant ID or an unknown tier are errors wrapping
// tenant.ErrInvalidID or tenant.ErrUnknownTier and the
// authz.ClaimError.
//
// Use it as the stack's resolver, without authz:
//
//	tenancy.New(tenancy.WithResolver(tenancylambda.Authorizer(authz.Cognito(), nil, tenant.Tier{})), ...)
//
// It panics when m names no tenant claim.
func Authorizer(m authz.ClaimMapping, tiers *tenant.Tiers, defaultTier tenant.Tier) tenant.Resolver {
	if m.Tenant == "" {
		panic("tenancylambda: Authorizer needs a ClaimMapping that names the tenant claim")
	}
	return tenant.ResolverFunc(func(r *http.Request) (tenant.Tenant, error) {
		m2, ok := r.Context().Value(authorizerKey{}).(map[string]any)
		if !ok {
			return tenant.Tenant{}, tenant.ErrNoTenant
		}
		claims := tenant.NewClaims(m2)
		if _, ok := claims.Get(m.Tenant); !ok {
			return tenant.Tenant{}, tenant.ErrNoTenant
		}
		t, err := m.Map(claims, tiers, defaultTier)
		switch {
		case err == nil:
			t.Source = tenant.SourcePeer
			return t, nil
		case errors.Is(err, authz.ErrTenantClaim):
			return tenant.Tenant{}, fmt.Errorf("%w: %w", tenant.ErrInvalidID, err)
		case errors.Is(err, authz.ErrTierClaim):
			return tenant.Tenant{}, fmt.Errorf("%w: %w", tenant.ErrUnknownTier, err)
		}
		return tenant.Tenant{}, fmt.Errorf("tenancylambda: authorizer claims: %w", err)
	})
}

// authorizerV2 returns what an HTTP API event's authorizer verified: a
// JWT authorizer's claims, or a Lambda authorizer's context. An IAM
// authorizer names a caller, not a tenant: nil.
func authorizerV2(a *events.APIGatewayV2HTTPRequestContextAuthorizerDescription) map[string]any {
	switch {
	case a == nil:
	case a.JWT != nil && len(a.JWT.Claims) > 0:
		claims := make(map[string]any, len(a.JWT.Claims))
		for k, v := range a.JWT.Claims {
			claims[k] = unflatten(v)
		}
		return claims
	case len(a.Lambda) > 0:
		return a.Lambda
	}
	return nil
}

// authorizerV1 returns what a payload 1.0 event's authorizer verified:
// the claims of a Cognito (REST) or JWT (HTTP API) authorizer, else a
// Lambda authorizer's context: under "lambda" (HTTP API), or the whole
// map (REST, with the principalId).
func authorizerV1(a map[string]any) map[string]any {
	if len(a) == 0 {
		return nil
	}
	claims, ok := a["claims"].(map[string]any)
	if !ok {
		if jwt, isMap := a["jwt"].(map[string]any); isMap {
			claims, ok = jwt["claims"].(map[string]any)
		}
	}
	if ok {
		out := make(map[string]any, len(claims))
		for k, v := range claims {
			if s, isString := v.(string); isString {
				out[k] = unflatten(s)
			} else {
				out[k] = v
			}
		}
		return out
	}
	if l, ok := a["lambda"].(map[string]any); ok && len(l) > 0 {
		return l
	}
	return a
}

// unflatten reads a claim as API Gateway passed it: an array as its
// elements between brackets, separated by spaces or commas ("[admin ops]"), comes
// back as a list ([]any of strings); any other value stays a string.
func unflatten(v string) any {
	inner, ok := strings.CutPrefix(v, "[")
	if !ok {
		return v
	}
	if inner, ok = strings.CutSuffix(inner, "]"); !ok {
		return v
	}
	fields := strings.FieldsFunc(inner, func(r rune) bool { return unicode.IsSpace(r) || r == ',' })
	list := make([]any, len(fields))
	for i, f := range fields {
		list[i] = f
	}
	return list
}
