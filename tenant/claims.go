package tenant

import (
	"strings"

	"github.com/tenancykit/tenancy/internal/claimpath"
)

// Claims is read-only access to the verified claims of the token a [Tenant]
// was built from. The zero Claims holds no claim.
//
// Values are as decoded from JSON: string, float64, bool, nil,
// []any and map[string]any. Values that are maps or slices are shared and
// must not be modified. The strings of a token's claims share the memory
// of its payload: to keep one long after the request (a key of a
// long-lived map), keep a copy ([strings.Clone]), or it keeps the whole
// payload with it. The Tenant's ID and Subject are copies already.
type Claims struct {
	m map[string]any
}

// NewClaims returns Claims over m. The caller must not modify m afterwards.
func NewClaims(m map[string]any) Claims { return Claims{m: m} }

// Len returns the number of top-level claims.
func (c Claims) Len() int { return len(c.m) }

// Get returns the claim named name: the top-level claim of that name
// when there is one (so "https://example.com/tenant" works, an Auth0
// namespaced claim), else the value at the path of dot-separated segments
// into nested objects ("realm_access.roles", Keycloak's realm roles). A
// segment in double quotes may hold dots: resource_access."notes.api".roles
// (a backslash escapes a quote or a backslash inside the quotes).
func (c Claims) Get(name string) (any, bool) {
	return claimpath.Lookup(c.m, name)
}

// String returns the claim named name (see [Claims.Get]) when it is a string.
func (c Claims) String(name string) (string, bool) {
	v, ok := c.Get(name)
	if !ok {
		return "", false
	}
	s, ok := v.(string)
	return s, ok
}

// Strings returns the claim named name as a list of strings: a JSON array of
// strings, or a single string split on white space (the OAuth "scope"
// form). It reports false when the claim is absent or of another type, or
// when an array holds anything but strings.
func (c Claims) Strings(name string) ([]string, bool) {
	v, ok := c.Get(name)
	if !ok {
		return nil, false
	}
	switch v := v.(type) {
	case string:
		return strings.Fields(v), true
	case []string:
		return v, true
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	return nil, false
}

// All calls yield for every top-level claim, in no particular order.
func (c Claims) All(yield func(name string, value any) bool) {
	for k, v := range c.m {
		if !yield(k, v) {
			return
		}
	}
}
