package authz

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tenancykit/tenancy/tenant"
)

// Verifier checks bearer tokens from one issuer and maps them to a
// [tenant.Tenant]. It is safe for concurrent use. Build one at start-up with
// [NewVerifier] and share it; call [Verifier.Close] to stop its background
// key refresh.
type Verifier struct {
	issuer        string
	validator     *jwt.Validator
	keys          atomic.Pointer[keys] // nil until fetched (WithStartWithoutKeys)
	ready         chan struct{}        // closed when keys is set
	nudge         chan struct{}        // a request asks the background fetch to try now
	lastNudge     atomic.Int64         // Unix nanoseconds, by now
	mapping       ClaimMapping
	tiers         *tenant.Tiers
	defaultTier   tenant.Tier
	audiences     []string // empty with WithAnyAudience
	audienceClaim string
	tokenType     tokenTypePolicy
	now           func() time.Time
	systemClock   bool // now is time.Now
	maxTokenBytes int
	cache         *tokenCache // nil when off

	tierLookup       *tierCache // nil without WithTierLookup
	tierLookupAlways bool

	closeOnce sync.Once
	stopMu    sync.Mutex
	stop      func()
}

// NewVerifier returns a Verifier for tokens from issuer (the exact "iss"
// value, such as "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC").
// Keys come from the issuer's OIDC discovery document unless an option
// names another source. ctx bounds discovery; the first JWK Set fetch is
// bounded by [DefaultHTTPTimeout] or the client's timeout.
//
// Every configuration mistake is reported here, with the option to fix:
// a missing audience, an unknown algorithm, HS256 without a secret, a
// discovery document for another issuer, an unreachable JWK Set.
func NewVerifier(ctx context.Context, issuer string, opts ...Option) (*Verifier, error) {
	if err := checkIssuer(issuer); err != nil {
		return nil, err
	}
	c := newConfig(opts)
	if err := c.validate(); err != nil {
		return nil, err
	}
	defaultTier, err := c.defaultTierOf()
	if err != nil {
		return nil, err
	}
	v := &Verifier{
		issuer:        issuer,
		validator:     c.validator(issuer),
		mapping:       c.mapping.withDefaults(),
		tiers:         c.tiers,
		defaultTier:   defaultTier,
		audiences:     c.audiences,
		audienceClaim: c.audienceClaim,
		tokenType:     c.tokenType,
		now:           c.now,
		systemClock:   c.systemClock,
		maxTokenBytes: c.maxTokenBytes,
		cache:         c.cache(),

		tierLookup:       newTierCache(&c),
		tierLookupAlways: c.tierLookupAlways,
	}
	v.ready = make(chan struct{})
	// Keys last: they may fetch over the network, and start the refresh
	// that Close stops.
	if c.lazyKeys && (c.discovery || c.jwksURL != "") {
		// What needs no network is checked now.
		if _, err := c.algorithmKeys(); err != nil {
			return nil, err
		}
		if err := c.chooseKeySource(); err != nil {
			return nil, err
		}
	}
	k, stop, err := c.buildKeys(ctx, issuer, v.clearCache)
	switch {
	case err == nil:
		v.keys.Store(k)
		v.stop = stop
		close(v.ready)
	case c.lazyKeys && (c.discovery || c.jwksURL != ""):
		v.startFetching(&c, err)
	default:
		return nil, err
	}
	return v, nil
}

// Key fetching in the background (WithStartWithoutKeys): the first retry
// after keysFirstRetry, doubling to keysMaxRetry; a request that finds no
// keys makes the fetcher try at once, at most once per keysNudgeEvery.
const (
	keysFirstRetry = time.Second
	keysMaxRetry   = 30 * time.Second
	keysNudgeEvery = time.Second
)

// startFetching fetches the keys in the background until it succeeds or
// the verifier is closed. first is the error of the attempt NewVerifier
// made.
func (v *Verifier) startFetching(c *config, first error) {
	report := c.onRefreshError
	if report == nil {
		report = func(err error) {
			slog.Default().Warn("authz: the identity provider's keys cannot be fetched yet; tokens are answered 503 until they are", "issuer", v.issuer, "error", err)
		}
	}
	report(first)
	ctx, cancel := context.WithCancel(context.Background())
	v.nudge = make(chan struct{}, 1)
	v.stop = cancel
	go func() {
		wait := keysFirstRetry
		for {
			timer := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				timer.Stop()
				return
			case <-timer.C:
			case <-v.nudge:
				timer.Stop()
			}
			k, stop, err := c.buildKeys(ctx, v.issuer, v.clearCache)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				report(err)
				wait = min(2*wait, keysMaxRetry)
				continue
			}
			v.stopMu.Lock()
			if ctx.Err() != nil { // closed meanwhile
				v.stopMu.Unlock()
				stop()
				return
			}
			v.stop = func() { cancel(); stop() }
			v.stopMu.Unlock()
			v.keys.Store(k)
			close(v.ready)
			return
		}
	}()
}

