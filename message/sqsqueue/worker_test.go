package sqsqueue_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/google/go-cmp/cmp"

	"github.com/tenancykit/tenancy"
	"github.com/tenancykit/tenancy/internal/messagetest"
	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/message/sqsqueue"
	"github.com/tenancykit/tenancy/message/stamp"
	"github.com/tenancykit/tenancy/tenant"
)

const (
	queueURL = "https://sqs.eu-west-1.amazonaws.com/123456789012/orders"
	dlqURL   = "https://sqs.eu-west-1.amazonaws.com/123456789012/orders-dead"
	roleID   = "AROAEXAMPLEID123456"
)

func newPublisher(t *testing.T, f *fakeSQS, url string, opts ...sqsqueue.Option) *sqsqueue.Publisher {
	t.Helper()
	p, err := sqsqueue.NewPublisher(f, url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func publish(t *testing.T, p *sqsqueue.Publisher, ctx context.Context, body string, attrs map[string]string) string {
	t.Helper()
	id, err := p.Publish(ctx, []byte(body), attrs)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func newWorker(t *testing.T, f *fakeSQS, clk *messagetest.Clock, opts ...sqsqueue.Option) *sqsqueue.Worker {
	t.Helper()
	base := []sqsqueue.Option{sqsqueue.WithDeadLetterQueue(dlqURL), sqsqueue.WithClock(clk.Now)}
	w, err := sqsqueue.NewWorker(f, queueURL, append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func poll(t *testing.T, w *sqsqueue.Worker, h message.Handler, want int) {
	t.Helper()
	n, err := w.Poll(context.Background(), h)
	if err != nil {
		t.Fatal(err)
	}
	if n != want {
		t.Fatalf("Poll handled %d messages, want %d", n, want)
	}
}

// deadLetters returns the dead-letter queue's messages as "reason after
// deliveries from source", by the ID the message had.
func deadLetters(f *fakeSQS) map[string]string {
	out := map[string]string{}
	for _, m := range f.messages(dlqURL) {
		a := func(k string) string { return aws.ToString(m.attrs[k].StringValue) }
		out[a(sqsqueue.AttrMessageID)] = a(sqsqueue.AttrReason) + " after " + a(sqsqueue.AttrDeliveries) + " from " + a(sqsqueue.AttrSource)
	}
	return out
}

var basic = tenant.DefaultTiers.MustLookup("basic")

// TestOutcomes: acked messages are deleted; a deferred one is hidden for
// its delay rounded up to whole seconds, and deferred again past the
// maximum of deliveries without being dead-lettered; a rejected one is
// dead-lettered with its reason and deleted; a failing one is delivered
// again after the retry delay until its maximum of deliveries, then
// dead-lettered "max_deliveries".
func TestOutcomes(t *testing.T) {
	clk := messagetest.NewClock()
	f := newFake(clk.Now)
	p := newPublisher(t, f, queueURL)
	w := newWorker(t, f, clk, sqsqueue.WithMaxDeliveries(3), sqsqueue.WithRetryDelay(5*time.Second))
	var rec messagetest.Recorder
	h := message.BoundQueue("acme", basic)(rec.Handler(func(_ context.Context, m *message.Message) error {
		switch string(m.Body) {
		case "defer":
			if m.Deliveries <= 4 {
				return message.Defer(90*time.Second + time.Millisecond)
			}
		case "reject":
			return message.Reject("invalid_order")
		case "fail":
			return errors.New("database down")
		}
		return nil
	}))
	ack := publish(t, p, context.Background(), "ack", map[string]string{"k": "v"})
	deferred := publish(t, p, context.Background(), "defer", nil)
	rejected := publish(t, p, context.Background(), "reject", map[string]string{"k": "v"})
	failing := publish(t, p, context.Background(), "fail", nil)

	poll(t, w, h, 4)
	if got := f.count(queueURL); got != 2 {
		t.Fatalf("%d messages left in the queue, want 2 (the acked and the rejected deleted)", got)
	}
	// The deferral is 91 s, the retry 5 s.
	for delivery := 2; delivery <= 3; delivery++ {
		clk.Add(5 * time.Second)
		poll(t, w, h, 1)
		if got := rec.Got()[failing]; got != fmt.Sprintf("acme#%d", delivery) {
			t.Fatalf("the failing message ran as %q on delivery %d", got, delivery)
		}
	}
	clk.Add(80 * time.Second) // 90 s after the first poll
	poll(t, w, h, 0)
	clk.Add(time.Second)
	poll(t, w, h, 1)
	for range 3 { // deferred again and again: deliveries 3, 4, 5
		clk.Add(91 * time.Second)
		poll(t, w, h, 1)
	}
	if got := rec.Got()[deferred]; got != "acme#5" {
		t.Errorf("the deferred message ran as %q, want acme on its fifth delivery", got)
	}
	want := map[string]string{
		rejected: "handler:invalid_order after 1 from orders",
		failing:  "max_deliveries after 3 from orders",
	}
	if diff := cmp.Diff(want, deadLetters(f)); diff != "" {
		t.Errorf("dead letters (-want +got):\n%s", diff)
	}
	if got := f.count(queueURL); got != 0 {
		t.Errorf("%d messages left in the queue, want none", got)
	}
	for _, m := range f.messages(dlqURL) {
		if aws.ToString(m.attrs[sqsqueue.AttrMessageID].StringValue) == rejected && (m.body != "reject" || aws.ToString(m.attrs["k"].StringValue) != "v") {
			t.Errorf("dead letter %+v: want the message's body and attributes", m)
		}
	}
	_ = ack
}

// TestReceiveInput: the Worker asks for a batch, all message attributes,
// the sender, the receive count and the sent time, and its visibility
// timeout; Poll does not wait, Run long-polls.
func TestReceiveInput(t *testing.T) {
	clk := messagetest.NewClock()
	f := newFake(clk.Now)
	w := newWorker(t, f, clk, sqsqueue.WithBatch(7), sqsqueue.WithVisibilityTimeout(1500*time.Millisecond+time.Second), sqsqueue.WithWait(3*time.Second))
	poll(t, w, message.HandlerFunc(func(context.Context, *message.Message) error { return nil }), 0)
	in := f.receives[0]
	if in.MaxNumberOfMessages != 7 || in.WaitTimeSeconds != 0 || in.VisibilityTimeout != 3 || aws.ToString(in.QueueUrl) != queueURL {
		t.Errorf("ReceiveMessage %+v: want 7 messages, no wait, visibility 3 s", in)
	}
	if diff := cmp.Diff([]string{"All"}, in.MessageAttributeNames); diff != "" {
		t.Errorf("MessageAttributeNames: %s", diff)
	}
	if got := fmt.Sprint(in.MessageSystemAttributeNames); got != "[SenderId ApproximateReceiveCount SentTimestamp]" {
		t.Errorf("MessageSystemAttributeNames = %s", got)
	}

	// Run: long polls, and delivers what is sent while it waits.
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- w.Run(ctx, message.HandlerFunc(func(_ context.Context, m *message.Message) error {
			got <- string(m.Body)
			return nil
		}))
	}()
	publish(t, newPublisher(t, f, queueURL), context.Background(), "hello", nil)
	if b := <-got; b != "hello" {
		t.Errorf("Run delivered %q", b)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil once cancelled", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if last := f.receives[len(f.receives)-1]; last.WaitTimeSeconds != 3 {
		t.Errorf("Run's ReceiveMessage waited %d s, want 3", last.WaitTimeSeconds)
	}
}

// TestStampedEndToEnd: stamped messages of two tenants, published with
// their tenant as the group, run as their tenant through the stack with
// stamp.Trusted; a redelivery of an accepted stamp (its deletion failed)
// passes; a forged, a tampered, a missing stamp and a replayed one are
// dead-lettered with their reasons and never run.
func TestStampedEndToEnd(t *testing.T) {
	clk := messagetest.NewClock()
	f := newFake(clk.Now)
	s := messagetest.NewSigner(t, clk.Now)
	v := messagetest.NewVerifier(t, s, clk.Now)
	stack, err := tenancy.New(tenancy.WithMessageTrust(stamp.Trusted(v)))
	if err != nil {
		t.Fatal(err)
	}
	var rec messagetest.Recorder
	h := stack.WrapMessages(rec.Handler(nil))
	p := newPublisher(t, f, queueURL)
	w := newWorker(t, f, clk)

	a1Attrs := messagetest.Stamp(t, s, "acme", "a1")
	a1 := publish(t, p, messagetest.As("acme"), "a1", a1Attrs)
	g1 := publish(t, p, messagetest.As("globex"), "g1", messagetest.Stamp(t, s, "globex", "g1"))
	forged := publish(t, p, messagetest.As("acme"), "f1", messagetest.Stamp(t, messagetest.NewSigner(t, clk.Now), "acme", "f1"))
	tampered := publish(t, p, messagetest.As("acme"), "t1-changed", messagetest.Stamp(t, s, "acme", "t1"))
	missing := publish(t, p, messagetest.As("acme"), "m1", map[string]string{"k": "v"})
	replayed := publish(t, p, messagetest.As("acme"), "a1", a1Attrs) // the same stamp, another message

	for _, in := range f.sent {
		if len(in.MessageAttributes) > 0 && aws.ToString(in.MessageGroupId) == "" {
			t.Errorf("sent without a MessageGroupId: %+v", in)
		}
	}
	if n := len(a1Attrs); n > 4 {
		t.Errorf("a stamp took %d attributes, want at most 4", n)
	}
	// a1's deletion fails once: it comes back, and its stamp passes again.
	f.failDelete = func(id string, receives int) bool { return id == a1 && receives == 1 }
	n, err := w.Poll(context.Background(), h)
	if n != 6 || err == nil || !strings.Contains(err.Error(), a1) || !strings.Contains(err.Error(), "InternalError") {
		t.Fatalf("Poll = %d, %v; want 6 handled and a1's failed deletion", n, err)
	}
	if diff := cmp.Diff(map[string]string{a1: "acme#1", g1: "globex#1"}, rec.Got()); diff != "" {
		t.Errorf("ran (-want +got):\n%s", diff)
	}
	want := map[string]string{
		forged:   "stamp:signature after 1 from orders",
		tampered: "stamp:body_digest after 1 from orders",
		missing:  "stamp:missing after 1 from orders",
		replayed: "stamp:replayed after 1 from orders",
	}
	if diff := cmp.Diff(want, deadLetters(f)); diff != "" {
		t.Errorf("dead letters (-want +got):\n%s", diff)
	}
	clk.Add(sqsqueue.DefaultVisibility)
	poll(t, w, h, 1)
	if got := rec.Got()[a1]; got != "acme#2" {
		t.Errorf("a1 ran as %q on its redelivery, want acme#2", got)
	}
	if n := f.count(queueURL); n != 0 {
		t.Errorf("%d messages left, want none", n)
	}
}
