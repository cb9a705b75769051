package authz_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/tenancykit/tenancy/authz"
	"github.com/tenancykit/tenancy/authz/authztest"
	"github.com/tenancykit/tenancy/tenant"
)

// providerToken mints, with iss, a token whose claims are those of the
// file in testdata/tokens: the payload of a token as the provider issues
// it, with ISSUER and AUDIENCE standing for iss's URL and audience, and
// null for a claim Mint sets that the provider's token lacks.
func providerToken(t *testing.T, iss *authztest.Issuer, file string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "tokens", file))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.NewReplacer(`"ISSUER"`, `"`+iss.URL()+`"`, `"AUDIENCE"`, `"`+iss.Audience()+`"`).Replace(string(raw))
	var claims map[string]any
	if err := json.Unmarshal([]byte(text), &claims); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	opts := []authztest.TokenOption{authztest.WithClaim("sub", nil), authztest.WithClaim("aud", nil)}
	for name, v := range claims {
		opts = append(opts, authztest.WithClaim(name, v))
	}
	return iss.MustMint("placeholder", "", opts...)
}

// TestPresets: each preset maps a token shaped as its provider issues it
// (testdata/tokens) to the tenant, tier, user, roles and scopes it names.
func TestPresets(t *testing.T) {
	const ns = "https://api.example.com/"
	for _, tc := range []struct {
		file    string
		mapping authz.ClaimMapping
		opts    []authz.Option
		want    tenantSummary
	}{
		{"cognito-access.json", authz.Cognito(), nil, tenantSummary{
			ID: "acme", Tier: "premium", Subject: "aab4d3c2-7f1e-4c6b-9d58-1f0f6e2b9a11",
			Roles: []string{"TenantAdmin", "Billing"}, Scopes: []string{"orders/read", "orders/write"}}},
		{"cognito-id.json", authz.Cognito(), []authz.Option{authz.WithIDTokens()}, tenantSummary{
			ID: "acme", Tier: "premium", Subject: "aab4d3c2-7f1e-4c6b-9d58-1f0f6e2b9a11", Roles: []string{"TenantAdmin"}}},
		{"auth0.json", authz.Auth0(ns), nil, tenantSummary{
			ID: "acme", Tier: "standard", Subject: "auth0|6571f0c2a8e1b0d4c3a2f1e0",
			Roles: []string{"admin"}, Scopes: []string{"openid", "profile", "read:orders", "create:orders"}}},
		{"auth0-organizations.json", authz.Auth0Organizations(ns), nil, tenantSummary{
			ID: "org_9ybsU1dN2dKfDkBi", Tier: "premium", Subject: "auth0|6571f0c2a8e1b0d4c3a2f1e0",
			Roles: []string{"member"}, Scopes: []string{"read:orders"}}},
		{"keycloak.json", authz.Keycloak("notes.api"), nil, tenantSummary{
			ID: "acme", Tier: "basic", Subject: "f1e2d3c4-b5a6-4978-8695-a4b3c2d1e0f9",
			Roles:  []string{"offline_access", "uma_authorization", "default-roles-saas", "editor"},
			Scopes: []string{"openid", "email", "profile"}}},
		{"keycloak-organization-list.json", authz.KeycloakOrganizations("notes.api"), nil, tenantSummary{
			ID: "acme", Tier: "basic", Subject: "f1e2d3c4-b5a6-4978-8695-a4b3c2d1e0f9",
			Roles: []string{"default-roles-saas", "viewer"}, Scopes: []string{"openid", "organization"}}},
		{"keycloak-organization-object.json", authz.KeycloakOrganizations(), nil, tenantSummary{
			ID: "acme", Tier: "basic", Subject: "f1e2d3c4-b5a6-4978-8695-a4b3c2d1e0f9",
			Roles: []string{"default-roles-saas"}, Scopes: []string{"openid", "organization:*"}}},
		{"keycloak-organization-object.json", withTenantKey(authz.KeycloakOrganizations(), "id"), nil, tenantSummary{
			ID: "7a1c9e3b-5d2f-4b6a-8c0e-1f3a5b7c9d2e", Tier: "basic", Subject: "f1e2d3c4-b5a6-4978-8695-a4b3c2d1e0f9",
			Roles: []string{"default-roles-saas"}, Scopes: []string{"openid", "organization:*"}}},
		{"entra.json", authz.Entra(), nil, tenantSummary{
			ID: "72f988bf-86f1-41af-91ab-2d7cd011db47", Tier: "basic", Subject: "0e9d8c7b-6a59-4837-2615-0f1e2d3c4b5a",
			Roles: []string{"Orders.Admin"}, Scopes: []string{"Orders.Read", "Orders.Write"}}},
	} {
		t.Run(strings.TrimSuffix(tc.file, ".json"), func(t *testing.T) {
			iss := authztest.Start(t, authztest.WithClaimMapping(tc.mapping))
			v := iss.Verifier(t, append([]authz.Option{authz.WithDefaultTier("basic")}, tc.opts...)...)
			got, err := v.Verify(t.Context(), providerToken(t, iss, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, summarize(got)); diff != "" {
				t.Errorf("tenant (-want +got):\n%s", diff)
			}
		})
	}
}

func withTenantKey(m authz.ClaimMapping, key string) authz.ClaimMapping {
	m.TenantKey = key
	return m
}

// TestCognitoIDTokenRefusedByDefault: the ID token of the preset's
// provider is no API credential unless the verifier says so.
func TestCognitoIDTokenRefusedByDefault(t *testing.T) {
	iss := authztest.Start(t)
	if _, err := iss.Verifier(t).Verify(t.Context(), providerToken(t, iss, "cognito-id.json")); !errors.Is(err, authz.ErrTokenType) {
		t.Errorf("Verify(Cognito ID token) = %v, want ErrTokenType", err)
	}
}

// TestClaimMappingForms: integer tenant IDs, lists and objects of one
// member only when the mapping says so, quoted paths, merged role and
// scope claims, and the Custom hook.
func TestClaimMappingForms(t *testing.T) {
	basic := tenant.DefaultTiers.MustLookup("basic")
	mapOf := func(m authz.ClaimMapping, claims map[string]any) (tenant.Tenant, error) {
		return m.Map(tenant.NewClaims(claims), nil, basic)
	}
	if got, err := mapOf(authz.ClaimMapping{Tenant: "org_id"}, map[string]any{"org_id": 4711.0}); err != nil || got.ID != "4711" {
		t.Errorf("integer org_id: %+v, %v; want tenant 4711", got, err)
	}
	lists := authz.ClaimMapping{Tenant: "organization", TenantFromList: true}
	if got, err := mapOf(lists, map[string]any{"organization": []any{"acme", "globex"}}); err != nil || got.ID != "acme" {
		t.Errorf("a list: %+v, %v; want its first element", got, err)
	}
	for name, claim := range map[string]any{
		"an empty list":             []any{},
		"an object of two members":  map[string]any{"acme": map[string]any{}, "globex": map[string]any{}},
		"a list of a list":          []any{[]any{"acme"}},
		"an object without the key": map[string]any{"acme": map[string]any{"name": "Acme"}},
	} {
		m := lists
		if name == "an object without the key" {
			m.TenantKey = "id"
		}
		if got, err := mapOf(m, map[string]any{"organization": claim}); !errors.Is(err, authz.ErrTenantClaim) {
			t.Errorf("%s: %+v, %v; want ErrTenantClaim", name, got, err)
		}
	}

	merged := authz.ClaimMapping{
		Tenant: "tenant_id", Roles: "realm_access.roles",
		MoreRoles:  []string{`resource_access."notes.api".roles`, "resource_access.billing.roles"},
		MoreScopes: []string{"permissions"},
	}
	got, err := mapOf(merged, map[string]any{
		"tenant_id":       "acme",
		"realm_access":    map[string]any{"roles": []any{"user", "admin"}},
		"resource_access": map[string]any{"notes.api": map[string]any{"roles": []any{"editor", "admin"}}, "billing": map[string]any{"roles": "payer"}},
		"scope":           "read",
		"permissions":     []any{"read", "write"},
	})
	if err != nil || !slices.Equal(got.Roles, []string{"user", "admin", "editor", "payer"}) || !slices.Equal(got.Scopes, []string{"read", "write"}) {
		t.Errorf("merged: roles %q scopes %q, %v", got.Roles, got.Scopes, err)
	}

	custom := authz.ClaimMapping{Tenant: "tenant_id", Custom: func(c tenant.Claims, t *tenant.Tenant) error {
		if plan, _ := c.String("plan"); plan == "enterprise" {
			t.Tier = tenant.DefaultTiers.MustLookup("platinum")
		}
		if c.Len() > 3 {
			return errors.New("too many claims")
		}
		return nil
	}}
	if got, err := mapOf(custom, map[string]any{"tenant_id": "acme", "plan": "enterprise"}); err != nil || got.Tier.String() != "platinum" {
		t.Errorf("Custom set tier: %+v, %v", got, err)
	}
	if _, err := mapOf(custom, map[string]any{"tenant_id": "acme", "a": 1, "b": 2, "c": 3}); !errors.Is(err, authz.ErrClaims) || !strings.Contains(err.Error(), "too many claims") {
		t.Errorf("Custom refusal = %v, want ErrClaims wrapping it", err)
	}
	bad := authz.ClaimMapping{Tenant: "tenant_id", Custom: func(_ tenant.Claims, t *tenant.Tenant) error { t.ID = ""; return nil }}
	if _, err := mapOf(bad, map[string]any{"tenant_id": "acme"}); !errors.Is(err, authz.ErrTenantClaim) {
		t.Errorf("Custom emptied the ID: %v, want ErrTenantClaim", err)
	}
}

// TestClaimMappingChecked: a mapping whose path cannot be read is refused
// when the verifier is built.
func TestClaimMappingChecked(t *testing.T) {
	iss := authztest.Start(t)
	_, err := iss.NewVerifier(t.Context(), authz.WithClaimMapping(authz.ClaimMapping{Tenant: "tenant_id", Roles: `resource_access."notes.api.roles`}))
	if err == nil || !strings.Contains(err.Error(), "WithClaimMapping") || !strings.Contains(err.Error(), "unterminated quote") {
		t.Errorf("NewVerifier = %v, want an error naming the mapping's bad path", err)
	}
}
