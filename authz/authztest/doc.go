// Package authztest gives teams real tokens to test their own handlers
// with: an OIDC issuer running in the test process, serving a discovery
// document and a JWK Set over HTTP, that mints signed tokens for any
// tenant, tier and roles.
//
//	iss := authztest.Start(t)
//	v := iss.Verifier(t)                     // an *authz.Verifier for it
//	h := authz.Middleware(v)(myHandler)
//	tok := iss.MustMint("acme", "premium", authztest.WithRoles("admin"))
//	req.Header.Set("Authorization", "Bearer "+tok)
//
// The issuer rotates keys on demand ([Issuer.Rotate]) and counts JWK Set
// fetches ([Issuer.JWKSFetches]), so tests can check a verifier's refresh
// behaviour. It is also what the orders example runs as its development
// issuer, so it imports neither testing nor httptest: [Start] takes any
// [TB].
package authztest
