package bench_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tenancykit/tenancy"
	"github.com/tenancykit/tenancy/authz"
	"github.com/tenancykit/tenancy/logging"
	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/message/stamp"
	"github.com/tenancykit/tenancy/meter"
	"github.com/tenancykit/tenancy/tenant"
	"github.com/tenancykit/tenancy/throttle"
)

// The message stream every consumer handles: an order placed by alice of
// tenant acme (premium), stamped by the orders service for the
// fulfillment queue, delivered again and again with the same ID, as a
// transport redelivers a message (Message.ID is the transport's, the same
// on every delivery).
const (
	stampIssuer = "https://orders.example.com"
	stampKID    = "orders-2026-11"
	msgSource   = "fulfillment"
	msgID       = "1732968000000-0"
)

// msgBody is the body of every message: an order, as the orders example
// would publish it.
var msgBody = []byte(`{"id":"a40388c6c3f3967f","tenant_id":"acme","user_id":"alice","item":"anvil","quantity":2,"created_at":"2026-11-21T23:44:55.855892381Z"}`)

// stampAlgs are the algorithms the stamp benchmarks compare, each with a
// key of its own, as the producer would sign with it.
var stampAlgs = []string{"ES256", "RS256"}

// stampFixture is one producer key and what it signed: a stamped message,
// and an access token of the same claims signed with the same key, for
// the verifiers that read access tokens.
type stampFixture struct {
	alg    string
	signer *stamp.Signer
	public crypto.PublicKey
	msg    *message.Message // stamped, for msgSource, with msgID
	stamp  string           // the stamp of msg
	token  string           // an access token of the same tenant and key
}

var (
	stampMu       sync.Mutex
	stampFixtures = map[string]*stampFixture{}
)

// getStampFixture returns the fixture of alg, built once per process (an
// RSA key takes a while to generate) and only when a benchmark needs it.
func getStampFixture(tb testing.TB, alg string) *stampFixture {
	tb.Helper()
	stampMu.Lock()
	defer stampMu.Unlock()
	if f, ok := stampFixtures[alg]; ok {
		return f
	}
	f, err := newStampFixture(alg)
	if err != nil {
		tb.Fatalf("%s: %v", alg, err)
	}
	stampFixtures[alg] = f
	return f
}

func newStampFixture(alg string) (*stampFixture, error) {
	var key crypto.Signer
	var method jwt.SigningMethod
	var err error
	switch alg {
	case "ES256":
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		method = jwt.SigningMethodES256
	case "RS256":
		key, err = rsa.GenerateKey(rand.Reader, 2048)
		method = jwt.SigningMethodRS256
	default:
		return nil, fmt.Errorf("unknown algorithm %s", alg)
	}
	if err != nil {
		return nil, err
	}
	signer, err := stamp.NewSigner(stampIssuer, key, stampKID, stamp.WithMaxAge(24*time.Hour))
	if err != nil {
		return nil, err
	}
	// The producer's request: alice of acme, verified from her token.
	ctx := tenant.NewContext(context.Background(), tenant.Tenant{
		ID: benchTenant, Tier: tenant.DefaultTiers.MustLookup(benchTier),
		Subject: "alice", Source: tenant.SourceToken,
	})
	attrs, err := signer.Stamp(ctx, msgBody, stamp.WithDestination(msgSource))
	if err != nil {
		return nil, err
	}
	// An access token of the stamp's size and claims (a jti, a digest-long
	// claim, a typ), so that authz verifies as many bytes as the stamp's
	// verifier does.
	now := time.Now()
	digest := sha256.Sum256(msgBody)
	tok := jwt.NewWithClaims(method, jwt.MapClaims{
		"iss": stampIssuer, "sub": "alice", "aud": msgSource,
		"iat": now.Unix(), "exp": now.Add(24 * time.Hour).Unix(),
		"jti":       rand.Text(),
		"tenant_id": benchTenant, "tier": benchTier,
		"body_sha256": base64.RawURLEncoding.EncodeToString(digest[:]),
	})
	tok.Header["kid"] = stampKID
	tok.Header["typ"] = "JWT"
	token, err := tok.SignedString(key)
	if err != nil {
		return nil, err
	}
	return &stampFixture{
		alg:    alg,
		signer: signer,
		public: key.Public(),
		msg:    &message.Message{ID: msgID, Source: msgSource, Body: msgBody, Attributes: attrs, Deliveries: 1},
		stamp:  attrs[stamp.Attribute],
		token:  token,
	}, nil
}

