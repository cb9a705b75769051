package sqsqueue_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/google/go-cmp/cmp"

	"github.com/tenancykit/tenancy"
	"github.com/tenancykit/tenancy/internal/messagetest"
	"github.com/tenancykit/tenancy/internal/syncbuf"
	"github.com/tenancykit/tenancy/internal/testservers"
	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/message/sqsqueue"
	"github.com/tenancykit/tenancy/message/stamp"
)

// eventually is how long a test waits for what fauxqs does on its own,
// real, clock (a message coming back after a deferral of 1 s) or for a
// retry of Run (a second after a failed receive): generous, for a loaded
// machine. A test that passes does not wait for it.
const eventually = 60 * time.Second

// emulator is a fauxqs for one test, and a real SQS client of it.
type emulator struct {
	srv    *testservers.FauxqsServer
	client *sqs.Client
}

func newEmulator(t *testing.T, opts ...func(*sqs.Options)) *emulator {
	t.Helper()
	srv := testservers.Fauxqs(t)
	return &emulator{srv: srv, client: sdkClient(t, srv.Endpoint, opts...)}
}

// sdkClient returns the SDK's client of the SQS endpoint, with static
// credentials and a region. Its idle connections are closed at t's
// cleanup, so that no goroutine of theirs outlives the test.
func sdkClient(t *testing.T, endpoint string, opts ...func(*sqs.Options)) *sqs.Client {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return sqs.New(sqs.Options{
		Region:       testservers.Region,
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider(testservers.AccessKeyID, testservers.SecretAccessKey, ""),
		HTTPClient:   &http.Client{Transport: tr},
	}, opts...)
}

// createQueue creates the queue name and returns its URL.
func (e *emulator) createQueue(t *testing.T, name string) string {
	t.Helper()
	out, err := e.client.CreateQueue(context.Background(), &sqs.CreateQueueInput{QueueName: aws.String(name)})
	if err != nil {
		t.Fatalf("CreateQueue %s: %v", name, err)
	}
	return aws.ToString(out.QueueUrl)
}

// held returns how many messages the queue holds, visible, in flight or
// delayed.
func (e *emulator) held(t *testing.T, url string) int {
	t.Helper()
	out, err := e.client.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url),
		AttributeNames: []types.QueueAttributeName{
			types.QueueAttributeNameApproximateNumberOfMessages,
			types.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
			types.QueueAttributeNameApproximateNumberOfMessagesDelayed,
		},
	})
	if err != nil {
		t.Fatalf("GetQueueAttributes %s: %v", url, err)
	}
	n := 0
	for _, v := range out.Attributes {
		i, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("GetQueueAttributes %s: %v", url, out.Attributes)
		}
		n += i
	}
	return n
}

// drain receives every message the queue has visible, with all of their
// attributes, and leaves them in flight for a minute.
func (e *emulator) drain(t *testing.T, url string) []types.Message {
	t.Helper()
	var all []types.Message
	for {
		out, err := e.client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
			QueueUrl:                    aws.String(url),
			MaxNumberOfMessages:         10,
			VisibilityTimeout:           60,
			MessageAttributeNames:       []string{"All"},
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
		})
		if err != nil {
			t.Fatalf("ReceiveMessage %s: %v", url, err)
		}
		if len(out.Messages) == 0 {
			return all
		}
		all = append(all, out.Messages...)
	}
}

// realSigner is a stamp signer on the real clock, as fauxqs's is.
func realSigner(t *testing.T) *stamp.Signer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := stamp.NewSigner(messagetest.Producer, key, "k1")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// waitUntil polls cond until it holds, failing the test after eventually.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(eventually)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", eventually, what)
		}
		<-tick.C
	}
}

// receive waits for a value of ch, failing the test after eventually.
func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	timer := time.NewTimer(eventually)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("waited %v for %s", eventually, what)
		panic("unreachable")
	}
}

