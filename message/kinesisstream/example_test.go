package kinesisstream_test

import (
	"context"
	"log"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/tenancykit/tenancy"
	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/message/kinesisstream"
	"github.com/tenancykit/tenancy/message/kinesisstream/dynamocheckpoints"
	"github.com/tenancykit/tenancy/message/stamp"
)

// A worker consumes the stream "orders", whose messages the orders
// service stamped, as the tenant each stamp proves; what is refused goes
// to "orders-dead" with the reason.
func Example() {
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		log.Fatal(err)
	}
	client := kinesis.NewFromConfig(cfg)
	verifier, err := stamp.NewVerifier(ctx, "https://orders.example.com",
		stamp.WithJWKSURL("https://orders.example.com/.well-known/jwks.json"))
	if err != nil {
		log.Fatal(err)
	}
	defer verifier.Close()
	stack, err := tenancy.New(tenancy.WithMessageTrust(stamp.Trusted(verifier)))
	if err != nil {
		log.Fatal(err)
	}
	checkpoints, err := dynamocheckpoints.New(dynamodb.NewFromConfig(cfg), "checkpoints", "fulfillment/orders")
	if err != nil {
		log.Fatal(err)
	}
	deadLetters, err := kinesisstream.NewPublisher(client, "orders-dead")
	if err != nil {
		log.Fatal(err)
	}
	c, err := kinesisstream.NewConsumer(client, "orders", checkpoints, deadLetters)
	if err != nil {
		log.Fatal(err)
	}
	handler := message.HandlerFunc(func(ctx context.Context, m *message.Message) error {
		// tenant.FromContext(ctx) is the stamp's tenant.
		return nil
	})
	if err := c.Run(ctx, stack.WrapMessages(handler)); err != nil {
		log.Fatal(err)
	}
}

// The producer publishes with the tenant of its request as the partition
// key, and the stamp's attributes in the record.
func ExamplePublisher_Publish() {
	var (
		ctx    context.Context // a request's, whose tenant authz verified
		signer *stamp.Signer
		client *kinesis.Client
		body   = []byte(`{"order":"42"}`)
	)
	p, err := kinesisstream.NewPublisher(client, "orders")
	if err != nil {
		log.Fatal(err)
	}
	attrs, err := signer.Stamp(ctx, body)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := p.Publish(ctx, body, attrs); err != nil {
		log.Fatal(err)
	}
}
