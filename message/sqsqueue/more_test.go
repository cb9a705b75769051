package sqsqueue_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/google/go-cmp/cmp"

	"github.com/tenancykit/tenancy/internal/messagetest"
	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/message/sqsqueue"
)

// TestSenderSession: SQS's SenderId reaches message.SenderSession, which
// runs a message sent from the tenant's role session as that tenant and
// dead-letters one sent from another tenant's session.
func TestSenderSession(t *testing.T) {
	clk := messagetest.NewClock()
	f := newFake(clk.Now)
	p := newPublisher(t, f, queueURL)
	w := newWorker(t, f, clk)
	var rec messagetest.Recorder
	h := message.SenderSession(roleID, "tenant")(rec.Handler(nil))
	f.setSender(roleID + ":tenant-acme")
	ok := publish(t, p, messagetest.As("acme"), "a", map[string]string{"tenant": "acme"})
	mismatch := publish(t, p, messagetest.As("globex"), "g", map[string]string{"tenant": "globex"})
	f.setSender("AIDAUSERID")
	user := publish(t, p, messagetest.As("acme"), "u", map[string]string{"tenant": "acme"})
	poll(t, w, h, 3)
	if diff := cmp.Diff(map[string]string{ok: "acme#1"}, rec.Got()); diff != "" {
		t.Errorf("ran (-want +got):\n%s", diff)
	}
	want := map[string]string{
		mismatch: "sender_session:sender_mismatch after 1 from orders",
		user:     "sender_session:sender_not_session after 1 from orders",
	}
	if diff := cmp.Diff(want, deadLetters(f)); diff != "" {
		t.Errorf("dead letters (-want +got):\n%s", diff)
	}
}

