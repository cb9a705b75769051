package kinesisstream_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/google/go-cmp/cmp"
	"github.com/tenancykit/tenancy/internal/messagetest"
	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/message/kinesisstream"
)

// putRecorder keeps the PutRecord calls and answers as a shard would.
type putRecorder struct{ calls []*kinesis.PutRecordInput }

func (p *putRecorder) PutRecord(_ context.Context, in *kinesis.PutRecordInput, _ ...func(*kinesis.Options)) (*kinesis.PutRecordOutput, error) {
	p.calls = append(p.calls, in)
	return &kinesis.PutRecordOutput{ShardId: aws.String("shardId-000000000001"), SequenceNumber: aws.String("42")}, nil
}

// TestPublishPartitionKey: the tenant of the context by default, the
// option's key when given, an error when there is neither.
func TestPublishPartitionKey(t *testing.T) {
	var rec putRecorder
	p := newPublisher(t, &rec, "orders")
	id, err := p.Publish(messagetest.As("acme"), []byte("b"), map[string]string{"k": "v"})
	if err != nil || id != "shardId-000000000001/42" {
		t.Fatalf("Publish = %q, %v", id, err)
	}
	if _, err := p.Publish(context.Background(), []byte("b"), nil); !errors.Is(err, kinesisstream.ErrNoPartitionKey) {
		t.Errorf("Publish without a tenant: %v, want ErrNoPartitionKey", err)
	}
	byBody := newPublisher(t, &rec, "arn:aws:kinesis:us-east-1:123456789012:stream/orders",
		kinesisstream.WithPartitionKey(func(_ context.Context, body []byte) string { return string(body[:1]) }))
	if _, err := byBody.Publish(context.Background(), []byte("xyz"), nil); err != nil {
		t.Fatal(err)
	}
	if len(rec.calls) != 2 {
		t.Fatalf("%d calls, want 2", len(rec.calls))
	}
	got := []string{aws.ToString(rec.calls[0].PartitionKey) + " " + aws.ToString(rec.calls[0].StreamName), aws.ToString(rec.calls[1].PartitionKey) + " " + aws.ToString(rec.calls[1].StreamARN)}
	if diff := cmp.Diff([]string{"acme orders", "x arn:aws:kinesis:us-east-1:123456789012:stream/orders"}, got); diff != "" {
		t.Errorf("keys and streams (-want +got):\n%s", diff)
	}
	body, attrs, err := kinesisstream.Decode(rec.calls[0].Data)
	if err != nil || string(body) != "b" || attrs["k"] != "v" {
		t.Errorf("record data decodes to %q %v %v", body, attrs, err)
	}
	empty := newPublisher(t, &rec, "orders", kinesisstream.WithPartitionKey(func(context.Context, []byte) string { return "" }))
	if _, err := empty.Publish(messagetest.As("acme"), []byte("b"), nil); !errors.Is(err, kinesisstream.ErrNoPartitionKey) {
		t.Errorf("Publish with an empty key: %v", err)
	}
	long := newPublisher(t, &rec, "orders", kinesisstream.WithPartitionKey(func(context.Context, []byte) string { return strings.Repeat("é", 257) }))
	if _, err := long.Publish(messagetest.As("acme"), []byte("b"), nil); err == nil || !strings.Contains(err.Error(), "257 characters") {
		t.Errorf("Publish with a key of 257 characters: %v", err)
	}
	if len(rec.calls) != 2 {
		t.Errorf("%d calls, want no more for the refused messages", len(rec.calls))
	}
}

