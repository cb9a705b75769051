package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/tenancykit/tenancy/examples/internal/servicetest"
	"github.com/tenancykit/tenancy/internal/testservers"
	"github.com/tenancykit/tenancy/message/kinesisstream"
	"github.com/tenancykit/tenancy/message/kinesisstream/dynamocheckpoints"
	"github.com/tenancykit/tenancy/message/stamp"
	"github.com/tenancykit/tenancy/tenant"
)

// startKinesis runs the whole on kinesalite: orders publishes to the
// Kinesis stream it creates (KINESIS_ENDPOINT), and the worker consumes
// it, with its checkpoints in dynalite when dynamo is set, else in
// memory. The worker is started by the caller (startWorker), once
// whatever it should find is in the stream.
func startKinesis(t *testing.T, dynamo bool) *fixture {
	t.Helper()
	k := testservers.Kinesalite(t)
	f := newFixture(t)
	f.kinesis = kinesis.NewFromConfig(testservers.AWSConfig(t), func(o *kinesis.Options) { o.BaseEndpoint = aws.String(k.Endpoint) })
	more := map[string]string{}
	if dynamo {
		more["DYNAMODB_ENDPOINT"] = testservers.Dynalite(t).Endpoint
	}
	f.startOrders(t, map[string]string{"KINESIS_ENDPOINT": k.Endpoint}, "", more)
	return f
}

