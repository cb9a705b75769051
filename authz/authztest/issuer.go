package authztest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"github.com/tenancykit/tenancy/authz"
	"github.com/tenancykit/tenancy/internal/claimpath"
)

// DefaultAudience is the audience of minted tokens unless [WithAudience]
// says otherwise.
const DefaultAudience = "tenancy-test"

// Issuer is an OIDC issuer served over HTTP from the current process. It is
// safe for concurrent use.
type Issuer struct {
	cfg    issuerConfig
	server *http.Server
	served chan struct{}
	url    string

	mu      sync.Mutex
	keys    []*signingKey // keys[0] signs; all are published
	serial  int
	fetches atomic.Int64
}

type signingKey struct {
	kid    string
	alg    jwt.SigningMethod
	secret crypto.Signer
}

type issuerConfig struct {
	audience string
	alg      string
	mapping  authz.ClaimMapping
	now      func() time.Time
	addr     string
	lifetime time.Duration
}

// IssuerOption configures an [Issuer]. A nil IssuerOption is ignored, and
// an option given its zero value leaves the default in place.
type IssuerOption func(*issuerConfig)

// WithAudience sets the "aud" of minted tokens. Default [DefaultAudience],
// also for "".
func WithAudience(aud string) IssuerOption { return func(c *issuerConfig) { c.audience = aud } }

// WithAlgorithm sets the signing algorithm: "RS256" (the default, also for
// "": 2048-bit keys) or "ES256".
func WithAlgorithm(alg string) IssuerOption { return func(c *issuerConfig) { c.alg = alg } }

// WithClaimMapping sets the claim names Mint writes the tenant, tier and
// roles to. Default [authz.Cognito()], also for the zero ClaimMapping.
func WithClaimMapping(m authz.ClaimMapping) IssuerOption {
	return func(c *issuerConfig) { c.mapping = m }
}

// WithClock sets the time minted tokens are issued at. Default time.Now,
// also for nil.
func WithClock(now func() time.Time) IssuerOption { return func(c *issuerConfig) { c.now = now } }

// WithAddr serves the issuer on addr instead of a free loopback port, the
// default (also for "").
func WithAddr(addr string) IssuerOption { return func(c *issuerConfig) { c.addr = addr } }

// WithLifetime sets how long minted tokens are valid. Default one hour,
// also for 0; [WithExpiry] sets it for one token.
func WithLifetime(d time.Duration) IssuerOption { return func(c *issuerConfig) { c.lifetime = d } }

// setDefaults gives every setting that no option set, or that an option
// set to its zero value, its default.
func (c *issuerConfig) setDefaults() {
	if c.audience == "" {
		c.audience = DefaultAudience
	}
	if c.alg == "" {
		c.alg = "RS256"
	}
	if c.mapping.Tenant == "" {
		c.mapping = authz.Cognito()
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.lifetime == 0 {
		c.lifetime = time.Hour
	}
}

// NewIssuer starts an issuer. Close it when done.
func NewIssuer(opts ...IssuerOption) (*Issuer, error) {
	var cfg issuerConfig
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	cfg.setDefaults()
	if cfg.alg != "RS256" && cfg.alg != "ES256" {
		return nil, fmt.Errorf("authztest: WithAlgorithm: %q is not RS256 or ES256", cfg.alg)
	}
	iss := &Issuer{cfg: cfg}
	if _, err := iss.addKey(); err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", iss.serveDiscovery)
	mux.HandleFunc("GET /.well-known/jwks.json", iss.serveJWKS)
	addr := cfg.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("authztest: listen on %s: %w", addr, err)
	}
	iss.url = "http://" + ln.Addr().String()
	iss.server = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	iss.served = make(chan struct{})
	go func() {
		defer close(iss.served)
		iss.server.Serve(ln)
	}()
	return iss, nil
}

// TB is the part of testing.TB that [Start] and [Issuer.Verifier] use. It
// keeps package testing out of services that run the issuer in
// development mode.
type TB interface {
	Helper()
	Fatal(args ...any)
	Cleanup(func())
}