// TestPublishTooLarge: a message that would leave no room for its dead
// letter's attributes is refused before it is sent, with the numbers.
func TestPublishTooLarge(t *testing.T) {
	var rec putRecorder
	p := newPublisher(t, &rec, "orders")
	attrs := map[string]string{"k": "v"}
	overhead := func() int { d, _ := kinesisstream.Encode(nil, attrs); return len(d) + len("acme") }()
	fits := make([]byte, kinesisstream.MaxRecordBytes-kinesisstream.DeadLetterHeadroom-overhead)
	if _, err := p.Publish(messagetest.As("acme"), fits, attrs); err != nil {
		t.Errorf("Publish of a message at the limit: %v", err)
	}
	_, err := p.Publish(messagetest.As("acme"), append(fits, 0), attrs)
	if !errors.Is(err, kinesisstream.ErrTooLarge) || !strings.Contains(err.Error(), "1047553 bytes") {
		t.Errorf("Publish of a byte more: %v", err)
	}
	if len(rec.calls) != 1 {
		t.Errorf("%d calls, want 1", len(rec.calls))
	}
	// The message at the limit still fits as a dead letter, with the
	// longest reason and the longest source.
	m := kinesisstream.NewMessage(strings.Repeat("s", 128), "shardId-000000000001", strings.Repeat("9", 56), rec.calls[0].Data)
	m.Deliveries = 1000
	if err := p.DeadLetter(context.Background(), m, "acme", strings.Repeat("r", 1000)); err != nil {
		t.Errorf("DeadLetter of a message at the limit: %v", err)
	}
	_, dl, _ := kinesisstream.Decode(rec.calls[1].Data)
	if len(dl[kinesisstream.AttrReason]) != 256 {
		t.Errorf("dead letter's reason of %d bytes, want it cut to 256", len(dl[kinesisstream.AttrReason]))
	}
}

func TestConfigurationMistakes(t *testing.T) {
	var rec putRecorder
	dl := newPublisher(t, &rec, "orders-dead")
	cp := &kinesisstream.MemoryCheckpoints{}
	client := kinesis.New(kinesis.Options{Region: "us-east-1"})
	for name, err := range map[string]error{
		"no checkpoints":  func() error { _, err := kinesisstream.NewConsumer(client, "orders", nil, dl); return err }(),
		"no dead letters": func() error { _, err := kinesisstream.NewConsumer(client, "orders", cp, nil); return err }(),
		"dead letters to the stream read": func() error {
			_, err := kinesisstream.NewConsumer(client, "orders-dead", cp, dl)
			return err
		}(),
		"WithBatch(20000)": func() error {
			_, err := kinesisstream.NewConsumer(client, "orders", cp, dl, kinesisstream.WithBatch(20000))
			return err
		}(),
		"WithRetryDelay(-1)": func() error {
			_, err := kinesisstream.NewConsumer(client, "orders", cp, dl, kinesisstream.WithRetryDelay(-time.Second))
			return err
		}(),
		"consumer WithPartitionKey": func() error {
			_, err := kinesisstream.NewConsumer(client, "orders", cp, dl, kinesisstream.WithPartitionKey(func(context.Context, []byte) string { return "k" }))
			return err
		}(),
		"publisher WithClock": func() error {
			_, err := kinesisstream.NewPublisher(&rec, "orders", kinesisstream.WithClock(time.Now))
			return err
		}(),
		"publisher without a stream": func() error { _, err := kinesisstream.NewPublisher(&rec, ""); return err }(),
	} {
		if err == nil || !strings.HasPrefix(err.Error(), "kinesisstream: ") {
			t.Errorf("%s: %v, want an error", name, err)
		}
	}
	if _, err := kinesisstream.NewConsumer(client, "orders", cp, dl, nil, kinesisstream.WithBatch(0)); err != nil {
		t.Errorf("a nil option and a zero value: %v", err)
	}
}

// TestRun: Run delivers what is published while it runs and returns once
// its context is done.
func TestRun(t *testing.T) {
	client, stream := shared(t, 1)
	p := newPublisher(t, client, stream)
	c := newConsumer(t, client, client, stream, &kinesisstream.MemoryCheckpoints{}, kinesisstream.WithPollInterval(20*time.Millisecond))
	got := make(chan string, 3)
	h := message.HandlerFunc(func(_ context.Context, m *message.Message) error {
		got <- string(m.Body) + " " + m.Attributes["k"]
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, h) }()
	for _, b := range []string{"1", "2", "3"} {
		publish(t, p, "acme", b, map[string]string{"k": "v" + b})
	}
	var bodies []string
	for range 3 {
		bodies = append(bodies, <-got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil once cancelled", err)
	}
	if diff := cmp.Diff([]string{"1 v1", "2 v2", "3 v3"}, bodies); diff != "" {
		t.Errorf("delivered (-want +got):\n%s", diff)
	}
}
