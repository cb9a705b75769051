package authz

import (
	"container/list"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/tenancykit/tenancy/tenant"
)

// TokenVerifier verifies a bearer token and returns the tenant it names:
// a *Verifier for the tokens of one issuer, *Issuers for several. Errors
// wrap the package's Err... sentinels; [Middleware] answers them from its
// fixed table, never with their text.
type TokenVerifier interface {
	Verify(ctx context.Context, token string) (tenant.Tenant, error)
}

// verifier is the TokenVerifier of this package: Verify without the copy
// of the tenant, which a cache hit shares.
type verifier interface {
	// verify checks token at now, the request's time, which a verifier
	// on the system clock uses instead of reading the clock again (one
	// given a clock reads it); the zero now reads the clock.
	verify(ctx context.Context, token string, now time.Time) (*tenant.Tenant, error)
}

var (
	_ verifier = (*Verifier)(nil)
	_ verifier = (*Issuers)(nil)
)

// IssuerConfig is what [Issuers] needs to verify the tokens of one
// issuer.
type IssuerConfig struct {
	// Tenant, when set, is the one tenant the issuer's tokens may name:
	// a user pool or realm of a tenant's own. A token of the issuer that
	// names another tenant is refused. Empty: any tenant.
	Tenant string
	// Options build the issuer's Verifier (see NewVerifier): its
	// audience, claim mapping and key source at least.
	Options []Option
}

// Issuers verifies the tokens of several issuers: each token with the
// Verifier of its own issuer, which the allow-list names (WithIssuer,
// WithTenantIssuer) or a lookup accepts (WithIssuerLookup, CognitoPools).
// The "iss" of a token is read before its signature is checked, only to
// choose the Verifier; that Verifier then checks the token, its issuer
// included. A token whose issuer is not allowed is refused with ErrIssuer
// before any key is fetched.
//
// Each issuer's Verifier is built, and its JWK Set fetched, when the first
// token of the issuer arrives; requests for the same issuer meanwhile wait
// for that one build. An issuer whose keys cannot be fetched is answered
// with ErrKeysUnavailable (503, Retry-After) and tried again after a few
// seconds. The issuers a lookup accepted are kept up to WithMaxIssuers,
// the least recently used closed past it; a lookup's answers, refusals
// included, are kept for a few minutes, so that tokens naming made-up
// issuers cost one lookup each per issuer, not one per request.
//
// An Issuers is safe for concurrent use; Close stops the key refresh of
// every Verifier it built.
type Issuers struct {
	static  map[string]*issuerEntry // the allow-list, never evicted
	lookups []lookupFunc
	max     int
	ttl     time.Duration
	retry   time.Duration
	now     func() time.Time

	mu      sync.Mutex
	entries map[string]*issuerEntry // looked up
	lru     *list.List              // of *issuerEntry, most recent first
	closed  bool
}

type lookupFunc func(ctx context.Context, issuer string) (IssuerConfig, error)

// issuerEntry is one issuer: allowed or not, its Verifier once built.
type issuerEntry struct {
	issuer  string
	allowed bool
	cfg     IssuerConfig
	expires time.Time     // of a looked-up answer
	elem    *list.Element // in Issuers.lru; nil for the allow-list

	mu       sync.Mutex
	building chan struct{} // closed when the build in progress ends
	v        *Verifier
	err      error     // of the last build
	retryAt  time.Time // no new build before
	closed   bool      // evicted, or the Issuers closed: a Verifier built now is closed at once
}

// IssuersOption configures [NewIssuers].
type IssuersOption func(*Issuers) error

// DefaultMaxIssuers is how many looked-up issuers an Issuers keeps.
const DefaultMaxIssuers = 64

// Defaults of an Issuers: how long a lookup's answer is kept, and how long
// an issuer whose keys could not be fetched is answered with
// ErrKeysUnavailable before the next try.
const (
	issuerLookupTTL  = 5 * time.Minute
	issuerBuildRetry = 5 * time.Second
	maxIssuerLength  = 512
)

// WithIssuer allows the tokens of issuer, for any tenant, verified by a
// Verifier built with opts.
func WithIssuer(issuer string, opts ...Option) IssuersOption {
	return WithTenantIssuer(issuer, "", opts...)
}