// records returns every record of stream, with the ID of its message
// (kinesisstream.MessageID), shard after shard.
func (f *fixture) records(t *testing.T, stream string) (recs []types.Record, ids []string) {
	t.Helper()
	ctx := t.Context()
	shards, err := f.kinesis.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatalf("ListShards %s: %v", stream, err)
	}
	for _, sh := range shards.Shards {
		it, err := f.kinesis.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
			StreamName: aws.String(stream), ShardId: sh.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
		})
		if err != nil {
			t.Fatalf("GetShardIterator: %v", err)
		}
		for iter := it.ShardIterator; iter != nil; {
			got, err := f.kinesis.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
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

// recordIDs returns the message ID of each order's record, by order ID.
func (f *fixture) recordIDs(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	recs, ids := f.records(t, defaultStream)
	for i, r := range recs {
		body, _, _ := kinesisstream.Decode(r.Data)
		var ev orderEvent
		if json.Unmarshal(body, &ev) == nil && ev.Order.ID != "" {
			out[ev.Order.ID] = ids[i]
		}
	}
	return out
}

// kinesisDeadLetters returns the reason of each dead letter in the
// worker's dead-letter stream, by the ID its message had, and checks that
// each names the stream it came from.
func (f *fixture) kinesisDeadLetters(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	recs, _ := f.records(t, defaultStream+"-dead")
	for _, r := range recs {
		_, attrs, err := kinesisstream.Decode(r.Data)
		if err != nil {
			t.Fatalf("dead letter %q: %v", r.Data, err)
		}
		if attrs[kinesisstream.AttrSource] != defaultStream {
			t.Errorf("dead letter of %s from %q, want %s", attrs[kinesisstream.AttrID], attrs[kinesisstream.AttrSource], defaultStream)
		}
		out[attrs[kinesisstream.AttrID]] = attrs[kinesisstream.AttrReason]
	}
	return out
}

// put writes data to the order events' stream under tenant acme's
// partition key, and returns the ID of its message.
func (f *fixture) put(t *testing.T, data []byte) string {
	t.Helper()
	out, err := f.kinesis.PutRecord(t.Context(), &kinesis.PutRecordInput{StreamName: aws.String(defaultStream), PartitionKey: aws.String("acme"), Data: data})
	if err != nil {
		t.Fatal(err)
	}
	return kinesisstream.MessageID(aws.ToString(out.ShardId), aws.ToString(out.SequenceNumber))
}

// TestKinesisEachOrderFulfilledOnceAsItsTenant: with KINESIS_ENDPOINT,
// orders placed for two tenants, interleaved, on orders' Kinesis stream
// of 2 shards, are each fulfilled exactly once, as the tenant that placed
// it, with the record's message ID (shard/sequence) as request_id; the
// usage is metered per tenant, exactly; nothing is dead-lettered.
func TestKinesisEachOrderFulfilledOnceAsItsTenant(t *testing.T) {
	f := startKinesis(t, false)
	f.startWorker(t)
	f.waitLines(t, servicetest.LogLine{
		"msg": "fulfillment worker started", "events": "kinesis", "checkpoints": "memory", "dead_letter_stream": defaultStream + "-dead",
	}, 1)
	var orders []placed
	for i := range 4 {
		orders = append(orders, f.place(t, "acme", "premium", fmt.Sprint("anvil-", i), ""))
		if i < 3 {
			orders = append(orders, f.place(t, "globex", "basic", fmt.Sprint("bolt-", i), ""))
		}
	}
	f.waitLines(t, servicetest.LogLine{"msg": "message", "outcome": "acked"}, len(orders))
	lines := f.worker.Lines(t)
	ids := f.entryIDs(t)
	shards := map[string]bool{}
	for _, o := range orders {
		id := ids[o.ID]
		l := servicetest.OneLine(t, lines, servicetest.LogLine{"msg": "order fulfilled", "order_id": o.ID})
		if id == "" || l.Str("tenant_id") != o.TenantID || l.Str("request_id") != id {
			t.Errorf("order %s of %s fulfilled as %s, request_id %s; want its tenant and its record %s",
				o.ID, o.TenantID, l.Str("tenant_id"), l.Str("request_id"), id)
		}
		servicetest.OneLine(t, lines, servicetest.LogLine{"msg": "message", "request_id": id, "tenant_id": o.TenantID, "outcome": "acked", "message_source": defaultStream})
		shards[o.TenantID+" "+strings.Split(id, "/")[0]] = true
	}
	if len(shards) != 2 {
		t.Errorf("the tenants' records on %v, want each tenant on one shard", shards)
	}
	f.checkFulfilledOnce(t, lines, len(orders))
}

// TestKinesisRefusedStampsAreDeadLettered: records of orders' stream
// whose stamp is over another body (the real record's stamp on a changed
// body), missing (a body put as the whole record), forged (another key
// under orders' key ID) or replayed (the real record put again, with a
// new sequence number) never run: each is in the dead-letter stream with
// its reason, its ID and its source, and metered once as denied; the real
// order runs once.
func TestKinesisRefusedStampsAreDeadLettered(t *testing.T) {
	f := startKinesis(t, false)
	f.startWorker(t)
	real := f.place(t, "acme", "premium", "anvil", "")
	f.waitLines(t, servicetest.LogLine{"msg": "order fulfilled", "order_id": real.ID}, 1)
	recs, _ := f.records(t, defaultStream)
	if len(recs) != 1 {
		t.Fatalf("%d records, want orders' one", len(recs))
	}
	body, attrs, err := kinesisstream.Decode(recs[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	encode := func(b []byte, attrs map[string]string) []byte {
		data, err := kinesisstream.Encode(b, attrs)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	forger, err := stamp.NewSigner(defaultStampIssuer, other, stampKeyID, stamp.WithClock(f.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	acme := tenant.NewContext(context.Background(), tenant.Tenant{ID: "acme", Tier: tenant.DefaultTiers.MustLookup("premium"), Source: tenant.SourceToken})
	forgedBody := []byte(strings.Replace(string(body), real.ID, "forged", 1))
	forgedAttrs, err := forger.Stamp(acme, forgedBody, stamp.WithDestination(destination))
	if err != nil {
		t.Fatal(err)
	}
	tamperedBody := []byte(strings.Replace(string(body), `"quantity":1`, `"quantity":100`, 1))
	if string(tamperedBody) == string(body) {
		t.Fatalf("body %s has no quantity 1 to change", body)
	}
	want := map[string]string{
		f.put(t, encode(tamperedBody, attrs)):     "stamp:body_digest",
		f.put(t, body):                            "stamp:missing",
		f.put(t, encode(forgedBody, forgedAttrs)): "stamp:signature",
		f.put(t, recs[0].Data):                    "stamp:replayed",
	}
	f.waitLines(t, servicetest.LogLine{"msg": "message", "outcome": "rejected"}, len(want))
	got := f.deadLetters(t)
	for id, reason := range want {
		if got[id] != reason {
			t.Errorf("record %s dead-lettered %q, want %q", id, got[id], reason)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d dead letters, want %d: %v", len(got), len(want), got)
	}
	if n := len(servicetest.LinesWhere(f.worker.Lines(t), servicetest.LogLine{"msg": "order fulfilled"})); n != 1 {
		t.Errorf("%d orders fulfilled, want the real one only", n)
	}
	u := f.usage(t)
	for _, reason := range want {
		if u[" messages.denied "+reason] != 1 {
			t.Errorf("unattributed messages.denied %s = %v, want 1 (all: %v)", reason, u[" messages.denied "+reason], u)
		}
	}
	if u["acme orders.fulfilled"] != 1 || u["acme messages"] != 1 {
		t.Errorf("acme orders.fulfilled %v, messages %v; want 1 each (all: %v)", u["acme orders.fulfilled"], u["acme messages"], u)
	}
}

// TestKinesisRestart: a worker fulfils an order of each tenant and
// stops; one more of each is placed; a new worker starts. With its
// checkpoints in DynamoDB (DYNAMODB_ENDPOINT), it reads after them: it
// fulfils the two new orders only. With them in memory, it reads the
// stream from its oldest record and fulfils all four (its set of
// fulfilled orders is in memory too), as the README says. A tenant's
// records are in order on its shard, so once its new order is fulfilled,
// its old one would have been, had it come again: nothing is timed.
func TestKinesisRestart(t *testing.T) {
	for _, c := range []struct {
		checkpoints string
		wantFulfils int
	}{{"dynamodb", 2}, {"memory", 4}} {
		t.Run(c.checkpoints, func(t *testing.T) {
			f := startKinesis(t, c.checkpoints == "dynamodb")
			f.startWorker(t)
			f.waitLines(t, servicetest.LogLine{"msg": "fulfillment worker started", "checkpoints": c.checkpoints}, 1)
			old := []placed{f.place(t, "acme", "premium", "anvil", ""), f.place(t, "globex", "basic", "bolt", "")}
			f.waitLines(t, servicetest.LogLine{"msg": "message", "outcome": "acked"}, 2)
			f.worker.Stop(t)
			if c.checkpoints == "dynamodb" {
				f.checkCheckpoints(t)
			}

			late := []placed{f.place(t, "acme", "premium", "crate", ""), f.place(t, "globex", "basic", "drum", "")}
			f.meterFile += ".2"
			f.env["METER_FILE"] = f.meterFile
			f.startWorker(t)
			for _, o := range late {
				f.waitLines(t, servicetest.LogLine{"msg": "order fulfilled", "order_id": o.ID}, 1)
			}
			lines := f.worker.Lines(t)
			if got := len(servicetest.LinesWhere(lines, servicetest.LogLine{"msg": "order fulfilled"})); got != c.wantFulfils {
				t.Errorf("the new worker fulfilled %d orders, want %d", got, c.wantFulfils)
			}
			for _, o := range old {
				want := 0
				if c.checkpoints == "memory" {
					want = 1
				}
				if n := len(servicetest.LinesWhere(lines, servicetest.LogLine{"msg": "order fulfilled", "order_id": o.ID})); n != want {
					t.Errorf("the new worker fulfilled %s's order placed before the restart %d times, want %d", o.TenantID, n, want)
				}
			}
			u := f.usage(t)
			if total := u["acme messages"] + u["globex messages"]; total != float64(c.wantFulfils) {
				t.Errorf("the new worker handled %v messages, want %d (all: %v)", total, c.wantFulfils, u)
			}
		})
	}
}

// checkCheckpoints checks that the worker's checkpoints in dynalite
// (CHECKPOINT_TABLE's default, under CONSUMER_GROUP/ORDER_EVENTS_STREAM)
// are set on every shard that holds records.
func (f *fixture) checkCheckpoints(t *testing.T) {
	t.Helper()
	db := dynamodb.NewFromConfig(testservers.AWSConfig(t), func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(f.env["DYNAMODB_ENDPOINT"]) })
	cp, err := dynamocheckpoints.New(db, defaultCheckpointTable, defaultGroup+"/"+defaultStream)
	if err != nil {
		t.Fatal(err)
	}
	_, ids := f.records(t, defaultStream)
	if len(ids) == 0 {
		t.Fatal("no records in the stream")
	}
	for _, id := range ids {
		shard, _, _ := strings.Cut(id, "/")
		seq, err := cp.Checkpoint(t.Context(), shard)
		if err != nil {
			t.Fatal(err)
		}
		if seq == "" {
			t.Errorf("shard %s has records and no checkpoint in %s", shard, defaultCheckpointTable)
		}
	}
}