// verifier returns a stamp verifier of f's producer (its JWK Set in
// memory, as stamp.WithJWKS takes it), for msgSource, closed when tb
// ends.
func (f *stampFixture) verifier(tb testing.TB, opts ...stamp.Option) *stamp.Verifier {
	tb.Helper()
	base := []stamp.Option{stamp.WithJWKS(f.signer.JWKS()), stamp.ForDestination(msgSource)}
	v, err := stamp.NewVerifier(context.Background(), stampIssuer, append(base, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { v.Close() })
	return v
}

// uncachedVerifier is verifier without the verified-stamp cache: every
// delivery checks the signature, the fresh path.
func (f *stampFixture) uncachedVerifier(tb testing.TB) *stamp.Verifier {
	return f.verifier(tb, stamp.WithAuthzOptions(authz.WithCacheSize(-1)))
}

// tokenVerifier returns an authz verifier of f's access token, with the
// same key and algorithm and no cache: what a service pays for a bearer
// token it has not seen.
func (f *stampFixture) tokenVerifier(tb testing.TB) *authz.Verifier {
	tb.Helper()
	v, err := authz.NewVerifier(context.Background(), stampIssuer,
		authz.WithJWKS(f.signer.JWKS()),
		authz.WithAudience(msgSource),
		authz.WithClaimMapping(authz.ClaimMapping{Tenant: "tenant_id", Tier: "tier", Subject: "sub"}),
		authz.WithCacheSize(-1))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { v.Close() })
	return v
}

// noopMessage is the bare consumer: a handler that checks the body is
// there and acknowledges.
var noopMessage = message.HandlerFunc(func(_ context.Context, m *message.Message) error {
	if len(m.Body) == 0 {
		return errors.New("empty body")
	}
	return nil
})

