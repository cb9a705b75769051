package message_test

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
	"github.com/tenancykit/tenancy/internal/metrictest"
	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/message/memqueue"
	"github.com/tenancykit/tenancy/tenant"
)

// TestStampedAcceptsAStamp: a stamped message runs as the tenant, tier and
// user of the producer's verified context, as a verified tenant.
func TestStampedAcceptsAStamp(t *testing.T) {
	clk := newClock()
	s := newSigner(t, clk)
	v, _ := newVerifier(t, s, clk)
	q := memqueue.New("orders")
	id := q.Publish([]byte(`{"order":1}`), stamp(t, s, verified("acme", "premium", "user-1"), `{"order":1}`))
	var got seen
	if n := q.Drain(context.Background(), message.Stamped(v)(got.handler())); n != 1 {
		t.Fatalf("Drain delivered %d messages, want 1", n)
	}
	tn, ok := got.tenant(id)
	if !ok {
		t.Fatalf("the handler did not run; dead letters: %v", q.DeadLetters())
	}
	want := struct{ ID, Tier, Subject, Source string }{"acme", "premium", "user-1", "token"}
	if diff := cmp.Diff(want, struct{ ID, Tier, Subject, Source string }{tn.ID, tn.Tier.String(), tn.Subject, tn.Source.String()}); diff != "" {
		t.Errorf("tenant (-want +got):\n%s", diff)
	}
	if len(q.Acked()) != 1 || len(q.DeadLetters()) != 0 {
		t.Errorf("acked %d, dead %d; want 1 and 0", len(q.Acked()), len(q.DeadLetters()))
	}
}

