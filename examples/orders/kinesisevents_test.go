package main

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/google/go-cmp/cmp"

	"github.com/tenancykit/tenancy"
	"github.com/tenancykit/tenancy/authz/authztest"
	"github.com/tenancykit/tenancy/examples/internal/awskit"
	"github.com/tenancykit/tenancy/examples/internal/servicetest"
	"github.com/tenancykit/tenancy/internal/testservers"
	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/message/kinesisstream"
	"github.com/tenancykit/tenancy/message/stamp"
	"github.com/tenancykit/tenancy/tenant"
)

// deadStream is the dead-letter stream of the tests' consumer.
const deadStream = defaultEventsStream + "-dead"

// kinesisClient returns a client of the real SDK for the kinesalite at
// endpoint, whose connections are closed at the test's end.
func kinesisClient(t *testing.T, endpoint string) *kinesis.Client {
	t.Helper()
	return kinesis.NewFromConfig(testservers.AWSConfig(t), func(o *kinesis.Options) { o.BaseEndpoint = aws.String(endpoint) })
}

// records returns every record of every shard of stream, and the ID
// (kinesisstream.MessageID) of each.
func records(t *testing.T, client *kinesis.Client, stream string) (recs []types.Record, ids []string) {
	t.Helper()
	ctx := t.Context()
	shards, err := client.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatalf("ListShards %s: %v", stream, err)
	}
	for _, sh := range shards.Shards {
		it, err := client.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
			StreamName: aws.String(stream), ShardId: sh.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
		})
		if err != nil {
			t.Fatalf("GetShardIterator: %v", err)
		}
		for iter := it.ShardIterator; iter != nil; {
			got, err := client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
			if err != nil {
				t.Fatalf("GetRecords: %v", err)
			}
			if len(got.Records) == 0 {
				break
			}
			for _, r := range got.Records {
				recs = append(recs, r)
				ids = append(ids, kinesisstream.MessageID(aws.ToString(sh.ShardId), aws.ToString(r.SequenceNumber)))
			}
			iter = got.NextShardIterator
		}
	}
	return recs, ids
}

// eventOf returns the order event in a record's data.
func eventOf(t *testing.T, data []byte) orderEvent {
	t.Helper()
	body, _, err := kinesisstream.Decode(data)
	if err != nil {
		t.Fatalf("record %q: %v", data, err)
	}
	var ev orderEvent
	if err := json.Unmarshal(body, &ev); err != nil || ev.Type != eventOrderCreated {
		t.Fatalf("record body %s (%v), want an order.created event", body, err)
	}
	return ev
}

// fulfillment consumes the order events as a fulfillment service would:
// a kinesisstream.Consumer of the stream, into a tenancy stack that
// trusts the stamps of svc (its JWK Set, destination fulfillment), and
// dead-letters to deadStream, which it creates. ran records, by order ID,
// as whom each event ran, once per run.
type fulfillment struct {
	c   *kinesisstream.Consumer
	h   message.Handler
	mu  sync.Mutex
	ran map[string][]string
}

