package authz

import (
	"errors"
	"strings"
	"unicode"

	"github.com/tenancykit/tenancy/tenant"
)

// ClaimMapping names the token claims a [tenant.Tenant] is built from. A
// name is a top-level claim, or when no such claim exists, a dot-separated
// path into nested objects ("realm_access.roles"). Namespaced claims that
// contain dots, such as "https://example.com/tenant_id", work because the
// whole name is tried first.
type ClaimMapping struct {
	// Tenant names the tenant ID claim. Required.
	Tenant string
	// Tier names the tier claim. Empty means tokens carry no tier, and
	// every tenant gets the verifier's default tier.
	Tier string
	// Roles names a claim holding roles or groups: an array of strings, or
	// one string of space-separated names. Empty means none.
	Roles string
	// Scopes names the OAuth scopes claim, in the same forms. Default
	// "scope"; "scp" is also read when "scope" is absent.
	Scopes string
	// Subject names the user claim. Default "sub".
	Subject string
}

// Cognito returns the mapping for Amazon Cognito user pools with the
// custom attributes AWS's SaaS reference architectures use. It is the
// default mapping.
func Cognito() ClaimMapping {
	return ClaimMapping{
		Tenant: "custom:tenantId",
		Tier:   "custom:tenantTier",
		Roles:  "cognito:groups",
		Scopes: "scope",
	}
}

// Auth0 returns the mapping for Auth0 tokens whose custom claims are
// namespaced, as Auth0 requires, under namespace (for example
// "https://api.example.com/"): namespace+"tenant_id", namespace+"tier" and
// namespace+"roles", with the "scope" claim.
func Auth0(namespace string) ClaimMapping {
	return ClaimMapping{
		Tenant: namespace + "tenant_id",
		Tier:   namespace + "tier",
		Roles:  namespace + "roles",
		Scopes: "scope",
	}
}

// Keycloak returns the mapping for Keycloak realms with a "tenant_id" and
// a "tier" user attribute mapped into the token, and realm roles.
func Keycloak() ClaimMapping {
	return ClaimMapping{
		Tenant: "tenant_id",
		Tier:   "tier",
		Roles:  "realm_access.roles",
		Scopes: "scope",
	}
}

func (m ClaimMapping) withDefaults() ClaimMapping {
	if m.Scopes == "" {
		m.Scopes = "scope"
	}
	if m.Subject == "" {
		m.Subject = "sub"
	}
	return m
}

// maxListClaim bounds how many roles or scopes a token may carry, so a
// token cannot make every cached tenant hold an unbounded list.
const maxListClaim = 256

// Map maps claims that were verified, by authz or by a gateway the
// service trusts (API Gateway's JWT or Cognito authorizer), to a tenant of
// tiers, as a Verifier with this mapping does: a tenant without a tier
// claim gets defaultTier, or is refused when it is the zero Tier. The
// error wraps ErrTenantClaim, ErrTierClaim or ErrClaims and is a
// *ClaimError naming the claim. The tenant's Source is
// tenant.SourceToken; a caller that had a peer verify the token sets
// tenant.SourcePeer.
func (m ClaimMapping) Map(c tenant.Claims, tiers *tenant.Tiers, defaultTier tenant.Tier) (tenant.Tenant, error) {
	if m.Tenant == "" {
		return tenant.Tenant{}, &ClaimError{Claim: "(none)", Reason: "the mapping names no tenant claim", Err: ErrTenantClaim}
	}
	if tiers == nil {
		tiers = tenant.DefaultTiers
	}
	return m.withDefaults().toTenant(c, tiers, defaultTier)
}

// toTenant maps verified claims to a Tenant.
func (m ClaimMapping) toTenant(c tenant.Claims, tiers *tenant.Tiers, defaultTier tenant.Tier) (tenant.Tenant, error) {
	raw, ok := c.Get(m.Tenant)
	if !ok {
		return tenant.Tenant{}, &ClaimError{Claim: m.Tenant, Reason: "missing", Err: ErrTenantClaim}
	}
	id, ok := raw.(string)
	if !ok {
		return tenant.Tenant{}, &ClaimError{Claim: m.Tenant, Reason: "not a string", Err: ErrTenantClaim}
	}
	if err := tenant.ValidateID(id); err != nil {
		var ie *tenant.IDError
		reason := "not a valid tenant ID"
		if errors.As(err, &ie) {
			reason = "not a valid tenant ID: " + ie.Reason
		}
		return tenant.Tenant{}, &ClaimError{Claim: m.Tenant, Reason: reason, Err: ErrTenantClaim}
	}
	t := tenant.Tenant{ID: id, Tier: defaultTier, Source: tenant.SourceToken}
	if m.Tier != "" {
		switch raw, ok := c.Get(m.Tier); {
		case !ok && defaultTier.IsZero():
			return tenant.Tenant{}, &ClaimError{Claim: m.Tier, Reason: "missing", Err: ErrTierClaim}
		case !ok:
		default:
			name, ok := raw.(string)
			if !ok {
				return tenant.Tenant{}, &ClaimError{Claim: m.Tier, Reason: "not a string", Err: ErrTierClaim}
			}
			tier, ok := tiers.Lookup(name)
			if !ok {
				return tenant.Tenant{}, &ClaimError{Claim: m.Tier, Reason: "names an unknown tier", Err: ErrTierClaim}
			}
			t.Tier = tier
		}
	}
	if sub, ok := c.Get(m.Subject); ok {
		s, ok := sub.(string)
		if !ok || strings.ContainsFunc(s, isControl) {
			return tenant.Tenant{}, &ClaimError{Claim: m.Subject, Reason: "not a string without control, format or separator characters", Err: ErrClaims}
		}
		t.Subject = s
	}
	var err error
	if m.Roles != "" {
		if t.Roles, err = listClaim(c, m.Roles); err != nil {
			return tenant.Tenant{}, err
		}
	}
	if t.Scopes, err = listClaim(c, m.Scopes); err != nil {
		return tenant.Tenant{}, err
	}
	if t.Scopes == nil && m.Scopes == "scope" {
		if t.Scopes, err = listClaim(c, "scp"); err != nil {
			return tenant.Tenant{}, err
		}
	}
	return t.WithClaims(c), nil
}

func listClaim(c tenant.Claims, name string) ([]string, error) {
	if _, present := c.Get(name); !present {
		return nil, nil
	}
	list, ok := c.Strings(name)
	if !ok {
		return nil, &ClaimError{Claim: name, Reason: "not a string or an array of strings", Err: ErrClaims}
	}
	if len(list) > maxListClaim {
		return nil, &ClaimError{Claim: name, Reason: "has too many entries", Err: ErrClaims}
	}
	for _, s := range list {
		if strings.ContainsFunc(s, isControl) {
			return nil, &ClaimError{Claim: name, Reason: "holds a control, format or separator character", Err: ErrClaims}
		}
	}
	return list, nil
}

// isControl reports the characters tenant.ValidateID refuses in an ID:
// control, format (U+200B zero width space, U+202E right-to-left override)
// and line or paragraph separators. They would let a claim forge a log line
// or show one user's ID as another's.
func isControl(r rune) bool {
	return unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp)
}
