package main

import (
	"context"
	"fmt"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/tenancykit/tenancy/examples/internal/awskit"
	"github.com/tenancykit/tenancy/message/kinesisstream"
)

// kinesisEvents is the Kinesis side of the order events, built by
// [openKinesis].
type kinesisEvents struct {
	pub *kinesisstream.Publisher
	// http carries every Kinesis call; its idle connections are closed
	// at shutdown.
	http *http.Transport
}

// close closes the idle connections to Kinesis.
func (k *kinesisEvents) close() { k.http.CloseIdleConnections() }

// openKinesis returns the publisher of the order events to the Kinesis
// stream ORDER_EVENTS_STREAM, each event under its tenant's partition
// key (kinesisstream's default), configured as the DynamoDB client is.
// With KINESIS_ENDPOINT (local development) it creates the stream, with
// awskit.LocalStreamShards shards, when it does not exist and waits for it to be ACTIVE; in AWS the stream is
// provisioned outside, and nothing is called at start.
func openKinesis(ctx context.Context, cfg config, getenv func(string) string) (*kinesisEvents, error) {
	base, tr, err := awskit.LoadConfig(ctx, getenv, cfg.kinesisEndpoint, "ORDER_EVENTS=kinesis")
	if err != nil {
		return nil, err
	}
	k := &kinesisEvents{http: tr}
	client := kinesis.NewFromConfig(base, func(o *kinesis.Options) {
		if cfg.kinesisEndpoint != "" {
			o.BaseEndpoint = aws.String(cfg.kinesisEndpoint)
		}
	})
	if cfg.kinesisEndpoint != "" {
		if err := awskit.EnsureStream(ctx, client, cfg.eventsStream, awskit.LocalStreamShards); err != nil {
			k.close()
			return nil, fmt.Errorf("KINESIS_ENDPOINT %s, ORDER_EVENTS_STREAM %s: %w", cfg.kinesisEndpoint, cfg.eventsStream, err)
		}
	}
	k.pub, err = kinesisstream.NewPublisher(client, cfg.eventsStream)
	if err != nil {
		k.close()
		return nil, fmt.Errorf("ORDER_EVENTS_STREAM %q: %w", cfg.eventsStream, err) // unreachable: config checked the name
	}
	return k, nil
}
