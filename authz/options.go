package authz

import (
	"context"
	"crypto"
	"net/http"
	"time"

	"github.com/tenancykit/tenancy/tenant"
)

// Option configures a [Verifier]. Each With... function documents its
// default; a nil Option is ignored, and an option given its zero value
// (nil, "", 0) leaves the default in place.
type Option func(*config)

type config struct {
	audiences       []string
	anyAudience     bool
	audienceClaim   string
	jwksURL         string
	discovery       bool
	staticKeys      map[string]crypto.PublicKey
	jwksJSON        []byte
	hmacSecret      []byte
	algorithms      []string
	leeway          time.Duration
	mapping         ClaimMapping
	tiers           *tenant.Tiers
	defaultTier     string
	httpClient      *http.Client
	httpTimeout     time.Duration
	now             func() time.Time
	systemClock     bool // now is time.Now: the middleware may use the request's time
	cacheSize       int
	refreshInterval time.Duration
	refreshCooldown time.Duration
	maxTokenBytes   int
	onRefreshError  func(error)
	lazyKeys        bool

	tierLookup       func(ctx context.Context, tenantID string) (string, error)
	tierLookupAlways bool
	tierTTL          time.Duration
	tierCacheSize    int
	tokenType        tokenTypePolicy
}

// DefaultAlgorithms returns the signing algorithms accepted unless
// [WithAlgorithms] says otherwise: RS256, ES256 and EdDSA, and HS256 as
// well with [WithHMACSecret]. HS256 is never a default without a secret:
// it needs one shared with the issuer. Each call returns a new slice.
func DefaultAlgorithms() []string { return []string{"RS256", "ES256", "EdDSA"} }

// Defaults of the options, in one place.
const (
	DefaultCacheSize       = 10_000
	DefaultRefreshInterval = time.Hour
	DefaultRefreshCooldown = 10 * time.Second
	DefaultHTTPTimeout     = 5 * time.Second
	DefaultMaxTokenBytes   = 8 << 10
)

// newConfig applies opts, then gives every setting that no option set, or
// that an option set to its zero value, its default.
func newConfig(opts []Option) config {
	var c config
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	c.setDefaults()
	return c
}

func (c *config) setDefaults() {
	if c.audienceClaim == "" {
		c.audienceClaim = "aud"
	}
	if c.mapping.isZero() {
		c.mapping = Cognito()
	}
	if c.tiers == nil {
		c.tiers = tenant.DefaultTiers
	}
	if c.now == nil {
		c.now, c.systemClock = time.Now, true
	}
	if c.cacheSize == 0 {
		c.cacheSize = DefaultCacheSize
	}
	if c.refreshInterval == 0 {
		c.refreshInterval = DefaultRefreshInterval
	}
	if c.refreshCooldown == 0 {
		c.refreshCooldown = DefaultRefreshCooldown
	}
	if c.maxTokenBytes == 0 {
		c.maxTokenBytes = DefaultMaxTokenBytes
	}
	if c.httpTimeout == 0 {
		c.httpTimeout = DefaultHTTPTimeout
	}
	if c.httpClient == nil {
		c.httpClient = &http.Client{Timeout: c.httpTimeout}
	}
	if len(c.algorithms) == 0 {
		c.algorithms = DefaultAlgorithms()
		if c.hmacSecret != nil {
			c.algorithms = append(c.algorithms, "HS256")
		}
	}
}

// WithAudience sets the audiences a token must name (any one of them) in
// its "aud" claim, or in the claim set by [WithAudienceClaim]. An audience
// is required: pass your API's identifier (or your Cognito app client ID).
// There is no default: without an audience (or [WithAnyAudience]),
// [NewVerifier] returns an error.
func WithAudience(aud ...string) Option {
	return func(c *config) { c.audiences = append(c.audiences, aud...) }
}

// WithAnyAudience accepts tokens for any audience the issuer mints. Only
// for issuers that serve this API alone; prefer [WithAudience]. Default
// off.
func WithAnyAudience() Option { return func(c *config) { c.anyAudience = true } }

// WithAudienceClaim names the claim checked against [WithAudience]. Default
// "aud", and for a Cognito access token without "aud" ("token_use":
// "access"), "client_id": the same WithAudience(appClientID) accepts
// Cognito access tokens and any issuer's tokens for that audience. ""
// means the default.
func WithAudienceClaim(name string) Option { return func(c *config) { c.audienceClaim = name } }

// WithIDTokens accepts tokens that say they are ID tokens (Cognito's
// "token_use": "id", Keycloak's "typ": "ID") as API credentials. Default:
// refused with [ErrTokenType], since any app of the identity provider
// holds its users' ID tokens; send access tokens to APIs.
func WithIDTokens() Option { return func(c *config) { c.tokenType.idTokens = true } }

// WithAccessTokenType requires the "typ" header of RFC 9068 JWT access
// tokens, "at+jwt", for issuers that set it (Auth0, Okta, Keycloak with
// the option on, oidc-provider). Default: "typ" may also be "JWT" or
// absent.
func WithAccessTokenType() Option { return func(c *config) { c.tokenType.strict = true } }

// WithClaimCheck adds a check of a verified token's claims, run after the
// audience and token-type checks: an error refuses the token with
// [ErrTokenType] wrapping it (the error is logged, never sent to the
// client). Use it for what marks an access token at providers that set no
// "typ" (Entra ID: "ver" and "scp" or "roles"). Default none; nil means
// none.
func WithClaimCheck(f func(tenant.Claims) error) Option {
	return func(c *config) { c.tokenType.claims = f }
}

