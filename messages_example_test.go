package tenancy_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"log/slog"
	"os"

	"github.com/tenancykit/tenancy"
	"github.com/tenancykit/tenancy/logging"
	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/message/memqueue"
	"github.com/tenancykit/tenancy/message/stamp"
	"github.com/tenancykit/tenancy/tenant"
)

// A worker consumes the messages a producer stamped, through the stack:
// its handler runs as the tenant of the stamp, and a forged stamp is
// dead-lettered with its reason, never run, and audited (here on the same
// logger: logging.WithAuditor sends audit events to a stream of their
// own) with the tenant it claimed.
func ExampleStack_WrapMessages() {
	ctx := context.Background()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, err := stamp.NewSigner("https://orders.example.com", key, "2026-03") // in the producer
	if err != nil {
		panic(err)
	}
	verifier, err := stamp.NewVerifier(ctx, "https://orders.example.com",
		stamp.WithJWKS(signer.JWKS())) // in production: stamp.WithJWKSURL
	if err != nil {
		panic(err)
	}
	defer verifier.Close()
	logger := slog.New(logging.NewHandler(logging.NewJSONHandler(os.Stdout, &slog.HandlerOptions{ReplaceAttr: dropVarying})))
	stack, err := tenancy.New(tenancy.WithAccessLog(logger), tenancy.WithMessageTrust(stamp.Trusted(verifier)))
	if err != nil {
		panic(err)
	}
	worker := stack.WrapMessages(message.HandlerFunc(func(ctx context.Context, m *message.Message) error {
		logger.InfoContext(ctx, "order fulfilled") // + tenant_id, user_id, the message ID, the producer's trace
		return nil
	}))

	q := memqueue.New("orders")
	acme := tenant.NewContext(ctx, tenant.Tenant{ID: "acme", Tier: tenant.DefaultTiers.MustLookup("premium"), Subject: "user-1", Source: tenant.SourceToken})
	attrs, _ := signer.Stamp(acme, []byte(`{"order":42}`)) // in the producer's handler
	q.Publish([]byte(`{"order":42}`), attrs)
	forgedKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	forger, _ := stamp.NewSigner("https://orders.example.com", forgedKey, "2026-03")
	forged, _ := forger.Stamp(acme, []byte(`{"order":43}`))
	q.Publish([]byte(`{"order":43}`), forged)
	q.Drain(ctx, worker)
	// Output:
	// {"level":"INFO","msg":"order fulfilled","tenant_id":"acme","tenant_tier":"premium","user_id":"user-1"}
	// {"level":"INFO","msg":"message","message_source":"orders","outcome":"acked","deliveries":1,"tenant_id":"acme","tenant_tier":"premium","user_id":"user-1"}
	// {"level":"WARN","msg":"message","message_source":"orders","outcome":"rejected","deliveries":1,"rejected_by":"stamp","reject_reason":"signature"}
	// {"level":"INFO","msg":"audit","log_type":"audit","action":"consume","resource":"orders","outcome":"denied","rejected_by":"stamp","reject_reason":"signature","deliveries":1,"claimed_tenant_id":"acme"}
}