// sdkWorker returns a Worker of the queue q over the SDK's client c, with
// the dead-letter queue dlq and a long poll of a second, so that Run
// returns within about a second once stopped.
func sdkWorker(t *testing.T, c sqsqueue.Client, q, dlq string, opts ...sqsqueue.Option) *sqsqueue.Worker {
	t.Helper()
	base := []sqsqueue.Option{sqsqueue.WithDeadLetterQueue(dlq), sqsqueue.WithWait(time.Second)}
	w, err := sqsqueue.NewWorker(c, q, append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func sdkPublisher(t *testing.T, c *sqs.Client, q string) *sqsqueue.Publisher {
	t.Helper()
	p, err := sqsqueue.NewPublisher(c, q)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// run runs w.Run with h until the returned stop is called (or the test
// ends), and stop checks that Run returned nil. Once stop has returned,
// every message Run received is settled.
func run(t *testing.T, w *sqsqueue.Worker, h message.Handler) (stop func(), done <-chan struct{}) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	finished := make(chan struct{})
	go func() {
		errc <- w.Run(ctx, h)
		close(finished)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-errc; err != nil {
				t.Errorf("Run = %v, want nil once stopped", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop, finished
}

// TestFauxqsStampedEndToEnd: over the SDK's client and fauxqs, stamped
// messages of two tenants run as their tenant through the stack with
// stamp.Trusted and are deleted; a forged, a tampered, a missing and a
// replayed stamp are dead-lettered with their reason, body and
// attributes, and deleted from the queue; each message's ID is the
// MessageId Publish returned.
func TestFauxqsStampedEndToEnd(t *testing.T) {
	e := newEmulator(t)
	q := e.createQueue(t, "orders")
	dlq := e.createQueue(t, "orders-dead")
	s := realSigner(t)
	v := messagetest.NewVerifier(t, s, nil)
	stack, err := tenancy.New(tenancy.WithMessageTrust(stamp.Trusted(v)))
	if err != nil {
		t.Fatal(err)
	}
	var rec messagetest.Recorder
	h := stack.WrapMessages(rec.Handler(nil))
	p := sdkPublisher(t, e.client, q)

	a1Attrs := messagetest.Stamp(t, s, "acme", "a1")
	a1 := publish(t, p, messagetest.As("acme"), "a1", a1Attrs)
	g1 := publish(t, p, messagetest.As("globex"), "g1", messagetest.Stamp(t, s, "globex", "g1"))
	forged := publish(t, p, messagetest.As("acme"), "f1", messagetest.Stamp(t, realSigner(t), "acme", "f1"))
	tampered := publish(t, p, messagetest.As("acme"), "t1-changed", messagetest.Stamp(t, s, "acme", "t1"))
	missing := publish(t, p, messagetest.As("acme"), "m1", map[string]string{"k": "v"})
	replayed := publish(t, p, messagetest.As("acme"), "a1", a1Attrs) // the same stamp, another message

	// fauxqs hands out every visible message, oldest first, up to the batch.
	n, err := sdkWorker(t, e.client, q, dlq).Poll(context.Background(), h)
	if n != 6 || err != nil {
		t.Fatalf("Poll = %d, %v; want 6 handled and no error", n, err)
	}
	if diff := cmp.Diff(map[string]string{a1: "acme#1", g1: "globex#1"}, rec.Got()); diff != "" {
		t.Errorf("ran (-want +got):\n%s", diff)
	}
	letters := e.drain(t, dlq)
	got := map[string]string{}
	for _, m := range letters {
		a := func(k string) string { return aws.ToString(m.MessageAttributes[k].StringValue) }
		got[a(sqsqueue.AttrMessageID)] = a(sqsqueue.AttrReason) + " after " + a(sqsqueue.AttrDeliveries) + " from " + a(sqsqueue.AttrSource)
		if a(sqsqueue.AttrMessageID) == forged && (aws.ToString(m.Body) != "f1" || a(stamp.Attribute) == "") {
			t.Errorf("the forged message's dead letter has the body %q and the stamp %q; want its body and stamp", aws.ToString(m.Body), a(stamp.Attribute))
		}
	}
	want := map[string]string{
		forged:   "stamp:signature after 1 from orders",
		tampered: "stamp:body_digest after 1 from orders",
		missing:  "stamp:missing after 1 from orders",
		replayed: "stamp:replayed after 1 from orders",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("dead letters (-want +got):\n%s", diff)
	}
	if n := e.held(t, q); n != 0 {
		t.Errorf("the queue holds %d messages, want none: each was deleted once handled or dead-lettered", n)
	}
}

// TestFauxqsDeferral: a message deferred for a second comes back, on
// fauxqs's own clock, no sooner than a second later, with the same ID and
// an ApproximateReceiveCount of 2; acked then, it is deleted, and nothing
// is dead-lettered. The Worker asks for a visibility timeout of ten
// minutes, so that only the deferral brings the message back within the
// test's deadline.
func TestFauxqsDeferral(t *testing.T) {
	e := newEmulator(t)
	q := e.createQueue(t, "orders")
	dlq := e.createQueue(t, "orders-dead")
	type delivery struct {
		id         string
		deliveries int
		at         time.Time
	}
	got := make(chan delivery, 4)
	h := message.HandlerFunc(func(_ context.Context, m *message.Message) error {
		got <- delivery{m.ID, m.Deliveries, time.Now()}
		if m.Deliveries < 2 {
			return message.Defer(time.Second)
		}
		return nil
	})
	id := publish(t, sdkPublisher(t, e.client, q), messagetest.As("acme"), "later", nil)
	stop, _ := run(t, sdkWorker(t, e.client, q, dlq, sqsqueue.WithVisibilityTimeout(10*time.Minute)), h)

	first := receive(t, got, "the first delivery")
	second := receive(t, got, "the delivery after the deferral")
	stop()
	if first.id != id || first.deliveries != 1 || second.id != id || second.deliveries != 2 {
		t.Fatalf("deliveries %+v then %+v; want %s with ApproximateReceiveCount 1 then 2", first, second, id)
	}
	if gap := second.at.Sub(first.at); gap < time.Second {
		t.Errorf("delivered again %v after a deferral of 1 s", gap)
	}
	if n := e.held(t, q); n != 0 {
		t.Errorf("the queue holds %d messages after the ack, want none", n)
	}
	if n := e.held(t, dlq); n != 0 {
		t.Errorf("%d dead letters, want none: a deferral never dead-letters", n)
	}
}

// TestFauxqsAttributeLimit: fauxqs 1.9.2 does not enforce SQS's limit of
// ten message attributes, so the limit is the Publisher's and
// DeadLetterInput's to keep: Publish refuses eleven before any call (the
// queue stays empty); a rejected message with six attributes is
// dead-lettered with ten (its own and the four of the dead letter); one
// with ten, sent with the SDK, keeps its ten and has no room for the
// reason, which the Worker logs.
func TestFauxqsAttributeLimit(t *testing.T) {
	e := newEmulator(t)
	q := e.createQueue(t, "orders")
	dlq := e.createQueue(t, "orders-dead")
	p := sdkPublisher(t, e.client, q)
	attrs := func(n int) map[string]string {
		m := map[string]string{}
		for i := range n {
			m["a"+strconv.Itoa(i)] = "v"
		}
		return m
	}
	if _, err := p.Publish(messagetest.As("acme"), []byte("eleven"), attrs(11)); !errors.Is(err, sqsqueue.ErrTooManyAttributes) {
		t.Fatalf("Publish of 11 attributes: %v, want ErrTooManyAttributes", err)
	}
	if n := e.held(t, q); n != 0 {
		t.Fatalf("the queue holds %d messages after a refused Publish", n)
	}
	six := publish(t, p, messagetest.As("acme"), "six", attrs(6))
	out, err := e.client.SendMessage(context.Background(), &sqs.SendMessageInput{
		QueueUrl: aws.String(q), MessageBody: aws.String("ten"), MessageAttributes: stringAttrs(attrs(10)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ten := aws.ToString(out.MessageId)

	var logs syncbuf.Buffer
	w := sdkWorker(t, e.client, q, dlq, sqsqueue.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	reject := message.HandlerFunc(func(context.Context, *message.Message) error { return message.Reject("invalid_order") })
	if n, err := w.Poll(context.Background(), reject); n != 2 || err != nil {
		t.Fatalf("Poll = %d, %v; want 2 handled and no error", n, err)
	}
	byBody := map[string]types.Message{}
	for _, m := range e.drain(t, dlq) {
		byBody[aws.ToString(m.Body)] = m
	}
	if m := byBody["six"]; len(m.MessageAttributes) != 10 ||
		aws.ToString(m.MessageAttributes[sqsqueue.AttrReason].StringValue) != "handler:invalid_order" ||
		aws.ToString(m.MessageAttributes[sqsqueue.AttrMessageID].StringValue) != six {
		t.Errorf("dead letter of six attributes: %d attributes %v; want 10 with the reason and the ID %s", len(m.MessageAttributes), keys(m.MessageAttributes), six)
	}
	m := byBody["ten"]
	if _, ok := m.MessageAttributes[sqsqueue.AttrReason]; len(m.MessageAttributes) != 10 || ok {
		t.Errorf("dead letter of ten attributes: %v; want its own ten only", keys(m.MessageAttributes))
	}
	if l := logs.String(); !strings.Contains(l, "no room for its reason") || !strings.Contains(l, ten) {
		t.Errorf("the Worker logged %q; want the dead letter of %s without room for its reason", l, ten)
	}
	if n := e.held(t, q); n != 0 {
		t.Errorf("the queue holds %d messages, want none", n)
	}
}

func stringAttrs(m map[string]string) map[string]types.MessageAttributeValue {
	out := map[string]types.MessageAttributeValue{}
	for k, v := range m {
		out[k] = types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
	}
	return out
}

// values returns the String values of message attributes.
func values(attrs map[string]types.MessageAttributeValue) map[string]string {
	out := map[string]string{}
	for k, v := range attrs {
		out[k] = aws.ToString(v.StringValue)
	}
	return out
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestFauxqsServerStopped: fauxqs stops while a handler runs. The
// handler's ack cannot be deleted, and Run logs it; each receive fails,
// and Run logs it and tries again (twice at least here) instead of
// returning. Once fauxqs is back on its port (empty: it keeps its queues
// in memory, so they are created again, at the same URLs) Run handles
// the next message and deletes it. No message is lost by the Worker: the
// first was handled (its deletion would be tried again on a server that
// kept its state, as a redelivery), the second after the restart.
func TestFauxqsServerStopped(t *testing.T) {
	// One attempt per call: the SDK's retries would only slow the test.
	e := newEmulator(t, func(o *sqs.Options) { o.RetryMaxAttempts = 1 })
	q := e.createQueue(t, "orders")
	dlq := e.createQueue(t, "orders-dead")
	p := sdkPublisher(t, e.client, q)
	var logs syncbuf.Buffer
	w := sdkWorker(t, e.client, q, dlq, sqsqueue.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	started, release := make(chan struct{}), make(chan struct{})
	got := make(chan string, 4)
	h := message.HandlerFunc(func(_ context.Context, m *message.Message) error {
		if string(m.Body) == "first" {
			close(started)
			<-release
		}
		got <- string(m.Body) + "#" + strconv.Itoa(m.Deliveries)
		return nil
	})
	publish(t, p, messagetest.As("acme"), "first", nil)
	stop, done := run(t, w, h)
	receive(t, started, "the first message")

	e.srv.Stop()
	close(release)
	if b := receive(t, got, "the first message's ack"); b != "first#1" {
		t.Fatalf("handled %q, want first#1", b)
	}
	receives := func() int { return strings.Count(logs.String(), "ReceiveMessage orders") }
	waitUntil(t, "two failed receives logged", func() bool { return receives() >= 2 })
	select {
	case <-done:
		t.Fatal("Run returned while fauxqs was down")
	default:
	}
	if l := logs.String(); !strings.Contains(l, "DeleteMessageBatch on orders") {
		t.Errorf("the failed deletion of the ack was not logged: %q", l)
	}

	if err := e.srv.Start(); err != nil {
		t.Fatal(err)
	}
	if again := e.createQueue(t, "orders"); again != q {
		t.Fatalf("the queue is at %s after the restart, was at %s", again, q)
	}
	e.createQueue(t, "orders-dead")
	publish(t, p, messagetest.As("acme"), "second", nil)
	if b := receive(t, got, "the message sent after the restart"); b != "second#1" {
		t.Fatalf("handled %q after the restart, want second#1", b)
	}
	stop()
	if n := e.held(t, q); n != 0 {
		t.Errorf("the queue holds %d messages after the restart's ack, want none", n)
	}
}

// deadLetterElsewhere is an SQS client that sends to the dead-letter
// queue through a client of its own server, and does all else through the
// source queue's.
type deadLetterElsewhere struct {
	*sqs.Client
	dlq       string
	dlqClient *sqs.Client
}

func (c deadLetterElsewhere) SendMessage(ctx context.Context, in *sqs.SendMessageInput, opts ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	if aws.ToString(in.QueueUrl) == c.dlq {
		return c.dlqClient.SendMessage(ctx, in, opts...)
	}
	return c.Client.SendMessage(ctx, in, opts...)
}

// TestFauxqsDeadLetterServerStopped: the dead-letter queue is on a second
// fauxqs, which is down when a message is rejected. The message is not
// deleted: it comes back after the visibility timeout, as often as it
// takes, and once that server is back it is dead-lettered, with its
// reason and its deliveries, and deleted. The source queue's server keeps
// its state throughout, so this shows no message lost across an outage.
func TestFauxqsDeadLetterServerStopped(t *testing.T) {
	src := newEmulator(t)
	dead := newEmulator(t, func(o *sqs.Options) { o.RetryMaxAttempts = 1 })
	q := src.createQueue(t, "orders")
	dlq := dead.createQueue(t, "orders-dead")
	dead.srv.Stop()

	var logs syncbuf.Buffer
	client := deadLetterElsewhere{Client: src.client, dlq: dlq, dlqClient: dead.client}
	w := sdkWorker(t, client, q, dlq,
		sqsqueue.WithVisibilityTimeout(2*time.Second),
		sqsqueue.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	var deliveries atomic.Int32
	h := message.HandlerFunc(func(_ context.Context, m *message.Message) error {
		deliveries.Add(1)
		return message.Reject("invalid_order")
	})
	id := publish(t, sdkPublisher(t, src.client, q), messagetest.As("acme"), "bad", map[string]string{"k": "v"})
	stop, _ := run(t, w, h)

	waitUntil(t, "the failed dead letter logged", func() bool { return strings.Contains(logs.String(), "dead-lettering "+id) })
	if n := src.held(t, q); n != 1 {
		t.Fatalf("the queue holds %d messages after the dead letter failed, want the message still there", n)
	}
	if err := dead.srv.Start(); err != nil {
		t.Fatal(err)
	}
	if again := dead.createQueue(t, "orders-dead"); again != dlq {
		t.Fatalf("the dead-letter queue is at %s after the restart, was at %s", again, dlq)
	}
	waitUntil(t, "the message dead-lettered", func() bool { return dead.held(t, dlq) == 1 })
	stop()

	n := int(deliveries.Load())
	letters := dead.drain(t, dlq)
	if len(letters) != 1 {
		t.Fatalf("%d dead letters, want 1", len(letters))
	}
	a := func(k string) string { return aws.ToString(letters[0].MessageAttributes[k].StringValue) }
	if a(sqsqueue.AttrMessageID) != id || a(sqsqueue.AttrReason) != "handler:invalid_order" ||
		a(sqsqueue.AttrDeliveries) != strconv.Itoa(n) || a("k") != "v" || aws.ToString(letters[0].Body) != "bad" {
		t.Errorf("dead letter %q %v; want the body, k=v, the reason, the ID %s and %d deliveries", aws.ToString(letters[0].Body), values(letters[0].MessageAttributes), id, n)
	}
	if n < 2 {
		t.Errorf("handled %d times; want a redelivery after the failed dead letter", n)
	}
	if n := src.held(t, q); n != 0 {
		t.Errorf("the queue holds %d messages once dead-lettered, want none", n)
	}
}
