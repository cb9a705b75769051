package kinesisstream_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/google/go-cmp/cmp"
	"github.com/tenancykit/tenancy/internal/messagetest"
	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/message/kinesisstream"
)

// TestReshard: after a split, the children of the shard are read only
// once every record of the parent is settled, so that a tenant's records
// stay in order; the parent's checkpoint becomes ShardEnd.
func TestReshard(t *testing.T) {
	client, stream := shared(t, 1)
	clk := messagetest.NewClock()
	p := newPublisher(t, client, stream)
	before := publish(t, p, "acme", "before", nil)
	if _, err := client.SplitShard(t.Context(), &kinesis.SplitShardInput{
		StreamName: aws.String(stream), ShardToSplit: aws.String(shardOf(before)), NewStartingHashKey: aws.String("170141183460469231731687303715884105728"),
	}); err != nil {
		t.Fatal(err)
	}
	w := kinesis.NewStreamExistsWaiter(client, func(o *kinesis.StreamExistsWaiterOptions) { o.MinDelay = 10 * time.Millisecond })
	if err := w.Wait(t.Context(), &kinesis.DescribeStreamInput{StreamName: aws.String(stream)}, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	after := publish(t, p, "acme", "after", nil)
	if shardOf(after) == shardOf(before) {
		t.Fatalf("%s written to the closed shard", after)
	}

	cp := &kinesisstream.MemoryCheckpoints{}
	c := newConsumer(t, client, client, stream, cp, kinesisstream.WithClock(clk.Now))
	var rec messagetest.Recorder
	h := acme(rec.Handler(func(_ context.Context, m *message.Message) error {
		if string(m.Body) == "before" && m.Deliveries == 1 {
			return message.Defer(time.Second)
		}
		return nil
	}))
	poll(t, c, h, 1) // before, deferred
	poll(t, c, h, 0) // the children wait
	clk.Add(time.Second)
	poll(t, c, h, 1) // before again: the parent ends
	poll(t, c, h, 1) // after, on a child
	if diff := cmp.Diff([]string{before, before, after}, rec.Delivered()); diff != "" {
		t.Errorf("delivered (-want +got):\n%s", diff)
	}
	if got := checkpointOf(t, cp, before); got != kinesisstream.ShardEnd {
		t.Errorf("parent's checkpoint %q, want ShardEnd", got)
	}
	// A consumer that starts again reads the parent no more.
	var again messagetest.Recorder
	c2 := newConsumer(t, client, client, stream, cp, kinesisstream.WithClock(clk.Now))
	poll(t, c2, acme(again.Handler(nil)), 0)
}
