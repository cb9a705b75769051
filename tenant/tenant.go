package tenant

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"unicode"
	"unicode/utf8"

	"github.com/tenancykit/tenancy/internal/request"
)

// MaxIDLength is the longest tenant ID, in bytes, that [ValidateID] accepts.
// It bounds what a token can make us store as a map key, a log field or a
// Redis key.
const MaxIDLength = 128

// ErrInvalidID is wrapped by every error [ValidateID] returns.
var ErrInvalidID = errors.New("tenant: invalid tenant ID")

// Tenant is the customer a request acts for, as established by a verified
// token, a trusted peer or a resolver; Source says which.
//
// A Tenant is a value: copying it is cheap and safe. Roles, Scopes and the
// claims are shared between copies and must be treated as read-only.
type Tenant struct {
	// ID identifies the tenant. It has passed [ValidateID].
	ID string
	// Tier is the plan the tenant is on. The zero Tier means unknown.
	Tier Tier
	// Subject is the user (the token's "sub"), empty for service calls
	// that act for a tenant as a whole.
	Subject string
	// Roles and Scopes come from the token as mapped by authz.
	Roles  []string
	Scopes []string
	// Source says how the tenant was established; see [Source.Verified].
	Source Source

	claims Claims
}

// New returns a Tenant with the given ID and tier, or an error wrapping
// [ErrInvalidID] when the ID is not acceptable.
func New(id string, tier Tier) (Tenant, error) {
	if err := ValidateID(id); err != nil {
		return Tenant{}, err
	}
	return Tenant{ID: id, Tier: tier}, nil
}

// WithClaims returns a copy of t that carries the verified claims c.
func (t Tenant) WithClaims(c Claims) Tenant {
	t.claims = c
	return t
}

// Claims returns the verified token claims the tenant was built from; the
// zero Claims when it did not come from a token.
func (t Tenant) Claims() Claims { return t.claims }

// HasRole reports whether role is one of t.Roles.
func (t Tenant) HasRole(role string) bool { return slices.Contains(t.Roles, role) }

// HasScope reports whether scope is one of t.Scopes.
func (t Tenant) HasScope(scope string) bool { return slices.Contains(t.Scopes, scope) }

// IsZero reports whether t is the zero Tenant.
func (t Tenant) IsZero() bool { return t.ID == "" }

// ValidateID reports whether id can be used as a tenant ID: not empty, at
// most [MaxIDLength] bytes, valid UTF-8, without control, format or line
// and paragraph separator characters (so an ID cannot forge a log line), and
// without leading or trailing white space. An ID that fails
// is rejected, never cleaned up: a cleaned-up ID could name another tenant.
func ValidateID(id string) error {
	switch {
	case id == "":
		return &IDError{Reason: "empty"}
	case len(id) > MaxIDLength:
		return &IDError{Reason: fmt.Sprintf("longer than %d bytes", MaxIDLength)}
	case !utf8.ValidString(id):
		return &IDError{Reason: "not valid UTF-8"}
	}
	for i, r := range id {
		if r < utf8.RuneSelf {
			// ASCII, as nearly every ID is: no format or separator
			// character is, and its controls and spaces are these, so
			// the Unicode tables need not be searched.
			switch {
			case r < 0x20 || r == 0x7f:
				return &IDError{Reason: fmt.Sprintf("control, format or line-separator character at byte %d", i)}
			case r == ' ' && (i == 0 || i+1 == len(id)):
				return &IDError{Reason: "leading or trailing white space"}
			}
			continue
		}
		if unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp) {
			return &IDError{Reason: fmt.Sprintf("control, format or line-separator character at byte %d", i)}
		}
		if unicode.IsSpace(r) && (i == 0 || i+utf8.RuneLen(r) == len(id)) {
			return &IDError{Reason: "leading or trailing white space"}
		}
	}
	return nil
}

// IDError says why a tenant ID was refused. It never contains the ID itself,
// so that it can be logged without letting a caller inject text.
type IDError struct {
	Reason string
}

func (e *IDError) Error() string { return "tenant: invalid tenant ID: " + e.Reason }

// Unwrap returns [ErrInvalidID].
func (e *IDError) Unwrap() error { return ErrInvalidID }

// inContext is what NewContext stores: the tenant, and the token already
// in the context, in one context entry.
type inContext struct {
	t     Tenant
	token string
}

// NewContext returns a copy of ctx that carries t, for code that
// establishes a tenant itself (a worker, a test). A token already in ctx
// ([TokenFromContext]) stays.
func NewContext(ctx context.Context, t Tenant) context.Context {
	tok, _ := TokenFromContext(ctx)
	return context.WithValue(ctx, request.TenantKey, &inContext{t: t, token: tok})
}

// FromContext returns the Tenant in ctx, if any.
func FromContext(ctx context.Context) (Tenant, bool) {
	if t, _ := fromContext(ctx); t != nil {
		return *t, true
	}
	return Tenant{}, false
}

// fromContext returns the tenant in ctx, nil for none, and the token it
// came with: from NewContext, or from the request's state where authz and
// Middleware keep them. The tenant is the one in the context, not a copy:
// every layer asks, and a Tenant is some fifteen words.
func fromContext(ctx context.Context) (*Tenant, string) {
	var v any
	if st, ok := ctx.(*request.State); ok {
		// The layers and most handlers hold the request's state itself:
		// read it without a Value call. What it passes on when it holds
		// no tenant is what Value would have found.
		if t, tok := st.Tenant(); t != nil {
			return t.(*Tenant), tok
		}
		v = st.Context.Value(request.TenantKey)
	} else {
		v = ctx.Value(request.TenantKey)
	}
	switch v := v.(type) {
	case *inContext:
		return &v.t, v.token
	case *request.State:
		if t, tok := v.Tenant(); t != nil {
			return t.(*Tenant), tok
		}
	}
	return nil, ""
}
