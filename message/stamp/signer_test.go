package stamp_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"github.com/tenancykit/tenancy/internal/messagetest"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
	"github.com/tenancykit/tenancy/internal/request"
	"github.com/tenancykit/tenancy/message/memqueue"
	"github.com/tenancykit/tenancy/message/stamp"
	"github.com/tenancykit/tenancy/tenant"
	"go.opentelemetry.io/otel/trace"
)

// TestStampClaims: a stamp names the issuer, tenant, tier and user, when
// it was made and expires, a unique ID and the body's digest, in a JWS of
// the stamp type signed under the current key ID.
func TestStampClaims(t *testing.T) {
	clk := newClock()
	s := newSigner(t, clk)
	ctx := verified("acme", "premium", "user-1")
	a := mustStamp(t, s, ctx, "hello", stamp.WithDestination("fulfillment"))
	b := mustStamp(t, s, ctx, "hello")
	claims := jwt.MapClaims{}
	tok, _, err := jwt.NewParser().ParseUnverified(a[stamp.Attribute], claims)
	if err != nil {
		t.Fatal(err)
	}
	jti := claims["jti"]
	delete(claims, "jti")
	want := jwt.MapClaims{
		"iss":         issuer,
		"sub":         "user-1",
		"aud":         "fulfillment",
		"tenant_id":   "acme",
		"tier":        "premium",
		"iat":         float64(clk.Now().Unix()),
		"exp":         float64(clk.Now().Add(stamp.DefaultMaxAge).Unix()),
		"body_sha256": "LPJNul-wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ", // SHA-256 of "hello"
	}
	if diff := cmp.Diff(want, claims); diff != "" {
		t.Errorf("claims (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]any{"alg": "ES256", "typ": "tenancy-stamp+jwt", "kid": "k1"}, tok.Header); diff != "" {
		t.Errorf("header (-want +got):\n%s", diff)
	}
	other := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(b[stamp.Attribute], other); err != nil {
		t.Fatal(err)
	}
	if s, _ := jti.(string); len(s) < 20 || other["jti"] == jti {
		t.Errorf("jti %v and %v: want two unique IDs", jti, other["jti"])
	}
}

// TestStampCarriesTraceNotToken: the stamp's attributes carry the
// producer's trace context and the tenant in the baggage, and never the
// caller's bearer token; they stay within SQS's ten attributes.
func TestStampCarriesTraceNotToken(t *testing.T) {
	s := newSigner(t, newClock())
	// A request authz verified from a token, with a span.
	_, r, st, _ := request.Enter(request.Authz, httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/orders", nil))
	tn := tenant.Tenant{ID: "acme", Tier: tenant.DefaultTiers.MustLookup("basic"), Source: tenant.SourceToken}
	const token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEifQ.c2lnbmF0dXJl"
	st.SetTenant(&tn, token)
	ctx := trace.ContextWithSpanContext(r.Context(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		SpanID:     trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8},
		TraceFlags: trace.FlagsSampled,
	}))
	attrs := mustStamp(t, s, ctx, "a")
	if got := attrs["traceparent"]; got != "00-0102030405060708090a0b0c0d0e0f10-0102030405060708-01" {
		t.Errorf("traceparent = %q", got)
	}
	if got := attrs["baggage"]; got != "tenant.id=acme" {
		t.Errorf("baggage = %q", got)
	}
	if len(attrs) > 10 {
		t.Errorf("%d attributes, SQS allows 10", len(attrs))
	}
	for k, v := range attrs {
		if strings.Contains(v, token) || strings.Contains(v, "c2lnbmF0dXJl") {
			t.Errorf("attribute %s carries the caller's token", k)
		}
	}

	// Without a span, the trace IDs the access log gave the request.
	st.Info.TraceID = [16]byte{9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9}
	st.Info.SpanID = [8]byte{7, 7, 7, 7, 7, 7, 7, 7}
	st.Info.ID = "req-1"
	attrs = mustStamp(t, s, r.Context(), "a")
	if got := attrs["traceparent"]; got != "00-09090909090909090909090909090909-0707070707070707-00" {
		t.Errorf("traceparent from the access log's IDs = %q", got)
	}
}

// TestSignerKeys: each kind of key signs stamps its verifier accepts, and
// a key too weak or of another kind is refused.
func TestSignerKeys(t *testing.T) {
	rsa2048, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	for name, key := range map[string]crypto.Signer{"ES256": newKey(t), "RS256": rsa2048, "EdDSA": ed} {
		t.Run(name, func(t *testing.T) {
			clk := newClock()
			s, err := stamp.NewSigner(issuer, key, "k1", stamp.WithClock(clk.Now))
			if err != nil {
				t.Fatal(err)
			}
			v, _ := newVerifier(t, s, clk)
			q := memqueue.New("orders")
			q.Publish([]byte("a"), mustStamp(t, s, verified("acme", "basic", ""), "a"))
			var got messagetest.Seen
			q.Drain(context.Background(), stamp.Trusted(v)(got.Handler()))
			if got.Count() != 1 {
				t.Fatalf("dead letters %v", q.DeadLetters())
			}
			var set struct{ Keys []struct{ Alg, Kid string } }
			if err := json.Unmarshal(s.JWKS(), &set); err != nil || len(set.Keys) != 1 || set.Keys[0].Alg != name {
				t.Errorf("JWKS = %s (%v), want one key of %s", s.JWKS(), err, name)
			}
		})
	}
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	for name, key := range map[string]crypto.Signer{"RSA 1024": rsa1024, "P-384": p384} {
		if _, err := stamp.NewSigner(issuer, key, "k1"); err == nil {
			t.Errorf("NewSigner with a %s key: no error", name)
		}
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
		{"claimed", claimed, stamp.ErrClaimedTenant},
		{"none", context.Background(), tenant.ErrNoTenant},
		{"no tier", noTier, stamp.ErrNoTier},
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
