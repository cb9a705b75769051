package stamp_test

import (
	"context"
	"testing"

	"github.com/tenancykit/tenancy/authz"
	"github.com/tenancykit/tenancy/message/stamp"
)

var authzErrTokenType = authz.ErrTokenType

// accessVerifier is an access-token verifier that trusts s's keys, with
// the stamps' claims, as a service that shares the key would run.
func accessVerifier(t *testing.T, s *stamp.Signer, clk *clock) *authz.Verifier {
	t.Helper()
	v, err := authz.NewVerifier(context.Background(), s.Issuer(), authz.WithJWKS(s.JWKS()), authz.WithAnyAudience(), authz.WithClock(clk.Now),
		authz.WithClaimMapping(authz.ClaimMapping{Tenant: "tenant_id", Tier: "tier"}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}
