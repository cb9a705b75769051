package tenant_test

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tenancykit/tenancy/tenant"
)

// testClaims decodes JSON so that values have the types a verified token
// yields.
func testClaims(t *testing.T, js string) tenant.Claims {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(js), &m); err != nil {
		t.Fatalf("decoding test claims: %v", err)
	}
	return tenant.NewClaims(m)
}

const claimsJSON = `{
	"sub": "user-1",
	"exp": 1700000000,
	"admin": true,
	"nothing": null,
	"scope": "orders:read  orders:write\tprofile",
	"empty_scope": "",
	"groups": ["eu", "beta"],
	"mixed": ["eu", false],
	"no_groups": [],
	"https://example.com/tenant": "acme",
	"https://example": {"com/tenant": "shadowed"},
	"realm_access": {"roles": ["admin", "viewer"], "level": {"name": "gold"}},
	"flat.dotted": "top",
	"flat": {"dotted": "nested"}
}`

func TestClaimsGet(t *testing.T) {
	c := testClaims(t, claimsJSON)
	tests := []struct {
		name   string
		claim  string
		want   any
		wantOK bool
	}{
		{"top-level string", "sub", "user-1", true},
		{"top-level number", "exp", float64(1700000000), true},
		{"top-level bool", "admin", true, true},
		{"top-level null is present", "nothing", nil, true},
		{"namespaced name with dots", "https://example.com/tenant", "acme", true},
		{"top-level name preferred over path", "flat.dotted", "top", true},
		{"nested array", "realm_access.roles", []any{"admin", "viewer"}, true},
		{"nested two levels", "realm_access.level.name", "gold", true},
		{"nested object", "realm_access.level", map[string]any{"name": "gold"}, true},
		{"missing top-level", "tenant", nil, false},
		{"missing intermediate", "resource_access.account.roles", nil, false},
		{"missing leaf", "realm_access.groups", nil, false},
		{"non-object intermediate", "sub.x", nil, false},
		{"through an array", "realm_access.roles.0", nil, false},
		{"empty segment", "realm_access..roles", nil, false},
		{"trailing dot", "realm_access.", nil, false},
		{"empty name", "", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := c.Get(tt.claim)
			if ok != tt.wantOK {
				t.Fatalf("Get(%q) ok = %v, want %v", tt.claim, ok, tt.wantOK)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Get(%q) mismatch (-want +got):\n%s", tt.claim, diff)
			}
		})
	}
}

func TestClaimsString(t *testing.T) {
	c := testClaims(t, claimsJSON)
	tests := []struct {
		claim  string
		want   string
		wantOK bool
	}{
		{"sub", "user-1", true},
		{"https://example.com/tenant", "acme", true},
		{"realm_access.level.name", "gold", true},
		{"empty_scope", "", true},
		{"exp", "", false},
		{"admin", "", false},
		{"nothing", "", false},
		{"groups", "", false},
		{"missing", "", false},
	}
	for _, tt := range tests {
		got, ok := c.String(tt.claim)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("String(%q) = %q, %v; want %q, %v", tt.claim, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestClaimsStrings(t *testing.T) {
	c := testClaims(t, claimsJSON)
	tests := []struct {
		name   string
		claim  string
		want   []string
		wantOK bool
	}{
		{"array of strings", "groups", []string{"eu", "beta"}, true},
		{"nested array of strings", "realm_access.roles", []string{"admin", "viewer"}, true},
		{"space-separated string", "scope", []string{"orders:read", "orders:write", "profile"}, true},
		{"single string", "sub", []string{"user-1"}, true},
		{"empty string", "empty_scope", []string{}, true},
		{"empty array", "no_groups", []string{}, true},
		{"array with a non-string", "mixed", nil, false},
		{"number", "exp", nil, false},
		{"bool", "admin", nil, false},
		{"null", "nothing", nil, false},
		{"object", "realm_access", nil, false},
		{"missing", "roles", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := c.Strings(tt.claim)
			if ok != tt.wantOK {
				t.Fatalf("Strings(%q) ok = %v, want %v", tt.claim, ok, tt.wantOK)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Strings(%q) mismatch (-want +got):\n%s", tt.claim, diff)
			}
		})
	}

	// Claims built in Go rather than decoded from JSON may hold []string.
	goClaims := tenant.NewClaims(map[string]any{"roles": []string{"a", "b"}})
	if got, ok := goClaims.Strings("roles"); !ok || !cmp.Equal(got, []string{"a", "b"}) {
		t.Errorf("Strings([]string) = %q, %v; want [a b], true", got, ok)
	}
}

func TestClaimsAll(t *testing.T) {
	c := tenant.NewClaims(map[string]any{"a": "1", "b": 2.0, "c": true})
	if c.Len() != 3 {
		t.Fatalf("Len() = %d, want 3", c.Len())
	}

	got := map[string]any{}
	for k, v := range c.All {
		got[k] = v
	}
	if diff := cmp.Diff(map[string]any{"a": "1", "b": 2.0, "c": true}, got); diff != "" {
		t.Errorf("All mismatch (-want +got):\n%s", diff)
	}

	calls := 0
	for range c.All {
		calls++
		break
	}
	if calls != 1 {
		t.Errorf("All yielded %d times after an early stop, want 1", calls)
	}
}

func TestClaimsZero(t *testing.T) {
	var c tenant.Claims
	if c.Len() != 0 {
		t.Errorf("Len() = %d, want 0", c.Len())
	}
	if v, ok := c.Get("sub"); ok || v != nil {
		t.Errorf("Get(sub) = %v, %v; want nil, false", v, ok)
	}
	if v, ok := c.Get("realm_access.roles"); ok || v != nil {
		t.Errorf("Get(realm_access.roles) = %v, %v; want nil, false", v, ok)
	}
	if s, ok := c.String("sub"); ok || s != "" {
		t.Errorf("String(sub) = %q, %v; want \"\", false", s, ok)
	}
	if ss, ok := c.Strings("scope"); ok || ss != nil {
		t.Errorf("Strings(scope) = %q, %v; want nil, false", ss, ok)
	}
	for k := range c.All {
		t.Errorf("All yielded %q for the zero Claims", k)
	}
}
