package stamp_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/tenancykit/tenancy/internal/messagetest"
	"github.com/tenancykit/tenancy/message/memqueue"
	"github.com/tenancykit/tenancy/message/stamp"
	"github.com/tenancykit/tenancy/tenant"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

const issuer = "https://orders.example.com"

// clock is a time source tests move by hand.
type clock = messagetest.Clock

func newClock() *clock { return messagetest.NewClock() }

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newSigner returns a Signer of issuer with a new P-256 key "k1" on clk.
func newSigner(t testing.TB, clk *clock, opts ...stamp.Option) *stamp.Signer {
	t.Helper()
	s, err := stamp.NewSigner(issuer, newKey(t), "k1", append([]stamp.Option{stamp.WithClock(clk.Now)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newVerifier returns a Verifier of s's stamps (its JWK Set in
// memory) on clk, counting refusals into a reader it returns.
func newVerifier(t testing.TB, s *stamp.Signer, clk *clock, opts ...stamp.Option) (*stamp.Verifier, *sdkmetric.ManualReader) {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	base := []stamp.Option{
		stamp.WithJWKS(s.JWKS()),
		stamp.WithClock(clk.Now),
		stamp.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))),
	}
	v, err := stamp.NewVerifier(context.Background(), s.Issuer(), append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v, reader
}

// verified returns a context whose tenant was verified from a token, as
// authz leaves it.
func verified(id, tier, user string) context.Context {
	return tenant.NewContext(context.Background(), tenant.Tenant{
		ID: id, Tier: tenant.DefaultTiers.MustLookup(tier), Subject: user, Source: tenant.SourceToken,
	})
}

// stamp stamps body for the tenant of ctx, failing the test on an error.
func mustStamp(t testing.TB, s *stamp.Signer, ctx context.Context, body string, opts ...stamp.MessageOption) map[string]string {
	t.Helper()
	attrs, err := s.Stamp(ctx, []byte(body), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return attrs
}

// summary is what the tests compare of a tenant.
func summary(t tenant.Tenant) string {
	return t.ID + "/" + t.Tier.String() + "/" + t.Source.String()
}

// checkDead fails t unless q dead-lettered exactly the messages of want,
// each with its reason.
func checkDead(t *testing.T, q *memqueue.Queue, want map[string]string) {
	t.Helper()
	got := map[string]string{}
	for _, d := range q.DeadLetters() {
		got[d.Message.ID] = d.Reason
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("dead letters (-want +got):\n%s", diff)
	}
}