// WithJWKSURL fetches signing keys from the JWK Set at url, refreshing them
// every [WithRefreshInterval] and on a token with an unknown key ID at most
// once per [WithRefreshCooldown]. Default: the jwks_uri from the issuer's
// OIDC discovery document, unless static keys or a secret are given; ""
// means the default.
func WithJWKSURL(url string) Option { return func(c *config) { c.jwksURL = url } }

// WithDiscovery finds the JWK Set through the issuer's
// /.well-known/openid-configuration, whose "issuer" must equal the
// configured issuer, exactly. It is the default key source when no other
// is set (with only HMAC algorithms, there is none); name it to say so, or
// to fail at construction should another source be added too.
func WithDiscovery() Option { return func(c *config) { c.discovery = true } }

// WithStaticKeys verifies tokens with fixed public keys by key ID. A key
// under the ID "" verifies tokens without a "kid". Keys are *rsa.PublicKey
// (2048 bits or more), *ecdsa.PublicKey or ed25519.PublicKey. Default
// none; nil means none, an empty map is an error.
func WithStaticKeys(keys map[string]crypto.PublicKey) Option {
	return func(c *config) { c.staticKeys = keys }
}

// WithJWKS verifies tokens with the keys of a JWK Set document held in
// memory, for deployments that ship their keys with the configuration.
// Default none; nil means none.
func WithJWKS(jwks []byte) Option { return func(c *config) { c.jwksJSON = jwks } }

// WithHMACSecret accepts HS256 tokens signed with secret, which must be at
// least 32 bytes. Symmetric tokens are never accepted without it. Default
// none; nil means none.
func WithHMACSecret(secret []byte) Option { return func(c *config) { c.hmacSecret = secret } }

// WithAlgorithms replaces [DefaultAlgorithms]. Supported: RS256, RS384,
// RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA, and HS256,
// HS384, HS512 with [WithHMACSecret]. "none" is never accepted. No
// algorithm at all means the default.
func WithAlgorithms(algs ...string) Option { return func(c *config) { c.algorithms = algs } }

// WithLeeway allows for clock skew when checking exp, nbf and iat, up to 5
// minutes. Default zero: times are checked exactly.
func WithLeeway(d time.Duration) Option { return func(c *config) { c.leeway = d } }

// WithClaimMapping says which claims hold the tenant, tier, roles, scopes
// and user. Default [Cognito], also for the zero ClaimMapping; any other
// mapping must name the Tenant claim.
func WithClaimMapping(m ClaimMapping) Option { return func(c *config) { c.mapping = m } }

// WithTiers sets the tiers the tier claim may name. Default
// [tenant.DefaultTiers], also for nil.
func WithTiers(ts *tenant.Tiers) Option { return func(c *config) { c.tiers = ts } }

// WithDefaultTier gives tokens without a tier claim the named tier. Default:
// such tokens are refused (unless the mapping names no tier claim at all,
// then every tenant gets the lowest tier); "" means the default.
func WithDefaultTier(name string) Option { return func(c *config) { c.defaultTier = name } }

// WithHTTPClient sets the client used for discovery and JWK Set fetches.
// Default, also for nil: an http.Client with a [DefaultHTTPTimeout]
// timeout.
func WithHTTPClient(hc *http.Client) Option { return func(c *config) { c.httpClient = hc } }

// WithClock sets the time source for token validation and the cache.
// Default time.Now, also for nil.
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// WithCacheSize bounds the verified-token cache to about n tokens (at
// least one per shard, 32). Default [DefaultCacheSize], also for 0; a
// negative n turns the cache off.
func WithCacheSize(n int) Option { return func(c *config) { c.cacheSize = n } }

// WithRefreshInterval sets how often the JWK Set is fetched again. Default
// [DefaultRefreshInterval], also for 0; a negative d is an error.
func WithRefreshInterval(d time.Duration) Option { return func(c *config) { c.refreshInterval = d } }

// WithRefreshCooldown bounds fetches caused by tokens with an unknown key
// ID to one per cooldown, however many such tokens arrive: tokens that ask
// while a fetch runs wait for it (within the fetch timeout) instead of
// starting another. It is also how long a key the issuer has just published
// can be refused after a fetch that came too early to see it, so it must
// stay short. Default [DefaultRefreshCooldown] (10 s), also for 0; a
// negative d is an error.
func WithRefreshCooldown(d time.Duration) Option { return func(c *config) { c.refreshCooldown = d } }

// WithMaxTokenBytes refuses longer tokens before parsing them. Default
// [DefaultMaxTokenBytes], also for 0; a negative n is an error.
func WithMaxTokenBytes(n int) Option { return func(c *config) { c.maxTokenBytes = n } }

// WithStartWithoutKeys lets NewVerifier return when the identity
// provider cannot be reached: it keeps fetching the discovery document
// and the JWK Set in the background (after 1 s, doubling to 30 s, and as
// soon as a request asks, at most once a second), and until the keys
// arrive every token is refused with ErrKeysUnavailable, which the
// middleware answers 503 with Retry-After. Each failed attempt is
// reported like a failed refresh (WithRefreshErrorHandler). Ready says
// when the keys are there, for a readiness probe. Mistakes that need no
// network are still reported by NewVerifier. Default: NewVerifier fails
// when the keys cannot be fetched, so that a service with a wrong issuer
// URL never starts.
func WithStartWithoutKeys() Option { return func(c *config) { c.lazyKeys = true } }

// WithRefreshErrorHandler is called when a background JWK Set refresh
// fails; the keys fetched before stay in use. Default, also for nil: a
// warning through slog.Default.
func WithRefreshErrorHandler(f func(error)) Option { return func(c *config) { c.onRefreshError = f } }
