package main

import (
	"net/http"
	"testing"

	"github.com/tenancykit/tenancy/authz/authztest"
	"github.com/tenancykit/tenancy/examples/internal/servicetest"
)

// TestTokenContract holds orders to its documented contract: with
// AUTH_ISSUER, AUTH_JWKS_URL and AUTH_AUDIENCE it serves an RS256 or ES256
// access token whose aud is AUTH_AUDIENCE, and a Cognito-shaped access
// token (client_id = AUTH_AUDIENCE, token_use access, no aud), both naming
// the tenant in custom:tenantId and custom:tenantTier; it refuses a Cognito
// ID token and an access token issued to another app client.
func TestTokenContract(t *testing.T) {
	for _, alg := range []string{"RS256", "ES256"} {
		t.Run(alg, func(t *testing.T) {
			iss := authztest.Start(t, authztest.WithAudience("orders-test"), authztest.WithAlgorithm(alg))
			svc := startForIssuer(t, iss, map[string]string{"AUTH_JWKS_URL": iss.JWKSURL()})
			cognito := func(opts ...authztest.TokenOption) string {
				return iss.MustMint("acme", "premium", append([]authztest.TokenOption{
					authztest.WithClaim("aud", nil), authztest.WithClaim("client_id", iss.Audience()),
					authztest.WithClaim("token_use", "access"),
				}, opts...)...)
			}
			for name, token := range map[string]string{
				"aud token":             iss.MustMint("acme", "premium"),
				"Cognito access token":  cognito(),
				"RFC 9068 access token": iss.MustMint("acme", "premium", authztest.WithHeader("typ", "at+jwt")),
			} {
				if r := svc.do(t, "GET", "/orders", token, ""); r.Status != http.StatusOK {
					t.Errorf("%s: status %d, want 200; body %s", name, r.Status, r.Body)
				}
			}
			for name, token := range map[string]string{
				"Cognito ID token":                   iss.MustMint("acme", "premium", authztest.WithClaim("token_use", "id")),
				"access token of another app client": cognito(authztest.WithClaim("client_id", "another-client")),
				"client_id without token_use":        cognito(authztest.WithClaim("token_use", nil)),
			} {
				if r := svc.do(t, "GET", "/orders", token, ""); r.Status != http.StatusUnauthorized {
					t.Errorf("%s: status %d, want 401", name, r.Status)
				} else {
					servicetest.WantProblem(t, r, http.StatusUnauthorized)
				}
			}
		})
	}
}
