package authz

import (
	"fmt"
	"slices"
	"strings"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tenancykit/tenancy/tenant"
)

// checkAudience checks the token's audience against the verifier's. The
// audience is read from the claim of [WithAudienceClaim], "aud" by default:
// a string (or for "aud", an array of strings), one of which must be ours.
// A Cognito
// access token has no "aud": it names the app client it was issued to in
// "client_id" and says "token_use": "access", and for such a token (and
// only when "aud" is absent) client_id is the audience.
func (v *Verifier) checkAudience(claims jwt.MapClaims) error {
	if len(v.audiences) == 0 {
		return nil // WithAnyAudience
	}
	name := v.audienceClaim
	raw, ok := claims[name]
	if !ok && name == "aud" && claims["token_use"] == "access" {
		name = "client_id"
		raw, ok = claims[name]
	}
	if !ok {
		return fmt.Errorf("%w: no %q claim", ErrAudience, name)
	}
	switch aud := raw.(type) {
	case string:
		if slices.Contains(v.audiences, aud) {
			return nil
		}
	case []any:
		if name != "aud" {
			break // RFC 7519 allows an array in "aud" only
		}
		for _, a := range aud {
			if s, ok := a.(string); ok && slices.Contains(v.audiences, s) {
				return nil
			}
		}
	default:
		return fmt.Errorf("%w: %q claim is not a string or an array of strings", ErrAudience, name)
	}
	return fmt.Errorf("%w: %q claim names none of the accepted audiences", ErrAudience, name)
}

// tokenTypePolicy says which kinds of token are API credentials. An API
// takes access tokens: an ID token is a statement to the client about its
// user, and an API that accepts one lets any app of the same identity
// provider call it with the tokens it got at sign-in.
type tokenTypePolicy struct {
	idTokens bool                      // WithIDTokens
	strict   bool                      // WithAccessTokenType: RFC 9068 typ required
	claims   func(tenant.Claims) error // WithClaimCheck
	types    []string                  // WithTokenTypes: these typ headers only
}

// WithTokenTypes verifies tokens of other kinds than access tokens: a
// token's "typ" header must be one of types (compared without case, and
// with or without the "application/" prefix), and a token without one is
// refused. It replaces the access-token rules, WithAccessTokenType and
// WithIDTokens: stamp.NewVerifier uses it so that only a message
// stamp ("tenancy-stamp+jwt") passes, never a user's access token. The
// claim check of WithClaimCheck still runs. Default, also for no type at
// all: access tokens, as described under WithAccessTokenType.
func WithTokenTypes(types ...string) Option {
	return func(c *config) { c.tokenType.types = types }
}

// check refuses, with ErrTokenType, a token that says it is not an access
// token:
//   - a "typ" header other than JWT, at+jwt or application/at+jwt (RFC 9068,
//     section 4), or other than the last two under WithAccessTokenType;
//   - Cognito's "token_use" claim other than "access";
//   - Keycloak's "typ" claim "ID" (its access tokens say "Bearer").
//
// The last two are allowed by WithIDTokens. Then the claim check of
// WithClaimCheck runs.
func (p tokenTypePolicy) check(header map[string]any, c tenant.Claims) error {
	typ, hasTyp := header["typ"].(string)
	if _, present := header["typ"]; present && !hasTyp {
		return fmt.Errorf("%w: typ header is not a string", ErrTokenType)
	}
	if len(p.types) > 0 {
		return p.checkType(typ, c)
	}
	at := strings.EqualFold(typ, "at+jwt") || strings.EqualFold(typ, "application/at+jwt")
	switch {
	case p.strict && !at:
		return fmt.Errorf("%w: typ header is not at+jwt (RFC 9068)", ErrTokenType)
	case hasTyp && !at && !strings.EqualFold(typ, "JWT"):
		return fmt.Errorf("%w: typ header names another kind of token", ErrTokenType)
	}
	if !p.idTokens {
		if use, ok := c.Get("token_use"); ok && use != "access" {
			return fmt.Errorf("%w: token_use is not \"access\" (an ID token? WithIDTokens accepts them)", ErrTokenType)
		}
		if kind, ok := c.Get("typ"); ok {
			if s, _ := kind.(string); strings.EqualFold(s, "ID") {
				return fmt.Errorf("%w: typ claim says ID token (WithIDTokens accepts them)", ErrTokenType)
			}
		}
	}
	if p.claims != nil {
		if err := p.claims(c); err != nil {
			return fmt.Errorf("%w: %w", ErrTokenType, err)
		}
	}
	return nil
}

// checkType is check under WithTokenTypes: typ must be one of p.types.
func (p tokenTypePolicy) checkType(typ string, c tenant.Claims) error {
	typ = strings.TrimPrefix(strings.ToLower(typ), "application/")
	for _, want := range p.types {
		if typ != "" && typ == strings.TrimPrefix(strings.ToLower(want), "application/") {
			if p.claims != nil {
				if err := p.claims(c); err != nil {
					return fmt.Errorf("%w: %w", ErrTokenType, err)
				}
			}
			return nil
		}
	}
	return fmt.Errorf("%w: typ header names another kind of token", ErrTokenType)
}