// WithTenantIssuer allows the tokens of issuer for tenantID alone (a
// tenant with a user pool of its own), verified by a Verifier built with
// opts.
func WithTenantIssuer(issuer, tenantID string, opts ...Option) IssuersOption {
	return func(is *Issuers) error {
		if err := checkIssuer(issuer); err != nil {
			return err
		}
		if tenantID != "" {
			if err := tenant.ValidateID(tenantID); err != nil {
				return fmt.Errorf("authz: WithTenantIssuer: %w", err)
			}
		}
		if _, dup := is.static[issuer]; dup {
			return fmt.Errorf("authz: issuer %q is allowed twice", issuer)
		}
		cfg := IssuerConfig{Tenant: tenantID, Options: opts}
		if err := checkIssuerConfig(cfg); err != nil {
			return fmt.Errorf("authz: issuer %q: %w", issuer, err)
		}
		is.static[issuer] = &issuerEntry{issuer: issuer, allowed: true, cfg: cfg}
		return nil
	}
}

// WithIssuerLookup allows, besides the issuers named, those lookup
// accepts. It is called with the "iss" of a token no option names,
// before anything of the token was verified: it must not trust the value
// (it can be any string a client sends) and should answer from the
// service's own records. It returns the issuer's configuration, or an
// error wrapping ErrIssuer for an issuer not allowed; any other error
// (the store is down) answers the request with ErrKeysUnavailable. Its
// answers are kept for five minutes.
func WithIssuerLookup(lookup func(ctx context.Context, issuer string) (IssuerConfig, error)) IssuersOption {
	return func(is *Issuers) error {
		if lookup == nil {
			return errors.New("authz: WithIssuerLookup: nil function")
		}
		is.lookups = append(is.lookups, lookup)
		return nil
	}
}

// cognitoPoolID is the form of a Cognito user pool ID: the region, an
// underscore and an alphanumeric suffix.
var cognitoPoolID = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]_[0-9A-Za-z]+$`)

// CognitoPools allows the tokens of the Amazon Cognito user pools of
// region that tenantOf knows: a pool per tenant, the pool ID looked up in
// the service's tenant store. An issuer
// "https://cognito-idp.REGION.amazonaws.com/POOL_ID" with a well-formed
// pool ID is passed to tenantOf, which returns the tenant the pool
// belongs to, or an error wrapping ErrIssuer for a pool that is none of
// the service's. Each pool's tokens may name its own tenant alone, and are
// verified with opts (the audience: the app client ID, which may be given
// with WithAudience once for all pools that share it) and the pool's JWK
// Set (no discovery round trip).
func CognitoPools(region string, tenantOf func(ctx context.Context, poolID string) (tenantID string, err error), opts ...Option) IssuersOption {
	prefix := "https://cognito-idp." + region + ".amazonaws.com/"
	return func(is *Issuers) error {
		if !regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]$`).MatchString(region) {
			return fmt.Errorf("authz: CognitoPools: %q is not an AWS region", region)
		}
		if tenantOf == nil {
			return errors.New("authz: CognitoPools: nil tenantOf")
		}
		return WithIssuerLookup(func(ctx context.Context, issuer string) (IssuerConfig, error) {
			pool, ok := strings.CutPrefix(issuer, prefix)
			if !ok || !strings.HasPrefix(pool, region+"_") || !cognitoPoolID.MatchString(pool) {
				return IssuerConfig{}, fmt.Errorf("%w: not a user pool of %s", ErrIssuer, region)
			}
			id, err := tenantOf(ctx, pool)
			if err != nil {
				return IssuerConfig{}, err
			}
			if id == "" {
				return IssuerConfig{}, fmt.Errorf("%w: the pool belongs to no tenant", ErrIssuer)
			}
			return IssuerConfig{Tenant: id, Options: append([]Option{WithJWKSURL(issuer + "/.well-known/jwks.json")}, opts...)}, nil
		})(is)
	}
}

// WithMaxIssuers bounds how many looked-up issuers, with their Verifiers,
// keys and token caches, are kept; past it the least recently used is
// closed. Default [DefaultMaxIssuers].
func WithMaxIssuers(n int) IssuersOption {
	return func(is *Issuers) error {
		if n < 1 {
			return fmt.Errorf("authz: WithMaxIssuers: %d is not a positive number", n)
		}
		is.max = n
		return nil
	}
}

