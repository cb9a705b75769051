// Package authz turns a request's bearer token into the [tenant.Tenant] it
// acts for, and lets handlers require roles, scopes, tiers and features.
//
// A [Verifier] checks a JWT from one issuer: the signature against the
// issuer's keys, with an allow-list of algorithms ([DefaultAlgorithms]:
// RS256, ES256, EdDSA; never "none", HS256 only with [WithHMACSecret]), the
// "iss", the audience, "exp" (required), "nbf" and "iat", with an optional
// [WithLeeway]. A [ClaimMapping] then says which claims name the tenant,
// its tier, roles, scopes and user, by name or by path into nested
// objects (quoted segments for names with dots), with role and scope
// claims merged and a Custom hook for the rest; [Cognito] is the default,
// [Auth0], [Auth0Organizations], [Keycloak], [KeycloakOrganizations] and
// [Entra] are ready too, each tested on a token shaped as its provider
// issues it. A token whose tenant ID fails [tenant.ValidateID], or whose
// tier is not in the verifier's tiers, is refused, never cleaned up. Most
// providers issue no tier: [WithTierLookup] finds it in the service's own
// tenant store, kept per tenant for a minute, for tokens without a tier
// claim (or all, [WithTierLookupAlways]); a store that cannot answer is
// [ErrTierUnavailable], 503.
//
// [Issuers] verifies the tokens of several issuers, each with its own
// Verifier, chosen by the token's "iss" among those allowed: an
// allow-list ([WithIssuer], [WithTenantIssuer] for an issuer of one
// tenant's own), a lookup in the service's tenant store
// ([WithIssuerLookup]), or a Cognito user pool per tenant ([CognitoPools]).
// Each issuer's keys are fetched with its first token, the issuers kept
// are bounded, and a tenant's own issuer cannot issue tokens for another
// tenant. [Middleware] takes either, as a [TokenVerifier].
//
// [Middleware] verifies each request's token and puts the tenant in the
// request context, where handlers read it with [tenant.FromContext] and
// the access log and the meter outside find it too. [RequireRole],
// [RequireScope], [RequireTier] and [Features.Require] go after it, around
// the routes that need them; they
// see only a verified tenant, and answer a request whose tenant only the
// request itself named ([tenant.SourceClaimed], a subdomain) as one
// without a tenant: 401 tenant-required, the one answer of the module
// (tenant.Refuse).
//
// # Keys
//
// Keys come from exactly one source, fixed at construction:
//
//   - the issuer's OIDC discovery document (the default, or [WithDiscovery]),
//     which names the JWK Set URL;
//   - a JWK Set URL ([WithJWKSURL]);
//   - keys in memory: [WithStaticKeys] (a key under the ID "" verifies tokens
//     without a "kid") or a JWK Set document ([WithJWKS]).
//
// A JWK Set fetched over HTTP is refreshed every [WithRefreshInterval]. A
// token naming a key ID the verifier does not know makes it fetch the set
// again, in case the issuer rotated its keys: tokens that ask while a fetch
// runs share it, and no fetch starts within [WithRefreshCooldown] (10 s) of
// the last one, however many such tokens arrive; those are refused at once.
// So a stranger's made-up key ID costs one fetch per cooldown, and a key
// the issuer has just published is accepted at the latest one cooldown
// after it appeared. Keys whose "use" is not "sig", or whose "key_ops" lack
// "verify", never verify a token; nor does a token with a "crit" header
// (RFC 7515, section 4.1.11: no extension is implemented). [Verifier.Close]
// stops the background refresh.
//
// By default a Verifier whose keys cannot be fetched is an error of
// NewVerifier, so that a service with a wrong issuer never starts. With
// [WithStartWithoutKeys] it starts anyway, fetches in the background, and
// answers tokens with [ErrKeysUnavailable] (503 with Retry-After) until
// the keys arrive; [Verifier.Ready] tells a readiness probe when they
// have.
//
// # Cache
//
// A verified token is remembered until its "exp", so that a client sending
// it again costs a hash and a map lookup rather than a signature check. The
// cache is bounded ([WithCacheSize]), keyed by a seeded hash of the whole
// token, and a hit must also match the token's signature. It is emptied
// whenever a refresh changes the key set, so a retired key stops working
// as soon as the verifier learns of it.
//
// # Answers
//
// A request without credentials gets 401 with "WWW-Authenticate: Bearer";
// a malformed Authorization header, two of them, or a token in the query
// string (refused unless [WithQueryToken]) get 401 with
// error="invalid_request"; a token that fails verification gets 401 with
// error="invalid_token". A tenant that lacks a role, tier or feature gets
// 403, and one that lacks a scope gets 403 with error="insufficient_scope"
// (RFC 6750). Every refusal carries an application/problem+json body (RFC
// 9457) whose detail comes from a fixed table, never from an error's text,
// and never echoes the token. [WithCredentialsOptional] lets requests with
// no credentials at all through without a tenant; [WithErrorHandler]
// replaces how refusals are written.
//
// # Errors
//
// [Verifier.Verify] returns errors that wrap one of the Err... sentinels,
// for [errors.Is]: [ErrNoToken], [ErrMalformedRequest], [ErrQueryToken],
// [ErrTokenTooLarge], [ErrMalformedToken], [ErrAlgorithm], [ErrUnknownKey],
// [ErrSignature], [ErrExpired], [ErrNotYetValid], [ErrIssuer],
// [ErrAudience], [ErrTokenType], [ErrKeysUnavailable] (the only one
// answered 503: the client is not at fault), [ErrClaims], and through a
// [*ClaimError]
// [ErrTenantClaim] or [ErrTierClaim]. They are safe to log: they hold
// neither the token nor claim values. Checks a tenant failed wrap
// [ErrForbidden] through a [*ForbiddenError].
//
// # Wiring
//
// Build the verifier once at start-up; every configuration mistake is an
// error there, not at the first request:
//
//	v, err := authz.NewVerifier(ctx, "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC",
//		authz.WithAudience("7f3kq0example"),
//	)
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer v.Close()
//
//	mux := http.NewServeMux()
//	mux.Handle("GET /orders", orders)
//	mux.Handle("GET /reports", authz.RequireTier(tenant.DefaultTiers.MustLookup("premium"))(reports))
//	mux.Handle("DELETE /orders/{id}", authz.RequireRole("admin")(deleteOrder))
//	http.ListenAndServe(":8080", authz.Middleware(v)(mux))
//
// Package [github.com/tenancykit/tenancy/authz/authztest] runs an issuer in
// tests and mints tokens for any tenant.
package authz
