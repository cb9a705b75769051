package authz

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/tenancykit/tenancy/internal/claimpath"
	"github.com/tenancykit/tenancy/tenant"
)

// ClaimMapping names the token claims a [tenant.Tenant] is built from. A
// name is a top-level claim, or when no such claim exists, a path of
// dot-separated segments into nested objects ("realm_access.roles"); a
// segment in double quotes may hold dots (resource_access."notes.api".roles
// for the roles of a client whose ID has a dot). Namespaced claims that
// contain dots, such as "https://example.com/tenant_id", work unquoted
// because the whole name is tried first.
type ClaimMapping struct {
	// Tenant names the tenant ID claim. Required. Its value is a string
	// or an integer (an org_id as a number, written in base 10).
	Tenant string
	// TenantFromList also accepts a tenant claim that is a list, for its
	// first element, or an object of one member, for the member's name or
	// with TenantKey, that field of the member's value: Keycloak's
	// organization claim, ["acme"] or {"acme": {"id": "..."}}. An object
	// of several members names several tenants and is refused. Default:
	// a list or an object is refused.
	TenantFromList bool
	// TenantKey names the field of an object-valued tenant claim's member
	// that holds the ID ("id" for Keycloak's organization IDs instead of
	// their aliases). Empty: the member's name.
	TenantKey string
	// Tier names the tier claim. Empty means tokens carry no tier, and
	// every tenant gets the verifier's default tier (or its tier lookup's,
	// see WithTierLookup).
	Tier string
	// Roles names a claim holding roles or groups: an array of strings, or
	// one string of space-separated names. Empty means none.
	Roles string
	// MoreRoles names further role claims whose roles are added to those
	// of Roles, in order, without repeats: Keycloak's client roles beside
	// its realm roles.
	MoreRoles []string
	// Scopes names the OAuth scopes claim, in the same forms. Default
	// "scope"; "scp" is also read when "scope" is absent.
	Scopes string
	// MoreScopes names further claims whose entries are added to the
	// scopes: Auth0's RBAC "permissions", so that RequireScope checks
	// them.
	MoreScopes []string
	// Subject names the user claim. Default "sub".
	Subject string
	// Custom, when set, runs after the claims above were mapped and may
	// change the tenant (a tier derived from a combination of claims, say)
	// or refuse the token: its error is wrapped with ErrClaims unless it
	// already wraps one of the package's claim errors.
	Custom func(c tenant.Claims, t *tenant.Tenant) error
}

// Cognito returns the mapping for Amazon Cognito user pools with the
// custom attributes AWS's SaaS reference architectures use. It is the
// default mapping. ID tokens carry the custom attributes; access tokens
// carry them when a pre token generation trigger (version 2) adds them,
// and a verifier refuses ID tokens unless told otherwise (WithIDTokens).
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
// namespace+"roles", with the "scope" claim and the RBAC "permissions"
// added to the scopes.
func Auth0(namespace string) ClaimMapping {
	return ClaimMapping{
		Tenant:     namespace + "tenant_id",
		Tier:       namespace + "tier",
		Roles:      namespace + "roles",
		Scopes:     "scope",
		MoreScopes: []string{"permissions"},
	}
}

// Auth0Organizations returns the mapping for Auth0 Organizations: the
// tenant is the organization of the token ("org_id"), the tier and roles
// are namespaced claims as in [Auth0].
func Auth0Organizations(namespace string) ClaimMapping {
	m := Auth0(namespace)
	m.Tenant = "org_id"
	return m
}

// Keycloak returns the mapping for Keycloak realms with a "tenant_id"
// user attribute mapped into the token, realm roles, and the client roles
// of each client named. Keycloak issues no tier: tenants get the
// verifier's default tier or its tier lookup's (WithTierLookup).
func Keycloak(clients ...string) ClaimMapping {
	return ClaimMapping{
		Tenant:    "tenant_id",
		Roles:     "realm_access.roles",
		MoreRoles: keycloakClientRoles(clients),
		Scopes:    "scope",
	}
}

