package stamp

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"time"

	"github.com/tenancykit/tenancy/authz"
	"github.com/tenancykit/tenancy/internal/refusals"
	"github.com/tenancykit/tenancy/internal/request"
	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/tenant"
)

// by names the stamps' trust mode, as a refusal's By and the
// "tenancy.trust" attribute of tenancy.message.refused.
const by = "stamp"

// keysRetry is how long a message waits when its stamp cannot be checked
// yet (the producer's keys are not fetched): not its fault, so deferred.
const keysRetry = 5 * time.Second

// Verifier checks the stamps of one producing service (an issuer) with
// its public keys, through authz's key machinery: a JWK Set fetched and
// refreshed on rotation, or a static set; a bounded cache makes a
// redelivered stamp cost a lookup instead of a signature check. It
// remembers the stamps it accepted to refuse replays.
//
// A Verifier is safe for concurrent use. Build one at start-up, use it
// with [Trusted], and Close it to stop its key refresh.
type Verifier struct {
	v       *authz.Verifier
	now     func() time.Time
	replay  *replayCache
	store   ReplayStore
	refused *refusals.Counter
	// noDestination: no ForDestination, so a stamp made for one is
	// refused.
	noDestination bool
}

// NewVerifier returns a Verifier for the stamps of issuer (the producer's
// Signer.Issuer). It needs the producer's keys: [WithJWKSURL] or
// [WithJWKS]; it takes [ForDestination], [WithTiers], [WithClock],
// [WithReplayCacheSize], [WithReplayStore], [WithMeterProvider] and
// [WithAuthzOptions]. ctx bounds the first fetch of the JWK Set.
// Configuration mistakes, and a JWK Set that cannot be fetched, are errors
// here.
func NewVerifier(ctx context.Context, issuer string, opts ...Option) (*Verifier, error) {
	c, err := newConfig("NewVerifier", []string{"WithJWKSURL", "WithJWKS", "ForDestination", "WithTiers", "WithClock", "WithReplayCacheSize", "WithReplayStore", "WithMeterProvider", "WithAuthzOptions"}, opts)
	if err != nil {
		return nil, err
	}
	switch {
	case c.jwksURL == "" && c.jwks == nil:
		return nil, errors.New("stamp: NewVerifier needs the producer's public keys: WithJWKSURL (where it serves its Signer.JWKS) or WithJWKS")
	case c.jwksURL != "" && c.jwks != nil:
		return nil, errors.New("stamp: NewVerifier: WithJWKSURL and WithJWKS both give the keys: keep one")
	case c.replaySize < 0:
		return nil, errors.New("stamp: WithReplayCacheSize needs a positive size")
	}
	aopts := append([]authz.Option(nil), c.authzOpts...)
	if c.jwksURL != "" {
		aopts = append(aopts, authz.WithJWKSURL(c.jwksURL))
	} else {
		aopts = append(aopts, authz.WithJWKS(c.jwks))
	}
	if len(c.destinations) > 0 {
		aopts = append(aopts, authz.WithAudience(c.destinations...))
	} else {
		aopts = append(aopts, authz.WithAnyAudience())
	}
	aopts = append(aopts,
		authz.WithTiers(c.tiers),
		authz.WithClock(c.now),
		authz.WithClaimMapping(authz.ClaimMapping{Tenant: claimTenant, Tier: claimTier, Subject: "sub"}),
		authz.WithTokenTypes(Type),
	)
	v, err := authz.NewVerifier(ctx, issuer, aopts...)
	if err != nil {
		return nil, err
	}
	return &Verifier{v: v, now: c.now, replay: newReplayCache(c.replaySize), store: c.replayStore, refused: refusals.NewCounter(c.meterProvider), noDestination: len(c.destinations) == 0}, nil
}

// Close stops the background refresh of the JWK Set.
func (v *Verifier) Close() error { return v.v.Close() }

// Trusted returns the trust mode of signed stamps, for tenancy's
// WithMessageTrust: a message runs as the tenant its stamp names
// (tenant.SourceToken, with the stamp's tier and user) when the stamp was
// signed by a key of the producer, has the stamp [Type], names the
// verifier's issuer (and destination, with [ForDestination]), has not
// expired, matches the message's body, and was not seen before on another
// message of the same source. Any other message is refused with a
// [*message.RejectError] By "stamp" and one of the reasons "missing",
// "malformed", "too_large", "algorithm", "unknown_key", "signature",
// "type", "issuer", "destination", "expired", "not_yet_valid",
// "tenant_claim", "tier_claim", "claims", "body_digest" or "replayed", and
// counted. A stamp that cannot be checked yet defers the message,
// recorded By "stamp" for "keys_unavailable" (the keys are not fetched) or
// "replay_unavailable" (the [ReplayStore] could not answer).
//
// It panics when v is nil.
func Trusted(v *Verifier) message.Middleware {
	if v == nil {
		panic("stamp: Trusted needs a *Verifier")
	}
	return func(next message.Handler) message.Handler {
		if next == nil {
			panic("stamp: Trusted needs a handler")
		}
		return request.NewMessageHandler[*message.Message](request.Authz, next, func(st *request.State, m *message.Message, next request.MessageNext[*message.Message]) error {
			t, err := v.verify(st, m)
			if err != nil {
				return v.refuse(st, m, err)
			}
			st.SetTenant(&t, "")
			return next.HandleMessage(st, m)
		})
	}
}

