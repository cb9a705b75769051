package stamp

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sync"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"github.com/tenancykit/tenancy/internal/propagate"
	"github.com/tenancykit/tenancy/tenant"
	"go.opentelemetry.io/otel/propagation"
)

// What a stamp is and where it travels.
const (
	// Attribute is the message attribute that carries the stamp.
	Attribute = "tenancy-stamp"
	// Type is the stamp's JWS "typ" header. A Verifier accepts no other,
	// so a user's access token never passes as a stamp, and authz's
	// verifiers refuse it, so a stamp never passes as an access token.
	Type = "tenancy-stamp+jwt"
)

// The claims of a stamp besides the registered ones (iss, sub, aud, iat,
// exp, jti).
const (
	claimTenant     = "tenant_id"
	claimTier       = "tier"
	claimBodyDigest = "body_sha256"
)

// Errors of [Signer.Stamp].
var (
	// ErrNoTenant: the context has no tenant; it wraps tenant.ErrNoTenant.
	ErrNoTenant = fmt.Errorf("stamp: no tenant to stamp: %w", tenant.ErrNoTenant)
	// ErrClaimedTenant: the context's tenant is only claimed
	// (tenant.SourceClaimed). A stamp vouches for a tenant to another
	// service, and no one verified this one.
	ErrClaimedTenant = errors.New("stamp: the tenant is only claimed, and a stamp vouches only for a verified tenant")
	// ErrNoTier: the context's tenant has no tier, which the consumer
	// needs for its limits.
	ErrNoTier = errors.New("stamp: the tenant has no tier to stamp")
)

// Signer stamps outgoing messages with the verified tenant of the context,
// signed with the producing service's own key, and publishes the public
// keys for consumers ([Signer.JWKS]). Give each producing service a key of
// its own: a consumer then trusts a stamp as far as it trusts the one
// service whose key signed it.
//
// Keys rotate by key ID: [Signer.AddKey] publishes a new key, [Signer.Rotate]
// signs with it from then on, and the old key stays published until
// [Signer.RemoveKey], which should wait for the stamps it signed to expire
// (the max age) and for consumers to have fetched the new set.
//
// A Signer is safe for concurrent use.
type Signer struct {
	issuer string
	cfg    config

	mu      sync.RWMutex
	keys    []*signingKey // published, in the order added
	current *signingKey
	jwks    []byte // the JWK Set document of keys
}

type signingKey struct {
	kid    string
	key    crypto.Signer
	method jwt.SigningMethod
}

// NewSigner returns a Signer for the service named by issuer (an absolute
// URL: the "iss" of its stamps, which consumers name in [NewVerifier]),
// signing with key under the key ID kid. The key is an *ecdsa.PrivateKey
// on P-256 (ES256), an *rsa.PrivateKey of 2048 bits or more (RS256) or an
// ed25519.PrivateKey (EdDSA): the algorithms a [Verifier] accepts. It
// takes [WithMaxAge] and [WithClock].
func NewSigner(issuer string, key crypto.Signer, kid string, opts ...Option) (*Signer, error) {
	c, err := newConfig("NewSigner", []string{"WithMaxAge", "WithClock"}, opts)
	if err != nil {
		return nil, err
	}
	if u, err := url.Parse(issuer); err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("stamp: NewSigner: issuer %q is not an absolute URL", issuer)
	}
	if c.maxAge < 0 {
		return nil, errors.New("stamp: WithMaxAge needs a positive duration")
	}
	k, err := newSigningKey(key, kid)
	if err != nil {
		return nil, fmt.Errorf("stamp: NewSigner: %w", err)
	}
	s := &Signer{issuer: issuer, cfg: c}
	s.keys, s.current = []*signingKey{k}, k
	if err := s.publish(); err != nil {
		return nil, err
	}
	return s, nil
}

func newSigningKey(key crypto.Signer, kid string) (*signingKey, error) {
	if kid == "" {
		return nil, errors.New("a key needs a key ID")
	}
	var m jwt.SigningMethod
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, errors.New("an ECDSA key must be on P-256 (ES256)")
		}
		m = jwt.SigningMethodES256
	case *rsa.PrivateKey:
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("an RSA key of %d bits is too short: 2048 or more", k.N.BitLen())
		}
		m = jwt.SigningMethodRS256
	case ed25519.PrivateKey:
		m = jwt.SigningMethodEdDSA
	default:
		return nil, fmt.Errorf("a key of type %T is not supported: *ecdsa.PrivateKey (P-256), *rsa.PrivateKey or ed25519.PrivateKey", key)
	}
	return &signingKey{kid: kid, key: key, method: m}, nil
}

// publish rebuilds the JWK Set document; s.mu is held, or s is new.
func (s *Signer) publish() error {
	set := jwkset.JWKSMarshal{}
	for _, k := range s.keys {
		jwk, err := jwkset.NewJWKFromKey(k.key.Public(), jwkset.JWKOptions{
			Metadata: jwkset.JWKMetadataOptions{KID: k.kid, ALG: jwkset.ALG(k.method.Alg()), USE: jwkset.UseSig},
		})
		if err != nil {
			return fmt.Errorf("stamp: key %q: %w", k.kid, err)
		}
		set.Keys = append(set.Keys, jwk.Marshal())
	}
	doc, err := json.Marshal(set)
	if err != nil {
		return fmt.Errorf("stamp: JWK Set: %w", err)
	}
	s.jwks = doc
	return nil
}

