package authz

import (
	"errors"
	"net/http"
)

// Errors returned by [Verifier.Verify] and the middleware, each wrapped with
// detail that is safe to log. The middleware turns them into a 401 whose
// description comes from a fixed table, never from the error text.
var (
	ErrNoToken          = errors.New("authz: no bearer token")
	ErrMalformedRequest = errors.New("authz: malformed Authorization header")
	ErrQueryToken       = errors.New("authz: token in query string refused")
	ErrTokenTooLarge    = errors.New("authz: token too large")
	ErrMalformedToken   = errors.New("authz: malformed token")
	ErrAlgorithm        = errors.New("authz: signing algorithm not allowed")
	ErrUnknownKey       = errors.New("authz: unknown signing key")
	ErrSignature        = errors.New("authz: invalid token signature")
	ErrExpired          = errors.New("authz: token expired")
	ErrNotYetValid      = errors.New("authz: token not valid yet")
	ErrIssuer           = errors.New("authz: token issuer not accepted")
	ErrAudience         = errors.New("authz: token audience not accepted")
	ErrTokenType        = errors.New("authz: not an access token")
	ErrClaims           = errors.New("authz: token claims invalid")
	ErrTenantClaim      = errors.New("authz: tenant claim missing or invalid")
	ErrTierClaim        = errors.New("authz: tier claim missing or invalid")
	// ErrKeysUnavailable: the token cannot be checked now, the client is
	// not at fault: the issuer's keys are not fetched yet (a Verifier
	// started with WithoutKeysAtStart, an issuer of Issuers whose JWK Set
	// is unreachable) or a lookup the check needs failed. Answered with
	// 503 and Retry-After.
	ErrKeysUnavailable = errors.New("authz: cannot verify tokens now")
	// ErrTierUnavailable: the tier lookup (WithTierLookup) failed or
	// answered a name that is no tier. Answered with 503 and Retry-After.
	ErrTierUnavailable = errors.New("authz: cannot look up the tenant's tier now")
)

// ClaimError says which claim of an otherwise valid token could not be
// mapped to a tenant, and why. It never holds the claim's value.
type ClaimError struct {
	Claim  string // the claim name as configured
	Reason string // "missing", "not a string", ...
	Err    error  // ErrTenantClaim or ErrTierClaim
}

func (e *ClaimError) Error() string {
	return e.Err.Error() + ": claim " + quoteClaim(e.Claim) + " " + e.Reason
}

func (e *ClaimError) Unwrap() error { return e.Err }

func quoteClaim(s string) string {
	const max = 64
	if len(s) > max {
		s = s[:max] + "..."
	}
	return `"` + s + `"`
}

// failure is what a client is told about an error: a fixed description and
// a reason for the request record.
type failure struct {
	status      int
	code        string // RFC 6750 error code; "" for no credentials at all
	reason      string // short machine-readable reason
	description string // safe for the client
}

var failures = []struct {
	err error
	failure
}{
	{ErrKeysUnavailable, failure{http.StatusServiceUnavailable, "", "keys_unavailable", "Tokens cannot be verified right now; retry shortly."}},
	{ErrTierUnavailable, failure{http.StatusServiceUnavailable, "", "tier_unavailable", "Your plan cannot be looked up right now; retry shortly."}},
	{ErrNoToken, failure{http.StatusUnauthorized, "", "no_token", "A bearer token is required."}},
	{ErrMalformedRequest, failure{http.StatusUnauthorized, "invalid_request", "malformed_request", "The Authorization header is malformed."}},
	{ErrQueryToken, failure{http.StatusUnauthorized, "invalid_request", "query_token", "Tokens are not accepted in the query string."}},
	{ErrTokenTooLarge, failure{http.StatusUnauthorized, "invalid_token", "token_too_large", "The token is too large."}},
	{ErrMalformedToken, failure{http.StatusUnauthorized, "invalid_token", "malformed_token", "The token is malformed."}},
	{ErrAlgorithm, failure{http.StatusUnauthorized, "invalid_token", "algorithm", "The token's signing algorithm is not accepted."}},
	{ErrUnknownKey, failure{http.StatusUnauthorized, "invalid_token", "unknown_key", "The token is signed by an unknown key."}},
	{ErrSignature, failure{http.StatusUnauthorized, "invalid_token", "signature", "The token signature is invalid."}},
	{ErrExpired, failure{http.StatusUnauthorized, "invalid_token", "expired", "The token has expired."}},
	{ErrNotYetValid, failure{http.StatusUnauthorized, "invalid_token", "not_yet_valid", "The token is not valid yet."}},
	{ErrIssuer, failure{http.StatusUnauthorized, "invalid_token", "issuer", "The token issuer is not accepted."}},
	{ErrAudience, failure{http.StatusUnauthorized, "invalid_token", "audience", "The token audience is not accepted."}},
	{ErrTokenType, failure{http.StatusUnauthorized, "invalid_token", "token_type", "The token is not an access token for this API."}},
	{ErrTenantClaim, failure{http.StatusUnauthorized, "invalid_token", "tenant_claim", "The token does not name a valid tenant."}},
	{ErrTierClaim, failure{http.StatusUnauthorized, "invalid_token", "tier_claim", "The token does not name a valid tier."}},
	{ErrClaims, failure{http.StatusUnauthorized, "invalid_token", "claims", "The token claims are invalid."}},
}

// detailFor is err's detail for the logs (see detailOf), "" when err is
// a sentinel alone: its reason says it all.
func detailFor(err error) string {
	for _, f := range failures {
		if err == f.err {
			return ""
		}
	}
	return detailOf(err)
}

func failureOf(err error) failure {
	for _, f := range failures {
		if errors.Is(err, f.err) {
			return f.failure
		}
	}
	return failure{http.StatusUnauthorized, "invalid_token", "invalid_token", "The token is invalid."}
}
