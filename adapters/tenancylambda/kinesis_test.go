package tenancylambda_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/google/go-cmp/cmp"

	"github.com/tenancykit/tenancy"
	"github.com/tenancykit/tenancy/adapters/tenancylambda"
	"github.com/tenancykit/tenancy/internal/syncbuf"
	"github.com/tenancykit/tenancy/internal/testservers"
	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/message/kinesisstream"
	"github.com/tenancykit/tenancy/message/stamp"
	"github.com/tenancykit/tenancy/tenant"
)

const streamARN = "arn:aws:kinesis:us-east-1:123456789012:stream/orders"

// record is a Kinesis record of a Lambda event.
type record struct {
	shard, seq, key string
	data            []byte
}

// kinesisPayload returns the event Lambda gives a function for records,
// as JSON, field for field (the data in base64).
func kinesisPayload(records ...record) []byte {
	var b strings.Builder
	b.WriteString(`{"Records":[`)
	for i, r := range records {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{
			"kinesis": {
				"kinesisSchemaVersion": "1.0",
				"partitionKey": %q,
				"sequenceNumber": %q,
				"data": %q,
				"approximateArrivalTimestamp": 1773489600.123
			},
			"eventSource": "aws:kinesis",
			"eventVersion": "1.0",
			"eventID": "%s:%s",
			"eventName": "aws:kinesis:record",
			"invokeIdentityArn": "arn:aws:iam::123456789012:role/orders-consumer",
			"awsRegion": "us-east-1",
			"eventSourceARN": %q
		}`, r.key, r.seq, base64.StdEncoding.EncodeToString(r.data), r.shard, r.seq, streamARN)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

// invokeKinesis invokes k as lambda.Start would (its Handle method, by
// reflection, with the payload as JSON) and returns the sequence numbers
// the response reports.
func invokeKinesis(t *testing.T, ctx context.Context, k *tenancylambda.KinesisHandler, payload []byte) []string {
	t.Helper()
	out, err := lambda.NewHandler(k.Handle).Invoke(ctx, payload)
	if err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	var resp struct {
		BatchItemFailures []struct {
			ItemIdentifier string `json:"itemIdentifier"`
		} `json:"batchItemFailures"`
	}
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatalf("response %s: %v", out, err)
	}
	var seqs []string
	for _, f := range resp.BatchItemFailures {
		seqs = append(seqs, f.ItemIdentifier)
	}
	return seqs
}

func envelope(t *testing.T, body string, attrs map[string]string) []byte {
	t.Helper()
	data, err := kinesisstream.Encode([]byte(body), attrs)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// ran records the messages a handler ran, in order: ID, tenant, body.
type ran struct {
	mu  sync.Mutex
	got []string
}

func (r *ran) handler(outcome func(m *message.Message) error) message.Handler {
	return message.HandlerFunc(func(ctx context.Context, m *message.Message) error {
		tn, _ := tenant.FromContext(ctx)
		r.mu.Lock()
		r.got = append(r.got, m.ID+" "+tn.ID+" "+string(m.Body)+" "+m.Source)
		r.mu.Unlock()
		if outcome != nil {
			return outcome(m)
		}
		return nil
	})
}

func (r *ran) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.got...)
}

// TestKinesisOutcomes: each shard's records are handled in order; the
// first deferred or failed record of a shard is reported, and the
// records after it are not handled (Lambda resumes the shard from it).
func TestKinesisOutcomes(t *testing.T) {
	var r ran
	h := message.BoundQueue("acme", tenant.DefaultTiers.MustLookup("basic"))(r.handler(func(m *message.Message) error {
		switch string(m.Body) {
		case "later":
			return message.Defer(time.Minute)
		case "broken":
			return errors.New("database down")
		}
		return nil
	}))
	logs := &syncbuf.Buffer{}
	k, err := tenancylambda.NewKinesis(h, tenancylambda.WithKinesisLogger(slog.New(slog.NewTextHandler(logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	const a, b = "shardId-000000000000", "shardId-000000000001"
	got := invokeKinesis(t, context.Background(), k, kinesisPayload(
		record{a, "101", "acme", envelope(t, "a1", nil)},
		record{b, "201", "acme", envelope(t, "b1", nil)},
		record{a, "102", "acme", envelope(t, "later", nil)},
		record{b, "202", "acme", envelope(t, "broken", nil)},
		record{a, "103", "acme", envelope(t, "a3", nil)},
		record{b, "203", "acme", []byte("not an envelope")},
	))
	if diff := cmp.Diff([]string{"102", "202"}, got); diff != "" {
		t.Errorf("batch item failures (-want +got):\n%s", diff)
	}
	want := []string{
		a + "/101 acme a1 orders", b + "/201 acme b1 orders",
		a + "/102 acme later orders", b + "/202 acme broken orders",
	}
	if diff := cmp.Diff(want, r.list()); diff != "" {
		t.Errorf("handled (-want +got):\n%s", diff)
	}
	if !strings.Contains(logs.String(), "record deferred") || !strings.Contains(logs.String(), "record failed") {
		t.Errorf("logs:\n%s", logs)
	}

	// All acknowledged: no failures, and an empty list in the response.
	out, err := lambda.NewHandler(k.Handle).Invoke(context.Background(), kinesisPayload(record{a, "103", "acme", envelope(t, "a3", nil)}))
	if err != nil || string(out) != `{"batchItemFailures":null}` && string(out) != `{"batchItemFailures":[]}` {
		t.Errorf("response %s, %v", out, err)
	}
}

// TestKinesisInvocationEnding: once the invocation's context is done,
// the next record of each shard is reported and none is handled.
func TestKinesisInvocationEnding(t *testing.T) {
	var r ran
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := message.BoundQueue("acme", tenant.DefaultTiers.MustLookup("basic"))(r.handler(func(*message.Message) error {
		cancel()
		return nil
	}))
	k, err := tenancylambda.NewKinesis(h, tenancylambda.WithKinesisLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	const a = "shardId-000000000000"
	got := invokeKinesis(t, ctx, k, kinesisPayload(
		record{a, "1", "acme", envelope(t, "1", nil)},
		record{a, "2", "acme", envelope(t, "2", nil)},
		record{a, "3", "acme", envelope(t, "3", nil)},
	))
	if diff := cmp.Diff([]string{"2"}, got); diff != "" {
		t.Errorf("batch item failures (-want +got):\n%s", diff)
	}
	if n := len(r.list()); n != 1 {
		t.Errorf("%d handled, want 1", n)
	}
}

func kinesisClient(t *testing.T, endpoint string) *kinesis.Client {
	t.Helper()
	cfg := testservers.AWSConfig(t)
	cfg.RetryMaxAttempts = 1
	return kinesis.NewFromConfig(cfg, func(o *kinesis.Options) { o.BaseEndpoint = aws.String(endpoint) })
}

// deadLetters reads a one-shard dead-letter stream: reason by ID.
func deadLetters(t *testing.T, client *kinesis.Client, stream string) map[string]string {
	t.Helper()
	it, err := client.GetShardIterator(t.Context(), &kinesis.GetShardIteratorInput{
		StreamName: aws.String(stream), ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := client.GetRecords(t.Context(), &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range out.Records {
		body, attrs, err := kinesisstream.Decode(r.Data)
		if err != nil {
			t.Fatal(err)
		}
		got[attrs[kinesisstream.AttrID]] = attrs[kinesisstream.AttrReason] + " " + string(body) + " " + aws.ToString(r.PartitionKey) + " " + attrs[kinesisstream.AttrSource]
	}
	return got
}

// TestKinesisStamps: records published by a kinesisstream.Publisher with
// stamps are verified by stamp.Trusted and run as their tenant; a record
// without a stamp (no envelope) and a tampered one are dead-lettered to
// a Kinesis stream with their reasons and count as handled; while the
// dead letter cannot be written, or without one, a rejected record is
// reported as a failure with its reason logged.
func TestKinesisStamps(t *testing.T) {
	srv := testservers.Kinesalite(t)
	client := kinesisClient(t, srv.Endpoint)
	if _, err := client.CreateStream(t.Context(), &kinesis.CreateStreamInput{StreamName: aws.String("orders-dead"), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	w := kinesis.NewStreamExistsWaiter(client, func(o *kinesis.StreamExistsWaiterOptions) { o.MinDelay = 10 * time.Millisecond })
	if err := w.Wait(t.Context(), &kinesis.DescribeStreamInput{StreamName: aws.String("orders-dead")}, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := stamp.NewSigner("https://orders.example.com", key, "k1")
	if err != nil {
		t.Fatal(err)
	}
	v, err := stamp.NewVerifier(context.Background(), "https://orders.example.com", stamp.WithJWKS(signer.JWKS()))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	stack, err := tenancy.New(tenancy.WithMessageTrust(stamp.Trusted(v)))
	if err != nil {
		t.Fatal(err)
	}
	var r ran
	worker := stack.WrapMessages(r.handler(nil))
	dl, err := kinesisstream.NewPublisher(client, "orders-dead")
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncbuf.Buffer{}
	k, err := tenancylambda.NewKinesis(worker, tenancylambda.WithKinesisDeadLetter(dl), tenancylambda.WithKinesisLogger(slog.New(slog.NewTextHandler(logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	stamped := func(id, body string) []byte {
		ctx := tenant.NewContext(context.Background(), tenant.Tenant{ID: id, Tier: tenant.DefaultTiers.MustLookup("basic"), Source: tenant.SourceToken})
		attrs, err := signer.Stamp(ctx, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		return envelope(t, body, attrs)
	}
	const a = "shardId-000000000000"
	tampered := stamped("acme", "t1")
	tampered[len(tampered)-1] = '2'
	got := invokeKinesis(t, context.Background(), k, kinesisPayload(
		record{a, "1", "acme", stamped("acme", "o1")},
		record{a, "2", "acme", []byte(`{"tenant":"acme"}`)},
		record{a, "3", "acme", tampered},
		record{a, "4", "globex", stamped("globex", "o2")},
	))
	if len(got) != 0 {
		t.Errorf("batch item failures %v, want none; logs:\n%s", got, logs)
	}
	if diff := cmp.Diff([]string{a + "/1 acme o1 orders", a + "/4 globex o2 orders"}, r.list()); diff != "" {
		t.Errorf("ran (-want +got):\n%s", diff)
	}
	want := map[string]string{
		a + "/2": `stamp:missing {"tenant":"acme"} acme orders`,
		a + "/3": "stamp:body_digest t2 acme orders",
	}
	if diff := cmp.Diff(want, deadLetters(t, client, "orders-dead")); diff != "" {
		t.Errorf("dead letters (-want +got):\n%s", diff)
	}

	// Kinesis down: the dead letter cannot be written.
	srv.Stop()
	if got := invokeKinesis(t, context.Background(), k, kinesisPayload(record{a, "5", "acme", []byte("x")}, record{a, "6", "acme", stamped("acme", "o3")})); !cmp.Equal(got, []string{"5"}) {
		t.Errorf("with the dead-letter stream down: failures %v, want 5", got)
	}
	if !strings.Contains(logs.String(), "writing a dead letter failed") {
		t.Errorf("logs:\n%s", logs)
	}

	// No dead letter: reported, with the reason logged.
	logs.Reset()
	plain, err := tenancylambda.NewKinesis(worker, tenancylambda.WithKinesisLogger(slog.New(slog.NewTextHandler(logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	if got := invokeKinesis(t, context.Background(), plain, kinesisPayload(record{a, "5", "acme", []byte("x")})); !cmp.Equal(got, []string{"5"}) {
		t.Errorf("without a dead letter: failures %v, want 5", got)
	}
	if !strings.Contains(logs.String(), "reason=stamp:missing") {
		t.Errorf("the reason is not logged:\n%s", logs)
	}
}

func TestNewKinesisMistakes(t *testing.T) {
	if _, err := tenancylambda.NewKinesis(nil); err == nil {
		t.Error("NewKinesis(nil): no error")
	}
	h := message.HandlerFunc(func(context.Context, *message.Message) error { return nil })
	if _, err := tenancylambda.NewKinesis(h, tenancylambda.WithKinesisDeadLetter(nil)); err == nil {
		t.Error("WithKinesisDeadLetter(nil): no error")
	}
	if _, err := tenancylambda.NewKinesis(h, nil, tenancylambda.WithKinesisLogger(nil)); err != nil {
		t.Errorf("a nil option and a nil logger: %v", err)
	}
}
