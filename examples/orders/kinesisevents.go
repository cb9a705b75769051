package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/tenancykit/tenancy/message/kinesisstream"
)

// The stream of the order events on Kinesis (ORDER_EVENTS=kinesis).
const (
	// localStreamShards is the shard count of the stream created at start
	// with KINESIS_ENDPOINT: more than one, so that the tenants spread
	// over shards as they do in AWS.
	localStreamShards = 2
	// streamWait bounds the wait for a stream created at start to be
	// ACTIVE.
	streamWait = 30 * time.Second
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
// With KINESIS_ENDPOINT (local development) it creates the stream when it
// does not exist and waits for it to be ACTIVE; in AWS the stream is
// provisioned outside, and nothing is called at start.
func openKinesis(ctx context.Context, cfg config, getenv func(string) string) (*kinesisEvents, error) {
	base, tr, err := loadAWSConfig(ctx, getenv, cfg.kinesisEndpoint, "ORDER_EVENTS=kinesis")
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
		if err := ensureStream(ctx, client, cfg.eventsStream); err != nil {
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

// ensureStream creates the stream unless it exists, and waits until it is
// ACTIVE.
func ensureStream(ctx context.Context, client *kinesis.Client, stream string) error {
	_, err := client.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
	var missing *types.ResourceNotFoundException
	switch {
	case errors.As(err, &missing):
		_, err = client.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(stream), ShardCount: aws.Int32(localStreamShards)})
		var inUse *types.ResourceInUseException
		if err != nil && !errors.As(err, &inUse) { // another replica was first
			return fmt.Errorf("create the stream: %w", err)
		}
	case err != nil:
		return fmt.Errorf("describe the stream: %w", err)
	}
	w := kinesis.NewStreamExistsWaiter(client, func(o *kinesis.StreamExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = 100*time.Millisecond, time.Second
	})
	if err := w.Wait(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String(stream)}, streamWait); err != nil {
		return fmt.Errorf("wait for the stream: %w", err)
	}
	return nil
}
