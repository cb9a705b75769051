package authz_test

import (
	"errors"
	"testing"

	"github.com/tenancykit/tenancy/authz"
	"github.com/tenancykit/tenancy/authz/authztest"
	"github.com/tenancykit/tenancy/tenant"
)

// TestVerifyTokenTypes: under WithTokenTypes only tokens whose typ header
// names one of the types pass (an access token, of any typ, never does),
// and the default verifier refuses those tokens.
func TestVerifyTokenTypes(t *testing.T) {
	clk := newClock()
	iss, v := startIssuer(t, clk)
	stamps := iss.Verifier(t, authz.WithClock(clk.Now), authz.WithTokenTypes("tenancy-stamp+jwt"))
	checked := iss.Verifier(t, authz.WithClock(clk.Now), authz.WithTokenTypes("tenancy-stamp+jwt"),
		authz.WithClaimCheck(func(c tenant.Claims) error {
			if _, ok := c.String("jti"); !ok {
				return errors.New("no jti")
			}
			return nil
		}))
	ok := tenantSummary{ID: "acme", Tier: "basic", Subject: "user-1"}
	stamp := iss.MustMint("acme", "basic", authztest.WithHeader("typ", "tenancy-stamp+jwt"))
	stampLong := iss.MustMint("acme", "basic", authztest.WithHeader("typ", "application/Tenancy-Stamp+JWT"))
	at := iss.MustMint("acme", "basic", authztest.WithHeader("typ", "at+jwt"))
	plain := iss.MustMint("acme", "basic")
	none := iss.MustMint("acme", "basic", authztest.WithHeader("typ", nil))
	notString := iss.MustMint("acme", "basic", authztest.WithHeader("typ", 7))
	runVerifyCases(t, stamps, []verifyCase{
		{name: "stamp", token: stamp, want: ok},
		{name: "application/ and case", token: stampLong, want: ok},
		{name: "at+jwt", token: at, wantErr: authz.ErrTokenType},
		{name: "JWT", token: plain, wantErr: authz.ErrTokenType},
		{name: "no typ", token: none, wantErr: authz.ErrTokenType},
		{name: "typ not a string", token: notString, wantErr: authz.ErrTokenType},
	})
	runVerifyCases(t, checked, []verifyCase{
		{name: "claim check passes", token: iss.MustMint("acme", "basic", authztest.WithHeader("typ", "tenancy-stamp+jwt"), authztest.WithClaim("jti", "1")), want: ok},
		{name: "claim check refuses", token: stamp, wantErr: authz.ErrTokenType},
	})
	runVerifyCases(t, v, []verifyCase{
		{name: "default refuses a stamp", token: stamp, wantErr: authz.ErrTokenType},
	})
}