// forge signs claims with key under kid and the typ header typ ("" for
// none), as a producer's key might sign something that is no stamp.
func forge(t *testing.T, key *ecdsa.PrivateKey, kid, typ string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
	tok.Header["kid"] = kid
	if typ == "" {
		delete(tok.Header, "typ")
	} else {
		tok.Header["typ"] = typ
	}
	signed, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

// TestStampedRefuses: each way a stamp can be wrong dead-letters the
// message with its reason, never runs it as any tenant, and is counted by
// reason.
func TestStampedRefuses(t *testing.T) {
	ctx := verified("acme", "basic", "user-1")
	type env struct {
		t   *testing.T
		clk *clock
		key *ecdsa.PrivateKey // the producer's, under "k1"
		s   *message.Signer
		q   *memqueue.Queue
	}
	validClaims := func(e env, body string) jwt.MapClaims {
		// What a stamp of body holds, read back from a real one.
		attrs := stamp(e.t, e.s, ctx, body)
		claims := jwt.MapClaims{}
		if _, _, err := jwt.NewParser().ParseUnverified(attrs[message.StampAttribute], claims); err != nil {
			e.t.Fatal(err)
		}
		return claims
	}
	cases := []struct {
		name    string
		opts    []message.Option
		publish func(e env) (bad string) // publishes; returns the ID to be refused
		reason  string
	}{
		{name: "missing", reason: "missing", publish: func(e env) string {
			return e.q.Publish([]byte("a"), map[string]string{"traceparent": "00-0102030405060708090a0b0c0d0e0f10-0102030405060708-01"})
		}},
		{name: "not a JWS", reason: "malformed", publish: func(e env) string {
			return e.q.Publish([]byte("a"), map[string]string{message.StampAttribute: "not.a.stamp"})
		}},
		{name: "forged with another key under the same key ID", reason: "signature", publish: func(e env) string {
			forger, err := message.NewSigner(issuer, newKey(e.t), "k1", message.WithClock(e.clk.Now))
			if err != nil {
				e.t.Fatal(err)
			}
			return e.q.Publish([]byte("a"), stamp(e.t, forger, ctx, "a"))
		}},
		{name: "forged with another key and key ID", reason: "unknown_key", publish: func(e env) string {
			forger, err := message.NewSigner(issuer, newKey(e.t), "k9", message.WithClock(e.clk.Now))
			if err != nil {
				e.t.Fatal(err)
			}
			return e.q.Publish([]byte("a"), stamp(e.t, forger, ctx, "a"))
		}},
		{name: "expired", reason: "expired", publish: func(e env) string {
			id := e.q.Publish([]byte("a"), stamp(e.t, e.s, ctx, "a"))
			e.clk.Add(message.DefaultMaxAge + time.Second)
			return id
		}},
		{name: "tampered body", reason: "body_digest", publish: func(e env) string {
			return e.q.Publish([]byte(`{"amount":1000}`), stamp(e.t, e.s, ctx, `{"amount":1}`))
		}},
		{name: "an access token signed by the producer's key", reason: "type", publish: func(e env) string {
			tok := forge(e.t, e.key, "k1", "at+jwt", validClaims(e, "a"))
			return e.q.Publish([]byte("a"), map[string]string{message.StampAttribute: tok})
		}},
		{name: "a JWT without typ signed by the producer's key", reason: "type", publish: func(e env) string {
			tok := forge(e.t, e.key, "k1", "", validClaims(e, "a"))
			return e.q.Publish([]byte("a"), map[string]string{message.StampAttribute: tok})
		}},
		{name: "another issuer with the same key", reason: "issuer", publish: func(e env) string {
			other, err := message.NewSigner("https://billing.example.com", e.key, "k1", message.WithClock(e.clk.Now))
			if err != nil {
				e.t.Fatal(err)
			}
			return e.q.Publish([]byte("a"), stamp(e.t, other, ctx, "a"))
		}},
		{name: "another destination", reason: "destination", opts: []message.Option{message.ForDestination("fulfillment")}, publish: func(e env) string {
			e.q.Publish([]byte("a"), stamp(e.t, e.s, ctx, "a", message.WithDestination("fulfillment")))
			return e.q.Publish([]byte("a"), stamp(e.t, e.s, ctx, "a", message.WithDestination("billing")))
		}},
		{name: "no destination where one is required", reason: "destination", opts: []message.Option{message.ForDestination("fulfillment")}, publish: func(e env) string {
			return e.q.Publish([]byte("a"), stamp(e.t, e.s, ctx, "a"))
		}},
		{name: "no body digest", reason: "claims", publish: func(e env) string {
			claims := validClaims(e, "a")
			delete(claims, "body_sha256")
			return e.q.Publish([]byte("a"), map[string]string{message.StampAttribute: forge(e.t, e.key, "k1", message.StampType, claims)})
		}},
		{name: "replayed on another message", reason: "replayed", publish: func(e env) string {
			attrs := stamp(e.t, e.s, ctx, "a")
			e.q.Publish([]byte("a"), attrs)
			return e.q.Publish([]byte("a"), attrs)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			key := newKey(t)
			s, err := message.NewSigner(issuer, key, "k1", message.WithClock(clk.Now))
			if err != nil {
				t.Fatal(err)
			}
			v, reader := newVerifier(t, s, clk, tc.opts...)
			q := memqueue.New("orders")
			bad := tc.publish(env{t, clk, key, s, q})
			var got seen
			q.Drain(context.Background(), message.Stamped(v)(got.handler()))
			if _, ran := got.tenant(bad); ran {
				t.Fatalf("message %s ran as a tenant", bad)
			}
			dead := q.DeadLetters()
			if len(dead) != 1 || dead[0].Message.ID != bad || dead[0].Reason != "stamp:"+tc.reason {
				t.Fatalf("dead letters = %+v, want message %s with reason stamp:%s", dead, bad, tc.reason)
			}
			if n := metrictest.Sum(t, reader, "tenancy.message.refused", "reason", tc.reason); n != 1 {
				t.Errorf("tenancy.message.refused{reason=%s} = %d, want 1", tc.reason, n)
			}
			if n := metrictest.Sum(t, reader, "tenancy.message.refused", "", ""); n != 1 {
				t.Errorf("tenancy.message.refused = %d in all, want 1", n)
			}
		})
	}
}

// TestStampedRedeliveryPasses: the same message delivered again (a
// failure, a deferral) is no replay.
func TestStampedRedeliveryPasses(t *testing.T) {
	clk := newClock()
	s := newSigner(t, clk)
	v, _ := newVerifier(t, s, clk)
	q := memqueue.New("orders", memqueue.WithClock(clk.Now))
	id := q.Publish([]byte("a"), stamp(t, s, verified("acme", "basic", ""), "a"))
	deliveries := 0
	h := message.Stamped(v)(message.HandlerFunc(func(ctx context.Context, m *message.Message) error {
		deliveries++
		switch deliveries {
		case 1:
			return errors.New("database down")
		case 2:
			return message.Defer(time.Minute)
		}
		return nil
	}))
	q.Drain(context.Background(), h)
	q.Drain(context.Background(), h)
	clk.Add(time.Minute)
	q.Drain(context.Background(), h)
	if deliveries != 3 || len(q.Acked()) != 1 || q.Acked()[0].ID != id {
		t.Fatalf("deliveries %d, acked %v, dead %v; want 3 deliveries and %s acked", deliveries, q.Acked(), q.DeadLetters(), id)
	}
}

// TestStampedReplayOnAnotherSource: the same stamp on two queues (a
// fan-out) is no replay; each queue's message IDs are its own.
func TestStampedReplayOnAnotherSource(t *testing.T) {
	clk := newClock()
	s := newSigner(t, clk)
	v, _ := newVerifier(t, s, clk)
	attrs := stamp(t, s, verified("acme", "basic", ""), "a")
	var got seen
	for _, name := range []string{"orders-eu", "orders-us"} {
		q := memqueue.New(name)
		q.Publish([]byte("a"), attrs)
		q.Drain(context.Background(), message.Stamped(v)(got.handler()))
		if len(q.Acked()) != 1 {
			t.Errorf("%s: acked %d, dead %v", name, len(q.Acked()), q.DeadLetters())
		}
	}
}

// TestStampedReplayAfterExpiry: a stamp replayed once it has expired is
// refused as expired, whatever the replay cache still holds.
func TestStampedReplayAfterExpiry(t *testing.T) {
	clk := newClock()
	s := newSigner(t, clk, message.WithMaxAge(time.Hour))
	v, _ := newVerifier(t, s, clk)
	attrs := stamp(t, s, verified("acme", "basic", ""), "a")
	q := memqueue.New("orders")
	q.Publish([]byte("a"), attrs)
	var got seen
	q.Drain(context.Background(), message.Stamped(v)(got.handler()))
	clk.Add(time.Hour + time.Second)
	q.Publish([]byte("a"), attrs)
	q.Drain(context.Background(), message.Stamped(v)(got.handler()))
	dead := q.DeadLetters()
	if got.count() != 1 || len(dead) != 1 || dead[0].Reason != "stamp:expired" {
		t.Fatalf("ran %d, dead %v; want 1 and one stamp:expired", got.count(), dead)
	}
}

// TestStampNeedsAVerifiedTenant: only a verified tenant with a tier is
// stamped.
func TestStampNeedsAVerifiedTenant(t *testing.T) {
	s := newSigner(t, newClock())
	claimed := tenant.NewContext(context.Background(), tenant.Tenant{ID: "acme", Tier: tenant.DefaultTiers.MustLookup("basic"), Source: tenant.SourceClaimed})
	noTier := tenant.NewContext(context.Background(), tenant.Tenant{ID: "acme", Source: tenant.SourceToken})
	for _, tc := range []struct {
		name string
		ctx  context.Context
		want error
	}{
		{"claimed", claimed, message.ErrClaimedTenant},
		{"none", context.Background(), tenant.ErrNoTenant},
		{"no tier", noTier, message.ErrNoTier},
	} {
		attrs, err := s.Stamp(tc.ctx, []byte("a"))
		if !errors.Is(err, tc.want) || attrs != nil {
			t.Errorf("%s: Stamp = %v, %v; want no attributes and %v", tc.name, attrs, err, tc.want)
		}
	}
	for _, src := range []tenant.Source{tenant.SourceToken, tenant.SourcePeer, tenant.SourceAssigned} {
		ctx := tenant.NewContext(context.Background(), tenant.Tenant{ID: "acme", Tier: tenant.DefaultTiers.MustLookup("basic"), Source: src})
		if _, err := s.Stamp(ctx, []byte("a")); err != nil {
			t.Errorf("Stamp for a tenant from %s: %v", src, err)
		}
	}
}

// TestStampIsNoAccessToken: authz's default verifier, given the
// producer's keys, refuses a stamp as a bearer token.
func TestStampIsNoAccessToken(t *testing.T) {
	clk := newClock()
	s := newSigner(t, clk)
	attrs := stamp(t, s, verified("acme", "basic", "user-1"), "a")
	if !strings.HasPrefix(attrs[message.StampAttribute], "ey") {
		t.Fatalf("stamp %q is no compact JWS", attrs[message.StampAttribute])
	}
	v := accessVerifier(t, s, clk)
	if _, err := v.Verify(context.Background(), attrs[message.StampAttribute]); !errors.Is(err, authzErrTokenType) {
		t.Fatalf("authz.Verifier.Verify(stamp) = %v, want authz.ErrTokenType", err)
	}
}