// refuse records why verify refused a message, or could not check it,
// and returns the message's outcome. Apart from Trusted's handler, so
// that an accepted message does not pay for the refusal's variables.
func (v *Verifier) refuse(st *request.State, m *message.Message, err error) error {
	var rej *message.RejectError
	if errors.As(err, &rej) {
		rej.Tenant = claimedTenant(m)
		st.Reject(request.Rejection{By: rej.By, Reason: rej.Reason})
		v.refused.Add(st, rej.By, rej.Reason)
		return err
	}
	// The keys, or the replay store, are away: not the message's fault.
	reason, after := deferral(err)
	st.Reject(request.Rejection{By: by, Reason: reason})
	return message.Defer(after)
}

// verify establishes the tenant of m's stamp, or refuses m with a
// *message.RejectError, or returns the error of keys it cannot fetch or
// of a replay check the store could not make.
func (v *Verifier) verify(ctx context.Context, m *message.Message) (tenant.Tenant, error) {
	stamp := m.Attributes[Attribute]
	if stamp == "" {
		return tenant.Tenant{}, reject("missing", nil)
	}
	t, err := v.v.Verify(ctx, stamp)
	if err != nil {
		if errors.Is(err, authz.ErrKeysUnavailable) || errors.Is(err, authz.ErrTierUnavailable) {
			return tenant.Tenant{}, err
		}
		return tenant.Tenant{}, reject(stampReason(err), err)
	}
	c := t.Claims()
	if v.noDestination {
		// A stamp made for a destination is for the consumers that name it
		// (RFC 7519, 4.1.3): not for one that names none.
		if _, ok := c.Get("aud"); ok {
			return tenant.Tenant{}, reject("destination", errors.New("stamp: the stamp is for a destination and this verifier names none: give it ForDestination"))
		}
	}
	want, _ := c.String(claimBodyDigest)
	if want == "" {
		return tenant.Tenant{}, reject("claims", errors.New("stamp: the stamp has no body digest"))
	}
	sum := sha256.Sum256(m.Body)
	var got [43]byte // base64url of 32 bytes, unpadded: encoded on the stack
	base64.RawURLEncoding.Encode(got[:], sum[:])
	if want != string(got[:]) {
		return tenant.Tenant{}, reject("body_digest", errors.New("stamp: the body is not the one stamped"))
	}
	jti, _ := c.String("jti")
	exp, _ := c.Get("exp")
	expSec, _ := exp.(float64)
	if jti == "" || expSec == 0 {
		return tenant.Tenant{}, reject("claims", errors.New("stamp: the stamp has no jti or exp"))
	}
	fresh, err := v.seen(ctx, m.Source, jti, m.ID, time.Unix(int64(expSec), 0))
	if err != nil {
		return tenant.Tenant{}, err
	}
	if !fresh {
		return tenant.Tenant{}, reject("replayed", errors.New("stamp: the stamp came before on another message"))
	}
	return t, nil
}

// stampReasons are the refusal reasons of authz's errors.
var stampReasons = []struct {
	err    error
	reason string
}{
	{authz.ErrTokenTooLarge, "too_large"},
	{authz.ErrMalformedToken, "malformed"},
	{authz.ErrAlgorithm, "algorithm"},
	{authz.ErrUnknownKey, "unknown_key"},
	{authz.ErrSignature, "signature"},
	{authz.ErrExpired, "expired"},
	{authz.ErrNotYetValid, "not_yet_valid"},
	{authz.ErrIssuer, "issuer"},
	{authz.ErrAudience, "destination"},
	{authz.ErrTokenType, "type"},
	{authz.ErrTenantClaim, "tenant_claim"},
	{authz.ErrTierClaim, "tier_claim"},
}

func stampReason(err error) string {
	for _, r := range stampReasons {
		if errors.Is(err, r.err) {
			return r.reason
		}
	}
	return "claims"
}

// reject returns the refusal of a stamp.
func reject(reason string, err error) error {
	return &message.RejectError{By: by, Reason: reason, Err: err}
}