// AddKey publishes key under kid, without signing with it yet: consumers
// that fetch the JWK Set learn it before the first stamp it signs
// ([Signer.Rotate]).
func (s *Signer) AddKey(key crypto.Signer, kid string) error {
	k, err := newSigningKey(key, kid)
	if err != nil {
		return fmt.Errorf("stamp: AddKey: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if slices.ContainsFunc(s.keys, func(o *signingKey) bool { return o.kid == kid }) {
		return fmt.Errorf("stamp: AddKey: key ID %q is taken", kid)
	}
	s.keys = append(s.keys, k)
	if err := s.publish(); err != nil {
		s.keys = s.keys[:len(s.keys)-1]
		return err
	}
	return nil
}

// Rotate signs with the key published under kid from now on. The key it
// replaces stays published, so that stamps it signed still verify.
func (s *Signer) Rotate(kid string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(s.keys, func(k *signingKey) bool { return k.kid == kid })
	if i < 0 {
		return fmt.Errorf("stamp: Rotate: no key %q: AddKey first", kid)
	}
	s.current = s.keys[i]
	return nil
}

// RemoveKey stops publishing the key under kid: stamps it signed no
// longer verify once consumers fetch the set again. The key stamps are
// signed with cannot be removed.
func (s *Signer) RemoveKey(kid string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.current.kid == kid {
		return fmt.Errorf("stamp: RemoveKey: %q signs the stamps: Rotate to another key first", kid)
	}
	i := slices.IndexFunc(s.keys, func(k *signingKey) bool { return k.kid == kid })
	if i < 0 {
		return fmt.Errorf("stamp: RemoveKey: no key %q", kid)
	}
	keys := s.keys
	s.keys = slices.Delete(slices.Clone(keys), i, i+1)
	if err := s.publish(); err != nil {
		s.keys = keys
		return err
	}
	return nil
}

// JWKS returns the JWK Set document of the published public keys, to
// serve at the URL consumers name in [WithJWKSURL] (with Content-Type
// application/json). Each call returns a new slice.
func (s *Signer) JWKS() []byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return bytes.Clone(s.jwks)
}

// Issuer returns the issuer the Signer's stamps name.
func (s *Signer) Issuer() string { return s.issuer }

// MessageOption configures the stamp of one message ([Signer.Stamp]). A
// nil MessageOption is ignored.
type MessageOption func(*messageConfig)

type messageConfig struct {
	destination string
}

// WithDestination names the destination the message is for (a queue, a
// stream, the consuming service: the name the consumer gives
// [ForDestination]), as the stamp's audience: a consumer for another
// destination refuses it. Default none.
func WithDestination(name string) MessageOption {
	return func(c *messageConfig) { c.destination = name }
}

// Stamp returns the attributes to send with a message of body: the stamp
// (under [Attribute]), a compact JWS signed with the current key that
// names the issuer, the tenant of ctx, its tier and user, when it was made
// and when it expires, a unique ID and the SHA-256 digest of body; and the
// W3C trace context and baggage of ctx (traceparent, baggage and, when
// there is one, tracestate), so that the consumer's lines continue the
// producer's trace. The caller's bearer token is never put in a message.
//
// The tenant must be one that was verified (tenant.Source.Verified): a
// claimed tenant gets [ErrClaimedTenant], a context without one
// [ErrNoTenant], a tenant without a tier [ErrNoTier].
func (s *Signer) Stamp(ctx context.Context, body []byte, opts ...MessageOption) (map[string]string, error) {
	var mc messageConfig
	for _, o := range opts {
		if o != nil {
			o(&mc)
		}
	}
	t, ok := tenant.FromContext(ctx)
	switch {
	case !ok || t.IsZero():
		return nil, ErrNoTenant
	case !t.Source.Verified():
		return nil, ErrClaimedTenant
	case t.Tier.IsZero():
		return nil, ErrNoTier
	}
	now := s.cfg.now()
	digest := sha256.Sum256(body)
	claims := jwt.MapClaims{
		"iss":           s.issuer,
		"iat":           now.Unix(),
		"exp":           now.Add(s.cfg.maxAge).Unix(),
		"jti":           rand.Text(),
		claimTenant:     t.ID,
		claimTier:       t.Tier.String(),
		claimBodyDigest: base64.RawURLEncoding.EncodeToString(digest[:]),
	}
	if t.Subject != "" {
		claims["sub"] = t.Subject
	}
	if mc.destination != "" {
		claims["aud"] = mc.destination
	}
	s.mu.RLock()
	k := s.current
	s.mu.RUnlock()
	tok := jwt.NewWithClaims(k.method, claims)
	tok.Header["typ"] = Type
	tok.Header["kid"] = k.kid
	stamp, err := tok.SignedString(k.key)
	if err != nil {
		return nil, fmt.Errorf("stamp: Stamp: %w", err)
	}
	attrs := map[string]string{Attribute: stamp}
	propagate.Inject(ctx, t.ID, propagation.MapCarrier(attrs))
	return attrs, nil
}