// Start starts an issuer that is closed when the test ends.
func Start(t TB, opts ...IssuerOption) *Issuer {
	t.Helper()
	iss, err := NewIssuer(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(iss.Close)
	return iss
}

// Close stops serving and waits until the server has stopped.
func (i *Issuer) Close() {
	i.server.Close()
	<-i.served
}

// URL is the issuer identifier: the "iss" of minted tokens and the base of
// its discovery document.
func (i *Issuer) URL() string { return i.url }

// JWKSURL is where the issuer publishes its keys.
func (i *Issuer) JWKSURL() string { return i.url + "/.well-known/jwks.json" }

// Audience is the "aud" of minted tokens.
func (i *Issuer) Audience() string { return i.cfg.audience }

// JWKSFetches counts the requests served for the JWK Set.
func (i *Issuer) JWKSFetches() int { return int(i.fetches.Load()) }

// KeyID returns the ID of the key that signs new tokens.
func (i *Issuer) KeyID() string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.keys[0].kid
}

// PublicKey returns the public key that verifies new tokens.
func (i *Issuer) PublicKey() crypto.PublicKey {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.keys[0].secret.Public()
}

// Rotate makes a new key the signing key. The previous keys stay published
// (as during a real rotation) unless retire is true, then only the new key
// is published and tokens signed before no longer verify once a verifier
// refreshes.
func (i *Issuer) Rotate(retire bool) error {
	k, err := i.addKey()
	if err != nil {
		return err
	}
	if retire {
		i.mu.Lock()
		i.keys = []*signingKey{k}
		i.mu.Unlock()
	}
	return nil
}

func (i *Issuer) addKey() (*signingKey, error) {
	var (
		signer crypto.Signer
		method jwt.SigningMethod
		err    error
	)
	switch i.cfg.alg {
	case "ES256":
		signer, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		method = jwt.SigningMethodES256
	default:
		signer, err = rsa.GenerateKey(rand.Reader, 2048)
		method = jwt.SigningMethodRS256
	}
	if err != nil {
		return nil, fmt.Errorf("authztest: generate key: %w", err)
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	i.serial++
	k := &signingKey{kid: "test-key-" + strconv.Itoa(i.serial), alg: method, secret: signer}
	i.keys = append([]*signingKey{k}, i.keys...)
	return k, nil
}

func (i *Issuer) serveDiscovery(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"issuer":                                i.url,
		"jwks_uri":                              i.JWKSURL(),
		"id_token_signing_alg_values_supported": []string{i.cfg.alg},
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
	})
}

func (i *Issuer) serveJWKS(w http.ResponseWriter, r *http.Request) {
	i.fetches.Add(1)
	body, err := i.JWKS(r.Context())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(body)
}

// JWKS returns the published JWK Set document.
func (i *Issuer) JWKS(ctx context.Context) ([]byte, error) {
	i.mu.Lock()
	keys := append([]*signingKey(nil), i.keys...)
	i.mu.Unlock()
	set := jwkset.NewMemoryStorage()
	for _, k := range keys {
		jwk, err := jwkset.NewJWKFromKey(k.secret.Public(), jwkset.JWKOptions{
			Metadata: jwkset.JWKMetadataOptions{KID: k.kid, ALG: jwkset.ALG(k.alg.Alg()), USE: jwkset.UseSig},
		})
		if err != nil {
			return nil, fmt.Errorf("authztest: JWK: %w", err)
		}
		if err := set.KeyWrite(ctx, jwk); err != nil {
			return nil, err
		}
	}
	return set.JSONPublic(ctx)
}

