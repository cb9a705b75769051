package authz_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/tenancykit/tenancy/authz"
	"github.com/tenancykit/tenancy/tenant"
)

// TestClaimMappingMap: claims a gateway verified map to the tenant a
// Verifier with the same mapping would build; a defect names the claim.
func TestClaimMappingMap(t *testing.T) {
	premium := tenant.DefaultTiers.MustLookup("premium")
	basic := tenant.DefaultTiers.MustLookup("basic")
	claims := tenant.NewClaims(map[string]any{
		"sub": "alice", "custom:tenantId": "acme", "custom:tenantTier": "premium",
		"cognito:groups": []any{"admin", "ops"}, "scope": "orders/read orders/write",
	})
	got, err := authz.Cognito().Map(claims, nil, tenant.Tier{})
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "acme" || got.Tier != premium || got.Subject != "alice" || got.Source != tenant.SourceToken ||
		!slices.Equal(got.Roles, []string{"admin", "ops"}) || !slices.Equal(got.Scopes, []string{"orders/read", "orders/write"}) {
		t.Errorf("Map = %+v", got)
	}
	if v, _ := got.Claims().String("sub"); v != "alice" {
		t.Errorf("the tenant's claims lost sub: %q", v)
	}

	noTier := tenant.NewClaims(map[string]any{"custom:tenantId": "acme"})
	if got, err := authz.Cognito().Map(noTier, tenant.DefaultTiers, basic); err != nil || got.Tier != basic {
		t.Errorf("Map without a tier claim = %+v, %v; want the default tier", got, err)
	}
	for _, tc := range []struct {
		name    string
		mapping authz.ClaimMapping
		claims  map[string]any
		want    error
		claim   string
	}{
		{"no tier, no default", authz.Cognito(), map[string]any{"custom:tenantId": "acme"}, authz.ErrTierClaim, "custom:tenantTier"},
		{"tenant missing", authz.Cognito(), map[string]any{"sub": "alice"}, authz.ErrTenantClaim, "custom:tenantId"},
		{"tenant a fraction", authz.Cognito(), map[string]any{"custom:tenantId": 7.5, "custom:tenantTier": "basic"}, authz.ErrTenantClaim, "custom:tenantId"},
		{"unknown tier", authz.Cognito(), map[string]any{"custom:tenantId": "acme", "custom:tenantTier": "gold"}, authz.ErrTierClaim, "custom:tenantTier"},
		{"no tenant claim named", authz.ClaimMapping{}, map[string]any{"tenant": "acme"}, authz.ErrTenantClaim, "(mapping)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.mapping.Map(tenant.NewClaims(tc.claims), tenant.DefaultTiers, tenant.Tier{})
			var ce *authz.ClaimError
			if !errors.Is(err, tc.want) || !errors.As(err, &ce) || ce.Claim != tc.claim {
				t.Errorf("Map = %v, want %v naming %s", err, tc.want, tc.claim)
			}
		})
	}
}
