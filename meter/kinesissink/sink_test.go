package kinesissink_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/google/go-cmp/cmp"

	"github.com/tenancykit/tenancy/meter"
	"github.com/tenancykit/tenancy/meter/kinesissink"
	"github.com/tenancykit/tenancy/tenant"
)

func TestNewRefusesBadConfiguration(t *testing.T) {
	client := &fakeKinesis{}
	const arn = "arn:aws:kinesis:eu-west-1:123456789012:stream/metering"
	tests := []struct {
		name   string
		client kinesissink.PutRecordsAPI
		stream string
		opts   []kinesissink.Option
	}{
		{"nil client", nil, "metering", nil},
		{"no stream", client, "", nil},
		{"bad stream name", client, "metering stream", nil},
		{"negative attempts", client, "metering", []kinesissink.Option{kinesissink.WithAttempts(-1)}},
		{"min above max", client, "metering", []kinesissink.Option{kinesissink.WithBackoff(time.Second, time.Millisecond)}},
		{"no min", client, "metering", []kinesissink.Option{kinesissink.WithBackoff(0, time.Second)}},
		{"negative timeout", client, "metering", []kinesissink.Option{kinesissink.WithTimeout(-time.Second)}},
		{"not an ARN", client, "", []kinesissink.Option{kinesissink.WithStreamARN("metering")}},
		{"ARN of another service", client, "", []kinesissink.Option{kinesissink.WithStreamARN("arn:aws:sqs:eu-west-1:123456789012:metering")}},
		{"ARN of another stream", client, "billing", []kinesissink.Option{kinesissink.WithStreamARN(arn)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := kinesissink.New(tt.client, tt.stream, tt.opts...)
			if err == nil {
				t.Fatalf("New = %v, nil; want an error", s)
			}
			if !strings.HasPrefix(err.Error(), "kinesissink: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
	for _, opts := range [][]kinesissink.Option{
		nil,
		{nil, kinesissink.WithAttempts(0), kinesissink.WithBackoff(0, 0), kinesissink.WithTimeout(0), kinesissink.WithSleep(nil)},
		{kinesissink.WithStreamARN(arn)},
	} {
		if _, err := kinesissink.New(client, "metering", opts...); err != nil {
			t.Errorf("New with %d options: %v", len(opts), err)
		}
	}
	if _, err := kinesissink.New(client, "", kinesissink.WithStreamARN(arn)); err != nil {
		t.Errorf("New with the ARN only: %v", err)
	}
}

func TestWriteSendsRecordsAsJSONKeyedByTenant(t *testing.T) {
	tests := []struct {
		name       string
		stream     string
		opts       []kinesissink.Option
		wantStream *string
		wantARN    *string
	}{
		{"by name", "metering", nil, aws.String("metering"), nil},
		{"by ARN", "", []kinesissink.Option{kinesissink.WithStreamARN("arn:aws:kinesis:eu-west-1:123456789012:stream/metering")},
			nil, aws.String("arn:aws:kinesis:eu-west-1:123456789012:stream/metering")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := &fakeKinesis{}
			s, err := kinesissink.New(client, tt.stream, tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			recs := records(2)
			recs[1].TenantID, recs[1].Unattributed, recs[1].Tier = "", true, ""
			recs[1].Dimensions = map[string]string{"route": "GET /orders"}
			if err := s.Write(t.Context(), recs); err != nil {
				t.Fatal(err)
			}
			calls := client.Calls()
			if len(calls) != 1 {
				t.Fatalf("%d calls, want 1", len(calls))
			}
			in := calls[0]
			if diff := cmp.Diff(tt.wantStream, in.StreamName); diff != "" {
				t.Errorf("StreamName (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantARN, in.StreamARN); diff != "" {
				t.Errorf("StreamARN (-want +got):\n%s", diff)
			}
			for i, wantKey := range []string{"tenant-0", kinesissink.UnattributedKey} {
				e := in.Records[i]
				if got := aws.ToString(e.PartitionKey); got != wantKey {
					t.Errorf("record %d: partition key %q, want %q", i, got, wantKey)
				}
				var got meter.Record
				if err := json.Unmarshal(e.Data, &got); err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(recs[i], got); diff != "" {
					t.Errorf("record %d (-sent +decoded):\n%s", i, diff)
				}
			}
		})
	}
}

func TestPartitionKey(t *testing.T) {
	long := strings.Repeat("é", 257)
	sum := sha256.Sum256([]byte(long))
	badSum := sha256.Sum256([]byte("bad \xff utf-8"))
	tests := []struct {
		r    meter.Record
		want string
	}{
		{meter.Record{TenantID: "acme"}, "acme"},
		{meter.Record{TenantID: "acme", Unattributed: true}, kinesissink.UnattributedKey},
		{meter.Record{Unattributed: true}, kinesissink.UnattributedKey},
		{meter.Record{}, kinesissink.UnattributedKey},
		{meter.Record{TenantID: strings.Repeat("é", 256)}, strings.Repeat("é", 256)},
		{meter.Record{TenantID: long}, "sha256:" + hex.EncodeToString(sum[:])},
		{meter.Record{TenantID: "bad \xff utf-8"}, "sha256:" + hex.EncodeToString(badSum[:])},
	}
	for _, tt := range tests {
		if got := kinesissink.PartitionKey(&tt.r); got != tt.want {
			t.Errorf("PartitionKey(%+v) = %q, want %q", tt.r, got, tt.want)
		}
	}
}

func TestWriteBatchesAt500Records(t *testing.T) {
	client := &fakeKinesis{}
	recs := records(1234)
	if err := newSink(t, client).Write(t.Context(), recs); err != nil {
		t.Fatal(err)
	}
	var sizes []int
	var sent []string
	for _, in := range client.Calls() {
		sizes = append(sizes, len(in.Records))
		sent = append(sent, ids(t, in)...)
	}
	if diff := cmp.Diff([]int{500, 500, 234}, sizes); diff != "" {
		t.Errorf("records per call (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(recordIDs(recs), sent); diff != "" {
		t.Errorf("records sent, in order (-want +got):\n%s", diff)
	}
}

// padded returns r with a dimension that makes its Kinesis record (JSON
// and partition key) exactly size bytes.
func padded(t *testing.T, r meter.Record, size int) meter.Record {
	t.Helper()
	r.Dimensions = map[string]string{"pad": ""}
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	n := size - len(data) - len(kinesissink.PartitionKey(&r))
	if n < 0 {
		t.Fatalf("a record of %d bytes is too small", size)
	}
	r.Dimensions = map[string]string{"pad": strings.Repeat("x", n)}
	return r
}

func TestWriteBatchesAt5MiB(t *testing.T) {
	client := &fakeKinesis{}
	recs := records(20)
	for i := range recs {
		// 600 KiB to 900 KiB: from 5 to 8 records fit in 5 MiB.
		recs[i] = padded(t, recs[i], (600+i%4*100)<<10)
	}
	if err := newSink(t, client).Write(t.Context(), recs); err != nil {
		t.Fatal(err)
	}
	calls := client.Calls()
	var sent []string
	next := 0
	for i, in := range calls {
		got := callBytes(in)
		if got > kinesissink.MaxBatchBytes {
			t.Errorf("call %d: %d bytes, above %d", i, got, kinesissink.MaxBatchBytes)
		}
		next += len(in.Records)
		// Batches are filled: the next record would not have fitted.
		if next < len(recs) {
			r := recs[next]
			data, _ := json.Marshal(r)
			if extra := len(data) + len(kinesissink.PartitionKey(&r)); got+extra <= kinesissink.MaxBatchBytes {
				t.Errorf("call %d: %d bytes, and the next record of %d bytes would have fitted", i, got, extra)
			}
		}
		sent = append(sent, ids(t, in)...)
	}
	if len(calls) < 3 {
		t.Errorf("%d calls for 20 records of 600 to 900 KiB, want at least 3", len(calls))
	}
	if diff := cmp.Diff(recordIDs(recs), sent); diff != "" {
		t.Errorf("records sent, in order (-want +got):\n%s", diff)
	}
}

// A record too large for Kinesis is never sent, and reported rejected
// with its reason; the others are delivered.
func TestWriteRejectsOversizeRecord(t *testing.T) {
	client := &fakeKinesis{}
	recs := records(4)
	recs[1] = padded(t, recs[1], kinesissink.MaxRecordBytes)   // the limit: sent
	recs[2] = padded(t, recs[2], kinesissink.MaxRecordBytes+1) // one byte over: rejected
	err := newSink(t, client).Write(t.Context(), recs)
	var de *meter.DeliveryError
	if !errors.As(err, &de) {
		t.Fatalf("Write = %v, want a *meter.DeliveryError", err)
	}
	if len(de.Failed) != 0 || len(de.Rejected) != 1 || de.Rejected[0].Index != 2 ||
		!strings.Contains(de.Rejected[0].Reason, "larger than a Kinesis record can be") {
		t.Errorf("Failed %v, Rejected %+v; want none failed and record 2 rejected as too large", de.Failed, de.Rejected)
	}
	if !errors.Is(err, kinesissink.ErrRecordTooLarge) || !strings.Contains(err.Error(), recs[2].ID) {
		t.Errorf("Write = %v, want ErrRecordTooLarge naming %s", err, recs[2].ID)
	}
	var sent []string
	for _, in := range client.Calls() {
		sent = append(sent, ids(t, in)...)
	}
	if diff := cmp.Diff([]string{"r0000", "r0001", "r0003"}, sent); diff != "" {
		t.Errorf("records sent (-want +got):\n%s", diff)
	}

	// Nothing deliverable: still a DeliveryError, since the record is not
	// one to send again, and no call.
	client = &fakeKinesis{}
	err = newSink(t, client).Write(t.Context(), recs[2:3])
	if !errors.As(err, &de) || len(de.Rejected) != 1 || de.Rejected[0].Index != 0 || len(de.Failed) != 0 {
		t.Errorf("Write(one oversize record) = %v, want a DeliveryError rejecting it", err)
	}
	if n := len(client.Calls()); n != 0 {
		t.Errorf("%d calls, want none", n)
	}
}

func TestWriteRetriesOnlyFailedEntries(t *testing.T) {
	refused := map[string]string{
		"r0001": "ProvisionedThroughputExceededException",
		"r0004": "InternalFailure",
		"r0007": "ProvisionedThroughputExceededException",
	}
	client := &fakeKinesis{answer: func(call int, in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error) {
		if call > 0 {
			return accept(in), nil
		}
		return refuse(in, func(_ int, r meter.Record) string { return refused[r.ID] }), nil
	}}
	var waits sleeps
	recs := records(10)
	if err := newSink(t, client, kinesissink.WithSleep(waits.sleep)).Write(t.Context(), recs); err != nil {
		t.Fatalf("Write = %v, want nil once the retry succeeded", err)
	}
	calls := client.Calls()
	if len(calls) != 2 {
		t.Fatalf("%d calls, want 2", len(calls))
	}
	if diff := cmp.Diff([]string{"r0001", "r0004", "r0007"}, ids(t, calls[1])); diff != "" {
		t.Fatalf("second call (-want +got):\n%s", diff)
	}
	for i, e := range calls[1].Records {
		if want := recs[[]int{1, 4, 7}[i]].TenantID; aws.ToString(e.PartitionKey) != want {
			t.Errorf("retried record %d: partition key %q, want %q", i, aws.ToString(e.PartitionKey), want)
		}
	}
	if d := waits.all(); len(d) != 1 || d[0] < kinesissink.DefaultMinBackoff/2 || d[0] > kinesissink.DefaultMinBackoff {
		t.Errorf("waits %v, want one of 50ms to 100ms", d)
	}
}

// A record throttled at every attempt is reported failed, for the
// Recorder to send again later.
func TestWriteEntryThrottledAtEveryAttempt(t *testing.T) {
	client := &fakeKinesis{answer: func(_ int, in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error) {
		return refuse(in, func(_ int, r meter.Record) string {
			if r.TenantID == "tenant-3" {
				return "ProvisionedThroughputExceededException"
			}
			return ""
		}), nil
	}}
	var waits sleeps
	recs := records(20)
	err := newSink(t, client, kinesissink.WithSleep(waits.sleep)).Write(t.Context(), recs)
	var de *meter.DeliveryError
	if !errors.As(err, &de) {
		t.Fatalf("Write = %v, want a *meter.DeliveryError", err)
	}
	if diff := cmp.Diff([]int{3, 10, 17}, de.Failed); diff != "" {
		t.Errorf("Failed (-want +got):\n%s", diff)
	}
	if !errors.Is(err, kinesissink.ErrRefused) || errors.Is(err, kinesissink.ErrRecordRejected) ||
		!strings.Contains(err.Error(), "ProvisionedThroughputExceededException") {
		t.Errorf("Write = %v, want ErrRefused naming the error code", err)
	}
	calls := client.Calls()
	if len(calls) != kinesissink.DefaultAttempts {
		t.Fatalf("%d calls, want %d", len(calls), kinesissink.DefaultAttempts)
	}
	for _, in := range calls[1:] {
		if diff := cmp.Diff([]string{"r0003", "r0010", "r0017"}, ids(t, in)); diff != "" {
			t.Errorf("retry (-want +got):\n%s", diff)
		}
	}
	d := waits.all()
	if len(d) != 2 || d[0] < 50*time.Millisecond || d[0] > 100*time.Millisecond || d[1] < 100*time.Millisecond || d[1] > 200*time.Millisecond {
		t.Errorf("waits %v, want 50-100ms then 100-200ms", d)
	}
}

// A record Kinesis refuses with a code that names the record is not sent
// again; records refused for a reason that passes are, and a KMS key's
// state is such a reason.
func TestWriteRejectsEntriesForGood(t *testing.T) {
	first := map[string]string{
		"r0002": "InvalidArgumentException",
		"r0005": "ProvisionedThroughputExceededException",
		"r0007": "KMSAccessDeniedException",
		"r0008": "InternalFailure",
	}
	client := &fakeKinesis{answer: func(call int, in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error) {
		return refuse(in, func(_ int, r meter.Record) string {
			if call == 0 || r.ID == "r0002" {
				return first[r.ID]
			}
			return ""
		}), nil
	}}
	err := newSink(t, client, noSleep).Write(t.Context(), records(10))
	var de *meter.DeliveryError
	if !errors.As(err, &de) {
		t.Fatalf("Write = %v, want a *meter.DeliveryError", err)
	}
	want := []meter.RejectedRecord{{Index: 2, Reason: "Kinesis refused it: InvalidArgumentException: refused by the test"}}
	if len(de.Failed) != 0 {
		t.Errorf("Failed = %v, want none", de.Failed)
	}
	if diff := cmp.Diff(want, de.Rejected); diff != "" {
		t.Errorf("Rejected (-want +got):\n%s", diff)
	}
	if !errors.Is(err, kinesissink.ErrRecordRejected) || errors.Is(err, kinesissink.ErrRefused) ||
		!strings.Contains(err.Error(), "r0002") || !strings.Contains(err.Error(), "InvalidArgumentException") {
		t.Errorf("Write = %v, want ErrRecordRejected naming r0002 and the code", err)
	}
	calls := client.Calls()
	if len(calls) != 2 {
		t.Fatalf("%d calls, want 2", len(calls))
	}
	if diff := cmp.Diff([]string{"r0005", "r0007", "r0008"}, ids(t, calls[1])); diff != "" {
		t.Errorf("second call (-want +got):\n%s", diff)
	}
}

func TestWriteBackoffDoublesToMax(t *testing.T) {
	client := &fakeKinesis{answer: func(int, *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error) {
		return nil, errors.New("connection reset")
	}}
	var waits sleeps
	s := newSink(t, client, kinesissink.WithAttempts(5), kinesissink.WithBackoff(100*time.Millisecond, 250*time.Millisecond), kinesissink.WithSleep(waits.sleep))
	if err := s.Write(t.Context(), records(1)); err == nil {
		t.Fatal("Write = nil, want an error")
	}
	wantMax := []time.Duration{100, 200, 250, 250}
	d := waits.all()
	if len(d) != len(wantMax) {
		t.Fatalf("waits %v, want %d", d, len(wantMax))
	}
	for i, max := range wantMax {
		max *= time.Millisecond
		if d[i] < max/2 || d[i] > max {
			t.Errorf("wait %d = %v, want %v to %v", i, d[i], max/2, max)
		}
	}
}

func TestWriteWholeCallErrors(t *testing.T) {
	throttled := &types.ProvisionedThroughputExceededException{Message: aws.String("Rate exceeded for shard")}
	missing := &types.ResourceNotFoundException{Message: aws.String("Stream metering not found")}
	tests := []struct {
		name      string
		errs      []error // of the calls in turn; nil once past the end
		wantCalls int
		wantErr   error
	}{
		{"throttled then accepted", []error{throttled}, 2, nil},
		{"network error then accepted", []error{errors.New("connection reset")}, 2, nil},
		{"throttled every time", []error{throttled, throttled, throttled}, 3, throttled},
		{"no such stream: no retry", []error{missing}, 1, missing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := &fakeKinesis{answer: func(call int, in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error) {
				if call < len(tt.errs) {
					return nil, tt.errs[call]
				}
				return accept(in), nil
			}}
			err := newSink(t, client, noSleep).Write(t.Context(), records(5))
			if n := len(client.Calls()); n != tt.wantCalls {
				t.Errorf("%d calls, want %d", n, tt.wantCalls)
			}
			if tt.wantErr == nil {
				if err != nil {
					t.Errorf("Write = %v, want nil", err)
				}
				return
			}
			var de *meter.DeliveryError
			if !errors.Is(err, tt.wantErr) || errors.As(err, &de) {
				t.Errorf("Write = %v, want a plain error wrapping %v (none delivered)", err, tt.wantErr)
			}
		})
	}
}

// A call that fails as a whole holds the calls after it until the next
// attempt: with Kinesis down, a Write waits for one call, not for each.
func TestWriteOneBatchFailing(t *testing.T) {
	// 1,200 records: calls of 500, 500 and 200; the second fails whole
	// the first times it is made.
	failSecond := func(times int) *fakeKinesis {
		failed := 0
		return &fakeKinesis{answer: func(_ int, in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error) {
			if ids(t, in)[0] == "r0500" && failed < times {
				failed++
				return nil, errors.New("connection reset")
			}
			return accept(in), nil
		}}
	}
	firstIDs := func(calls []*kinesis.PutRecordsInput) []string {
		var out []string
		for _, in := range calls {
			out = append(out, fmt.Sprintf("%s+%d", ids(t, in)[0], len(in.Records)))
		}
		return out
	}
	t.Run("retried", func(t *testing.T) {
		client := failSecond(1)
		if err := newSink(t, client, noSleep).Write(t.Context(), records(1200)); err != nil {
			t.Fatal(err)
		}
		want := []string{"r0000+500", "r0500+500", "r0500+500", "r1000+200"}
		if diff := cmp.Diff(want, firstIDs(client.Calls())); diff != "" {
			t.Errorf("calls, by first record and size (-want +got):\n%s", diff)
		}
	})
	t.Run("given up", func(t *testing.T) {
		client := failSecond(10)
		err := newSink(t, client, noSleep, kinesissink.WithAttempts(1)).Write(t.Context(), records(1200))
		var de *meter.DeliveryError
		if !errors.As(err, &de) {
			t.Fatalf("Write = %v, want a *meter.DeliveryError", err)
		}
		var want []int
		for i := 500; i < 1200; i++ {
			want = append(want, i)
		}
		if diff := cmp.Diff(want, de.Failed); diff != "" {
			t.Errorf("Failed (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"r0000+500", "r0500+500"}, firstIDs(client.Calls())); diff != "" {
			t.Errorf("calls, by first record and size (-want +got):\n%s", diff)
		}
	})
}

func TestWriteStopsWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	client := &fakeKinesis{answer: func(_ int, in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error) {
		cancel()
		return refuse(in, func(int, meter.Record) string { return "InternalFailure" }), nil
	}}
	// The real sleep, with a backoff no test would wait for.
	s := newSink(t, client, kinesissink.WithBackoff(time.Hour, time.Hour))
	start := time.Now()
	err := s.Write(ctx, records(3))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Write = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Write took %v after its context ended", d)
	}
	if n := len(client.Calls()); n != 1 {
		t.Errorf("%d calls, want 1", n)
	}
}

// A call Kinesis never answers fails at WithTimeout, and is retried: the
// Write's own context has not ended.
func TestWriteTimeout(t *testing.T) {
	client := &hangingClient{}
	const timeout = 50 * time.Millisecond
	start := time.Now()
	err := newSink(t, client, noSleep, kinesissink.WithTimeout(timeout), kinesissink.WithAttempts(2)).Write(t.Context(), records(3))
	took := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "WithTimeout") {
		t.Errorf("Write = %v, want a timeout naming WithTimeout", err)
	}
	if n := client.Calls(); n != 2 {
		t.Errorf("%d calls, want 2: a call's timeout is retried", n)
	}
	if took < 2*timeout || took > 2*timeout+5*time.Second {
		t.Errorf("Write took %v, want about %v", took, 2*timeout)
	}
}

// hangingClient answers no call: each returns when its context ends.
type hangingClient struct {
	mu    sync.Mutex
	calls int
}

func (c *hangingClient) PutRecords(ctx context.Context, _ *kinesis.PutRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	c.mu.Lock()
	c.calls++
	c.mu.Unlock()
	<-ctx.Done()
	return nil, ctx.Err()
}

func (c *hangingClient) Calls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls
}

func TestWriteEmpty(t *testing.T) {
	client := &fakeKinesis{}
	if err := newSink(t, client).Write(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	if n := len(client.Calls()); n != 0 {
		t.Errorf("%d calls for no records", n)
	}
}

// TestRecorderOverFlakyKinesis runs a Recorder over a client that refuses
// records at random and fails whole calls: every record ends up stored
// exactly once.
func TestRecorderOverFlakyKinesis(t *testing.T) {
	var (
		mu     sync.Mutex
		rng    = rand.New(rand.NewPCG(1, 2))
		stored = map[string]int{}
		values = map[string]float64{} // by tenant/meter
	)
	client := &fakeKinesis{answer: func(_ int, in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error) {
		mu.Lock()
		defer mu.Unlock()
		if rng.IntN(10) == 0 {
			return nil, &types.ProvisionedThroughputExceededException{Message: aws.String("Rate exceeded")}
		}
		return refuse(in, func(_ int, r meter.Record) string {
			if rng.IntN(3) == 0 {
				return "ProvisionedThroughputExceededException"
			}
			stored[r.ID]++
			values[r.TenantID+"/"+r.Meter] += r.Value
			return ""
		}), nil
	}}
	sink := newSink(t, client, noSleep, kinesissink.WithAttempts(2))
	rec, err := meter.New("orders", sink,
		meter.WithMeters(meter.Meter{Name: "api.calls"}, meter.Meter{Name: "storage.bytes", Unit: meter.UnitBytes}),
		meter.WithoutLoop(), meter.WithClock(func() time.Time { return window }),
		meter.WithBatchSize(300), meter.WithBackoff(time.Millisecond, 2*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	const tenants = 500
	want := map[string]float64{}
	for i := range tenants {
		id := fmt.Sprintf("tenant-%03d", i)
		ctx := tenant.NewContext(t.Context(), tenant.Tenant{ID: id, Tier: tenant.DefaultTiers.MustLookup("basic")})
		rec.Add(ctx, "api.calls", float64(i+1))
		rec.Add(ctx, "storage.bytes", float64(1000*i+1))
		want[id+"/api.calls"] = float64(i + 1)
		want[id+"/storage.bytes"] = float64(1000*i + 1)
	}
	for range 3 {
		_ = rec.Flush(t.Context()) // failures stay pending
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := rec.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if len(stored) != 2*tenants {
		t.Errorf("%d records stored, want %d", len(stored), 2*tenants)
	}
	for id, n := range stored {
		if n != 1 {
			t.Errorf("record %s stored %d times", id, n)
		}
	}
	if diff := cmp.Diff(want, values); diff != "" {
		t.Errorf("values stored (-want +got):\n%s", diff)
	}
	if st := rec.Stats(); st.Delivered != 2*tenants || st.Pending != 0 {
		t.Errorf("Stats = %+v, want %d delivered and none pending", st, 2*tenants)
	}
}