// KeycloakOrganizations returns the mapping for Keycloak 26 organizations:
// the tenant is the organization the token names ("organization", in its
// list or object form; the first when a list names several), with realm
// roles and the client roles of each client named, and no tier claim.
func KeycloakOrganizations(clients ...string) ClaimMapping {
	m := Keycloak(clients...)
	m.Tenant, m.TenantFromList = "organization", true
	return m
}

func keycloakClientRoles(clients []string) []string {
	var paths []string
	for _, c := range clients {
		q := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(c)
		paths = append(paths, `resource_access."`+q+`".roles`)
	}
	return paths
}

// Entra returns the mapping for Microsoft Entra ID access tokens: the
// directory ("tid") is the tenant, app roles ("roles"), delegated scopes
// ("scp") and the user's object ID ("oid", stable across applications,
// unlike "sub"). Entra issues no tier.
func Entra() ClaimMapping {
	return ClaimMapping{
		Tenant:  "tid",
		Roles:   "roles",
		Scopes:  "scp",
		Subject: "oid",
	}
}

// isZero reports whether m is the zero ClaimMapping.
func (m ClaimMapping) isZero() bool {
	return m.Tenant == "" && !m.TenantFromList && m.TenantKey == "" && m.Tier == "" && m.Roles == "" && m.MoreRoles == nil &&
		m.Scopes == "" && m.MoreScopes == nil && m.Subject == "" && m.Custom == nil
}

// check reports a claim name of m that is not a valid path.
func (m ClaimMapping) check() error {
	if m.Tenant == "" {
		return errors.New("the Tenant claim name is required")
	}
	names := append([]string{m.Tenant, m.Tier, m.Roles, m.Scopes, m.Subject}, m.MoreRoles...)
	for _, name := range append(names, m.MoreScopes...) {
		if name == "" {
			continue
		}
		// A name with quotes is a path; others may be top-level claims
		// of any shape.
		if _, err := claimpath.Split(name); err != nil && strings.Contains(name, `"`) {
			return err
		}
	}
	return nil
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
	if err := m.check(); err != nil {
		return tenant.Tenant{}, &ClaimError{Claim: "(mapping)", Reason: err.Error(), Err: ErrTenantClaim}
	}
	if tiers == nil {
		tiers = tenant.DefaultTiers
	}
	return m.withDefaults().toTenant(c, tiers, defaultTier, false)
}