// Ready returns a channel closed once the verifier has its keys: at once,
// unless it was built WithStartWithoutKeys while the identity provider
// could not be reached.
func (v *Verifier) Ready() <-chan struct{} { return v.ready }

// noKeys is the answer to a token while the keys are not there: it asks
// the background fetch to try now, at most once per keysNudgeEvery.
func (v *Verifier) noKeys() error {
	now := v.now().UnixNano()
	if last := v.lastNudge.Load(); now-last >= int64(keysNudgeEvery) && v.lastNudge.CompareAndSwap(last, now) {
		select {
		case v.nudge <- struct{}{}:
		default:
		}
	}
	return fmt.Errorf("%w: the keys of issuer %q are not fetched yet", ErrKeysUnavailable, v.issuer)
}

// checkIssuer refuses an issuer that cannot be the "iss" of a token.
func checkIssuer(issuer string) error {
	if issuer == "" {
		return errors.New("authz: NewVerifier needs the issuer: the exact \"iss\" of your tokens")
	}
	if u, err := url.Parse(issuer); err != nil || u.Scheme == "" || u.Host == "" {
		return fmt.Errorf("authz: issuer %q is not an absolute URL", issuer)
	}
	return nil
}

// validate reports the first setting that no verifier can work with,
// naming the option that fixes it. The key source and the algorithms are
// checked by buildKeys.
func (c *config) validate() error {
	switch {
	case len(c.audiences) == 0 && !c.anyAudience:
		return errors.New("authz: no audience: add WithAudience with your API identifier or app client ID (or WithAnyAudience if this issuer serves only this API)")
	case slices.Contains(c.audiences, ""):
		return errors.New("authz: WithAudience: empty audience")
	case c.mapping.check() != nil:
		return fmt.Errorf("authz: WithClaimMapping: %v", c.mapping.check())
	case c.leeway < 0 || c.leeway > 5*time.Minute:
		return fmt.Errorf("authz: WithLeeway: %v is out of range (0 to 5m)", c.leeway)
	case c.refreshCooldown < 0 || c.refreshInterval < 0:
		return errors.New("authz: WithRefreshCooldown and WithRefreshInterval need positive durations")
	case c.maxTokenBytes < 0:
		return errors.New("authz: WithMaxTokenBytes needs a positive size")
	case c.tierLookupAlways && c.tierLookup == nil:
		return errors.New("authz: WithTierLookupAlways needs WithTierLookup")
	case c.tierLookup != nil && c.defaultTier != "":
		return errors.New("authz: WithDefaultTier and WithTierLookup both decide the tier of a token without one: keep one")
	case c.tierCacheSize < 0:
		return errors.New("authz: WithTierLookupCache needs a positive size")
	}
	return nil
}

// defaultTierOf returns the tier of a token without a tier claim: the
// tier of WithDefaultTier, the lowest when the mapping names no tier
// claim, and otherwise none (such a token is refused).
func (c *config) defaultTierOf() (tenant.Tier, error) {
	switch {
	case c.tierLookup != nil:
		return tenant.Tier{}, nil // the lookup decides
	case c.defaultTier != "":
		t, err := c.tiers.Parse(c.defaultTier)
		if err != nil {
			return tenant.Tier{}, fmt.Errorf("authz: WithDefaultTier: %w", err)
		}
		return t, nil
	case c.mapping.Tier == "":
		return c.tiers.Lowest(), nil
	}
	return tenant.Tier{}, nil
}

// cache returns the verified-token cache of WithCacheSize, nil when off.
func (c *config) cache() *tokenCache {
	if c.cacheSize < 0 {
		return nil
	}
	return newTokenCache(c.cacheSize)
}

// validator returns golang-jwt's check of the claims: issuer, expiry
// (required), issue time and leeway, with the verifier's clock. The
// token's form and signature are parseToken's.
func (c *config) validator(issuer string) *jwt.Validator {
	return jwt.NewValidator(
		jwt.WithIssuer(issuer),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(c.leeway),
		jwt.WithTimeFunc(c.now),
	)
}

// clearCache empties the token cache; buildKeys calls it when a refresh
// changes the key set.
func (v *Verifier) clearCache() {
	if v.cache != nil {
		v.cache.clear()
	}
}

// Close stops the background refresh of the JWK Set. Verify keeps working
// with the keys it has.
func (v *Verifier) Close() error {
	v.closeOnce.Do(func() {
		v.stopMu.Lock()
		stop := v.stop
		v.stopMu.Unlock()
		stop()
	})
	return nil
}

