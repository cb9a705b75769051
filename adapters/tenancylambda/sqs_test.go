package tenancylambda_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/google/go-cmp/cmp"

	"github.com/tenancykit/tenancy"
	"github.com/tenancykit/tenancy/adapters/tenancylambda"
	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/message/sqsqueue"
	"github.com/tenancykit/tenancy/message/stamp"
	"github.com/tenancykit/tenancy/tenant"
)

const (
	producer = "https://orders.example.com"
	dlqURL   = "https://sqs.us-east-2.amazonaws.com/123456789012/orders-dead"
)

var stampClock = func() time.Time { return time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC) }

func newStampSigner(t *testing.T) *stamp.Signer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := stamp.NewSigner(producer, key, "k1", stamp.WithClock(stampClock))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func stampFor(t *testing.T, s *stamp.Signer, id, body string) map[string]string {
	t.Helper()
	ctx := tenant.NewContext(context.Background(), tenant.Tenant{ID: id, Tier: tenant.DefaultTiers.MustLookup("basic"), Source: tenant.SourceToken})
	attrs, err := s.Stamp(ctx, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return attrs
}

// messageStack returns the stack's message handler with stamp.Trusted
// of s's stamps around a handler that records the tenant each message
// ran as, by ID, and defers a body "later".
func messageStack(t *testing.T, s *stamp.Signer) (message.Handler, *ranAs) {
	t.Helper()
	v, err := stamp.NewVerifier(context.Background(), producer, stamp.WithJWKS(s.JWKS()), stamp.WithClock(stampClock))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	stack, err := tenancy.New(tenancy.WithMessageTrust(stamp.Trusted(v)))
	if err != nil {
		t.Fatal(err)
	}
	ran := &ranAs{by: map[string]string{}}
	return stack.WrapMessages(message.HandlerFunc(func(ctx context.Context, m *message.Message) error {
		tn, _ := tenant.FromContext(ctx)
		ran.mu.Lock()
		ran.by[m.ID] = tn.ID
		ran.mu.Unlock()
		if string(m.Body) == "later" {
			return message.Defer(90500 * time.Millisecond)
		}
		return nil
	})), ran
}

type ranAs struct {
	mu sync.Mutex
	by map[string]string
}

func (r *ranAs) got() map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]string{}
	for k, v := range r.by {
		out[k] = v
	}
	return out
}

// fakeSQS records the calls of tenancylambda.SQSClient.
type fakeSQS struct {
	mu       sync.Mutex
	vis      []sqs.ChangeMessageVisibilityInput
	sent     []sqs.SendMessageInput
	sendFail error
}

func (f *fakeSQS) ChangeMessageVisibility(_ context.Context, in *sqs.ChangeMessageVisibilityInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.vis = append(f.vis, *in)
	return &sqs.ChangeMessageVisibilityOutput{}, nil
}

func (f *fakeSQS) SendMessage(_ context.Context, in *sqs.SendMessageInput, _ ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, *in)
	if f.sendFail != nil {
		return nil, f.sendFail
	}
	return &sqs.SendMessageOutput{MessageId: aws.String("dead-1")}, nil
}

// sqsBatch returns the SQS event of testdata with, in order, a message of
// acme, one of globex, one whose stamp another key forged, and one of acme
// its handler defers.
func sqsBatch(t *testing.T, s *stamp.Signer) events.SQSEvent {
	t.Helper()
	var ev events.SQSEvent
	load(t, "sqs-event.json", &ev)
	if len(ev.Records) != 4 {
		t.Fatalf("%d records in the fixture", len(ev.Records))
	}
	for i, p := range []struct {
		tenant, body string
		signer       *stamp.Signer
	}{{"acme", "a1", s}, {"globex", "g1", s}, {"acme", "f1", newStampSigner(t)}, {"acme", "later", s}} {
		r := &ev.Records[i]
		r.Body = p.body
		r.MessageAttributes = map[string]events.SQSMessageAttribute{}
		for k, v := range stampFor(t, p.signer, p.tenant, p.body) {
			r.MessageAttributes[k] = events.SQSMessageAttribute{StringValue: aws.String(v), DataType: "String", StringListValues: []string{}, BinaryListValues: [][]byte{}}
		}
	}
	return ev
}

