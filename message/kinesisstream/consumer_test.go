package kinesisstream_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/google/go-cmp/cmp"
	"github.com/tenancykit/tenancy"
	"github.com/tenancykit/tenancy/internal/messagetest"
	"github.com/tenancykit/tenancy/internal/syncbuf"
	"github.com/tenancykit/tenancy/logging"
	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/message/kinesisstream"
	"github.com/tenancykit/tenancy/message/stamp"
	"github.com/tenancykit/tenancy/tenant"
	"github.com/tenancykit/tenancy/throttle"
)

// seqLess orders two message IDs of one shard by sequence number.
func seqLess(a, b string) bool {
	a, b = a[strings.IndexByte(a, '/')+1:], b[strings.IndexByte(b, '/')+1:]
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

func shardOf(id string) string { return id[:strings.IndexByte(id, '/')] }

// TestEndToEnd: stamped messages published to a stream of two shards are
// consumed through the whole stack: acknowledged, each shard in order, a
// tenant over its budget deferred and delivered again when its budget
// allows; forged and tampered stamps, and a record that is no envelope,
// dead-lettered with their reasons.
func TestEndToEnd(t *testing.T) {
	client, stream := shared(t, 2)
	clk := messagetest.NewClock()
	s := messagetest.NewSigner(t, clk.Now)
	v := messagetest.NewVerifier(t, s, clk.Now)
	limiter, err := throttle.New(tenant.DefaultTiers, map[string]throttle.Limits{
		"basic": {Rate: 1, Burst: 2}, "standard": {Rate: 1, Burst: 2}, "premium": {Rate: 1, Burst: 2}, "platinum": {Rate: 1, Burst: 2},
	}, throttle.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncbuf.Buffer{}
	stack, err := tenancy.New(
		tenancy.WithAccessLog(slog.New(logging.NewHandler(logging.NewJSONHandler(logs, nil)))),
		tenancy.WithThrottle(limiter),
		tenancy.WithMessageTrust(stamp.Trusted(v)),
	)
	if err != nil {
		t.Fatal(err)
	}
	var rec messagetest.Recorder
	h := stack.WrapMessages(rec.Handler(nil))

	p := newPublisher(t, client, stream)
	c := newConsumer(t, client, client, stream, &kinesisstream.MemoryCheckpoints{}, kinesisstream.WithClock(clk.Now))
	want := map[string]string{}
	for _, id := range []string{"acme", "globex", "initech", "umbrella", "hooli", "wonka"} {
		for _, b := range []string{"1", "2"} {
			want[publish(t, p, id, id+b, messagetest.Stamp(t, s, id, id+b))] = id + "#1"
		}
	}
	a3 := publish(t, p, "acme", "a3", messagetest.Stamp(t, s, "acme", "a3"))
	forged := publish(t, p, "acme", "f1", messagetest.Stamp(t, messagetest.NewSigner(t, clk.Now), "acme", "f1"))
	tampered := publish(t, p, "acme", "t1-changed", messagetest.Stamp(t, s, "acme", "t1"))
	raw, err := client.PutRecord(t.Context(), &kinesis.PutRecordInput{StreamName: aws.String(stream), PartitionKey: aws.String("acme"), Data: []byte(`{"tenant":"acme"}`)})
	if err != nil {
		t.Fatal(err)
	}
	foreign := kinesisstream.MessageID(aws.ToString(raw.ShardId), aws.ToString(raw.SequenceNumber))

	poll(t, c, h, 16)
	if diff := cmp.Diff(want, rec.Got()); diff != "" {
		t.Errorf("ran (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{forged: "stamp:signature after 1", tampered: "stamp:body_digest after 1", foreign: "stamp:missing after 1"}, deadLetters(t, client, stream)); diff != "" {
		t.Errorf("dead letters (-want +got):\n%s", diff)
	}
	last := map[string]string{}
	for _, id := range rec.Delivered() {
		if l := last[shardOf(id)]; l != "" && !seqLess(l, id) {
			t.Errorf("%s delivered after %s", id, l)
		}
		last[shardOf(id)] = id
	}
	if len(last) != 2 {
		t.Errorf("records of %d shards, want 2: %v", len(last), last)
	}

	poll(t, c, h, 0) // a3 is not due yet
	clk.Add(999 * time.Millisecond)
	poll(t, c, h, 0)
	clk.Add(time.Millisecond)
	poll(t, c, h, 1)
	if got := rec.Got()[a3]; got != "acme#2" {
		t.Errorf("a3 ran as %q, want acme on its second delivery", got)
	}
	poll(t, c, h, 0)
	if !strings.Contains(logs.String(), `"request_id":"`+a3+`","trace_id"`) || !strings.Contains(logs.String(), `"outcome":"deferred"`) {
		t.Errorf("no log line of a3's deferral in:\n%s", logs)
	}
}

var acme = message.BoundQueue("acme", tenant.DefaultTiers.MustLookup("basic"))

// TestFailuresThenDeadLetter: a failing record is delivered again after
// the retry delay until its maximum of deliveries, then dead-lettered
// with its body, attributes and partition key; a rejected one at once.
func TestFailuresThenDeadLetter(t *testing.T) {
	client, stream := shared(t, 1)
	clk := messagetest.NewClock()
	p := newPublisher(t, client, stream)
	c := newConsumer(t, client, client, stream, &kinesisstream.MemoryCheckpoints{},
		kinesisstream.WithClock(clk.Now), kinesisstream.WithMaxDeliveries(3), kinesisstream.WithRetryDelay(time.Second))
	var rec messagetest.Recorder
	h := acme(rec.Handler(func(_ context.Context, m *message.Message) error {
		if string(m.Body) == "bad" {
			return message.Reject("invalid_order")
		}
		return errors.New("database down")
	}))
	id := publish(t, p, "acme", "a", map[string]string{"k": "v"})
	bad := publish(t, p, "acme", "bad", nil)
	poll(t, c, h, 2)
	for i := 1; i < 3; i++ {
		poll(t, c, h, 0)
		clk.Add(time.Second)
		poll(t, c, h, 1)
		if got := rec.Got()[id]; got != "acme#"+string(rune('1'+i)) {
			t.Fatalf("delivery %d: %q", i+1, got)
		}
	}
	poll(t, c, h, 0)
	if diff := cmp.Diff(map[string]string{id: "max_deliveries after 3", bad: "handler:invalid_order after 1"}, deadLetters(t, client, stream)); diff != "" {
		t.Errorf("dead letters (-want +got):\n%s", diff)
	}
	for _, r := range readAll(t, client, stream+"-dead") {
		body, attrs, _ := kinesisstream.Decode(r.Data)
		if attrs[kinesisstream.AttrID] == id && (string(body) != "a" || attrs["k"] != "v" || aws.ToString(r.PartitionKey) != "acme") {
			t.Errorf("dead letter %q %v key %q: want the message's body, attributes and partition key", body, attrs, aws.ToString(r.PartitionKey))
		}
	}
	clk.Add(time.Hour)
	poll(t, c, h, 0) // settled: never delivered again
}

// checkpointOf returns the shard's only checkpoint in cp.
func checkpointOf(t *testing.T, cp *kinesisstream.MemoryCheckpoints, id string) string {
	t.Helper()
	seq, err := cp.Checkpoint(context.Background(), shardOf(id))
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

func seqOf(id string) string { return id[strings.IndexByte(id, '/')+1:] }

// TestStopMidBatch: a consumer stopped after two records of a batch of
// five stores its checkpoint after the second; a second consumer on the
// same checkpoints delivers the other three, none lost, none twice.
func TestStopMidBatch(t *testing.T) {
	client, stream := shared(t, 1)
	p := newPublisher(t, client, stream)
	var ids []string
	for _, b := range []string{"1", "2", "3", "4", "5"} {
		ids = append(ids, publish(t, p, "acme", b, nil))
	}
	cp := &kinesisstream.MemoryCheckpoints{}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var first messagetest.Recorder
	h := acme(first.Handler(func(_ context.Context, m *message.Message) error {
		if string(m.Body) == "2" {
			stop() // the worker is told to stop while it handles 2
		}
		return nil
	}))
	c1 := newConsumer(t, client, client, stream, cp)
	if n, err := c1.Poll(ctx, h); n != 2 || err != nil {
		t.Fatalf("Poll = %d, %v; want 2 handled", n, err)
	}
	if got := checkpointOf(t, cp, ids[0]); got != seqOf(ids[1]) {
		t.Errorf("checkpoint %s, want %s (the second record)", got, seqOf(ids[1]))
	}

	var second messagetest.Recorder
	c2 := newConsumer(t, client, client, stream, cp)
	poll(t, c2, acme(second.Handler(nil)), 3)
	if diff := cmp.Diff(ids[2:], second.Delivered()); diff != "" {
		t.Errorf("second consumer delivered (-want +got):\n%s", diff)
	}
	if got := checkpointOf(t, cp, ids[0]); got != seqOf(ids[4]) {
		t.Errorf("checkpoint %s, want the last record's %s", got, seqOf(ids[4]))
	}
}

// TestCrashRedelivers: a deferred record holds the checkpoint back, the
// records after it acknowledged or not; a consumer that crashes leaves
// it and them to the next, which delivers them with the same IDs.
func TestCrashRedelivers(t *testing.T) {
	client, stream := shared(t, 1)
	clk := messagetest.NewClock()
	p := newPublisher(t, client, stream)
	var ids []string
	for _, b := range []string{"1", "later", "3"} {
		ids = append(ids, publish(t, p, "acme", b, nil))
	}
	cp := &kinesisstream.MemoryCheckpoints{}
	var first messagetest.Recorder
	h := acme(first.Handler(func(_ context.Context, m *message.Message) error {
		if string(m.Body) == "later" {
			return message.Defer(time.Hour)
		}
		return nil
	}))
	c1 := newConsumer(t, client, client, stream, cp, kinesisstream.WithClock(clk.Now))
	poll(t, c1, h, 3)
	if got := checkpointOf(t, cp, ids[0]); got != seqOf(ids[0]) {
		t.Errorf("checkpoint %s, want %s: not past the deferred record", got, seqOf(ids[0]))
	}
	// c1 crashes; c2 takes over.
	var second messagetest.Recorder
	c2 := newConsumer(t, client, client, stream, cp, kinesisstream.WithClock(clk.Now))
	poll(t, c2, acme(second.Handler(nil)), 2)
	if diff := cmp.Diff(ids[1:], second.Delivered()); diff != "" {
		t.Errorf("delivered again (-want +got):\n%s", diff)
	}
	if got := checkpointOf(t, cp, ids[0]); got != seqOf(ids[2]) {
		t.Errorf("checkpoint %s, want %s", got, seqOf(ids[2]))
	}
}

// countingClient counts GetRecords calls.
type countingClient struct {
	*kinesis.Client
	mu    sync.Mutex
	reads int
}

func (c *countingClient) GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, opts ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error) {
	c.mu.Lock()
	c.reads++
	c.mu.Unlock()
	return c.Client.GetRecords(ctx, in, opts...)
}

func (c *countingClient) Reads() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reads
}

// TestBackpressure: a shard with WithMaxPending deferred records is read
// no more until the earliest is due; deferral never dead-letters.
func TestBackpressure(t *testing.T) {
	client, stream := shared(t, 1)
	clk := messagetest.NewClock()
	p := newPublisher(t, client, stream)
	var ids []string
	for _, b := range []string{"1", "2", "3", "4"} {
		ids = append(ids, publish(t, p, "acme", b, nil))
	}
	counting := &countingClient{Client: client}
	c := newConsumer(t, counting, client, stream, &kinesisstream.MemoryCheckpoints{},
		kinesisstream.WithClock(clk.Now), kinesisstream.WithBatch(1), kinesisstream.WithMaxPending(2), kinesisstream.WithMaxDeliveries(1))
	var rec messagetest.Recorder
	h := acme(rec.Handler(func(_ context.Context, m *message.Message) error {
		if m.Deliveries < 4 {
			return message.Defer(time.Minute)
		}
		return nil
	}))
	poll(t, c, h, 1) // 1 deferred
	clk.Add(30 * time.Second)
	poll(t, c, h, 1) // 2 deferred
	for range 3 {
		poll(t, c, h, 0) // full: no read
	}
	if n := counting.Reads(); n != 2 {
		t.Errorf("%d reads, want 2: the full shard was read", n)
	}
	clk.Add(30 * time.Second)
	poll(t, c, h, 1) // 1 due again: delivered, deferred; still full
	if n := counting.Reads(); n != 2 {
		t.Errorf("%d reads, want 2", n)
	}
	for range 20 {
		clk.Add(30 * time.Second)
		if _, err := c.Poll(context.Background(), h); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff(map[string]string{ids[0]: "acme#4", ids[1]: "acme#4", ids[2]: "acme#4", ids[3]: "acme#4"}, rec.Got()); diff != "" {
		t.Errorf("ran (-want +got):\n%s", diff)
	}
	if dl := deadLetters(t, client, stream); len(dl) != 0 {
		t.Errorf("dead letters %v, want none: deferral never dead-letters", dl)
	}
}
