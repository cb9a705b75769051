package kinesissink_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/google/go-cmp/cmp"

	"github.com/tenancykit/tenancy/internal/testservers"
	"github.com/tenancykit/tenancy/meter"
	"github.com/tenancykit/tenancy/meter/kinesissink"
	"github.com/tenancykit/tenancy/tenant"
)

// kinesisClient returns a client of the real SDK for the emulator at
// endpoint, whose connections are closed at the test's end.
func kinesisClient(t *testing.T, endpoint string) *kinesis.Client {
	t.Helper()
	return kinesisClientVia(t, endpoint, nil)
}

// kinesisClientVia is kinesisClient with the HTTP transport wrapped by wrap,
// unless wrap is nil.
func kinesisClientVia(t *testing.T, endpoint string, wrap func(http.RoundTripper) http.RoundTripper) *kinesis.Client {
	t.Helper()
	transport := &http.Transport{}
	t.Cleanup(transport.CloseIdleConnections)
	var rt http.RoundTripper = transport
	if wrap != nil {
		rt = wrap(transport)
	}
	cfg := aws.Config{
		Region:      testservers.Region,
		Credentials: credentials.NewStaticCredentialsProvider(testservers.AccessKeyID, testservers.SecretAccessKey, ""),
		HTTPClient:  &http.Client{Transport: rt, Timeout: 30 * time.Second},
	}
	return kinesis.NewFromConfig(cfg, func(o *kinesis.Options) { o.BaseEndpoint = aws.String(endpoint) })
}

// createStream creates a stream of shards shards and waits until it is
// active; it returns the stream's ARN.
func createStream(t *testing.T, client *kinesis.Client, name string, shards int32) string {
	t.Helper()
	ctx := t.Context()
	if _, err := client.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(shards)}); err != nil {
		t.Fatalf("CreateStream: %v", err)
	}
	// The SDK's own waiter; kinesalite from testservers makes streams
	// active at once, so its first look finds it so.
	w := kinesis.NewStreamExistsWaiter(client, func(o *kinesis.StreamExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = 10*time.Millisecond, 100*time.Millisecond
	})
	out, err := w.WaitForOutput(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String(name)}, 5*time.Second)
	if err != nil {
		t.Fatalf("stream %s not active: %v", name, err)
	}
	return aws.ToString(out.StreamDescription.StreamARN)
}

// readStream returns every record of every shard of the stream, by shard.
func readStream(t *testing.T, client *kinesis.Client, name string) map[string][]types.Record {
	t.Helper()
	ctx := t.Context()
	shards, err := client.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(name)})
	if err != nil {
		t.Fatalf("ListShards: %v", err)
	}
	out := map[string][]types.Record{}
	for _, sh := range shards.Shards {
		it, err := client.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
			StreamName:        aws.String(name),
			ShardId:           sh.ShardId,
			ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
		})
		if err != nil {
			t.Fatalf("GetShardIterator: %v", err)
		}
		iter := it.ShardIterator
		for i := 0; ; i++ {
			if i == 100 {
				t.Fatalf("shard %s: still records after 100 GetRecords", aws.ToString(sh.ShardId))
			}
			got, err := client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(500)})
			if err != nil {
				t.Fatalf("GetRecords: %v", err)
			}
			if len(got.Records) == 0 {
				break
			}
			out[aws.ToString(sh.ShardId)] = append(out[aws.ToString(sh.ShardId)], got.Records...)
			iter = got.NextShardIterator
		}
	}
	return out
}