func newFulfillment(t *testing.T, client *kinesis.Client, svc *service) *fulfillment {
	t.Helper()
	if _, err := client.CreateStream(t.Context(), &kinesis.CreateStreamInput{StreamName: aws.String(deadStream), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatalf("CreateStream %s: %v", deadStream, err)
	}
	v, err := stamp.NewVerifier(t.Context(), defaultStampIssuer, stamp.WithJWKSURL(svc.URL+stampJWKSPath), stamp.ForDestination(eventDestination))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	stack, err := tenancy.New(tenancy.WithMessageTrust(stamp.Trusted(v)))
	if err != nil {
		t.Fatal(err)
	}
	dead, err := kinesisstream.NewPublisher(client, deadStream)
	if err != nil {
		t.Fatal(err)
	}
	f := &fulfillment{ran: map[string][]string{}}
	f.c, err = kinesisstream.NewConsumer(client, defaultEventsStream, &kinesisstream.MemoryCheckpoints{}, dead)
	if err != nil {
		t.Fatal(err)
	}
	f.h = stack.WrapMessages(message.HandlerFunc(func(ctx context.Context, m *message.Message) error {
		tn, _ := tenant.FromContext(ctx)
		var ev orderEvent
		if err := json.Unmarshal(m.Body, &ev); err != nil {
			return message.Reject("invalid_order")
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		f.ran[ev.Order.ID] = append(f.ran[ev.Order.ID], tn.ID+"/"+tn.Tier.String()+"/"+tn.Subject)
		return nil
	}))
	return f
}

// consume polls until want more messages were handed to the stack, then
// once more to see that nothing else comes; Poll does not wait, so the
// rounds are bounded, not timed.
func (f *fulfillment) consume(t *testing.T, want int) {
	t.Helper()
	got := 0
	for round := 0; got < want && round < 20; round++ {
		n, err := f.c.Poll(t.Context(), f.h)
		if err != nil {
			t.Fatalf("Poll: %v", err)
		}
		got += n
	}
	n, err := f.c.Poll(t.Context(), f.h)
	if err != nil {
		t.Fatalf("Poll: %v", err)
	}
	if got += n; got != want {
		t.Fatalf("the consumer handled %d messages, want %d", got, want)
	}
}

// deadLetters returns the reason of each dead letter, by the ID the
// message had.
func deadLetters(t *testing.T, client *kinesis.Client) map[string]string {
	t.Helper()
	out := map[string]string{}
	recs, _ := records(t, client, deadStream)
	for _, r := range recs {
		_, attrs, err := kinesisstream.Decode(r.Data)
		if err != nil {
			t.Fatalf("dead letter %q: %v", r.Data, err)
		}
		out[attrs[kinesisstream.AttrID]] = attrs[kinesisstream.AttrReason]
	}
	return out
}

// TestOrderEventsOnKinesis: with KINESIS_ENDPOINT the service creates the
// stream and publishes each order's event there once, under its tenant's
// partition key; a consumer with stamp.Trusted, verifying with the
// service's JWK Set, runs each as the tenant, tier and user that placed
// the order, once; a record whose body was changed after stamping, and
// one with no stamp, are dead-lettered with their reasons.
func TestOrderEventsOnKinesis(t *testing.T) {
	k := testservers.Kinesalite(t)
	client := kinesisClient(t, k.Endpoint)
	iss := startIssuer(t)
	svc := startForIssuer(t, iss, map[string]string{"KINESIS_ENDPOINT": k.Endpoint})
	acme := iss.MustMint("acme", "premium", authztest.WithSubject("alice"))
	globex := iss.MustMint("globex", "basic", authztest.WithSubject("eve"))
	a1 := svc.create(t, acme, "anvil", 2)
	g1 := svc.create(t, globex, "bolt", 1)
	a2 := svc.create(t, acme, "crate", 3)
	servicetest.OneLine(t, svc.Lines(t), servicetest.LogLine{"msg": "orders service started", "events": "kinesis", "events_stream": defaultEventsStream})
	sum, err := client.DescribeStreamSummary(t.Context(), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(defaultEventsStream)})
	if err != nil {
		t.Fatalf("the service did not create its stream: %v", err)
	}
	if n := aws.ToInt32(sum.StreamDescriptionSummary.OpenShardCount); n != awskit.LocalStreamShards {
		t.Errorf("the stream has %d shards, want %d", n, awskit.LocalStreamShards)
	}

	recs, ids := records(t, client, defaultEventsStream)
	if len(recs) != 3 {
		t.Fatalf("%d records in the stream, want 3", len(recs))
	}
	perTenant := map[string][]string{}
	for i, r := range recs {
		ev := eventOf(t, r.Data)
		if key := aws.ToString(r.PartitionKey); key != ev.Order.TenantID {
			t.Errorf("record %s of %s has partition key %q, want its tenant", ids[i], ev.Order.TenantID, key)
		}
		perTenant[ev.Order.TenantID] = append(perTenant[ev.Order.TenantID], ev.Order.ID)
	}
	if diff := cmp.Diff(map[string][]string{"acme": {a1.ID, a2.ID}, "globex": {g1.ID}}, perTenant); diff != "" {
		t.Errorf("events per tenant, in the order of their shard (-want +got):\n%s", diff)
	}

	// Two records no consumer may trust: a1's stamp over another body,
	// and a body without a stamp.
	body, attrs, err := kinesisstream.Decode(recs[slices.IndexFunc(recs, func(r types.Record) bool { return eventOf(t, r.Data).Order.ID == a1.ID })].Data)
	if err != nil {
		t.Fatal(err)
	}
	tamperedData, err := kinesisstream.Encode([]byte(strings.Replace(string(body), `"quantity":2`, `"quantity":200`, 1)), attrs)
	if err != nil {
		t.Fatal(err)
	}
	put := func(data []byte) string {
		out, err := client.PutRecord(t.Context(), &kinesis.PutRecordInput{StreamName: aws.String(defaultEventsStream), PartitionKey: aws.String("acme"), Data: data})
		if err != nil {
			t.Fatal(err)
		}
		return kinesisstream.MessageID(aws.ToString(out.ShardId), aws.ToString(out.SequenceNumber))
	}
	tampered := put(tamperedData)
	unstamped := put(body)

	f := newFulfillment(t, client, svc)
	f.consume(t, 5)
	want := map[string][]string{a1.ID: {"acme/premium/alice"}, a2.ID: {"acme/premium/alice"}, g1.ID: {"globex/basic/eve"}}
	if diff := cmp.Diff(want, f.ran); diff != "" {
		t.Errorf("events ran as (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{tampered: "stamp:body_digest", unstamped: "stamp:missing"}, deadLetters(t, client)); diff != "" {
		t.Errorf("dead letters (-want +got):\n%s", diff)
	}
}

// TestOrderEventsWaitForKinesis: with kinesalite down, orders are still
// answered 201 and their events wait in the outbox; once it is back, they
// land in the stream once each, in order behind the event published
// before, and a consumer runs each as its tenant, once.
func TestOrderEventsWaitForKinesis(t *testing.T) {
	k := testservers.Kinesalite(t, "--path", t.TempDir()) // the stream outlives the restart
	client := kinesisClient(t, k.Endpoint)
	retry := make(chan struct{})
	iss := startIssuer(t)
	svc := startForIssuer(t, iss, map[string]string{"KINESIS_ENDPOINT": k.Endpoint}, withEventRetry(retry))
	acme := iss.MustMint("acme", "premium", authztest.WithSubject("alice"))
	before := svc.create(t, acme, "anvil", 1)

	k.Stop()
	first := svc.create(t, acme, "bolt", 1)
	second := svc.create(t, acme, "crate", 1)
	lines := svc.Lines(t)
	if n := len(servicetest.LinesWhere(lines, servicetest.LogLine{"msg": "order event kept for retry: publishing failed", "order_id": first.ID})); n != 1 {
		t.Errorf("%d lines of the first event kept, want 1", n)
	}
	if n := len(servicetest.LinesWhere(lines, servicetest.LogLine{"msg": "order event kept for retry: earlier events wait", "order_id": second.ID})); n != 1 {
		t.Errorf("%d lines of the second event kept behind the first, want 1", n)
	}
	retry <- struct{}{} // kinesalite still down: nothing goes out
	if recs := len(servicetest.LinesWhere(svc.Lines(t), servicetest.LogLine{"msg": "order event published after a retry"})); recs != 0 {
		t.Fatalf("%d events published while kinesalite was down", recs)
	}

	if err := k.Start(); err != nil {
		t.Fatal(err)
	}
	retry <- struct{}{}
	retry <- struct{}{} // taken once the flush before it has returned

	recs, _ := records(t, client, defaultEventsStream)
	var got []string
	for _, r := range recs {
		got = append(got, eventOf(t, r.Data).Order.ID)
	}
	if diff := cmp.Diff([]string{before.ID, first.ID, second.ID}, got); diff != "" {
		t.Errorf("events in the stream, acme's shard in order (-want +got):\n%s", diff)
	}
	if n := len(servicetest.LinesWhere(svc.Lines(t), servicetest.LogLine{"msg": "order event published after a retry", "tenant_id": "acme"})); n != 2 {
		t.Errorf("%d events published after a retry, want 2", n)
	}

	f := newFulfillment(t, client, svc)
	f.consume(t, 3)
	want := map[string][]string{before.ID: {"acme/premium/alice"}, first.ID: {"acme/premium/alice"}, second.ID: {"acme/premium/alice"}}
	if diff := cmp.Diff(want, f.ran); diff != "" {
		t.Errorf("events ran as (-want +got):\n%s", diff)
	}
	if dl := deadLetters(t, client); len(dl) != 0 {
		t.Errorf("dead letters %v, want none", dl)
	}
}

// TestDevelopmentModeOnKinesalite: in development mode with
// KINESIS_ENDPOINT and a stream that exists already, the service uses that
// stream as it is (one shard, not the two it creates), and the banner
// says where the events go.
func TestDevelopmentModeOnKinesalite(t *testing.T) {
	k := testservers.Kinesalite(t)
	client := kinesisClient(t, k.Endpoint)
	if _, err := client.CreateStream(t.Context(), &kinesis.CreateStreamInput{StreamName: aws.String("dev-events"), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	svc := startService(t, map[string]string{"ADDR": "127.0.0.1:0", "KINESIS_ENDPOINT": k.Endpoint, "ORDER_EVENTS_STREAM": "dev-events"})
	want := "\nevents       order.created to the Kinesis stream dev-events at " + k.Endpoint + ", stamped for fulfillment\n"
	if out := svc.Stderr.String(); !strings.Contains(out, want) {
		t.Errorf("the banner lacks %q:\n%s", want, out)
	}
	sum, err := client.DescribeStreamSummary(t.Context(), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("dev-events")})
	if err != nil {
		t.Fatal(err)
	}
	if n := aws.ToInt32(sum.StreamDescriptionSummary.OpenShardCount); n != 1 {
		t.Errorf("the stream has %d shards, want the 1 it was created with", n)
	}
	if _, err := client.DescribeStreamSummary(t.Context(), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(defaultEventsStream)}); err == nil {
		t.Errorf("the stream %s was created, want only ORDER_EVENTS_STREAM used", defaultEventsStream)
	}
}