// TestPublishRefuses: what SQS would refuse is refused before any call:
// eleven attributes, an empty value, a reserved name; a FIFO queue needs
// a tenant for the group, and takes the deduplication ID.
func TestPublishRefuses(t *testing.T) {
	clk := messagetest.NewClock()
	f := newFake(clk.Now)
	p := newPublisher(t, f, queueURL)
	eleven := map[string]string{}
	for i := range 11 {
		eleven["a"+strconv.Itoa(i)] = "v"
	}
	ten := map[string]string{}
	for i := range 10 {
		ten["a"+strconv.Itoa(i)] = "v"
	}
	if _, err := p.Publish(messagetest.As("acme"), []byte("x"), eleven); !errors.Is(err, sqsqueue.ErrTooManyAttributes) || !strings.Contains(err.Error(), "11") {
		t.Errorf("11 attributes: %v, want ErrTooManyAttributes naming 11", err)
	}
	for name, attrs := range map[string]map[string]string{
		"empty":    {"k": ""},
		"reserved": {"AWS.trace": "v"},
		"chars":    {"a b": "v"},
		"dots":     {"a..b": "v"},
	} {
		if _, err := p.Publish(messagetest.As("acme"), []byte("x"), attrs); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if len(f.sent) != 0 {
		t.Fatalf("%d refused messages were sent", len(f.sent))
	}
	if _, err := p.Publish(messagetest.As("acme"), []byte("x"), ten); err != nil {
		t.Errorf("10 attributes: %v", err)
	}
	if g := aws.ToString(f.sent[0].MessageGroupId); g != "acme" {
		t.Errorf("MessageGroupId = %q, want the tenant", g)
	}
	if _, err := p.Publish(context.Background(), []byte("x"), nil); err != nil {
		t.Errorf("no tenant on a standard queue: %v", err)
	}
	if f.sent[1].MessageGroupId != nil {
		t.Errorf("MessageGroupId = %q without a tenant, want none", *f.sent[1].MessageGroupId)
	}

	fifo := newPublisher(t, f, queueURL+".fifo", sqsqueue.WithDeduplicationID(func(body []byte, _ map[string]string) string { return "d-" + string(body) }))
	if _, err := fifo.Publish(context.Background(), []byte("x"), nil); err == nil || !strings.Contains(err.Error(), "FIFO") {
		t.Errorf("FIFO without a tenant: %v, want an error naming FIFO", err)
	}
	if _, err := fifo.Publish(messagetest.As("acme"), []byte("x"), nil); err != nil {
		t.Fatal(err)
	}
	last := f.sent[len(f.sent)-1]
	if aws.ToString(last.MessageGroupId) != "acme" || aws.ToString(last.MessageDeduplicationId) != "d-x" {
		t.Errorf("FIFO message: group %q, deduplication %q", aws.ToString(last.MessageGroupId), aws.ToString(last.MessageDeduplicationId))
	}
}

// TestDeadLetterSendFails: when the dead letter cannot be sent, the
// rejected message is not deleted; it comes back after its visibility
// timeout and is dead-lettered once the dead-letter queue takes it.
func TestDeadLetterSendFails(t *testing.T) {
	clk := messagetest.NewClock()
	f := newFake(clk.Now)
	p := newPublisher(t, f, queueURL)
	w := newWorker(t, f, clk)
	var rec messagetest.Recorder
	h := message.BoundQueue("acme", basic)(rec.Handler(func(context.Context, *message.Message) error { return message.Reject("invalid_order") }))
	id := publish(t, p, context.Background(), "bad", nil)
	f.failSend = map[string]error{dlqURL: errSendDown}
	n, err := w.Poll(context.Background(), h)
	if n != 1 || !errors.Is(err, errSendDown) {
		t.Fatalf("Poll = %d, %v; want 1 and the failed send", n, err)
	}
	if f.count(queueURL) != 1 {
		t.Fatal("the message was deleted although its dead letter was not sent")
	}
	clk.Add(sqsqueue.DefaultVisibility - time.Second)
	poll(t, w, h, 0)
	clk.Add(time.Second)
	f.failSend = nil
	poll(t, w, h, 1)
	if diff := cmp.Diff(map[string]string{id: "handler:invalid_order after 2 from orders"}, deadLetters(f)); diff != "" {
		t.Errorf("dead letters (-want +got):\n%s", diff)
	}
	if f.count(queueURL) != 0 {
		t.Error("the message is still in the queue once dead-lettered")
	}
}

// TestStoppedMidBatch: a worker whose context is done in the middle of a
// batch settles the messages it handled and starts no others; those come
// back after their visibility timeout, and none is lost.
func TestStoppedMidBatch(t *testing.T) {
	clk := messagetest.NewClock()
	f := newFake(clk.Now)
	p := newPublisher(t, f, queueURL)
	w := newWorker(t, f, clk)
	ids := map[string]bool{}
	for i := range 5 {
		ids[publish(t, p, context.Background(), "m"+strconv.Itoa(i), nil)] = true
	}
	ctx, cancel := context.WithCancel(context.Background())
	var rec messagetest.Recorder
	h := message.BoundQueue("acme", basic)(rec.Handler(func(context.Context, *message.Message) error {
		if rec.Count() == 2 {
			cancel() // stop while handling the second
		}
		return nil
	}))
	n, err := w.Poll(ctx, h)
	if n != 2 || err != nil {
		t.Fatalf("Poll = %d, %v; want 2 handled before the stop", n, err)
	}
	if got := f.count(queueURL); got != 3 {
		t.Fatalf("%d messages in the queue, want the 3 not handled", got)
	}
	poll(t, w, h, 0) // still in flight
	clk.Add(sqsqueue.DefaultVisibility)
	poll(t, w, h, 3)
	got := rec.Got()
	for id := range ids {
		if _, ok := got[id]; !ok {
			t.Errorf("message %s never ran", id)
		}
	}
	if rec.Count() != 5 || f.count(queueURL) != 0 {
		t.Errorf("%d deliveries, %d left in the queue; want 5 and none", rec.Count(), f.count(queueURL))
	}
}

// TestConcurrency: with WithConcurrency(3), three handlers of a batch run
// at once.
func TestConcurrency(t *testing.T) {
	clk := messagetest.NewClock()
	f := newFake(clk.Now)
	p := newPublisher(t, f, queueURL)
	w := newWorker(t, f, clk, sqsqueue.WithConcurrency(3))
	for i := range 6 {
		publish(t, p, context.Background(), "m"+strconv.Itoa(i), nil)
	}
	var running, peak atomic.Int32
	arrived := make(chan struct{}, 6)
	release := make(chan struct{})
	h := message.HandlerFunc(func(context.Context, *message.Message) error {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		arrived <- struct{}{}
		<-release
		running.Add(-1)
		return nil
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		poll(t, w, h, 6)
	}()
	for range 3 {
		<-arrived
	}
	close(release)
	<-done
	if peak.Load() != 3 || f.count(queueURL) != 0 {
		t.Errorf("peak %d handlers at once, %d left; want 3 and none", peak.Load(), f.count(queueURL))
	}
}

// TestHeartbeat: while a handler runs, the Worker extends its message's
// visibility by the timeout, so that it is not delivered again; it stops
// once the message is settled.
func TestHeartbeat(t *testing.T) {
	clk := messagetest.NewClock()
	f := newFake(clk.Now)
	p := newPublisher(t, f, queueURL)
	w := newWorker(t, f, clk, sqsqueue.WithVisibilityTimeout(2*time.Second))
	publish(t, p, context.Background(), "slow", nil)
	extended := make(chan int32, 10)
	f.onVisChange = func(_ string, secs int32) { extended <- secs }
	h := message.HandlerFunc(func(context.Context, *message.Message) error {
		select {
		case secs := <-extended:
			if secs != 2 {
				t.Errorf("extended by %d s, want 2", secs)
			}
		case <-time.After(time.Minute): // a guard, not a wait: the heartbeat comes after 1 s
			t.Error("no heartbeat while the handler ran")
		}
		// Past the first visibility timeout: hidden still, by the heartbeat.
		clk.Add(1500 * time.Millisecond)
		return nil
	})
	poll(t, w, h, 1)
	if f.count(queueURL) != 0 {
		t.Error("the slow message was not deleted")
	}
}

func TestConfigurationMistakes(t *testing.T) {
	f := newFake(time.Now)
	for name, opts := range map[string][]sqsqueue.Option{
		"no dead-letter queue":  {},
		"dead letters to self":  {sqsqueue.WithDeadLetterQueue(queueURL)},
		"batch of 11":           {sqsqueue.WithDeadLetterQueue(dlqURL), sqsqueue.WithBatch(11)},
		"wait of 21 s":          {sqsqueue.WithDeadLetterQueue(dlqURL), sqsqueue.WithWait(21 * time.Second)},
		"negative wait":         {sqsqueue.WithDeadLetterQueue(dlqURL), sqsqueue.WithWait(-time.Second)},
		"visibility of 1 s":     {sqsqueue.WithDeadLetterQueue(dlqURL), sqsqueue.WithVisibilityTimeout(time.Second)},
		"negative concurrency":  {sqsqueue.WithDeadLetterQueue(dlqURL), sqsqueue.WithConcurrency(-1)},
		"deduplication":         {sqsqueue.WithDeadLetterQueue(dlqURL), sqsqueue.WithDeduplicationID(func([]byte, map[string]string) string { return "" })},
		"retry delay over 12 h": {sqsqueue.WithDeadLetterQueue(dlqURL), sqsqueue.WithRetryDelay(13 * time.Hour)},
	} {
		if _, err := sqsqueue.NewWorker(f, queueURL, opts...); err == nil {
			t.Errorf("NewWorker with %s: no error", name)
		}
	}
	if _, err := sqsqueue.NewPublisher(f, queueURL, sqsqueue.WithBatch(3)); err == nil {
		t.Error("NewPublisher WithBatch: no error")
	}
	if _, err := sqsqueue.NewPublisher(nil, queueURL); err == nil {
		t.Error("NewPublisher without a client: no error")
	}
}

func TestVisibilitySeconds(t *testing.T) {
	for d, want := range map[time.Duration]int32{
		-time.Second: 0, 0: 0, time.Millisecond: 1, time.Second: 1, 1001 * time.Millisecond: 2,
		12 * time.Hour: 43200, 100 * time.Hour: 43200,
	} {
		if got := sqsqueue.VisibilitySeconds(d); got != want {
			t.Errorf("VisibilitySeconds(%s) = %d, want %d", d, got, want)
		}
	}
}