// NewIssuers returns an Issuers for the issuers the options allow. It
// fetches nothing: each issuer's keys are fetched with its first token.
// Mistakes in the options (an issuer that is no URL, a Verifier option
// that NewVerifier would refuse without fetching) are reported here.
func NewIssuers(opts ...IssuersOption) (*Issuers, error) {
	is := &Issuers{
		static:  map[string]*issuerEntry{},
		max:     DefaultMaxIssuers,
		ttl:     issuerLookupTTL,
		retry:   issuerBuildRetry,
		now:     time.Now,
		entries: map[string]*issuerEntry{},
		lru:     list.New(),
	}
	var errs []error
	for _, o := range opts {
		if o != nil {
			if err := o(is); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if len(is.static) == 0 && len(is.lookups) == 0 {
		return nil, errors.New("authz: NewIssuers needs at least one issuer: WithIssuer, WithTenantIssuer, WithIssuerLookup or CognitoPools")
	}
	return is, nil
}

// checkIssuerConfig reports what NewVerifier would refuse in cfg without
// fetching anything.
func checkIssuerConfig(cfg IssuerConfig) error {
	c := newConfig(cfg.Options)
	if err := c.validate(); err != nil {
		return err
	}
	if _, err := c.defaultTierOf(); err != nil {
		return err
	}
	return nil
}

// Verify checks token with the Verifier of its issuer and returns the
// tenant it names.
func (is *Issuers) Verify(ctx context.Context, token string) (tenant.Tenant, error) {
	t, err := is.verify(ctx, token, time.Time{})
	if err != nil {
		return tenant.Tenant{}, err
	}
	return *t, nil
}

func (is *Issuers) verify(ctx context.Context, token string, now time.Time) (*tenant.Tenant, error) {
	if token == "" {
		return nil, ErrNoToken
	}
	if len(token) > DefaultMaxTokenBytes {
		return nil, ErrTokenTooLarge
	}
	issuer, err := unverifiedIssuer(token)
	if err != nil {
		return nil, err
	}
	e, err := is.entry(ctx, issuer)
	if err != nil {
		return nil, err
	}
	v, err := is.verifierOf(ctx, e)
	if err != nil {
		return nil, err
	}
	t, err := v.verify(ctx, token, now)
	if err != nil {
		return nil, err
	}
	if e.cfg.Tenant != "" && t.ID != e.cfg.Tenant {
		return nil, &ClaimError{Claim: v.mapping.Tenant, Reason: "names a tenant its issuer does not serve", Err: ErrTenantClaim}
	}
	return t, nil
}

// unverifiedIssuer reads the "iss" of a compact JWS without checking
// anything else: it only chooses the Verifier that will.
func unverifiedIssuer(token string) (string, error) {
	_, rest, ok := strings.Cut(token, ".")
	payload, _, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 {
		return "", fmt.Errorf("%w: not three dot-separated parts", ErrMalformedToken)
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(payload)
	if err != nil {
		return "", fmt.Errorf("%w: payload is not base64url", ErrMalformedToken)
	}
	// Read as the Verifier reads it (parseToken): into a struct,
	// encoding/json would take "ISS" for "iss", and send
	// {"iss":A,"ISS":B} to B's Verifier.
	claims := make(claimSet)
	if err := decodeObject(raw, claims); err != nil {
		return "", fmt.Errorf("%w: payload is not a JSON object", ErrMalformedToken)
	}
	iss, ok := claims["iss"].(string)
	switch {
	case !ok:
		return "", fmt.Errorf("%w: no \"iss\" string", ErrIssuer)
	case iss == "" || len(iss) > maxIssuerLength:
		return "", fmt.Errorf("%w: empty or too long", ErrIssuer)
	}
	return iss, nil
}

// entry returns the allowed issuer's entry, from the allow-list, the kept
// lookups, or a new lookup.
func (is *Issuers) entry(ctx context.Context, issuer string) (*issuerEntry, error) {
	if e, ok := is.static[issuer]; ok {
		return e, nil
	}
	if len(is.lookups) == 0 {
		return nil, fmt.Errorf("%w: not one of the issuers allowed", ErrIssuer)
	}
	now := is.now()
	is.mu.Lock()
	if e, ok := is.entries[issuer]; ok && now.Before(e.expires) {
		is.lru.MoveToFront(e.elem)
		is.mu.Unlock()
		if !e.allowed {
			return nil, fmt.Errorf("%w: not allowed", ErrIssuer)
		}
		return e, nil
	}
	is.mu.Unlock()

	cfg, err := is.lookup(ctx, issuer)
	e := &issuerEntry{issuer: issuer, allowed: err == nil, cfg: cfg, expires: now.Add(is.ttl)}
	switch {
	case err != nil && !errors.Is(err, ErrIssuer):
		// The store could not answer: nothing is kept, the next token asks
		// again.
		return nil, fmt.Errorf("%w: the issuer lookup failed: %w", ErrKeysUnavailable, err)
	case err == nil:
		if cerr := checkIssuerConfig(cfg); cerr != nil {
			return nil, fmt.Errorf("%w: the lookup's configuration of the issuer: %w", ErrKeysUnavailable, cerr)
		}
	}
	is.keep(e)
	if !e.allowed {
		return nil, fmt.Errorf("%w: not allowed", ErrIssuer)
	}
	return e, nil
}

// lookup asks each lookup in turn; the first that does not refuse the
// issuer answers.
func (is *Issuers) lookup(ctx context.Context, issuer string) (IssuerConfig, error) {
	err := fmt.Errorf("%w: not allowed", ErrIssuer)
	for _, f := range is.lookups {
		cfg, lerr := f(ctx, issuer)
		if lerr == nil {
			return cfg, nil
		}
		if !errors.Is(lerr, ErrIssuer) {
			return IssuerConfig{}, lerr
		}
	}
	return IssuerConfig{}, err
}

// keep stores e, replacing an expired entry of its issuer, and closes the
// least recently used entries past the bound.
func (is *Issuers) keep(e *issuerEntry) {
	var evicted []*issuerEntry
	is.mu.Lock()
	if old, ok := is.entries[e.issuer]; ok {
		is.lru.Remove(old.elem)
		delete(is.entries, old.issuer)
		evicted = append(evicted, old)
	}
	if is.closed {
		is.mu.Unlock()
		e.close()
		return
	}
	e.elem = is.lru.PushFront(e)
	is.entries[e.issuer] = e
	for is.lru.Len() > is.max {
		last := is.lru.Remove(is.lru.Back()).(*issuerEntry)
		delete(is.entries, last.issuer)
		evicted = append(evicted, last)
	}
	is.mu.Unlock()
	for _, old := range evicted {
		old.close()
	}
}

// verifierOf returns e's Verifier, building it on the first call; calls
// meanwhile wait for that build.
func (is *Issuers) verifierOf(ctx context.Context, e *issuerEntry) (*Verifier, error) {
	for {
		e.mu.Lock()
		if e.v != nil {
			v := e.v
			e.mu.Unlock()
			return v, nil
		}
		if wait := e.building; wait != nil {
			e.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, fmt.Errorf("%w: %w", ErrKeysUnavailable, ctx.Err())
			}
		}
		if now := is.now(); e.err != nil && now.Before(e.retryAt) {
			err := e.err
			e.mu.Unlock()
			return nil, err
		}
		done := make(chan struct{})
		e.building = done
		e.mu.Unlock()

		// The build outlives a client that hangs up: the next one needs
		// the keys too.
		v, err := NewVerifier(context.WithoutCancel(ctx), e.issuer, e.cfg.Options...)
		e.mu.Lock()
		e.building = nil
		if err != nil {
			e.err = fmt.Errorf("%w: issuer %q: %w", ErrKeysUnavailable, e.issuer, err)
			e.retryAt = is.now().Add(is.retry)
		} else {
			e.v, e.err = v, nil
		}
		closed, buildErr := e.closed, e.err
		e.mu.Unlock()
		close(done)
		if err != nil {
			return nil, buildErr
		}
		if closed {
			v.Close() // it still verifies this token with the keys it has
		}
		return v, nil
	}
}

// close stops the key refresh of e's Verifier, now or when a build in
// progress ends.
func (e *issuerEntry) close() {
	e.mu.Lock()
	e.closed = true
	v := e.v
	e.mu.Unlock()
	if v != nil {
		v.Close()
	}
}

// Close stops the key refresh of every Verifier the Issuers built.
// Verify keeps working with the keys they have.
func (is *Issuers) Close() error {
	is.mu.Lock()
	is.closed = true
	entries := make([]*issuerEntry, 0, len(is.entries)+len(is.static))
	for _, e := range is.entries {
		entries = append(entries, e)
	}
	is.mu.Unlock()
	for _, e := range is.static {
		entries = append(entries, e)
	}
	for _, e := range entries {
		e.close()
	}
	return nil
}