// toTenant maps verified claims to a Tenant. With tierLater, a token
// without a tier claim gets the zero Tier, which a tier lookup replaces.
func (m ClaimMapping) toTenant(c tenant.Claims, tiers *tenant.Tiers, defaultTier tenant.Tier, tierLater bool) (tenant.Tenant, error) {
	id, reason := m.tenantID(c)
	if reason == "" {
		if err := tenant.ValidateID(id); err != nil {
			reason = "not a valid tenant ID"
			var ie *tenant.IDError
			if errors.As(err, &ie) {
				reason += ": " + ie.Reason
			}
		}
	}
	if reason != "" {
		return tenant.Tenant{}, &ClaimError{Claim: m.Tenant, Reason: reason, Err: ErrTenantClaim}
	}
	// The claims' strings share the memory of the token's payload (see
	// claimSet). The ID and the subject are the ones kept beyond the
	// request, as keys of the throttle's, the meter's and the tier
	// lookup's tables and of applications' own: they are copied, so that
	// none of those keeps a whole payload for the sake of a few bytes.
	t := tenant.Tenant{ID: strings.Clone(id), Tier: defaultTier, Source: tenant.SourceToken}
	if m.Tier != "" {
		switch raw, ok := c.Get(m.Tier); {
		case !ok && defaultTier.IsZero() && !tierLater:
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
		if !ok || hasControl(s) {
			return tenant.Tenant{}, &ClaimError{Claim: m.Subject, Reason: "not a string without control, format or separator characters", Err: ErrClaims}
		}
		t.Subject = strings.Clone(s)
	}
	var err error
	if t.Roles, err = listClaims(c, m.Roles, m.MoreRoles); err != nil {
		return tenant.Tenant{}, err
	}
	scopes := m.Scopes
	if _, ok := c.Get(scopes); !ok && scopes == "scope" {
		scopes = "scp"
	}
	if t.Scopes, err = listClaims(c, scopes, m.MoreScopes); err != nil {
		return tenant.Tenant{}, err
	}
	if m.Custom != nil {
		if err := m.Custom(c, &t); err != nil {
			if !errors.Is(err, ErrClaims) && !errors.Is(err, ErrTenantClaim) && !errors.Is(err, ErrTierClaim) {
				err = fmt.Errorf("%w: %w", ErrClaims, err)
			}
			return tenant.Tenant{}, err
		}
		if err := tenant.ValidateID(t.ID); err != nil {
			return tenant.Tenant{}, &ClaimError{Claim: m.Tenant, Reason: "ClaimMapping.Custom set an invalid tenant ID", Err: ErrTenantClaim}
		}
	}
	return t.WithClaims(c), nil
}

// tenantID reads the tenant ID from the claim m.Tenant, or says why it
// cannot.
func (m ClaimMapping) tenantID(c tenant.Claims) (id, reason string) {
	raw, ok := c.Get(m.Tenant)
	if !ok {
		return "", "missing"
	}
	list, isList := raw.([]any)
	obj, isObject := raw.(map[string]any)
	if (isList || isObject) && !m.TenantFromList {
		return "", "a list or an object (see ClaimMapping.TenantFromList)"
	}
	if isList {
		if len(list) == 0 {
			return "", "an empty list"
		}
		raw = list[0]
	} else if isObject {
		if len(obj) != 1 {
			return "", "an object of " + strconv.Itoa(len(obj)) + " members, not one"
		}
		for name, v := range obj {
			if m.TenantKey == "" {
				return name, ""
			}
			field, ok := v.(map[string]any)[m.TenantKey]
			if !ok {
				return "", "an object whose member has no field " + strconv.Quote(m.TenantKey)
			}
			raw = field
		}
	}
	switch v := raw.(type) {
	case string:
		return v, ""
	case float64:
		if v != math.Trunc(v) || math.Abs(v) > 1<<53 {
			return "", "a number that is not an integer"
		}
		return strconv.FormatInt(int64(v), 10), ""
	}
	return "", "not a string, an integer, a list or an object of one member"
}

// listClaims reads the list claim name and adds the entries of the claims
// more that it lacks, in order.
func listClaims(c tenant.Claims, name string, more []string) ([]string, error) {
	var list []string
	if name != "" {
		var err error
		if list, err = listClaim(c, name); err != nil {
			return nil, err
		}
	}
	for _, n := range more {
		extra, err := listClaim(c, n)
		if err != nil {
			return nil, err
		}
		for _, e := range extra {
			if !slices.Contains(list, e) {
				list = append(list, e)
			}
		}
		if len(list) > maxListClaim {
			return nil, &ClaimError{Claim: n, Reason: "has too many entries with the claims before it", Err: ErrClaims}
		}
	}
	return list, nil
}

func listClaim(c tenant.Claims, name string) ([]string, error) {
	list, ok := c.Strings(name)
	if !ok {
		// Absent, or present as something else: only the second is a
		// mistake. Asked only now, so that a present list is looked up
		// once.
		if _, present := c.Get(name); !present {
			return nil, nil
		}
		return nil, &ClaimError{Claim: name, Reason: "not a string or an array of strings", Err: ErrClaims}
	}
	if len(list) > maxListClaim {
		return nil, &ClaimError{Claim: name, Reason: "has too many entries", Err: ErrClaims}
	}
	for _, s := range list {
		if hasControl(s) {
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
	if r < utf8.RuneSelf {
		// No ASCII character is a format or separator character, and the
		// ASCII controls are these: the range tables need not be searched.
		return r < 0x20 || r == 0x7f
	}
	return unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp)
}

// hasControl reports whether s holds a character isControl reports.
// Claims are nearly always ASCII, read a byte at a time here.
func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			return strings.ContainsFunc(s[i:], isControl)
		}
		if c < 0x20 || c == 0x7f {
			return true
		}
	}
	return false
}
