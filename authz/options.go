package authz

import (
	"crypto"
	"net/http"
	"time"

	"github.com/tenancykit/tenancy/tenant"
)

// Option configures a [Verifier]. Each With... function documents its
// default; nil options are ignored.
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
	cacheSize       int
	refreshInterval time.Duration
	refreshCooldown time.Duration
	maxTokenBytes   int
	onRefreshError  func(error)
	tokenType       tokenTypePolicy
}

// DefaultAlgorithms are the signing algorithms accepted unless
// [WithAlgorithms] says otherwise. HS256 is never a default: it needs a
// shared secret, see [WithHMACSecret].
var DefaultAlgorithms = []string{"RS256", "ES256", "EdDSA"}

// Defaults of the options, in one place.
const (
	DefaultCacheSize       = 10_000
	DefaultRefreshInterval = time.Hour
	DefaultRefreshCooldown = 10 * time.Second
	DefaultHTTPTimeout     = 5 * time.Second
	DefaultMaxTokenBytes   = 8 << 10
)

func newConfig(opts []Option) config {
	c := config{
		mapping:         Cognito,
		tiers:           tenant.DefaultTiers,
		now:             time.Now,
		cacheSize:       DefaultCacheSize,
		refreshInterval: DefaultRefreshInterval,
		refreshCooldown: DefaultRefreshCooldown,
		httpTimeout:     DefaultHTTPTimeout,
		maxTokenBytes:   DefaultMaxTokenBytes,
		audienceClaim:   "aud",
	}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if c.httpClient == nil {
		c.httpClient = &http.Client{Timeout: c.httpTimeout}
	}
	if len(c.algorithms) == 0 {
		c.algorithms = append([]string(nil), DefaultAlgorithms...)
		if c.hmacSecret != nil {
			c.algorithms = append(c.algorithms, "HS256")
		}
	}
	return c
}

// WithAudience sets the audiences a token must name (any one of them) in
// its "aud" claim, or in the claim set by [WithAudienceClaim]. An audience
// is required: pass your API's identifier (or your Cognito app client ID).
func WithAudience(aud ...string) Option {
	return func(c *config) { c.audiences = append(c.audiences, aud...) }
}

// WithAnyAudience accepts tokens for any audience the issuer mints. Only
// for issuers that serve this API alone; prefer [WithAudience].
func WithAnyAudience() Option { return func(c *config) { c.anyAudience = true } }

// WithAudienceClaim names the claim checked against [WithAudience]. Default
// "aud", and for a Cognito access token without "aud" ("token_use":
// "access"), "client_id": the same WithAudience(appClientID) accepts
// Cognito access tokens and any issuer's tokens for that audience.
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
// "typ" (Entra ID: "ver" and "scp" or "roles"). Default none.
func WithClaimCheck(f func(tenant.Claims) error) Option {
	return func(c *config) { c.tokenType.claims = f }
}

// WithJWKSURL fetches signing keys from the JWK Set at url, refreshing them
// every [WithRefreshInterval] and on a token with an unknown key ID at most
// once per [WithRefreshCooldown]. Default: the jwks_uri from the issuer's
// OIDC discovery document, unless static keys or a secret are given.
func WithJWKSURL(url string) Option { return func(c *config) { c.jwksURL = url } }

// WithDiscovery finds the JWK Set through the issuer's
// /.well-known/openid-configuration, whose "issuer" must equal the
// configured issuer. It is the default when no other key source is set.
func WithDiscovery() Option { return func(c *config) { c.discovery = true } }

// WithStaticKeys verifies tokens with fixed public keys by key ID. A key
// under the ID "" verifies tokens without a "kid". Keys are *rsa.PublicKey
// (2048 bits or more), *ecdsa.PublicKey or ed25519.PublicKey.
func WithStaticKeys(keys map[string]crypto.PublicKey) Option {
	return func(c *config) { c.staticKeys = keys }
}

// WithJWKS verifies tokens with the keys of a JWK Set document held in
// memory, for deployments that ship their keys with the configuration.
func WithJWKS(jwks []byte) Option { return func(c *config) { c.jwksJSON = jwks } }

// WithHMACSecret accepts HS256 tokens signed with secret, which must be at
// least 32 bytes. Symmetric tokens are never accepted without it.
func WithHMACSecret(secret []byte) Option { return func(c *config) { c.hmacSecret = secret } }

// WithAlgorithms replaces [DefaultAlgorithms]. Supported: RS256, RS384,
// RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA, and HS256,
// HS384, HS512 with [WithHMACSecret]. "none" is never accepted.
func WithAlgorithms(algs ...string) Option { return func(c *config) { c.algorithms = algs } }

// WithLeeway allows for clock skew when checking exp, nbf and iat. Default
// zero: times are checked exactly.
func WithLeeway(d time.Duration) Option { return func(c *config) { c.leeway = d } }

// WithClaimMapping says which claims hold the tenant, tier, roles, scopes
// and user. Default [Cognito].
func WithClaimMapping(m ClaimMapping) Option { return func(c *config) { c.mapping = m } }

// WithTiers sets the tiers the tier claim may name. Default
// [tenant.DefaultTiers].
func WithTiers(ts *tenant.Tiers) Option { return func(c *config) { c.tiers = ts } }

// WithDefaultTier gives tokens without a tier claim the named tier. Default:
// such tokens are refused (unless the mapping names no tier claim at all,
// then every tenant gets the lowest tier).
func WithDefaultTier(name string) Option { return func(c *config) { c.defaultTier = name } }

// WithHTTPClient sets the client used for discovery and JWK Set fetches.
// Default: an http.Client with a [DefaultHTTPTimeout] timeout.
func WithHTTPClient(hc *http.Client) Option { return func(c *config) { c.httpClient = hc } }

// WithClock sets the time source for token validation and the cache.
// Default time.Now.
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// WithCacheSize bounds the verified-token cache to about n tokens (at
// least one per shard, 32). Default [DefaultCacheSize], also for 0; a
// negative n turns the cache off.
func WithCacheSize(n int) Option { return func(c *config) { c.cacheSize = n } }

// WithRefreshInterval sets how often the JWK Set is fetched again. Default
// [DefaultRefreshInterval].
func WithRefreshInterval(d time.Duration) Option { return func(c *config) { c.refreshInterval = d } }

// WithRefreshCooldown bounds fetches caused by tokens with an unknown key
// ID to one per cooldown, however many such tokens arrive: tokens that ask
// while a fetch runs wait for it (within the fetch timeout) instead of
// starting another. It is also how long a key the issuer has just published
// can be refused after a fetch that came too early to see it, so it must
// stay short. Default [DefaultRefreshCooldown] (10 s).
func WithRefreshCooldown(d time.Duration) Option { return func(c *config) { c.refreshCooldown = d } }

// WithMaxTokenBytes refuses longer tokens before parsing them. Default
// [DefaultMaxTokenBytes].
func WithMaxTokenBytes(n int) Option { return func(c *config) { c.maxTokenBytes = n } }

// WithRefreshErrorHandler is called when a background JWK Set refresh
// fails; the keys fetched before stay in use. Default: a warning through
// slog.Default.
func WithRefreshErrorHandler(f func(error)) Option { return func(c *config) { c.onRefreshError = f } }