// TestSQSPartialBatch: a batch of two tenants runs each message as its
// tenant through the stack with stamp.Trusted; the forged stamp is
// dead-lettered with its reason and only it; the deferred message is a
// batch item failure whose visibility is set to its delay first.
func TestSQSPartialBatch(t *testing.T) {
	s := newStampSigner(t)
	h, ran := messageStack(t, s)
	ev := sqsBatch(t, s)
	client := &fakeSQS{}
	sh, err := tenancylambda.NewSQS(h, tenancylambda.WithSQSClient(client), tenancylambda.WithSQSDeadLetterQueue(dlqURL))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := sh.Handle(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	ids := func(i int) string { return ev.Records[i].MessageId }
	if diff := cmp.Diff(map[string]string{ids(0): "acme", ids(1): "globex", ids(3): "acme"}, ran.got()); diff != "" {
		t.Errorf("ran (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]events.SQSBatchItemFailure{{ItemIdentifier: ids(3)}}, resp.BatchItemFailures); diff != "" {
		t.Errorf("batch item failures (-want +got):\n%s", diff)
	}
	if len(client.vis) != 1 || client.vis[0].VisibilityTimeout != 91 || aws.ToString(client.vis[0].ReceiptHandle) != ev.Records[3].ReceiptHandle ||
		aws.ToString(client.vis[0].QueueUrl) != "https://sqs.us-east-2.amazonaws.com/123456789012/orders" {
		t.Errorf("visibility changes %+v: want the deferred message's, 91 s on its queue", client.vis)
	}
	if len(client.sent) != 1 {
		t.Fatalf("%d dead letters, want the forged one", len(client.sent))
	}
	d := client.sent[0]
	if aws.ToString(d.QueueUrl) != dlqURL || aws.ToString(d.MessageBody) != "f1" ||
		aws.ToString(d.MessageAttributes[sqsqueue.AttrReason].StringValue) != "stamp:signature" ||
		aws.ToString(d.MessageAttributes[sqsqueue.AttrMessageID].StringValue) != ids(2) ||
		aws.ToString(d.MessageAttributes[sqsqueue.AttrSource].StringValue) != "orders" {
		t.Errorf("dead letter %+v", d)
	}

	// The dead-letter queue refuses: the forged message is reported, so
	// that it comes back.
	client.sendFail = errors.New("connection refused")
	sh2, _ := tenancylambda.NewSQS(h, tenancylambda.WithSQSClient(client), tenancylambda.WithSQSDeadLetterQueue(dlqURL))
	resp, _ = sh2.Handle(context.Background(), sqsBatch(t, s))
	if n := len(resp.BatchItemFailures); n != 2 {
		t.Errorf("%d batch item failures when the dead letter fails, want the forged and the deferred", n)
	}
}

// TestSQSWithoutClient: without a client a rejected message is a batch
// item failure (the redrive policy's to dead-letter), and a deferred one
// too; the record's SenderId and ApproximateReceiveCount reach the
// message.
func TestSQSWithoutClient(t *testing.T) {
	s := newStampSigner(t)
	h, _ := messageStack(t, s)
	ev := sqsBatch(t, s)
	var got []*message.Message
	sh, err := tenancylambda.NewSQS(message.HandlerFunc(func(ctx context.Context, m *message.Message) error {
		got = append(got, m)
		return h.HandleMessage(ctx, m)
	}))
	if err != nil {
		t.Fatal(err)
	}
	resp, _ := sh.Handle(context.Background(), ev)
	want := []events.SQSBatchItemFailure{{ItemIdentifier: ev.Records[2].MessageId}, {ItemIdentifier: ev.Records[3].MessageId}}
	if diff := cmp.Diff(want, resp.BatchItemFailures); diff != "" {
		t.Errorf("batch item failures (-want +got):\n%s", diff)
	}
	if m := got[2]; m.SenderID != "AROAEXAMPLEID123456:tenant-acme" || m.Deliveries != 1 || got[1].Deliveries != 2 || m.Source != "orders" {
		t.Errorf("message %+v: want the record's SenderId, receive count and queue", m)
	}
	// A context that is done leaves every record for redelivery.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	resp, _ = sh.Handle(ctx, ev)
	if len(resp.BatchItemFailures) != 4 {
		t.Errorf("%d batch item failures once the context is done, want all 4", len(resp.BatchItemFailures))
	}
	if _, err := tenancylambda.NewSQS(h, tenancylambda.WithSQSDeadLetterQueue(dlqURL)); err == nil || !strings.Contains(err.Error(), "WithSQSClient") {
		t.Errorf("a dead-letter queue without a client: %v", err)
	}
}

func TestQueueURL(t *testing.T) {
	for arn, want := range map[string]string{
		"arn:aws:sqs:us-east-2:123456789012:orders":          "https://sqs.us-east-2.amazonaws.com/123456789012/orders",
		"arn:aws-cn:sqs:cn-north-1:123456789012:orders.fifo": "https://sqs.cn-north-1.amazonaws.com.cn/123456789012/orders.fifo",
		"arn:aws:sns:us-east-2:123456789012:orders":          "",
		"orders": "",
	} {
		got, err := tenancylambda.QueueURL(arn)
		if got != want || (want == "") != (err != nil) {
			t.Errorf("QueueURL(%q) = %q, %v; want %q", arn, got, err, want)
		}
	}
}

// eventBridgeEvent returns the EventBridge event of testdata carrying
// body with attrs in its detail.
func eventBridgeEvent(t *testing.T, body string, attrs map[string]string) events.EventBridgeEvent {
	t.Helper()
	var ev events.EventBridgeEvent
	load(t, "eventbridge-event.json", &ev)
	detail, err := tenancylambda.EventBridgeDetail([]byte(body), attrs)
	if err != nil {
		t.Fatal(err)
	}
	ev.Detail = json.RawMessage(detail)
	return ev
}

// TestEventBridge: a stamp carried in the detail's envelope is verified
// with stamp.Trusted; a forged one is refused without a retry when there
// is a dead-letter queue, and returned as ErrRejected with the reason
// when there is none; a deferral is an error, for Lambda to retry.
func TestEventBridge(t *testing.T) {
	s := newStampSigner(t)
	h, ran := messageStack(t, s)
	body := `{"order":"o-1"}`
	ok := eventBridgeEvent(t, body, stampFor(t, s, "acme", body))
	eb, err := tenancylambda.NewEventBridge(h)
	if err != nil {
		t.Fatal(err)
	}
	if err := eb.Handle(context.Background(), ok); err != nil {
		t.Fatalf("a stamped event: %v", err)
	}
	if got := ran.got()[ok.ID]; got != "acme" {
		t.Errorf("the event ran as %q, want acme", got)
	}
	if m := tenancylambda.EventBridgeMessage(ok); string(m.Body) != body || m.Source != "com.example.orders" {
		t.Errorf("message %q from %q: want the body as signed from the event's source", m.Body, m.Source)
	}

	forged := eventBridgeEvent(t, body, stampFor(t, newStampSigner(t), "acme", body))
	forged.ID = "forged-1"
	if err := eb.Handle(context.Background(), forged); !errors.Is(err, tenancylambda.ErrRejected) || !strings.Contains(err.Error(), "stamp:signature") {
		t.Errorf("forged without a dead-letter queue: %v, want ErrRejected naming stamp:signature", err)
	}
	client := &fakeSQS{}
	ebDLQ, err := tenancylambda.NewEventBridge(h, tenancylambda.WithEventBridgeDeadLetterQueue(client, dlqURL))
	if err != nil {
		t.Fatal(err)
	}
	if err := ebDLQ.Handle(context.Background(), forged); err != nil {
		t.Errorf("forged with a dead-letter queue: %v, want nil (no retry)", err)
	}
	if len(client.sent) != 1 || aws.ToString(client.sent[0].MessageAttributes[sqsqueue.AttrReason].StringValue) != "stamp:signature" || aws.ToString(client.sent[0].MessageBody) != body {
		t.Errorf("dead letters %+v", client.sent)
	}
	client.sendFail = errors.New("connection refused")
	if err := ebDLQ.Handle(context.Background(), forged); !errors.Is(err, tenancylambda.ErrRetry) {
		t.Errorf("forged, the dead-letter queue down: %v, want ErrRetry", err)
	}
	if _, ok := ran.got()[forged.ID]; ok {
		t.Error("the forged event ran")
	}

	// A detail that is no envelope carries no stamp: refused.
	bare := eventBridgeEvent(t, body, nil)
	bare.ID, bare.Detail = "bare-1", json.RawMessage(body)
	if err := eb.Handle(context.Background(), bare); !errors.Is(err, tenancylambda.ErrRejected) || !strings.Contains(err.Error(), "stamp:missing") {
		t.Errorf("a bare detail: %v, want ErrRejected naming stamp:missing", err)
	}

	later := eventBridgeEvent(t, "later", stampFor(t, s, "globex", "later"))
	later.ID = "later-1"
	if err := eb.Handle(context.Background(), later); !errors.Is(err, tenancylambda.ErrRetry) {
		t.Errorf("a deferred event: %v, want ErrRetry", err)
	}

	// Bytes that are no UTF-8 travel in base64, exactly.
	bin := []byte{0xff, 0x00, 'x'}
	d, _ := tenancylambda.EventBridgeDetail(bin, map[string]string{"k": "v"})
	if m := tenancylambda.EventBridgeMessage(events.EventBridgeEvent{Detail: json.RawMessage(d)}); string(m.Body) != string(bin) || m.Attributes["k"] != "v" {
		t.Errorf("binary body round trip: %q %v", m.Body, m.Attributes)
	}
}
