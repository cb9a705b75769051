package tenancykafka_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"

	"github.com/tenancykit/tenancy"
	"github.com/tenancykit/tenancy/adapters/tenancykafka"
	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/message/stamp"
	"github.com/tenancykit/tenancy/tenant"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// A service stamps an order with the tenant of its request and produces
// it keyed by that tenant; a worker of the group "fulfillment" runs it as
// that tenant. An in-process cluster (kfake) stands in for Kafka.
func Example() {
	cluster, _ := kfake.NewCluster(kfake.SeedTopics(3, "orders", "orders.dead"))
	defer cluster.Close()
	brokers := cluster.ListenAddrs()

	// The producing service.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, _ := stamp.NewSigner("https://orders.example.com", key, "2026-03")
	client, _ := kgo.NewClient(kgo.SeedBrokers(brokers...))
	defer client.Close()
	producer, _ := tenancykafka.NewProducer(client, "orders")

	ctx := tenant.NewContext(context.Background(), // as authz leaves a request's
		tenant.Tenant{ID: "acme", Tier: tenant.DefaultTiers.MustLookup("premium"), Source: tenant.SourceToken})
	body := []byte(`{"order":42}`)
	attrs, err := signer.Stamp(ctx, body)
	if err != nil {
		fmt.Println(err)
		return
	}
	if _, err := producer.Publish(ctx, body, attrs); err != nil {
		fmt.Println(err)
		return
	}

	// The worker.
	verifier, _ := stamp.NewVerifier(context.Background(), "https://orders.example.com", stamp.WithJWKS(signer.JWKS()))
	defer verifier.Close()
	stack, _ := tenancy.New(tenancy.WithMessageTrust(stamp.Trusted(verifier)))
	consumer, err := tenancykafka.NewConsumer(brokers, "orders", "fulfillment")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer consumer.Close()

	work, stop := context.WithCancel(context.Background())
	handler := message.HandlerFunc(func(ctx context.Context, m *message.Message) error {
		t, _ := tenant.FromContext(ctx)
		fmt.Printf("%s as %s (%s): %s\n", m.Source, t.ID, t.Source, m.Body)
		stop() // one is enough for the example
		return nil
	})
	if err := consumer.Run(work, stack.WrapMessages(handler)); err != nil {
		fmt.Println(err)
	}
	// Output: orders as acme (token): {"order":42}
}