// TestKinesalite writes 1,200 records through a Recorder into a stream of
// two shards and reads every one back.
func TestKinesalite(t *testing.T) {
	srv := testservers.Kinesalite(t)
	client := kinesisClient(t, srv.Endpoint)
	const stream = "metering"
	createStream(t, client, stream, 2)

	sink := newSink(t, client)
	var (
		mu   sync.Mutex
		sent = map[string]meter.Record{}
	)
	recording := meter.SinkFunc(func(ctx context.Context, recs []meter.Record) error {
		err := sink.Write(ctx, recs)
		if err != nil {
			t.Errorf("Write: %v", err)
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		for _, r := range recs {
			sent[r.ID] = r
		}
		return nil
	})
	rec, err := meter.New("orders", recording,
		meter.WithMeters(
			meter.Meter{Name: "api.calls", Unit: meter.UnitCount},
			meter.Meter{Name: "storage.bytes", Unit: meter.UnitBytes, Dimensions: []string{"class"}},
			meter.Meter{Name: "compute.time", Unit: meter.UnitMilliseconds},
		),
		meter.WithoutLoop(), meter.WithClock(func() time.Time { return window }), meter.WithInstance("task-1"),
		// One Write of everything: the sink makes the batches.
		meter.WithBatchSize(2000))
	if err != nil {
		t.Fatal(err)
	}

	// 399 tenants and the unattributed bucket, 3 meters each.
	type key struct{ tenant, meter string }
	want := map[key]float64{}
	basic := tenant.DefaultTiers.MustLookup("basic")
	add := func(ctx context.Context, id string, i int) {
		rec.Add(ctx, "api.calls", float64(i+1))
		rec.Add(ctx, "api.calls", 1)
		rec.Add(ctx, "storage.bytes", float64(1000*i), "hot")
		rec.Add(ctx, "compute.time", 0.5*float64(i+1))
		want[key{id, "api.calls"}] = float64(i + 2)
		want[key{id, "storage.bytes"}] = float64(1000 * i)
		want[key{id, "compute.time"}] = 0.5 * float64(i+1)
	}
	for i := range 399 {
		id := fmt.Sprintf("tenant-%03d", i)
		add(tenant.NewContext(t.Context(), tenant.Tenant{ID: id, Tier: basic}), id, i+1)
	}
	add(t.Context(), kinesissink.UnattributedKey, 1000)

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := rec.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if len(sent) != 1200 {
		t.Fatalf("%d records written, want 1200", len(sent))
	}

	got := map[string]meter.Record{}
	values := map[key]float64{}
	for shard, recs := range readStream(t, client, stream) {
		if len(recs) == 0 {
			t.Errorf("shard %s is empty", shard)
		}
		for _, kr := range recs {
			var r meter.Record
			if err := json.Unmarshal(kr.Data, &r); err != nil {
				t.Fatalf("record data %q: %v", kr.Data, err)
			}
			if _, dup := got[r.ID]; dup {
				t.Errorf("record %s read twice", r.ID)
			}
			got[r.ID] = r
			id := r.TenantID
			if r.Unattributed {
				id = kinesissink.UnattributedKey
			}
			if pk := aws.ToString(kr.PartitionKey); pk != id {
				t.Errorf("record %s of tenant %q has partition key %q", r.ID, id, pk)
			}
			values[key{id, r.Meter}] += r.Value
		}
	}
	if diff := cmp.Diff(sent, got); diff != "" {
		t.Errorf("records read back (-written +read):\n%s", diff)
	}
	if diff := cmp.Diff(want, values); diff != "" {
		t.Errorf("values read back (-added +read):\n%s", diff)
	}
}

// TestKinesaliteByARN names the stream by its ARN as well as its name.
func TestKinesaliteByARN(t *testing.T) {
	srv := testservers.Kinesalite(t)
	client := kinesisClient(t, srv.Endpoint)
	const stream = "metering-arn"
	arn := createStream(t, client, stream, 1)
	sink, err := kinesissink.New(client, stream, kinesissink.WithStreamARN(arn))
	if err != nil {
		t.Fatal(err)
	}
	recs := records(10)
	if err := sink.Write(t.Context(), recs); err != nil {
		t.Fatal(err)
	}
	var read []string
	for _, rs := range readStream(t, client, stream) {
		for _, r := range rs {
			var m meter.Record
			if err := json.Unmarshal(r.Data, &m); err != nil {
				t.Fatal(err)
			}
			read = append(read, m.ID)
		}
	}
	if diff := cmp.Diff(recordIDs(recs), read); diff != "" {
		t.Errorf("records read back (-written +read):\n%s", diff)
	}
}

// TestKinesaliteOversizeRecord delivers 10 records and one larger than
// Kinesis takes in one round: the 10 are stored, the one is rejected with
// its reason, and no call carries it (Kinesis refuses a whole call that
// does). Through a Recorder, the one goes to the dead-letter file.
func TestKinesaliteOversizeRecord(t *testing.T) {
	srv := testservers.Kinesalite(t)
	client := kinesisClient(t, srv.Endpoint)

	// storedIDs returns the IDs of the records in a stream.
	storedIDs := func(stream string) []string {
		var out []string
		for _, rs := range readStream(t, client, stream) {
			for _, r := range rs {
				var m meter.Record
				if err := json.Unmarshal(r.Data, &m); err != nil {
					t.Fatal(err)
				}
				out = append(out, m.ID)
			}
		}
		slices.Sort(out)
		return out
	}
	// oversize makes r larger than Kinesis takes, as an old spool's
	// record may be.
	oversize := func(r meter.Record) meter.Record { return padded(t, r, kinesissink.MaxRecordBytes*3/2) }

	t.Run("Write", func(t *testing.T) {
		const stream = "metering-oversize"
		createStream(t, client, stream, 1)
		recs := records(11)
		recs[4] = oversize(recs[4])

		// What the sink keeps from happening: the record fails the
		// whole call.
		big, err := json.Marshal(recs[4])
		if err != nil {
			t.Fatal(err)
		}
		_, err = client.PutRecords(t.Context(), &kinesis.PutRecordsInput{
			StreamName: aws.String(stream),
			Records: []types.PutRecordsRequestEntry{
				{Data: []byte(`{}`), PartitionKey: aws.String("tenant-0")},
				{Data: big, PartitionKey: aws.String(kinesissink.PartitionKey(&recs[4]))},
			},
		})
		if err == nil {
			t.Fatal("kinesalite took a record of 1.5 MiB: the test proves nothing")
		}
		if got := storedIDs(stream); len(got) != 0 {
			t.Fatalf("the refused call stored records: %v", got)
		}

		sink, err := kinesissink.New(client, stream)
		if err != nil {
			t.Fatal(err)
		}
		err = sink.Write(t.Context(), recs)
		var de *meter.DeliveryError
		if !errors.As(err, &de) || !errors.Is(err, kinesissink.ErrRecordTooLarge) {
			t.Fatalf("Write = %v, want a DeliveryError wrapping ErrRecordTooLarge", err)
		}
		if len(de.Failed) != 0 || len(de.Rejected) != 1 || de.Rejected[0].Index != 4 {
			t.Errorf("Failed %v, Rejected %+v; want record 4 rejected, none failed", de.Failed, de.Rejected)
		}
		want := recordIDs(append(slices.Clone(recs[:4]), recs[5:]...))
		if diff := cmp.Diff(want, storedIDs(stream)); diff != "" {
			t.Errorf("records stored (-want +got):\n%s", diff)
		}
	})

	t.Run("Recorder", func(t *testing.T) {
		const stream = "metering-oversize-recorder"
		createStream(t, client, stream, 1)
		sink, err := kinesissink.New(client, stream)
		if err != nil {
			t.Fatal(err)
		}
		var written []string
		inflating := meter.SinkFunc(func(ctx context.Context, recs []meter.Record) error {
			recs[4] = oversize(recs[4])
			for _, r := range recs {
				written = append(written, r.ID)
			}
			return sink.Write(ctx, recs)
		})
		deadLetter := filepath.Join(t.TempDir(), "dead.jsonl")
		now := window
		rec, err := meter.New("orders", inflating,
			meter.WithMeters(meter.Meter{Name: "api.calls", Unit: meter.UnitCount}),
			meter.WithoutLoop(), meter.WithClock(func() time.Time { return now }), meter.WithDeadLetter(deadLetter),
			meter.WithLogger(slog.New(slog.DiscardHandler)))
		if err != nil {
			t.Fatal(err)
		}
		basic := tenant.DefaultTiers.MustLookup("basic")
		for i := range 11 {
			ctx := tenant.NewContext(t.Context(), tenant.Tenant{ID: fmt.Sprintf("tenant-%02d", i), Tier: basic})
			rec.Add(ctx, "api.calls", 1)
		}
		now = now.Add(time.Hour)
		if err := rec.Flush(t.Context()); err != nil {
			t.Fatalf("Flush = %v, want the round to end well", err)
		}
		if st := rec.Stats(); st.Delivered != 10 || st.DeadLettered != 1 || st.Pending != 0 {
			t.Errorf("Stats = %+v, want 10 delivered, 1 dead-lettered, none pending", st)
		}
		if len(written) != 11 {
			t.Fatalf("%d records written, want 11 in one Write", len(written))
		}
		want := append(slices.Clone(written[:4]), written[5:]...)
		slices.Sort(want)
		if diff := cmp.Diff(want, storedIDs(stream)); diff != "" {
			t.Errorf("records stored (-want +got):\n%s", diff)
		}
		data, err := os.ReadFile(deadLetter)
		if err != nil {
			t.Fatal(err)
		}
		var line struct {
			Reason string
			Record meter.Record
		}
		if err := json.Unmarshal(data, &line); err != nil {
			t.Fatalf("dead-letter file %q: %v", data, err)
		}
		if line.Record.ID != written[4] || !strings.Contains(line.Reason, "larger than a Kinesis record can be") {
			t.Errorf("dead letter %s: %q, want %s as too large", line.Record.ID, line.Reason, written[4])
		}
		if err := rec.Shutdown(t.Context()); err != nil {
			t.Fatal(err)
		}
	})
}

// TestKinesaliteOutage stops kinesalite (SIGSTOP) in the middle of a
// delivery, just after it stored a call whose answer is then lost, and
// continues it later. While it is stopped each Write fails within the
// sink's timeouts; once it answers again every record is in the stream,
// duplicated only under its own ID, and the totals are exact.
func TestKinesaliteOutage(t *testing.T) {
	srv := testservers.Kinesalite(t)
	const stream = "metering-outage"
	admin := kinesisClient(t, srv.Endpoint)
	createStream(t, admin, stream, 2)

	// The sink's client loses the answer of the third PutRecords, after
	// kinesalite stored its records, and kinesalite stops at that moment.
	var resume func()
	lose := &loseAnswer{call: 3, after: func() { resume = pause(t, srv) }}
	client := kinesisClientVia(t, srv.Endpoint, func(rt http.RoundTripper) http.RoundTripper { lose.base = rt; return lose })
	const (
		timeout  = 500 * time.Millisecond
		attempts = 2
		// A Write while kinesalite is stopped: each attempt waits for one
		// call, and a little backoff; the rest is slack for -race.
		writeBound = attempts*timeout + 3*time.Second
	)
	sink, err := kinesissink.New(client, stream, kinesissink.WithTimeout(timeout), kinesissink.WithAttempts(attempts),
		kinesissink.WithBackoff(10*time.Millisecond, 20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu      sync.Mutex
		written = map[string]meter.Record{} // every record given to the sink
		now     atomic.Int64                // the Recorder's clock
	)
	now.Store(window.UnixNano())
	recording := meter.SinkFunc(func(ctx context.Context, recs []meter.Record) error {
		mu.Lock()
		for _, r := range recs {
			written[r.ID] = r
		}
		mu.Unlock()
		return sink.Write(ctx, recs)
	})
	rec, err := meter.New("orders", recording,
		meter.WithMeters(
			meter.Meter{Name: "api.calls", Unit: meter.UnitCount, Dimensions: []string{"route"}},
			meter.Meter{Name: "storage.bytes", Unit: meter.UnitBytes},
			meter.Meter{Name: "compute.time", Unit: meter.UnitMilliseconds},
		),
		meter.WithoutLoop(), meter.WithClock(func() time.Time { return time.Unix(0, now.Load()) }), meter.WithInstance("task-1"),
		// One Write of everything: 3,000 records in 6 calls.
		meter.WithBatchSize(5000), meter.WithBackoff(time.Millisecond, time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	type key struct{ tenant, meter string }
	want := map[key]float64{}
	basic := tenant.DefaultTiers.MustLookup("basic")
	for i := range 1000 {
		id := fmt.Sprintf("tenant-%04d", i)
		ctx := tenant.NewContext(t.Context(), tenant.Tenant{ID: id, Tier: basic})
		rec.Add(ctx, "api.calls", float64(i+1), "GET /orders")
		rec.Add(ctx, "storage.bytes", float64(1000*i+1))
		rec.Add(ctx, "compute.time", 0.25*float64(i+1))
		want[key{id, "api.calls"}] = float64(i + 1)
		want[key{id, "storage.bytes"}] = float64(1000*i + 1)
		want[key{id, "compute.time"}] = 0.25 * float64(i+1)
	}

	flush := func(what string) error {
		t.Helper()
		start := time.Now()
		err := rec.Flush(t.Context())
		if took := time.Since(start); took > writeBound {
			t.Errorf("%s took %v, more than %v", what, took, writeBound)
		}
		return err
	}
	// The window closes: the next Flush delivers it.
	now.Store(window.Add(time.Hour).UnixNano())
	if err := flush("the first delivery"); err == nil {
		t.Fatal("the delivery in which kinesalite stopped succeeded")
	}
	if resume == nil {
		t.Fatal("kinesalite was never stopped: fewer than 3 calls")
	}
	if st := rec.Stats(); st.Delivered != 1000 || st.Pending != 2000 {
		t.Errorf("after the first delivery: %d delivered, %d pending; want the 2 calls before the stop, 1000, and 2000", st.Delivered, st.Pending)
	}
	if err := flush("a delivery with kinesalite stopped"); err == nil {
		t.Fatal("a delivery with kinesalite stopped succeeded")
	}
	resume()
	var last error
	for range 10 {
		if last = flush("a delivery after kinesalite continued"); last == nil {
			break
		}
	}
	if last != nil {
		t.Fatalf("deliveries after kinesalite continued: %v", last)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := rec.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if st := rec.Stats(); st.Delivered != 3000 || st.Pending != 0 {
		t.Errorf("Stats = %+v, want 3000 delivered and none pending", st)
	}

	stored := map[string][]meter.Record{}
	for _, recs := range readStream(t, admin, stream) {
		for _, kr := range recs {
			var r meter.Record
			if err := json.Unmarshal(kr.Data, &r); err != nil {
				t.Fatalf("record data %q: %v", kr.Data, err)
			}
			stored[r.ID] = append(stored[r.ID], r)
		}
	}
	values := map[key]float64{}
	dups := 0
	for id, copies := range stored {
		for _, c := range copies[1:] {
			if diff := cmp.Diff(copies[0], c); diff != "" {
				t.Errorf("record %s stored twice with different contents:\n%s", id, diff)
			}
		}
		dups += len(copies) - 1
		values[key{copies[0].TenantID, copies[0].Meter}] += copies[0].Value
	}
	if len(stored) != len(written) || len(written) != 3000 {
		t.Errorf("%d distinct records stored, %d written, want 3000", len(stored), len(written))
	}
	for id := range written {
		if _, ok := stored[id]; !ok {
			t.Errorf("record %s written and never stored", id)
		}
	}
	if diff := cmp.Diff(want, values); diff != "" {
		t.Errorf("totals stored, each ID once (-added +stored):\n%s", diff)
	}
	// The call whose answer was lost was stored, and sent again.
	if dups < 500 {
		t.Errorf("%d duplicates, want at least the 500 of the call whose answer was lost", dups)
	}
	t.Logf("%d records stored twice or more, each under its own ID", dups)
}

// loseAnswer is an HTTP transport that loses the answer of one PutRecords
// call, as a network failing after the request arrived does: the records
// are stored, and the client gets an error.
type loseAnswer struct {
	base  http.RoundTripper
	call  int    // which PutRecords, from 1
	after func() // runs when the answer is lost

	mu sync.Mutex
	n  int
}

func (l *loseAnswer) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := l.base.RoundTrip(req)
	if !strings.HasSuffix(req.Header.Get("X-Amz-Target"), ".PutRecords") {
		return resp, err
	}
	l.mu.Lock()
	l.n++
	lost := l.n == l.call
	l.mu.Unlock()
	if !lost {
		return resp, err
	}
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	l.after()
	return nil, errors.New("connection reset by the test, after kinesalite stored the records")
}
