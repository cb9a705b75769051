package authztest_test

import (
	"context"
	"fmt"
	"log"

	"github.com/tenancykit/tenancy/authz/authztest"
)

// A test issuer mints real, signed tokens that a verifier checks over
// OIDC discovery and the issuer's JWK Set, as it would Cognito's.
func ExampleIssuer_Mint() {
	iss, err := authztest.NewIssuer(authztest.WithAlgorithm("ES256"))
	if err != nil {
		log.Fatal(err)
	}
	defer iss.Close()
	v, err := iss.NewVerifier(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	defer v.Close()

	tok := iss.MustMint("acme", "premium", authztest.WithSubject("alice"), authztest.WithRoles("admin"))
	t, err := v.Verify(context.Background(), tok)
	fmt.Println(t.ID, t.Tier, t.Subject, t.Roles, err)

	expired := iss.MustMint("acme", "premium", authztest.WithExpiry(-1))
	_, err = v.Verify(context.Background(), expired)
	fmt.Println(err != nil)
	// Output:
	// acme premium alice [admin] <nil>
	// true
}
