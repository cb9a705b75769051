package kinesisstream_test

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/tenancykit/tenancy/internal/messagetest"
	"github.com/tenancykit/tenancy/internal/testservers"
	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/message/kinesisstream"
)

// kinesisClient returns a client of the real SDK for the emulator at
// endpoint, whose connections are closed at the test's end. It tries
// each call once: the tests count calls and stop the server.
func kinesisClient(t *testing.T, endpoint string) *kinesis.Client {
	t.Helper()
	cfg := testservers.AWSConfig(t)
	cfg.RetryMaxAttempts = 1
	return kinesis.NewFromConfig(cfg, func(o *kinesis.Options) { o.BaseEndpoint = aws.String(endpoint) })
}

// shared returns a client of the shared kinesalite and a stream of
// shards shards of the test's own, with its dead-letter stream (name +
// "-dead", one shard).
func shared(t *testing.T, shards int32) (*kinesis.Client, string) {
	t.Helper()
	testservers.Check(t, kinesaliteErr)
	client := kinesisClient(t, kinesalite.Endpoint)
	// A run of its own too: -count runs a test again on the same server.
	name := strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()) + "-" + rand.Text()[:6]
	createStream(t, client, name, shards)
	createStream(t, client, name+"-dead", 1)
	return client, name
}

// createStream creates a stream and waits until it is active.
func createStream(t *testing.T, client *kinesis.Client, name string, shards int32) {
	t.Helper()
	ctx := t.Context()
	if _, err := client.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(shards)}); err != nil {
		t.Fatalf("CreateStream: %v", err)
	}
	w := kinesis.NewStreamExistsWaiter(client, func(o *kinesis.StreamExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = 10*time.Millisecond, 100*time.Millisecond
	})
	if err := w.Wait(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String(name)}, 5*time.Second); err != nil {
		t.Fatalf("stream %s not active: %v", name, err)
	}
}

// readAll returns every record of every shard of a stream.
func readAll(t *testing.T, client *kinesis.Client, name string) []types.Record {
	t.Helper()
	ctx := t.Context()
	shards, err := client.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(name)})
	if err != nil {
		t.Fatalf("ListShards: %v", err)
	}
	var out []types.Record
	for _, sh := range shards.Shards {
		it, err := client.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
			StreamName: aws.String(name), ShardId: sh.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
		})
		if err != nil {
			t.Fatalf("GetShardIterator: %v", err)
		}
		iter := it.ShardIterator
		for range 100 {
			got, err := client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
			if err != nil {
				t.Fatalf("GetRecords: %v", err)
			}
			if len(got.Records) == 0 {
				break
			}
			out = append(out, got.Records...)
			iter = got.NextShardIterator
		}
	}
	return out
}

// deadLetters returns the dead letters of stream's dead-letter stream:
// the reason and the delivery count, by the ID the message had.
func deadLetters(t *testing.T, client *kinesis.Client, stream string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, r := range readAll(t, client, stream+"-dead") {
		_, attrs, err := kinesisstream.Decode(r.Data)
		if err != nil {
			t.Fatalf("dead letter %q: %v", r.Data, err)
		}
		if attrs[kinesisstream.AttrSource] != stream {
			t.Errorf("dead letter of %s: source %q, want %q", attrs[kinesisstream.AttrID], attrs[kinesisstream.AttrSource], stream)
		}
		out[attrs[kinesisstream.AttrID]] = attrs[kinesisstream.AttrReason] + " after " + attrs[kinesisstream.AttrDeliveries]
	}
	return out
}

func newPublisher(t *testing.T, client kinesisstream.PutRecordAPI, stream string, opts ...kinesisstream.Option) *kinesisstream.Publisher {
	t.Helper()
	p, err := kinesisstream.NewPublisher(client, stream, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func newConsumer(t *testing.T, client kinesisstream.ConsumerAPI, dl kinesisstream.PutRecordAPI, stream string, cp kinesisstream.Checkpoints, opts ...kinesisstream.Option) *kinesisstream.Consumer {
	t.Helper()
	c, err := kinesisstream.NewConsumer(client, stream, cp, newPublisher(t, dl, stream+"-dead"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func publish(t *testing.T, p *kinesisstream.Publisher, tenantID, body string, attrs map[string]string) string {
	t.Helper()
	id, err := p.Publish(messagetest.As(tenantID), []byte(body), attrs)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func poll(t *testing.T, c *kinesisstream.Consumer, h message.Handler, want int) {
	t.Helper()
	n, err := c.Poll(context.Background(), h)
	if err != nil {
		t.Fatal(err)
	}
	if n != want {
		t.Fatalf("Poll handled %d messages, want %d", n, want)
	}
}
