package stamp_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"

	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/message/memqueue"
	"github.com/tenancykit/tenancy/message/stamp"
	"github.com/tenancykit/tenancy/tenant"
)

// A producer stamps a message with the tenant of its request; the
// consumer's handler runs as that tenant, and a message whose body was
// changed on the way is dead-lettered.
func Example() {
	ctx := context.Background()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, err := stamp.NewSigner("https://orders.example.com", key, "2026-03")
	if err != nil {
		panic(err)
	}
	// The consumer fetches the producer's keys from where it serves
	// signer.JWKS() (stamp.WithJWKSURL); here, in memory.
	verifier, err := stamp.NewVerifier(ctx, "https://orders.example.com", stamp.WithJWKS(signer.JWKS()))
	if err != nil {
		panic(err)
	}
	defer verifier.Close()

	// In the producer's handler, the tenant authz verified.
	reqCtx := tenant.NewContext(ctx, tenant.Tenant{ID: "acme", Tier: tenant.DefaultTiers.MustLookup("premium"), Source: tenant.SourceToken})
	attrs, err := signer.Stamp(reqCtx, []byte(`{"order":42}`))
	if err != nil {
		panic(err)
	}
	q := memqueue.New("orders")
	q.Publish([]byte(`{"order":42}`), attrs)
	q.Publish([]byte(`{"order":43}`), attrs) // another body under the same stamp

	handler := message.HandlerFunc(func(ctx context.Context, m *message.Message) error {
		t, _ := tenant.FromContext(ctx)
		fmt.Printf("%s for %s (%s)\n", m.Body, t.ID, t.Tier)
		return nil
	})
	q.Drain(ctx, stamp.Trusted(verifier)(handler))
	for _, d := range q.DeadLetters() {
		fmt.Printf("dead-lettered %s: %s\n", d.Message.Body, d.Reason)
	}
	// Output:
	// {"order":42} for acme (premium)
	// dead-lettered {"order":43}: stamp:body_digest
}
