package authz_test

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tenancykit/tenancy/authz"
	"github.com/tenancykit/tenancy/authz/authztest"
	"github.com/tenancykit/tenancy/tenant"
)

func ExampleMiddleware() {
	// A test issuer stands in for Cognito, Auth0 or Keycloak.
	iss, err := authztest.NewIssuer()
	if err != nil {
		log.Fatal(err)
	}
	defer iss.Close()
	v, err := iss.NewVerifier(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	defer v.Close()

	orders := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, _ := tenant.FromContext(r.Context())
		fmt.Fprintf(w, "orders of %s (%s)", t.ID, t.Tier)
	})
	srv := httptest.NewServer(authz.Middleware(v)(orders))
	defer srv.Close()

	for _, token := range []string{
		iss.MustMint("acme", "premium"),
		iss.MustMint("acme", "premium", authztest.WithExpiry(-time.Minute)),
	} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/orders", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := srv.Client().Do(req)
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(resp.StatusCode, strings.TrimSpace(string(body)))
		if c := resp.Header.Get("WWW-Authenticate"); c != "" {
			fmt.Println("WWW-Authenticate:", c)
		}
	}
	// Output:
	// 200 orders of acme (premium)
	// 401 {"type":"https://github.com/tenancykit/tenancy/blob/main/docs/problems.md#unauthorized","title":"Unauthorized","status":401,"detail":"The token has expired."}
	// WWW-Authenticate: Bearer error="invalid_token", error_description="The token has expired."
}

func ExampleRequireTier() {
	tiers := tenant.DefaultTiers
	reports := authz.RequireTier(tiers.MustLookup("premium"))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "reports")
	}))

	// authz.Middleware puts the tenant in the context; here we do it by hand.
	for _, tier := range []string{"basic", "premium", "platinum"} {
		ctx := tenant.NewContext(context.Background(), tenant.Tenant{ID: "acme", Tier: tiers.MustLookup(tier)})
		rec := httptest.NewRecorder()
		reports.ServeHTTP(rec, httptest.NewRequestWithContext(ctx, http.MethodGet, "/reports", nil))
		fmt.Println(tier, rec.Code)
	}
	// Output:
	// basic 403
	// premium 200
	// platinum 200
}

func ExampleFeatures() {
	tiers := tenant.DefaultTiers
	features, err := authz.NewFeatures(map[string][]tenant.Tier{
		"export": tiers.From(tiers.MustLookup("premium")),
		"sso":    {tiers.MustLookup("platinum")},
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, tier := range tiers.All() {
		fmt.Printf("%-8s export=%v sso=%v\n", tier, features.AllowedFor(tier, "export"), features.AllowedFor(tier, "sso"))
	}

	// In a handler, ask about the caller's tenant, or guard a whole route
	// with features.Require("export").
	ctx := tenant.NewContext(context.Background(), tenant.Tenant{ID: "acme", Tier: tiers.MustLookup("standard")})
	fmt.Println("acme may export:", features.Allowed(ctx, "export"))
	// Output:
	// basic    export=false sso=false
	// standard export=false sso=false
	// premium  export=true sso=false
	// platinum export=true sso=true
	// acme may export: false
}

func ExampleNewVerifier() {
	// Keys shipped with the configuration: no discovery, no JWK Set fetch.
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	v, err := authz.NewVerifier(context.Background(), "https://login.example.com/",
		authz.WithAudience("https://api.example.com"),
		authz.WithStaticKeys(map[string]crypto.PublicKey{"2024-01": key.Public()}),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer v.Close()

	// A token as the identity provider would issue it.
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{
		"iss":               "https://login.example.com/",
		"aud":               "https://api.example.com",
		"sub":               "user-42",
		"iat":               time.Now().Unix(),
		"exp":               time.Now().Add(time.Hour).Unix(),
		"custom:tenantId":   "acme",
		"custom:tenantTier": "standard",
		"cognito:groups":    []string{"admin"},
	})
	tok.Header["kid"] = "2024-01"
	signed, err := tok.SignedString(key)
	if err != nil {
		log.Fatal(err)
	}

	t, err := v.Verify(context.Background(), signed)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(t.ID, t.Tier, t.Subject, t.Roles)

	_, err = v.Verify(context.Background(), signed+"x")
	fmt.Println(err != nil)
	// Output:
	// acme standard user-42 [admin]
	// true
}