// Verifier returns a verifier for this issuer's tokens (discovery, its
// audience, its claim mapping), closed when the test ends. opts are added
// after those defaults.
func (i *Issuer) Verifier(t TB, opts ...authz.Option) *authz.Verifier {
	t.Helper()
	v, err := i.NewVerifier(context.Background(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

// NewVerifier is Verifier without a test; the caller closes it.
func (i *Issuer) NewVerifier(ctx context.Context, opts ...authz.Option) (*authz.Verifier, error) {
	base := []authz.Option{authz.WithAudience(i.cfg.audience), authz.WithClaimMapping(i.cfg.mapping)}
	return authz.NewVerifier(ctx, i.url, append(base, opts...)...)
}

// TokenOption changes a minted token.
type TokenOption func(*tokenSpec)

type tokenSpec struct {
	claims map[string]any
	header map[string]any
	kid    *string
}

// WithSubject sets "sub". Default "user-1".
func WithSubject(sub string) TokenOption {
	return func(s *tokenSpec) { s.claims["sub"] = sub }
}

// WithRoles sets the roles claim of the issuer's mapping.
func WithRoles(roles ...string) TokenOption {
	return func(s *tokenSpec) { s.claims["\x00roles"] = roles }
}

// WithScopes sets "scope" to the space-separated scopes.
func WithScopes(scopes ...string) TokenOption {
	return func(s *tokenSpec) { s.claims["scope"] = strings.Join(scopes, " ") }
}

// WithClaim sets any claim; a name with dots sets a nested claim unless the
// name contains "://". A nil value removes the claim.
func WithClaim(name string, value any) TokenOption {
	return func(s *tokenSpec) { s.claims[name] = value }
}

// WithExpiry sets "exp" to d after the issue time; negative for an expired
// token.
func WithExpiry(d time.Duration) TokenOption {
	return func(s *tokenSpec) { s.claims["\x00exp"] = d }
}

// WithKeyID sets the "kid" header, for tokens that name an unknown key.
func WithKeyID(kid string) TokenOption { return func(s *tokenSpec) { s.kid = &kid } }

// WithHeader sets a header parameter of the token; nil leaves it out.
func WithHeader(name string, value any) TokenOption {
	return func(s *tokenSpec) { s.header[name] = value }
}

// Mint returns a signed token for tenantID on the named tier. An empty tier
// leaves the tier claim out.
func (i *Issuer) Mint(tenantID, tier string, opts ...TokenOption) (string, error) {
	now := i.cfg.now()
	spec := tokenSpec{
		claims: map[string]any{
			"iss": i.url,
			"aud": i.cfg.audience,
			"sub": "user-1",
			"iat": now.Unix(),
			"exp": now.Add(i.cfg.lifetime).Unix(),
		},
		header: map[string]any{},
	}
	m := i.cfg.mapping
	spec.claims[m.Tenant] = tenantID
	if tier != "" && m.Tier != "" {
		spec.claims[m.Tier] = tier
	}
	for _, o := range opts {
		if o != nil {
			o(&spec)
		}
	}
	if roles, ok := spec.claims["\x00roles"]; ok {
		delete(spec.claims, "\x00roles")
		if m.Roles != "" {
			spec.claims[m.Roles] = roles
		}
	}
	if d, ok := spec.claims["\x00exp"].(time.Duration); ok {
		delete(spec.claims, "\x00exp")
		spec.claims["exp"] = now.Add(d).Unix()
	}
	claims := jwt.MapClaims{}
	for name, v := range spec.claims {
		if v == nil {
			continue
		}
		setClaim(claims, name, v)
	}
	i.mu.Lock()
	k := i.keys[0]
	i.mu.Unlock()
	tok := jwt.NewWithClaims(k.alg, claims)
	tok.Header["kid"] = k.kid
	if spec.kid != nil {
		tok.Header["kid"] = *spec.kid
	}
	for h, v := range spec.header {
		if v == nil {
			delete(tok.Header, h)
			continue
		}
		tok.Header[h] = v
	}
	return tok.SignedString(k.secret)
}

// MustMint is Mint that panics on error.
func (i *Issuer) MustMint(tenantID, tier string, opts ...TokenOption) string {
	tok, err := i.Mint(tenantID, tier, opts...)
	if err != nil {
		panic(err)
	}
	return tok
}

// setClaim sets the claim name, a path into nested objects when it has a
// dot (and is no namespaced URL), with quoted segments as authz reads
// them.
func setClaim(claims map[string]any, name string, v any) {
	if strings.Contains(name, "://") || !strings.ContainsAny(name, `."`) {
		claims[name] = v
		return
	}
	parts, err := claimpath.Split(name)
	if err != nil {
		claims[name] = v
		return
	}
	cur := claims
	for _, p := range parts[:len(parts)-1] {
		next, ok := cur[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			cur[p] = next
		}
		cur = next
	}
	cur[parts[len(parts)-1]] = v
}