// BenchmarkStampVerify checks one stamped message's stamp, for each
// algorithm: stamp is stamp.Trusted around a no-op handler with a
// verifier without its cache (the signature checked on every delivery:
// a stamp not seen before); stamp-cached is the same message redelivered
// through the verified-stamp cache (the signature checked once); jwt.Parse
// is golang-jwt parsing and verifying the same stamp with the same key
// (what authz builds on); authz is authz.Verifier.Verify of an
// access token of the same claims, key and algorithm, without its cache
// (a bearer token seen for the first time).
func BenchmarkStampVerify(b *testing.B) {
	ctx := context.Background()
	for _, alg := range stampAlgs {
		f := getStampFixture(b, alg)
		fresh := stamp.Trusted(f.uncachedVerifier(b))(noopMessage)
		cached := stamp.Trusted(f.verifier(b))(noopMessage)
		tv := f.tokenVerifier(b)
		keyfunc := func(*jwt.Token) (any, error) { return f.public, nil }
		for _, bc := range []struct {
			name   string
			verify func() error
		}{
			{"stamp", func() error { return fresh.HandleMessage(ctx, f.msg) }},
			{"stamp-cached", func() error { return cached.HandleMessage(ctx, f.msg) }},
			{"jwt.Parse", func() error { _, err := jwt.Parse(f.stamp, keyfunc); return err }},
			{"authz", func() error { _, err := tv.Verify(ctx, f.token); return err }},
		} {
			if err := bc.verify(); err != nil {
				b.Fatalf("%s/%s: %v", alg, bc.name, err)
			}
			b.Run(alg+"/"+bc.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if err := bc.verify(); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// messageParts are the parts of our consumer stack, built as a service
// would build them at start-up: the message log through our handler to
// JSON discarded, a recorder of the message meters whose sink drops
// everything, a limiter whose limits no message reaches.
type messageParts struct {
	logger   *slog.Logger
	recorder *meter.Recorder
	limiter  *throttle.Limiter
}

func newMessageParts(tb testing.TB) *messageParts {
	tb.Helper()
	limiter, err := throttle.New(tenant.DefaultTiers, unlimited())
	if err != nil {
		tb.Fatal(err)
	}
	rec, err := meter.New("fulfillment", noSink, meter.WithoutLoop(),
		meter.WithWindow(24*time.Hour), // no window closes during the run
		meter.WithMeters(meter.MessageMeters()...),
		meter.WithLogger(slog.New(discardJSON())))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { rec.Shutdown(context.Background()) })
	return &messageParts{
		logger:   slog.New(logging.NewHandler(discardOurJSON())),
		recorder: rec,
		limiter:  limiter,
	}
}

// message layer names, outermost first, as Stack.WrapMessages orders them.
const (
	layerMessageLog = "messagelog"
	layerTrust      = "trust"
)

var allMessageLayers = []string{layerMessageLog, layerMeter, layerTrust, layerThrottle}

// handler wraps h in the given layers (a subset of allMessageLayers,
// which must hold layerTrust) with tenancy.New and Stack.WrapMessages,
// trusting messages by trust.
func (p *messageParts) handler(trust message.Middleware, h message.Handler, layers ...string) message.Handler {
	opts := []tenancy.Option{tenancy.WithMessageTrust(trust)}
	for _, l := range layers {
		switch l {
		case layerMessageLog:
			opts = append(opts, tenancy.WithAccessLog(p.logger))
		case layerMeter:
			opts = append(opts, tenancy.WithMeter(p.recorder))
		case layerThrottle:
			opts = append(opts, tenancy.WithThrottle(p.limiter))
		}
	}
	stack, err := tenancy.New(opts...)
	if err != nil {
		panic(err)
	}
	return stack.WrapMessages(h)
}

// messageCase is one way to consume the message stream.
type messageCase struct {
	name string
	h    message.Handler
}

// messageCases builds the consumers BenchmarkMessageStack compares,
// around the same handler, each handling the same ES256-stamped message
// redelivered:
//
//   - bare: the handler alone, as if no one asked whose message it is;
//   - tenancy-stamp-cached: message log → meter → stamp.Trusted →
//     throttle, the stamp already verified (a redelivery: the signature is
//     checked once, then found in the verified-stamp cache);
//   - tenancy-stamp-fresh: the same stack whose verifier has no cache, so
//     that every delivery checks the signature;
//   - tenancy-boundqueue: the same stack trusting the queue
//     (message.BoundQueue), no stamp checked at all.
func messageCases(tb testing.TB, h message.Handler) []messageCase {
	f := getStampFixture(tb, "ES256")
	premium := tenant.DefaultTiers.MustLookup(benchTier)
	return []messageCase{
		{"bare", h},
		{"tenancy-stamp-cached", newMessageParts(tb).handler(stamp.Trusted(f.verifier(tb)), h, allMessageLayers...)},
		{"tenancy-stamp-fresh", newMessageParts(tb).handler(stamp.Trusted(f.uncachedVerifier(tb)), h, allMessageLayers...)},
		{"tenancy-boundqueue", newMessageParts(tb).handler(message.BoundQueue(benchTenant, premium), h, allMessageLayers...)},
	}
}

// BenchmarkMessageStack handles the same message through each consumer,
// one at a time. The difference from bare is what a stack adds per
// message; bench/cmd/report computes it.
func BenchmarkMessageStack(b *testing.B) {
	f := getStampFixture(b, "ES256")
	ctx := context.Background()
	for _, mc := range messageCases(b, noopMessage) {
		if err := mc.h.HandleMessage(ctx, f.msg); err != nil {
			b.Fatalf("%s: %v", mc.name, err)
		}
		b.Run(mc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := mc.h.HandleMessage(ctx, f.msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMessageLayers adds the layers of our consumer stack one at a
// time around the stamp's trust mode (which Stack.WrapMessages needs),
// with the stamp cached, so that a regression can be traced to its layer.
// Compare with MessageStack/bare.
func BenchmarkMessageLayers(b *testing.B) {
	f := getStampFixture(b, "ES256")
	ctx := context.Background()
	parts := newMessageParts(b)
	trust := stamp.Trusted(f.verifier(b))
	for _, layers := range [][]string{
		{layerTrust},
		{layerMessageLog, layerTrust},
		{layerMessageLog, layerMeter, layerTrust},
		allMessageLayers,
	} {
		h := parts.handler(trust, noopMessage, layers...)
		if err := h.HandleMessage(ctx, f.msg); err != nil {
			b.Fatal(err)
		}
		b.Run(strings.Join(layers, "+"), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := h.HandleMessage(ctx, f.msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestMessageStacks checks that every consumer acknowledges the message
// stream and that the handler inside ours runs as the stamp's tenant (or
// the queue's).
func TestMessageStacks(t *testing.T) {
	f := getStampFixture(t, "ES256")
	var seen tenant.Tenant
	h := message.HandlerFunc(func(ctx context.Context, m *message.Message) error {
		seen, _ = tenant.FromContext(ctx)
		return noopMessage(ctx, m)
	})
	for _, mc := range messageCases(t, h) {
		t.Run(mc.name, func(t *testing.T) {
			for range 3 {
				seen = tenant.Tenant{}
				if err := mc.h.HandleMessage(t.Context(), f.msg); err != nil {
					t.Fatalf("delivery: %v", err)
				}
				switch {
				case mc.name == "bare":
				case seen.ID != benchTenant || seen.Tier.String() != benchTier:
					t.Fatalf("the handler ran as %q on %q, want %s on %s", seen.ID, seen.Tier.String(), benchTenant, benchTier)
				}
			}
		})
	}
}

// TestStampPaths checks that the stamp benchmarks measure the paths they
// name: the fresh verifier checks the signature on every delivery and the
// cached one only on the first (a check reads the clock more often than
// a cache hit), and every verifier refuses the stamp once its signature
// is tampered with.
func TestStampPaths(t *testing.T) {
	for _, alg := range stampAlgs {
		t.Run(alg, func(t *testing.T) {
			f := getStampFixture(t, alg)
			ctx := t.Context()
			var reads atomic.Int64
			clock := stamp.WithClock(func() time.Time { reads.Add(1); return time.Now() })
			perDelivery := func(v *stamp.Verifier) (first, again int64) {
				h := stamp.Trusted(v)(noopMessage)
				for i := range 3 {
					before := reads.Load()
					if err := h.HandleMessage(ctx, f.msg); err != nil {
						t.Fatal(err)
					}
					switch n := reads.Load() - before; i {
					case 0:
						first = n
					case 1:
						again = n
					default:
						if n != again {
							t.Fatalf("deliveries read the clock %d then %d times: not one path", again, n)
						}
					}
				}
				return first, again
			}
			cachedFirst, cachedAgain := perDelivery(f.verifier(t, clock))
			freshFirst, freshAgain := perDelivery(f.verifier(t, clock, stamp.WithAuthzOptions(authz.WithCacheSize(-1))))
			if cachedAgain >= cachedFirst {
				t.Errorf("a redelivery through the cache reads the clock %d times, the first delivery %d: the cache did not hit", cachedAgain, cachedFirst)
			}
			if freshAgain != freshFirst || freshAgain != cachedFirst {
				t.Errorf("without the cache, deliveries read the clock %d then %d times, want %d (a full check) each time", freshFirst, freshAgain, cachedFirst)
			}

			// The signature changed: every verifier refuses it.
			tampered := tamperSignature(f.stamp)
			m := *f.msg
			m.ID = "tampered"
			m.Attributes = map[string]string{stamp.Attribute: tampered}
			err := stamp.Trusted(f.uncachedVerifier(t))(noopMessage).HandleMessage(ctx, &m)
			if o, _, reason := message.OutcomeOf(err); o != message.Rejected || reason != "stamp:signature" {
				t.Errorf("a tampered stamp: %v %q (%v), want rejected stamp:signature", o, reason, err)
			}
			keyfunc := func(*jwt.Token) (any, error) { return f.public, nil }
			if _, err := jwt.Parse(tampered, keyfunc); err == nil {
				t.Error("jwt.Parse accepted a tampered stamp")
			}
			if _, err := f.tokenVerifier(t).Verify(ctx, tamperSignature(f.token)); err == nil {
				t.Error("authz accepted a tampered token")
			}
		})
	}
}

// tamperSignature returns the compact JWS tok with the first character of
// its signature changed (a whole base64 digit, so that it still decodes).
func tamperSignature(tok string) string {
	i := strings.LastIndexByte(tok, '.') + 1
	c := byte('A')
	if tok[i] == 'A' {
		c = 'B'
	}
	return tok[:i] + string(c) + tok[i+1:]
}
