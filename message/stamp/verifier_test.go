package stamp_test

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"github.com/tenancykit/tenancy/internal/messagetest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
	"github.com/tenancykit/tenancy/internal/metrictest"
	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/message/memqueue"
	"github.com/tenancykit/tenancy/message/stamp"
)

// TestTrustedAcceptsAStamp: a stamped message runs as the tenant, tier and
// user of the producer's verified context, as a verified tenant.
func TestTrustedAcceptsAStamp(t *testing.T) {
	clk := newClock()
	s := newSigner(t, clk)
	v, _ := newVerifier(t, s, clk)
	q := memqueue.New("orders")
	id := q.Publish([]byte(`{"order":1}`), mustStamp(t, s, verified("acme", "premium", "user-1"), `{"order":1}`))
	var got messagetest.Seen
	if n := q.Drain(context.Background(), stamp.Trusted(v)(got.Handler())); n != 1 {
		t.Fatalf("Drain delivered %d messages, want 1", n)
	}
	tn, ok := got.Tenant(id)
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

// TestTrustedRefuses: each way a stamp can be wrong dead-letters the
// message with its reason, never runs it as any tenant, and is counted by
// reason.
func TestTrustedRefuses(t *testing.T) {
	ctx := verified("acme", "basic", "user-1")
	type env struct {
		t   *testing.T
		clk *clock
		key *ecdsa.PrivateKey // the producer's, under "k1"
		s   *stamp.Signer
		q   *memqueue.Queue
	}
	validClaims := func(e env, body string) jwt.MapClaims {
		// What a stamp of body holds, read back from a real one.
		attrs := mustStamp(e.t, e.s, ctx, body)
		claims := jwt.MapClaims{}
		if _, _, err := jwt.NewParser().ParseUnverified(attrs[stamp.Attribute], claims); err != nil {
			e.t.Fatal(err)
		}
		return claims
	}
	cases := []struct {
		name    string
		opts    []stamp.Option
		publish func(e env) (bad string) // publishes; returns the ID to be refused
		reason  string
	}{
		{name: "missing", reason: "missing", publish: func(e env) string {
			return e.q.Publish([]byte("a"), map[string]string{"traceparent": "00-0102030405060708090a0b0c0d0e0f10-0102030405060708-01"})
		}},
		{name: "not a JWS", reason: "malformed", publish: func(e env) string {
			return e.q.Publish([]byte("a"), map[string]string{stamp.Attribute: "not.a.stamp"})
		}},
		{name: "forged with another key under the same key ID", reason: "signature", publish: func(e env) string {
			forger, err := stamp.NewSigner(issuer, newKey(e.t), "k1", stamp.WithClock(e.clk.Now))
			if err != nil {
				e.t.Fatal(err)
			}
			return e.q.Publish([]byte("a"), mustStamp(e.t, forger, ctx, "a"))
		}},
		{name: "forged with another key and key ID", reason: "unknown_key", publish: func(e env) string {
			forger, err := stamp.NewSigner(issuer, newKey(e.t), "k9", stamp.WithClock(e.clk.Now))
			if err != nil {
				e.t.Fatal(err)
			}
			return e.q.Publish([]byte("a"), mustStamp(e.t, forger, ctx, "a"))
		}},
		{name: "expired", reason: "expired", publish: func(e env) string {
			id := e.q.Publish([]byte("a"), mustStamp(e.t, e.s, ctx, "a"))
			e.clk.Add(stamp.DefaultMaxAge + time.Second)
			return id
		}},
		{name: "tampered body", reason: "body_digest", publish: func(e env) string {
			return e.q.Publish([]byte(`{"amount":1000}`), mustStamp(e.t, e.s, ctx, `{"amount":1}`))
		}},
		{name: "an access token signed by the producer's key", reason: "type", publish: func(e env) string {
			tok := forge(e.t, e.key, "k1", "at+jwt", validClaims(e, "a"))
			return e.q.Publish([]byte("a"), map[string]string{stamp.Attribute: tok})
		}},
		{name: "a JWT without typ signed by the producer's key", reason: "type", publish: func(e env) string {
			tok := forge(e.t, e.key, "k1", "", validClaims(e, "a"))
			return e.q.Publish([]byte("a"), map[string]string{stamp.Attribute: tok})
		}},
		{name: "another issuer with the same key", reason: "issuer", publish: func(e env) string {
			other, err := stamp.NewSigner("https://billing.example.com", e.key, "k1", stamp.WithClock(e.clk.Now))
			if err != nil {
				e.t.Fatal(err)
			}
			return e.q.Publish([]byte("a"), mustStamp(e.t, other, ctx, "a"))
		}},
		{name: "another destination", reason: "destination", opts: []stamp.Option{stamp.ForDestination("fulfillment")}, publish: func(e env) string {
			e.q.Publish([]byte("a"), mustStamp(e.t, e.s, ctx, "a", stamp.WithDestination("fulfillment")))
			return e.q.Publish([]byte("a"), mustStamp(e.t, e.s, ctx, "a", stamp.WithDestination("billing")))
		}},
		{name: "no destination where one is required", reason: "destination", opts: []stamp.Option{stamp.ForDestination("fulfillment")}, publish: func(e env) string {
			return e.q.Publish([]byte("a"), mustStamp(e.t, e.s, ctx, "a"))
		}},
		{name: "no body digest", reason: "claims", publish: func(e env) string {
			claims := validClaims(e, "a")
			delete(claims, "body_sha256")
			return e.q.Publish([]byte("a"), map[string]string{stamp.Attribute: forge(e.t, e.key, "k1", stamp.Type, claims)})
		}},
		{name: "replayed on another message", reason: "replayed", publish: func(e env) string {
			attrs := mustStamp(e.t, e.s, ctx, "a")
			e.q.Publish([]byte("a"), attrs)
			return e.q.Publish([]byte("a"), attrs)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			key := newKey(t)
			s, err := stamp.NewSigner(issuer, key, "k1", stamp.WithClock(clk.Now))
			if err != nil {
				t.Fatal(err)
			}
			v, reader := newVerifier(t, s, clk, tc.opts...)
			q := memqueue.New("orders")
			bad := tc.publish(env{t, clk, key, s, q})
			var got messagetest.Seen
			q.Drain(context.Background(), stamp.Trusted(v)(got.Handler()))
			if _, ran := got.Tenant(bad); ran {
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

// TestTrustedRedeliveryPasses: the same message delivered again (a
// failure, a deferral) is no replay.
func TestTrustedRedeliveryPasses(t *testing.T) {
	clk := newClock()
	s := newSigner(t, clk)
	v, _ := newVerifier(t, s, clk)
	q := memqueue.New("orders", memqueue.WithClock(clk.Now))
	id := q.Publish([]byte("a"), mustStamp(t, s, verified("acme", "basic", ""), "a"))
	deliveries := 0
	h := stamp.Trusted(v)(message.HandlerFunc(func(ctx context.Context, m *message.Message) error {
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

// TestTrustedReplayOnAnotherSource: the same stamp on two queues (a
// fan-out) is no replay; each queue's message IDs are its own.
func TestTrustedReplayOnAnotherSource(t *testing.T) {
	clk := newClock()
	s := newSigner(t, clk)
	v, _ := newVerifier(t, s, clk)
	attrs := mustStamp(t, s, verified("acme", "basic", ""), "a")
	var got messagetest.Seen
	for _, name := range []string{"orders-eu", "orders-us"} {
		q := memqueue.New(name)
		q.Publish([]byte("a"), attrs)
		q.Drain(context.Background(), stamp.Trusted(v)(got.Handler()))
		if len(q.Acked()) != 1 {
			t.Errorf("%s: acked %d, dead %v", name, len(q.Acked()), q.DeadLetters())
		}
	}
}

// TestTrustedReplayAfterExpiry: a stamp replayed once it has expired is
// refused as expired, whatever the replay cache still holds.
func TestTrustedReplayAfterExpiry(t *testing.T) {
	clk := newClock()
	s := newSigner(t, clk, stamp.WithMaxAge(time.Hour))
	v, _ := newVerifier(t, s, clk)
	attrs := mustStamp(t, s, verified("acme", "basic", ""), "a")
	q := memqueue.New("orders")
	q.Publish([]byte("a"), attrs)
	var got messagetest.Seen
	q.Drain(context.Background(), stamp.Trusted(v)(got.Handler()))
	clk.Add(time.Hour + time.Second)
	q.Publish([]byte("a"), attrs)
	q.Drain(context.Background(), stamp.Trusted(v)(got.Handler()))
	dead := q.DeadLetters()
	if got.Count() != 1 || len(dead) != 1 || dead[0].Reason != "stamp:expired" {
		t.Fatalf("ran %d, dead %v; want 1 and one stamp:expired", got.Count(), dead)
	}
}

// TestStampIsNoAccessToken: authz's default verifier, given the
// producer's keys, refuses a stamp as a bearer token.
func TestStampIsNoAccessToken(t *testing.T) {
	clk := newClock()
	s := newSigner(t, clk)
	attrs := mustStamp(t, s, verified("acme", "basic", "user-1"), "a")
	if !strings.HasPrefix(attrs[stamp.Attribute], "ey") {
		t.Fatalf("stamp %q is no compact JWS", attrs[stamp.Attribute])
	}
	v := accessVerifier(t, s, clk)
	if _, err := v.Verify(context.Background(), attrs[stamp.Attribute]); !errors.Is(err, authzErrTokenType) {
		t.Fatalf("authz.Verifier.Verify(stamp) = %v, want authz.ErrTokenType", err)
	}
}

// TestTrustedAroundSenderSession: inside Trusted, message.SenderSession
// checks the sender against the stamp's tenant: both must hold.
func TestTrustedAroundSenderSession(t *testing.T) {
	clk := newClock()
	s := newSigner(t, clk)
	v, _ := newVerifier(t, s, clk)
	const roleID = "AROAEXAMPLEID123456"
	mw := func(h message.Handler) message.Handler {
		return stamp.Trusted(v)(message.SenderSession(roleID, "", message.WithSessionPrefix("t-"))(h))
	}
	q := memqueue.New("orders")
	attrs := mustStamp(t, s, verified("acme", "premium", "user-1"), "a")
	ok := q.Publish([]byte("a"), attrs, memqueue.WithSenderID(roleID+":t-acme"))
	refused := map[string]string{
		q.Publish([]byte("a"), mustStamp(t, s, verified("acme", "premium", "user-1"), "a"), memqueue.WithSenderID(roleID+":t-globex")): "sender_session:sender_mismatch",
		q.Publish([]byte("a"), map[string]string{"tenant": "acme"}, memqueue.WithSenderID(roleID+":t-acme")):                           "stamp:missing",
	}
	var got messagetest.Seen
	q.Drain(context.Background(), mw(got.Handler()))
	if tn, _ := got.Tenant(ok); summary(tn) != "acme/premium/token" || tn.Subject != "user-1" {
		t.Errorf("tenant = %s (user %q), want the stamp's acme/premium/token, user-1", summary(tn), tn.Subject)
	}
	checkDead(t, q, refused)
}