// Issuer returns the issuer the verifier accepts.
func (v *Verifier) Issuer() string { return v.issuer }

// Verify checks token (without the "Bearer " prefix) and returns the tenant
// it names. Errors wrap the package's Err... sentinels and never contain
// the token.
func (v *Verifier) Verify(ctx context.Context, token string) (tenant.Tenant, error) {
	t, err := v.verify(ctx, token, time.Time{})
	if err != nil {
		return tenant.Tenant{}, err
	}
	return *t, nil
}

// verify checks token at now, the request's time (see the verifier
// interface), when the verifier's clock is the system's.
func (v *Verifier) verify(ctx context.Context, token string, now time.Time) (*tenant.Tenant, error) {
	if token == "" {
		return nil, ErrNoToken
	}
	if len(token) > v.maxTokenBytes {
		return nil, ErrTokenTooLarge
	}
	if now.IsZero() || !v.systemClock {
		now = v.now()
	}
	var (
		gen uint64
		h   uint64 // the token's key in the cache
	)
	if v.cache != nil {
		h = v.cache.hash(token)
		if t, ok := v.cache.get(h, token, now); ok {
			return v.withLookedUpTier(ctx, t, !t.Tier.IsZero())
		}
		gen = v.cache.generation()
	}
	claims := make(claimSet, claimsHint)
	k := v.keys.Load()
	if k == nil {
		return nil, v.noKeys()
	}
	tok, err := parseToken(token, claims, k.keyfunc(ctx), v.validator)
	if err != nil {
		return nil, classify(err)
	}
	// The kind of token first: an ID token is refused as one, whatever
	// its audience.
	c := tenant.NewClaims(claims)
	if err := v.tokenType.check(tok.Header, c); err != nil {
		return nil, err
	}
	if err := v.checkAudience(jwt.MapClaims(claims)); err != nil {
		return nil, err
	}
	t, err := v.mapping.toTenant(c, v.tiers, v.defaultTier, v.tierLookup != nil)
	if err != nil {
		return nil, err
	}
	if v.cache != nil {
		if exp, ok := expiry(jwt.MapClaims(claims)); ok {
			v.cache.put(h, token, &t, exp, gen, now)
		}
	}
	return v.withLookedUpTier(ctx, &t, !t.Tier.IsZero())
}

// expiry returns the token's exp as golang-jwt's
// MapClaims.GetExpirationTime reads it (whole seconds), false when it has
// none. The parser decodes numbers as float64: such an exp, in the range
// of a time.Time's UnixNano, is read without the NumericDate that
// GetExpirationTime allocates; any other is left to it.
func expiry(claims jwt.MapClaims) (time.Time, bool) {
	if f, ok := claims["exp"].(float64); ok && f >= 1 && f < maxUnixNanoSeconds {
		return time.Unix(int64(f), 0), true // truncated, as NumericDate is
	}
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil {
		return time.Time{}, false
	}
	return exp.Time, true
}

// maxUnixNanoSeconds bounds the exp that expiry reads itself: the cache
// keeps exp in Unix nanoseconds, which end in 2262.
const maxUnixNanoSeconds = float64(math.MaxInt64 / int64(time.Second))

// claimsHint is the room made for a token's claims before they are
// decoded. Access tokens of Cognito, Auth0 or Entra ID carry 9 claims or
// more: a map grown from empty starts with room for 8, and the 9th claim
// makes it allocate a table of 16 slots and copy the first 8 over. Sized
// for 14 (the most 16 slots hold) it allocates that table once; a token
// with more claims grows it as before.
const claimsHint = 14

// classify maps golang-jwt's errors to ours; the original is kept for logs.
func classify(err error) error {
	var ours error
	for _, e := range []error{ErrAlgorithm, ErrUnknownKey, ErrMalformedToken} {
		if errors.Is(err, e) {
			ours = e
			break
		}
	}
	if ours == nil {
		switch {
		case errors.Is(err, jwt.ErrTokenMalformed):
			ours = ErrMalformedToken
		case errors.Is(err, jwt.ErrTokenSignatureInvalid):
			ours = ErrSignature
		case errors.Is(err, jwt.ErrTokenExpired):
			ours = ErrExpired
		case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
			ours = ErrNotYetValid
		case errors.Is(err, jwt.ErrTokenInvalidIssuer):
			ours = ErrIssuer
		case errors.Is(err, jwt.ErrTokenInvalidAudience):
			ours = ErrAudience
		case errors.Is(err, jwt.ErrTokenUnverifiable):
			// Key lookups fail with our own errors, caught above; what is
			// left is an alg golang-jwt does not know.
			ours = ErrAlgorithm
		default:
			ours = ErrClaims
		}
	}
	return fmt.Errorf("%w (%w)", ours, err)
}
